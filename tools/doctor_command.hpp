#pragma once
// `vigil doctor`: checks this server's standing (lists, reverse DNS, SPF, DKIM, DMARC, MX, DNSSEC)
// with lib/doctor and prints a table or JSON.
#include <string>

#include "engine/config.hpp"

namespace vigil::tools {

// argv starts at "doctor". `config_path`/`explicit_config`/`overrides` are the global options given
// before the command (--config, --dns); the same options after "doctor" win.
// Returns 0 all ok, 1 a warning or "cannot tell", 2 a failure, 3 when it could not run at all.
int doctor_command(int argc, char** argv, const std::string& config_path, bool explicit_config,
                   engine::Overrides overrides);

}  // namespace vigil::tools
