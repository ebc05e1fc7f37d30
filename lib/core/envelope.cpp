#include "core/envelope.hpp"

#include "core/printable.hpp"

namespace vigil::core {

std::string_view to_string(Direction d) {
    return d == Direction::inbound ? "inbound" : "outbound";
}

std::string strip_angle_brackets(std::string_view addr) {
    addr = trim(addr);
    if (!addr.empty() && addr.front() == '<') {
        auto close = addr.find('>');
        if (close != std::string_view::npos) return std::string(addr.substr(1, close - 1));
        return std::string(addr.substr(1));
    }
    return std::string(addr.substr(0, addr.find(' ')));
}

std::string address_domain(std::string_view addr) {
    auto at = addr.rfind('@');
    if (at == std::string_view::npos) return {};
    return to_lower(addr.substr(at + 1));
}

}  // namespace vigil::core
