#pragma once
// One finding of `vigil doctor`: what was looked at, how it stands, why, and what to do about it.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::doctor {

// unknown is "cannot tell" (a list refused our query, a lookup timed out, no DNSSEC validation):
// never reported as clean, and counted as a warning in the exit status.
enum class Level { ok, warn, fail, unknown };
std::string_view to_string(Level level);  // "ok", "warn", "fail", "unknown"

struct Finding {
    std::string area;     // lists, rdns, host, mx, spf, dkim, dmarc, dnssec, port25
    std::string subject;  // the IP, domain or host name it is about
    Level level = Level::ok;
    std::string reason;  // one line, printable
    std::string fix;     // concrete text (the record to publish, the command to run); empty when ok
};

struct Summary {
    std::size_t ok = 0, warn = 0, fail = 0, unknown = 0;
};
Summary summarize(const std::vector<Finding>& findings);
// 0 all ok, 1 a warning or "cannot tell", 2 a failure: for cron, Nagios and systemd.
int exit_status(const std::vector<Finding>& findings);

}  // namespace vigil::doctor
