#include "engine/daemon_settings.hpp"

#include <charconv>

#include <fmt/format.h>

namespace vigil::engine {

std::optional<std::string> socket_spec_error(std::string_view spec) {
    auto colon = spec.find(':');
    if (colon == std::string_view::npos) return "expected unix:PATH or inet:PORT@HOST";
    auto proto = spec.substr(0, colon);
    auto rest = spec.substr(colon + 1);
    if (proto == "unix" || proto == "local") {
        if (rest.empty() || rest.front() != '/')
            return "a unix socket needs an absolute path (unix:/run/vigil/vigil.sock)";
        return std::nullopt;
    }
    if (proto == "inet" || proto == "inet6") {
        auto at = rest.find('@');
        auto port = rest.substr(0, at);
        unsigned p = 0;
        auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535) {
            return "expected inet:PORT@HOST with a port from 1 to 65535 (e.g. inet:8891@127.0.0.1)";
        }
        if (at != std::string_view::npos && rest.substr(at + 1).empty()) return "empty host after '@'";
        return std::nullopt;
    }
    return fmt::format("unknown socket type '{}' (use unix: or inet:)", proto);
}

DaemonSettings DaemonSettings::read(check::Section& s, const Overrides& ov) {
    DaemonSettings d;
    d.socket = ov.socket.value_or(s.get_string("socket", d.socket));
    if (auto e = socket_spec_error(d.socket)) s.error("socket", *e);
    auto mode = s.get_string("socket_mode", "0660");
    unsigned m = 0;
    auto [p, ec] = std::from_chars(mode.data(), mode.data() + mode.size(), m, 8);
    if (mode.empty() || ec != std::errc() || p != mode.data() + mode.size() || m > 0777) {
        s.error("socket_mode", "must be an octal mode as a string, e.g. \"0660\"");
    } else {
        d.socket_mode = m;
    }
    d.user = s.get_string("user", d.user);
    d.group = s.get_string("group", d.group);
    d.socket_group = s.get_string("socket_group", d.socket_group);
    d.allow_root = ov.allow_root.value_or(s.get_bool("allow_root", d.allow_root));
    d.pid_file = s.get_string("pid_file", d.pid_file);
    if (!d.pid_file.empty() && d.pid_file.front() != '/') s.error("pid_file", "must be an absolute path");
    d.timeout_s = static_cast<int>(s.get_int("timeout", d.timeout_s, 1, 3600));
    auto fail = s.get_choice("on_internal_error", "tempfail", {"tempfail", "reject", "accept"});
    d.on_internal_error = *core::parse_action(fail);
    d.tcp_nodelay = s.get_bool("tcp_nodelay", d.tcp_nodelay);
    d.delay_reject = s.get_bool("delay_reject", d.delay_reject);
    s.finish();
    return d;
}

}  // namespace vigil::engine
