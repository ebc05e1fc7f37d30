#include "doctor/zone_text.hpp"

namespace vigil::doctor {

std::string txt_record(std::string_view name, std::string_view text) {
    std::string out(name);
    out += ". IN TXT";
    constexpr std::size_t chunk = 250;
    if (text.size() <= chunk) return out + " \"" + std::string(text) + "\"";
    out += " (";
    for (std::size_t i = 0; i < text.size(); i += chunk)
        out += " \"" + std::string(text.substr(i, chunk)) + "\"";
    return out + " )";
}

}  // namespace vigil::doctor
