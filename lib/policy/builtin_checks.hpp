#pragma once
// The single list of built-in checks. Adding a check touches its own files, this list's .cpp,
// conf/vigil.conf and the README — nothing else.
#include <memory>
#include <string_view>
#include <vector>

#include "policy/check.hpp"
#include "policy/config_reader.hpp"

namespace vigil::policy {

struct CheckFactory {
    std::string_view name;
    bool enabled_by_default;
    // Reads the check's own options from its [checks.<name>] section.
    std::unique_ptr<Check> (*make)(Section& options);
};

const std::vector<CheckFactory>& builtin_checks();

}  // namespace vigil::policy
