#include "auth/authentication_results.hpp"

#include <algorithm>
#include <array>

#include "auth/authentication_results_limits.hpp"
#include "core/printable.hpp"

namespace vigil::auth {

namespace {

// "Authentication-Results:" takes 23 columns; a tab counts 8.
constexpr std::size_t line_limit = 78;
constexpr std::size_t name_columns = 23;
constexpr std::size_t tab_columns = 8;
// One fold for both: a reader that unfolds by removing CRLF sees single spaces, as on one line.
constexpr std::string_view fold = "\r\n\t";

bool is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool is_keyword_char(char c) {
    return is_alnum(c) || c == '-' || c == '_';
}

bool is_keyword(std::string_view s) {
    return !s.empty() && s.size() <= limits::max_keyword_length &&
           std::all_of(s.begin(), s.end(), is_keyword_char);
}

// A property name: keywords joined by single dots.
bool is_property(std::string_view s) {
    if (s.empty() || s.front() == '.' || s.back() == '.' || s.find("..") != std::string_view::npos)
        return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return is_keyword_char(c) || c == '.'; });
}

// RFC 2045 token: printable ASCII without space and tspecials.
constexpr std::array<bool, 256> token_chars = [] {
    std::array<bool, 256> t{};
    constexpr std::string_view tspecials = "()<>@,;:\\\"/[]?=";
    for (int c = 0x21; c < 0x7f; ++c) t[c] = tspecials.find(static_cast<char>(c)) == std::string_view::npos;
    return t;
}();

bool is_token(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return token_chars[static_cast<unsigned char>(c)]; });
}

// RFC 5322 dot-atom.
bool is_dot_atom(std::string_view s) {
    static constexpr std::string_view atext_specials = "!#$%&'*+/=?^_`{|}~-";
    if (s.empty() || s.front() == '.' || s.back() == '.' || s.find("..") != std::string_view::npos)
        return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return is_alnum(c) || c == '.' || atext_specials.find(c) != std::string_view::npos;
    });
}

// RFC 6376 domain-name: two or more LDH labels.
bool is_domain_name(std::string_view s) {
    std::size_t labels = 0;
    while (true) {
        auto dot = s.find('.');
        auto label = s.substr(0, dot);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        if (!std::all_of(label.begin(), label.end(), [](char c) { return is_alnum(c) || c == '-'; }))
            return false;
        ++labels;
        if (dot == std::string_view::npos) break;
        s.remove_prefix(dot + 1);
    }
    return labels >= 2;
}

// [local-part] "@" domain-name, with a dot-atom local-part.
bool is_address(std::string_view s) {
    auto at = s.rfind('@');
    if (at == std::string_view::npos) return false;
    auto local = s.substr(0, at);
    return (local.empty() || is_dot_atom(local)) && is_domain_name(s.substr(at + 1));
}

// Printable ASCII (space included); any other byte as \xNN. Text that would come out longer than
// max + 3 is cut to at most `max` bytes (never inside a \xNN) followed by "...", so a text this
// function wrote comes back unchanged: the formatter is stable when it reads its own output.
std::string header_text(std::string_view raw, std::size_t max) {
    // Nearly every value is short printable ASCII: copied as is.
    if (raw.size() <= max + 3 &&
        std::all_of(raw.begin(), raw.end(), [](char c) { return c >= 0x20 && c < 0x7f; }))
        return std::string(raw);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(std::min(raw.size(), max) + 3);
    std::size_t cut = std::string::npos;  // out's size before the first piece past `max`
    for (unsigned char c : raw) {
        auto before = out.size();
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            const char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 0xf]};
            out.append(esc, 4);
        }
        if (cut == std::string::npos && out.size() > max) cut = before;
        if (out.size() > max + 3) {
            out.resize(cut);
            return out + "...";
        }
    }
    return out;
}

std::string quoted(std::string_view printable) {
    std::string out = "\"";
    for (char c : printable) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
    return out;
}

std::string comment(std::string_view raw) {
    std::string out = "(";
    for (char c : header_text(raw, limits::max_comment_length)) {
        if (c == '(' || c == ')' || c == '\\') out += '\\';
        out += c;
    }
    out += ')';
    return out;
}

