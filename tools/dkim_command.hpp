#pragma once
// `vigil dkim keygen|sign|verify`: see lib/auth/dkim/DOCS.md.
#include <memory>

namespace vigil::engine {
struct Config;
}

// argv starts at "dkim". Returns the process exit status.
int dkim_command(int argc, char** argv, std::shared_ptr<const vigil::engine::Config> config);
