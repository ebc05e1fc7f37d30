#pragma once
// The libmilter callbacks: translate MTA events into Session calls and the verdict into libmilter
// actions, in one place (house rule 1). No policy here.
#include <libmilter/mfapi.h>

#include "milter/daemon.hpp"

namespace vigil::milter {

// libmilter gives callbacks no user pointer until a connection has private data, so the daemon
// is reached through this one pointer, set once before smfi_main() and never changed.
void set_daemon(Daemon* daemon);
// The socket is a unix one (no Nagle): DATA need not be answered. Set once before smfi_main().
void set_unix_listener(bool unix_socket);
// Tests only (VIGIL_TEST_THROW_IN=connect|helo|mail|rcpt|data|header|eoh|body|eom): that callback
// throws, to show that an internal failure anywhere ends in the configured failure action.
void set_fault_injection(const char* stage);
smfiDesc make_filter_description();

}  // namespace vigil::milter
