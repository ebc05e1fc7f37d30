#pragma once
// The engine is the check API's one client: it names the API's types without the check:: prefix.
#include "check/auth_facts.hpp"
#include "check/check.hpp"
#include "check/check_factory.hpp"
#include "check/config_reader.hpp"

namespace vigil::engine {

using check::AuthFacts;
using check::Check;
using check::CheckFactory;
using check::CheckState;
using check::ConfigError;
using check::ConfigErrors;
using check::Context;
using check::Section;
using check::ServerFacts;
using check::Stage;
using check::stage_count;

}  // namespace vigil::engine
