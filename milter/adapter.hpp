#pragma once
// The libmilter callbacks: translate MTA events into Session calls and the verdict into libmilter
// actions, in one place (house rule 1). No policy here.
#include <libmilter/mfapi.h>

#include "milter/daemon.hpp"

namespace vigil::milter {

// libmilter gives callbacks no user pointer until a connection has private data, so the daemon
// is reached through this one pointer, set once before smfi_main() and never changed.
void set_daemon(Daemon* daemon);
smfiDesc make_filter_description();

}  // namespace vigil::milter