// Reads a quoted-string or comment body from s[i] (just past the opening character) to its end,
// undoing quoted-pairs; a comment keeps nested parentheses as text.
std::string read_delimited(std::string_view s, std::size_t& i, char close) {
    std::string out;
    int depth = 0;
    for (; i < s.size(); ++i) {
        char c = s[i];
        if (c == '\\' && i + 1 < s.size()) {
            out += s[++i];
            continue;
        }
        if (close == ')' && c == '(') ++depth;
        if (c == close) {
            if (depth == 0) {
                ++i;
                break;
            }
            --depth;
        }
        out += c;
    }
    return out;
}

int method_rank(std::string_view method) {
    auto name = method.substr(0, method.find('/'));
    if (name == "iprev") return 0;
    if (name == "spf") return 1;
    if (name == "dkim") return 2;
    if (name == "dmarc") return 3;
    return 4;
}

std::string joined(std::string_view a, char sep, std::string_view b) {
    std::string out;
    out.reserve(a.size() + 1 + b.size());
    out.append(a);
    out += sep;
    out.append(b);
    return out;
}

// The parts of a resinfo between which it may be folded.
std::vector<std::string> parts_of(const ResInfo& r) {
    std::vector<std::string> parts;
    parts.reserve(1 + r.comments.size() + (r.reason ? 1 : 0) + r.properties.size());
    parts.push_back(joined(r.method, '=', r.result));
    for (const auto& c : r.comments) parts.push_back(comment(c));
    if (r.reason) {
        auto v = header_text(*r.reason, limits::max_value_length);
        parts.push_back(joined("reason", '=', is_token(v) ? v : quoted(v)));
    }
    for (const auto& p : r.properties) {
        auto v = ar_value(p.value);
        parts.push_back(joined(p.name, '=', p.quoted && v.front() != '"' ? quoted(v) : v));
    }
    return parts;
}

void append_joined(std::string& out, const std::vector<std::string>& parts) {
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (i) out += ' ';
        out += parts[i];
    }
}

}  // namespace

