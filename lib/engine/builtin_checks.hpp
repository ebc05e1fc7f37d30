#pragma once
// The single list of built-in checks. Adding a check touches its own files, this list's .cpp,
// conf/vigil.conf and the README — nothing else.
#include <memory>
#include <string_view>
#include <vector>

#include "engine/check_api.hpp"

namespace vigil::engine {

using check::CheckFactory;

const std::vector<CheckFactory>& builtin_checks();

}  // namespace vigil::engine
