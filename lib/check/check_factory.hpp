#pragma once
// How the engine's registry builds a check: its name, whether it is on by default, and the function
// that reads its own [checks.<name>] section. A check's header includes this, never the registry.
#include <memory>
#include <string_view>

#include "check/check.hpp"
#include "check/config_reader.hpp"

namespace vigil::check {

struct CheckFactory {
    std::string_view name;
    bool enabled_by_default;
    // Reads the check's own options from its [checks.<name>] section.
    std::unique_ptr<Check> (*make)(Section& options);
};

}  // namespace vigil::check
