#include "auth/dkim/tags.hpp"

#include <array>
#include <cstring>

#include "auth/dkim/dkim_limits.hpp"

namespace vigil::auth::dkim {

bool is_wsp(char c) {
    return c == ' ' || c == '\t';
}
bool is_fws(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

namespace {
bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
// 1 for a byte that may not appear in a value: neither VALCHAR (%x21-3A / %x3C-7E) nor FWS.
constexpr std::array<unsigned char, 256> not_in_value = [] {
    std::array<unsigned char, 256> t{};
    for (int u = 0; u < 256; ++u) {
        bool fws = u == ' ' || u == '\t' || u == '\r' || u == '\n';
        t[u] = (u >= 0x21 && u <= 0x7e && u != ';') || fws ? 0 : 1;
    }
    return t;
}();
// 0 for FWS, 1 for any other byte.
constexpr std::array<unsigned char, 256> kept = [] {
    std::array<unsigned char, 256> t{};
    for (int u = 0; u < 256; ++u) t[u] = u == ' ' || u == '\t' || u == '\r' || u == '\n' ? 0 : 1;
    return t;
}();
}  // namespace

const Tag* TagList::find(std::string_view name) const {
    // Names are one or two letters: comparing them inline beats a call to memcmp per tag.
    for (const auto& t : tags) {
        if (t.name.size() != name.size()) continue;
        std::size_t k = 0;
        while (k < name.size() && t.name[k] == name[k]) ++k;
        if (k == name.size()) return &t;
    }
    return nullptr;
}

std::string strip_fws(std::string_view value) {
    // Branch-free: b= is ~350 characters with a fold every line; push_back per byte cost more than
    // the rest of the signature parse.
    std::string out(value.size(), '\0');
    char* o = out.data();
    for (char c : value) {
        *o = c;
        o += kept[static_cast<unsigned char>(c)];
    }
    out.resize(static_cast<std::size_t>(o - out.data()));
    return out;
}

TagList parse_tag_list(std::string_view text) {
    TagList out;
    out.tags.reserve(16);  // a signature has about a dozen tags: one allocation, not five
    if (text.size() > limits::max_tag_list_bytes) {
        out.error = "tag list longer than " + std::to_string(limits::max_tag_list_bytes) + " bytes";
        return out;
    }
    std::size_t i = 0, n = text.size();
    auto skip_fws = [&] {
        while (i < n && is_fws(text[i])) ++i;
    };
    while (true) {
        skip_fws();
        if (i == n) {
            // Empty list, or a trailing ";" (allowed once at the end).
            return out;
        }
        std::size_t name_begin = i;
        if (!is_alpha(text[i])) {
            out.error = text[i] == ';' ? "empty tag" : "tag name must start with a letter";
            return out;
        }
        while (i < n && (is_alpha(text[i]) || is_digit(text[i]) || text[i] == '_')) ++i;
        std::string_view name = text.substr(name_begin, i - name_begin);
        skip_fws();
        if (i == n || text[i] != '=') {
            out.error = "tag '" + std::string(name.substr(0, 32)) + "' without '='";
            return out;
        }
        ++i;
        std::size_t raw_begin = i;
        skip_fws();
        // The value runs to the next ';', checked in one pass without a branch per byte: a b= value
        // is most of a signature's bytes.
        const std::size_t value_begin = i;
        const void* semi = std::memchr(text.data() + i, ';', n - i);
        i = semi ? static_cast<std::size_t>(static_cast<const char*>(semi) - text.data()) : n;
        unsigned bad = 0;
        for (std::size_t k = value_begin; k < i; ++k)
            bad |= not_in_value[static_cast<unsigned char>(text[k])];
        if (bad != 0) {
            out.error = "invalid byte in value of tag '" + std::string(name.substr(0, 32)) + "'";
            return out;
        }
        std::size_t value_end = i;
        while (value_end > value_begin && is_fws(text[value_end - 1])) --value_end;
        if (out.find(name) != nullptr) {
            out.error = "duplicate tag '" + std::string(name.substr(0, 32)) + "'";
            return out;
        }
        if (out.tags.size() >= limits::max_tags) {
            out.error = "more than " + std::to_string(limits::max_tags) + " tags";
            return out;
        }
        out.tags.push_back(Tag{name, text.substr(value_begin, value_end - value_begin), raw_begin, i});
        if (i == n) return out;
        ++i;  // ';'
    }
}

}  // namespace vigil::auth::dkim
