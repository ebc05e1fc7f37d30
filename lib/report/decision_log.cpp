#include "report/decision_log.hpp"

#include <algorithm>
#include <iterator>

#include <fmt/format.h>

#include "core/limits.hpp"
#include "core/printable.hpp"

namespace vigil::report {

namespace {

using core::json_escape;
using core::printable;

std::string queue_id(const core::Envelope& env) {
    return env.queue_id.empty() ? "NOQUEUE" : printable(env.queue_id, 32);
}
std::string ip_text(const core::Envelope& env) {
    return env.client_ip ? env.client_ip->to_string() : "local";
}

}  // namespace

std::string format_decision(report::LogFormat format, const core::Envelope& env, const core::Verdict& v,
                            long ms) {
    if (format == report::LogFormat::json) {
        std::string symbols;
        for (std::size_t i = 0; i < v.symbols.size() && i < core::limits::max_log_symbols; ++i) {
            const auto& s = v.symbols[i];
            std::string opts;
            for (const auto& o : s.options) {
                opts += fmt::format("{}\"{}\"", opts.empty() ? "" : ",", json_escape(printable(o, 64)));
            }
            symbols += fmt::format("{}{{\"name\":\"{}\",\"score\":{:.2f},\"options\":[{}]}}", i ? "," : "",
                                   s.name, s.score, opts);
        }
        std::string forced;
        if (v.forced) {
            forced = fmt::format(",\"forced\":{{\"action\":\"{}\",\"by\":\"{}\",\"reason\":\"{}\"}}",
                                 core::to_string(v.forced->action), v.forced->check,
                                 json_escape(printable(v.forced->reason)));
        }
        return fmt::format(
            "{{\"queue_id\":\"{}\",\"direction\":\"{}\",\"action\":\"{}\",\"score\":{:.2f},\"reject_score\":{"
            ":.2f},"
            "\"symbols\":[{}]{},\"ip\":\"{}\",\"helo\":\"{}\",\"from\":\"{}\",\"rcpts\":{},\"ms\":{}}}",
            json_escape(queue_id(env)), core::to_string(env.direction), core::to_string(v.action), v.score,
            v.reject_threshold, symbols, forced, ip_text(env), json_escape(printable(env.helo)),
            json_escape(printable(env.mail_from)), env.rcpt_count, ms);
    }
    // One buffer for the whole line (a message's line has a dozen symbols or more).
    std::string out;
    out.reserve(256 + 32 * std::min(v.symbols.size(), core::limits::max_log_symbols));
    auto it = std::back_inserter(out);
    fmt::format_to(it, "{}: {} action={} score={:.2f}/{:.2f} symbols=", queue_id(env),
                   core::to_string(env.direction), core::to_string(v.action), v.score, v.reject_threshold);
    if (v.symbols.empty()) out += "none";
    for (std::size_t i = 0; i < v.symbols.size() && i < core::limits::max_log_symbols; ++i) {
        if (i) out += ',';
        out += v.symbols[i].name;
        fmt::format_to(it, "({:.2f})", v.symbols[i].score);
    }
    if (v.forced) fmt::format_to(it, " forced=\"{}: {}\"", v.forced->check, printable(v.forced->reason));
    fmt::format_to(it, " ip={} helo={} from=<{}> rcpts={} ms={}", ip_text(env),
                   printable(env.helo.empty() ? "-" : env.helo), printable(env.mail_from), env.rcpt_count,
                   ms);
    return out;
}

std::string format_early_decision(report::LogFormat format, const core::Envelope& env, std::string_view stage,
                                  std::string_view action, const core::SmtpReply& reply,
                                  std::string_view reason, std::string_view rcpt) {
    if (format == report::LogFormat::json) {
        return fmt::format(
            "{{\"queue_id\":\"{}\",\"stage\":\"{}\",\"action\":\"{}\",\"reply\":\"{} {} "
            "{}\",\"reason\":\"{}\","
            "\"ip\":\"{}\",\"helo\":\"{}\",\"from\":\"{}\",\"rcpt\":\"{}\"}}",
            json_escape(queue_id(env)), stage, action, reply.code, reply.xcode, json_escape(reply.text),
            json_escape(printable(reason)), ip_text(env), json_escape(printable(env.helo)),
            json_escape(printable(env.mail_from)), json_escape(printable(rcpt)));
    }
    return fmt::format("{}: {} at {} reply=\"{} {} {}\" reason=\"{}\" ip={} helo={} from=<{}>{}",
                       queue_id(env), action, stage, reply.code, reply.xcode, printable(reply.text),
                       printable(reason), ip_text(env), printable(env.helo.empty() ? "-" : env.helo),
                       printable(env.mail_from),
                       rcpt.empty() ? std::string() : fmt::format(" rcpt=<{}>", printable(rcpt)));
}

}  // namespace vigil::report