std::optional<ResInfo> parse_resinfo(std::string_view s) {
    s = s.substr(0, limits::max_resinfo_input);
    std::size_t i = 0;
    while (i < s.size() && is_ws(s[i])) ++i;
    auto eq = s.find('=', i);
    if (eq == std::string_view::npos) return std::nullopt;
    auto method = s.substr(i, eq - i);
    auto slash = method.find('/');
    if (!is_keyword(method.substr(0, slash))) return std::nullopt;
    if (slash != std::string_view::npos) {
        auto version = method.substr(slash + 1);
        if (version.empty() || version.size() > 8 ||
            !std::all_of(version.begin(), version.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return std::nullopt;
    }
    i = eq + 1;
    auto result_end = i;
    while (result_end < s.size() && is_keyword_char(s[result_end])) ++result_end;
    if (!is_keyword(s.substr(i, result_end - i))) return std::nullopt;
    ResInfo r;
    r.method = core::to_lower(method);
    r.result = core::to_lower(s.substr(i, result_end - i));
    i = result_end;

    while (i < s.size()) {
        char c = s[i];
        if (is_ws(c)) {
            ++i;
        } else if (c == '(') {
            ++i;
            auto text = read_delimited(s, i, ')');
            if (r.comments.size() < limits::max_comments) r.comments.push_back(std::move(text));
        } else {
            // name=value; a word that is not one is skipped.
            auto start = i;
            while (i < s.size() && s[i] != '=' && !is_ws(s[i]) && s[i] != '(') ++i;
            auto name = s.substr(start, i - start);
            if (i >= s.size() || s[i] != '=') continue;
            ++i;
            std::string value;
            bool was_quoted = i < s.size() && s[i] == '"';
            if (was_quoted) {
                ++i;
                value = read_delimited(s, i, '"');
            } else {
                auto vstart = i;
                while (i < s.size() && !is_ws(s[i]) && s[i] != '(') ++i;
                value = std::string(s.substr(vstart, i - vstart));
            }
            auto dot = name.find('.');
            if (core::iequals(name, "reason")) {
                r.reason = std::move(value);
            } else if (dot != std::string_view::npos && is_keyword(name.substr(0, dot)) &&
                       is_property(name.substr(dot + 1)) && name.size() <= limits::max_keyword_length &&
                       r.properties.size() < limits::max_properties) {
                r.properties.push_back({core::to_lower(name), std::move(value), was_quoted});
            }
        }
    }
    return r;
}

std::string ar_value(std::string_view raw) {
    auto v = header_text(raw, limits::max_value_length);
    if (is_token(v) || is_address(v)) return v;
    return quoted(v);
}

std::string dnssec_comment(dns::Dnssec status) {
    switch (status) {
        case dns::Dnssec::secure:
            return " (dnssec: secure)";
        case dns::Dnssec::bogus:
            return " (dnssec: bogus)";
        case dns::Dnssec::insecure:
        case dns::Dnssec::unchecked:
            break;
    }
    return {};
}

std::string resinfo_text(const ResInfo& r) {
    std::string out;
    append_joined(out, parts_of(r));
    return out;
}

std::string format_authentication_results(std::string_view authserv_id,
                                          const std::vector<std::string>& resinfos) {
    std::vector<ResInfo> results;
    results.reserve(std::min(resinfos.size(), limits::max_resinfos));
    for (const auto& text : resinfos) {
        if (results.size() >= limits::max_resinfos) break;
        if (auto r = parse_resinfo(text)) results.push_back(std::move(*r));
    }
    std::stable_sort(results.begin(), results.end(), [](const ResInfo& a, const ResInfo& b) {
        return method_rank(a.method) < method_rank(b.method);
    });

    auto id = header_text(authserv_id, limits::max_value_length);
    std::string out = " " + (is_token(id) ? id : quoted(id)) + ";";
    if (results.empty()) return out + " none";

    // Each resinfo's parts once; the one-line form is only measured before it is written.
    std::vector<std::vector<std::string>> parts;
    parts.reserve(results.size());
    std::size_t one_line = out.size();
    for (std::size_t i = 0; i < results.size(); ++i) {
        parts.push_back(parts_of(results[i]));
        for (const auto& p : parts.back()) one_line += 1 + p.size();
        if (i + 1 < results.size()) ++one_line;  // ';'
    }
    if (name_columns + one_line <= line_limit) {
        out.reserve(one_line);
        for (std::size_t i = 0; i < parts.size(); ++i) {
            out += ' ';
            append_joined(out, parts[i]);
            if (i + 1 < parts.size()) out += ';';
        }
        return out;
    }

    out.reserve(one_line + parts.size() * fold.size() * 2);
    for (std::size_t i = 0; i < parts.size(); ++i) {
        out += fold;
        std::size_t col = tab_columns;
        for (std::size_t j = 0; j < parts[i].size(); ++j) {
            const auto& word = parts[i][j];
            bool semicolon = j + 1 == parts[i].size() && i + 1 < parts.size();
            std::size_t width = word.size() + (semicolon ? 1 : 0);
            if (j == 0) {
                // Nothing to fold before the method.
            } else if (col + 1 + width > line_limit) {
                out += fold;
                col = tab_columns;
            } else {
                out += ' ';
                col += 1;
            }
            out += word;
            if (semicolon) out += ';';
            col += width;
        }
    }
    return out;
}

namespace {

// Skips white space and (nested) comments; false when a comment never closes.
bool skip_cfws(std::string_view s, std::size_t& i) {
    while (i < s.size()) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            ++i;
        } else if (c == '(') {
            int depth = 0;
            for (; i < s.size(); ++i) {
                if (s[i] == '\\') {
                    ++i;
                    continue;
                }
                if (s[i] == '(') ++depth;
                if (s[i] == ')' && --depth == 0) break;
            }
            if (i >= s.size()) return false;
            ++i;
        } else {
            break;
        }
    }
    return true;
}

}  // namespace

std::optional<std::string> claimed_authserv_id(std::string_view s) {
    std::size_t i = 0;
    if (!skip_cfws(s, i) || i >= s.size()) return std::nullopt;
    std::string id;
    if (s[i] == '"') {
        for (++i; i < s.size() && s[i] != '"'; ++i) {
            if (s[i] == '\\' && i + 1 < s.size()) ++i;
            id += s[i];
        }
        if (i >= s.size()) return std::nullopt;
    } else {
        // RFC 2045 token: anything printable but tspecials and space.
        static constexpr std::string_view tspecials = "()<>@,;:\\\"/[]?=";
        while (i < s.size() && s[i] > 32 && s[i] < 127 && tspecials.find(s[i]) == std::string_view::npos) {
            id += s[i++];
        }
    }
    if (id.empty()) return std::nullopt;
    return core::to_lower(id);
}

}  // namespace vigil::auth
