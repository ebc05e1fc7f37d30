#include "auth/dkim/tags.hpp"

#include "auth/dkim/dkim_limits.hpp"

namespace vigil::auth::dkim {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }
bool is_fws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

namespace {
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_valchar(char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x21 && u <= 0x7e && u != ';';
}
}  // namespace

const Tag* TagList::find(std::string_view name) const {
    for (const auto& t : tags) {
        if (t.name == name) return &t;
    }
    return nullptr;
}

std::string strip_fws(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (!is_fws(c)) out.push_back(c);
    }
    return out;
}

TagList parse_tag_list(std::string_view text) {
    TagList out;
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
        std::size_t value_begin = i, value_end = i;
        while (i < n && text[i] != ';') {
            if (is_valchar(text[i])) {
                value_end = i + 1;
            } else if (!is_fws(text[i])) {
                out.error = "invalid byte in value of tag '" + std::string(name.substr(0, 32)) + "'";
                return out;
            }
            ++i;
        }
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
