#include "core/printable.hpp"

#include <utility>

#include <fmt/format.h>

namespace vigil::core {

std::string printable(std::string_view raw, std::size_t max) {
    std::string out;
    out.reserve(std::min(raw.size(), max) + 3);
    for (unsigned char c : raw) {
        if (out.size() >= max) {
            out += "...";
            break;
        }
        if (c == '\\') {
            out += "\\\\";
        } else if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            out += fmt::format("\\x{:02x}", c);
        }
    }
    return out;
}

namespace {

// The code point of the well-formed UTF-8 sequence at raw[i] (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), and its length; length 0 when there is none (also for ASCII).
std::pair<char32_t, std::size_t> utf8_at(std::string_view raw, std::size_t i) {
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(raw[k]); };
    unsigned char c = byte(i);
    std::size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    if (n == 0 || c > 0xf4 || i + n > raw.size()) return {0, 0};
    char32_t cp = c & (0x7f >> n);
    for (std::size_t k = 1; k < n; ++k) {
        if ((byte(i + k) & 0xc0) != 0x80) return {0, 0};
        cp = (cp << 6) | (byte(i + k) & 0x3f);
    }
    static constexpr char32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < smallest[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return {0, 0};
    return {cp, n};
}

}  // namespace

std::string json_escape(std::string_view raw) {
    std::string out;
    out.reserve(raw.size() + 8);
    for (std::size_t i = 0; i < raw.size(); ++i) {
        auto c = static_cast<unsigned char>(raw[i]);
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (c >= 0x20 && c < 0x7f) {
                    out += static_cast<char>(c);
                } else if (auto [cp, n] = utf8_at(raw, i); n > 0) {
                    // Text that is UTF-8 (our own messages, an SMTPUTF8 header) keeps its characters.
                    if (cp >= 0x10000) {
                        cp -= 0x10000;
                        out += fmt::format("\\u{:04x}\\u{:04x}", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
                    } else {
                        out += fmt::format("\\u{:04x}", static_cast<unsigned>(cp));
                    }
                    i += n - 1;
                } else {
                    out += fmt::format("\\u{:04x}", c);  // a control character, or a byte that is not UTF-8
                }
        }
    }
    return out;
}

std::string to_lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

std::string_view trim(std::string_view s) {
    const char* ws = " \t\r\n";
    auto b = s.find_first_not_of(ws);
    if (b == std::string_view::npos) return {};
    auto e = s.find_last_not_of(ws);
    return s.substr(b, e - b + 1);
}

}  // namespace vigil::core
