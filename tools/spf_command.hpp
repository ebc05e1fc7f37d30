#pragma once
// `vigil spf`: evaluates SPF (RFC 7208) for one client IP, MAIL FROM and HELO with the same
// evaluator and resolver set-up the milter uses.
#include <memory>

#include "engine/config.hpp"

namespace vigil::tools {

// argv starts at "spf":
//   spf --ip IP --mail-from ADDR [--helo NAME] [--dns HOST:PORT] [--json]
// An empty --mail-from "" is the null sender (postmaster@HELO is checked). Explanations (exp=) are
// always fetched for a fail. --json prints one object: result, identity, domain, mechanism,
// explanation (when there is one), problem (why an error), dns_terms, void_lookups.
// Returns 0 when a result was reached (whatever it is), 2 for usage errors.
int spf_command(int argc, char** argv, std::shared_ptr<const vigil::engine::Config> config);

}  // namespace vigil::tools

using vigil::tools::spf_command;
