#include "policy/replay.hpp"

#include <algorithm>

namespace vigil::policy {

ReplayResult replay(Session& s, const ReplayInput& in) {
    ReplayResult out;
    auto stop = [&](const char* stage, StageResult r) {
        out.refused_at = stage;
        out.refusal = std::move(r);
        out.envelope = s.envelope();
        return out;
    };
    if (auto r = s.connect(in.ip, in.client_name); !r.proceed()) return stop("connect", r);
    if (auto r = s.helo(in.helo); !r.proceed()) return stop("helo", r);
    if (auto r = s.mail(in.mail_from, in.auth_user); !r.proceed()) return stop("mail", r);
    s.set_queue_id(in.queue_id);
    for (const auto& rcpt : in.rcpts) {
        if (auto r = s.rcpt(rcpt); !r.proceed()) out.refused_rcpts.emplace_back(rcpt, r);
    }
    if (!in.rcpts.empty() && out.refused_rcpts.size() == in.rcpts.size()) {
        return stop("rcpt", out.refused_rcpts.front().second);
    }
    auto parsed = core::parse_message(in.message);
    for (const auto& h : parsed.headers) s.header(h.name, h.value);
    s.end_of_headers();
    // The milter sees the body in chunks of at most 64 KiB; so does this.
    constexpr std::size_t chunk = 65535;
    for (std::size_t off = 0; off < parsed.body.size(); off += chunk) {
        s.body(std::string_view(parsed.body).substr(off, chunk));
    }
    out.verdict = s.end_of_message();
    out.envelope = s.envelope();
    out.ms = s.elapsed_ms();
    s.reset_message();
    return out;
}

}  // namespace vigil::policy
