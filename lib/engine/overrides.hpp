#pragma once
// Settings given on the command line that win over the file.
#include <optional>
#include <string>

namespace vigil::engine {

struct Overrides {
    std::optional<std::string> dns_server;
    std::optional<std::string> authserv_id;
    std::optional<std::string> socket;
    std::optional<bool> allow_root;
};

}  // namespace vigil::engine
