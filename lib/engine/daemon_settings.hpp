#pragma once
// [milter]: how the daemon listens, whom it runs as, and how it answers when it cannot decide.
#include <optional>
#include <string>
#include <string_view>

#include "check/config_reader.hpp"
#include "core/verdict.hpp"
#include "engine/overrides.hpp"

namespace vigil::engine {

struct DaemonSettings {
    std::string socket = "inet:8891@127.0.0.1";
    unsigned socket_mode = 0660;
    std::string user = "vigil";
    std::string group;         // empty: the user's primary group
    std::string socket_group;  // a unix socket's group; empty: `group`
    bool allow_root = false;
    std::string pid_file;
    int timeout_s = 300;
    core::Action on_internal_error = core::Action::tempfail;
    bool tcp_nodelay = true;
    // Refusals decided at connect, HELO and MAIL FROM are given at RCPT TO (Postfix's smtpd_delay_reject).
    bool delay_reject = true;

    static DaemonSettings read(check::Section& s, const Overrides& overrides);
};

// Validates a libmilter socket spec: unix:PATH, local:PATH, inet:PORT@HOST, inet6:PORT@HOST.
std::optional<std::string> socket_spec_error(std::string_view spec);

}  // namespace vigil::engine
