#include "engine/replay.hpp"

#include <algorithm>

namespace vigil::engine {

ReplayResult replay(Session& s, const ReplayInput& in) {
    ReplayResult out;
    auto stop = [&](const char* stage, StageResult r) {
        out.refused_at = stage;
        out.refusal = std::move(r);
        out.envelope = s.envelope();
        return out;
    };
    // With delay_reject (the milter's default) a refusal decided at connect or HELO waits for MAIL
    // FROM, where it may turn out not to hold for this sender; HELO's checks run in between.
    const bool delay = s.config().milter.delay_reject;
    auto at_connect = s.connect(in.ip, in.client_name);
    if (!at_connect.proceed() && !delay) return stop("connect", at_connect);
    auto at_helo = s.helo(in.helo);
    if (!at_helo.proceed() && !delay) return stop("helo", at_helo);
    if (auto r = s.mail(in.mail_from, in.auth_user); !r.proceed()) {
        return stop(to_string(r.decided_at).data(), r);
    }
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

}  // namespace vigil::engine
