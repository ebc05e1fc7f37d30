#include "auth/spf/record.hpp"

#include <array>
#include <cctype>

#include <fmt/format.h>

#include "auth/spf/spf_limits.hpp"
#include "core/printable.hpp"

namespace vigil::auth::spf {

namespace {

constexpr std::size_t max_reported_term = 80;

bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_alnum(char c) {
    return is_alpha(c) || is_digit(c);
}
char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool is_macro_letter(char c) {
    constexpr std::string_view letters = "slodiphcrtv";
    return letters.find(lower(c)) != std::string_view::npos;
}
bool is_delimiter(char c) {
    constexpr std::string_view delims = ".-+,/_=";
    return delims.find(c) != std::string_view::npos;
}
bool is_macro_literal(char c) {
    auto u = static_cast<unsigned char>(c);
    return (u >= 0x21 && u <= 0x24) || (u >= 0x26 && u <= 0x7e);
}

// Scans a macro-string; `allow_space` for explain-string. On success, `ends_with_expand` tells
// whether the last token was a macro-expand and `tail` is the literal text after it.
// c, r and t are allowed in explain-strings only (RFC 7208 §7.1): elsewhere they are a syntax error.
bool scan_macro_string(std::string_view s, bool allow_space, bool& ends_with_expand, std::string_view& tail) {
    const bool explain = allow_space;
    ends_with_expand = false;
    std::size_t literal_start = 0;
    for (std::size_t i = 0; i < s.size();) {
        char c = s[i];
        if (c == '%') {
            if (i + 1 >= s.size()) return false;
            char n = s[i + 1];
            if (n == '%' || n == '_' || n == '-') {
                i += 2;
            } else if (n == '{') {
                std::size_t j = i + 2;
                if (j >= s.size() || !is_macro_letter(s[j])) return false;
                if (!explain && (lower(s[j]) == 'c' || lower(s[j]) == 'r' || lower(s[j]) == 't'))
                    return false;
                ++j;
                while (j < s.size() && is_digit(s[j])) ++j;
                if (j < s.size() && lower(s[j]) == 'r') ++j;
                while (j < s.size() && is_delimiter(s[j])) ++j;
                if (j >= s.size() || s[j] != '}') return false;
                i = j + 1;
            } else {
                return false;
            }
            ends_with_expand = true;
            literal_start = i;
            continue;
        }
        if (!(is_macro_literal(c) || (allow_space && c == ' '))) return false;
        ends_with_expand = false;
        ++i;
    }
    tail = s.substr(literal_start);
    return true;
}

bool valid_toplabel(std::string_view l) {
    if (l.empty() || !is_alnum(l.front()) || !is_alnum(l.back())) return false;
    bool alpha = false, dash = false;
    for (char c : l) {
        if (is_alpha(c))
            alpha = true;
        else if (c == '-')
            dash = true;
        else if (!is_digit(c))
            return false;
    }
    return alpha || dash;
}

// "0" or a number without leading zero, at most `max`.
std::optional<unsigned> parse_cidr_length(std::string_view s, unsigned max) {
    if (s.empty() || s.size() > 3) return std::nullopt;
    if (s.size() > 1 && s[0] == '0') return std::nullopt;
    unsigned v = 0;
    for (char c : s) {
        if (!is_digit(c)) return std::nullopt;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v > max) return std::nullopt;
    return v;
}

bool valid_ip4_network(std::string_view s) {
    int parts = 0;
    std::size_t start = 0;
    while (true) {
        auto dot = s.find('.', start);
        auto q = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (!parse_cidr_length(q, 255)) return false;
        ++parts;
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    return parts == 4;
}

// Where a trailing dual-cidr-length ("/24", "//64", "/24//64") starts, or npos. Only digits may
// follow a slash there, so a domain-spec with '/' in it ("foo:bar/baz.example.com") keeps it.
std::size_t find_cidr_suffix(std::string_view s) {
    auto digits_before = [&](std::size_t end) {
        std::size_t b = end;
        while (b > 0 && is_digit(s[b - 1])) --b;
        return b;
    };
    std::size_t b = digits_before(s.size());
    if (b == s.size() || b == 0 || s[b - 1] != '/') return std::string_view::npos;
    std::size_t start = b - 1;
    if (start > 0 && s[start - 1] == '/') {
        // "//N": an IPv6 length, maybe after an IPv4 one.
        start -= 1;
        std::size_t b4 = digits_before(start);
        if (b4 < start && b4 > 0 && s[b4 - 1] == '/') start = b4 - 1;
    }
    return start;
}

bool parse_dual_cidr(std::string_view s, Mechanism& m) {
    if (s.empty()) return true;
    if (s[0] != '/') return false;
    s.remove_prefix(1);
    if (!s.empty() && s[0] == '/') {
        auto v6 = parse_cidr_length(s.substr(1), 128);
        if (!v6) return false;
        m.cidr6 = *v6;
        return true;
    }
    auto dbl = s.find("//");
    auto v4 = parse_cidr_length(s.substr(0, dbl), 32);
    if (!v4) return false;
    m.cidr4 = *v4;
    if (dbl != std::string_view::npos) {
        auto v6 = parse_cidr_length(s.substr(dbl + 2), 128);
        if (!v6) return false;
        m.cidr6 = *v6;
    }
    return true;
}

struct MechName {
    std::string_view name;
    MechanismKind kind;
};
constexpr std::array<MechName, 8> mechanism_names = {{
    {"all", MechanismKind::all},
    {"include", MechanismKind::include},
    {"a", MechanismKind::a},
    {"mx", MechanismKind::mx},
    {"ptr", MechanismKind::ptr},
    {"ip4", MechanismKind::ip4},
    {"ip6", MechanismKind::ip6},
    {"exists", MechanismKind::exists},
}};

bool iequal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

ParsedRecord fail(std::string_view why, std::string_view term) {
    ParsedRecord r;
    r.error = fmt::format("{} '{}'", why, core::printable(term, max_reported_term));
    return r;
}

}  // namespace

std::string_view to_string(MechanismKind kind) {
    for (const auto& m : mechanism_names) {
        if (m.kind == kind) return m.name;
    }
    return "?";
}

bool Mechanism::counts_dns() const {
    switch (kind) {
        case MechanismKind::include:
        case MechanismKind::a:
        case MechanismKind::mx:
        case MechanismKind::ptr:
        case MechanismKind::exists:
            return true;
        default:
            return false;
    }
}

bool valid_macro_string(std::string_view s) {
    bool expand = false;
    std::string_view tail;
    return scan_macro_string(s, false, expand, tail);
}

bool valid_explain_string(std::string_view s) {
    bool expand = false;
    std::string_view tail;
    return scan_macro_string(s, true, expand, tail);
}

bool valid_domain_spec(std::string_view s) {
    bool expand = false;
    std::string_view tail;
    if (s.empty() || !scan_macro_string(s, false, expand, tail)) return false;
    if (expand) return true;
    if (!tail.empty() && tail.back() == '.') tail.remove_suffix(1);
    auto dot = tail.rfind('.');
    if (dot == std::string_view::npos) return false;
    return valid_toplabel(tail.substr(dot + 1));
}

bool is_spf_record(std::string_view txt) {
    constexpr std::string_view version = "v=spf1";
    if (txt.size() < version.size() || !iequal(txt.substr(0, version.size()), version)) return false;
    return txt.size() == version.size() || txt[version.size()] == ' ';
}

ParsedRecord parse_record(std::string_view txt) {
    if (!is_spf_record(txt)) return fail("not an SPF record", txt);
    if (txt.size() > limits::max_record_bytes) {
        ParsedRecord r;
        r.error = fmt::format("record longer than {} bytes", limits::max_record_bytes);
        return r;
    }
    Record rec;
    std::size_t terms = 0;
    std::size_t pos = 6;
    while (pos < txt.size()) {
        if (txt[pos] == ' ') {
            ++pos;
            continue;
        }
        auto end = txt.find(' ', pos);
        if (end == std::string_view::npos) end = txt.size();
        auto term = txt.substr(pos, end - pos);
        pos = end;
        if (++terms > limits::max_terms) {
            ParsedRecord r;
            r.error = fmt::format("more than {} terms", limits::max_terms);
            return r;
        }

        std::size_t i = 0;
        Qualifier q = Qualifier::pass;
        bool has_qualifier = false;
        if (term[0] == '+' || term[0] == '-' || term[0] == '~' || term[0] == '?') {
            q = static_cast<Qualifier>(term[0]);
            has_qualifier = true;
            i = 1;
        }
        std::size_t n = i;
        while (n < term.size() && (is_alnum(term[n]) || term[n] == '-' || term[n] == '_' || term[n] == '.'))
            ++n;
        auto name = term.substr(i, n - i);
        auto rest = term.substr(n);

        if (!rest.empty() && rest[0] == '=') {
            if (has_qualifier || name.empty() || !is_alpha(name[0])) return fail("invalid modifier", term);
            auto value = rest.substr(1);
            if (iequal(name, "redirect") || iequal(name, "exp")) {
                auto& slot = iequal(name, "redirect") ? rec.redirect : rec.exp;
                if (slot) return fail("modifier given twice", term);
                if (!valid_domain_spec(value)) return fail("invalid domain-spec in", term);
                slot = std::string(value);
            } else if (!valid_macro_string(value)) {
                return fail("invalid macro-string in modifier", term);
            }
            continue;
        }

        Mechanism m;
        m.qualifier = q;
        m.text = core::printable(term, max_reported_term);
        bool known = false;
        for (const auto& mn : mechanism_names) {
            if (iequal(name, mn.name)) {
                m.kind = mn.kind;
                known = true;
                break;
            }
        }
        if (!known) return fail("unknown mechanism", term);

        switch (m.kind) {
            case MechanismKind::all:
                if (!rest.empty()) return fail("invalid mechanism", term);
                break;
            case MechanismKind::include:
            case MechanismKind::exists:
                if (rest.empty() || rest[0] != ':' || !valid_domain_spec(rest.substr(1))) {
                    return fail("invalid domain-spec in", term);
                }
                m.domain_spec = std::string(rest.substr(1));
                break;
            case MechanismKind::ptr:
                if (!rest.empty()) {
                    if (rest[0] != ':' || !valid_domain_spec(rest.substr(1)))
                        return fail("invalid domain-spec in", term);
                    m.domain_spec = std::string(rest.substr(1));
                }
                break;
            case MechanismKind::a:
            case MechanismKind::mx: {
                std::string_view cidr;
                if (!rest.empty() && rest[0] == ':') {
                    auto spec = rest.substr(1);
                    auto slash = find_cidr_suffix(spec);
                    if (slash != std::string_view::npos) {
                        cidr = spec.substr(slash);
                        spec = spec.substr(0, slash);
                    }
                    if (!valid_domain_spec(spec)) return fail("invalid domain-spec in", term);
                    m.domain_spec = std::string(spec);
                } else {
                    cidr = rest;
                }
                if (!parse_dual_cidr(cidr, m)) return fail("invalid CIDR length in", term);
                break;
            }
            case MechanismKind::ip4:
            case MechanismKind::ip6: {
                if (rest.empty() || rest[0] != ':') return fail("missing network in", term);
                auto net = rest.substr(1);
                auto slash = net.find('/');
                auto addr = net.substr(0, slash);
                bool v4 = m.kind == MechanismKind::ip4;
                unsigned len = v4 ? 32 : 128;
                if (slash != std::string_view::npos) {
                    auto l = parse_cidr_length(net.substr(slash + 1), len);
                    if (!l) return fail("invalid CIDR length in", term);
                    len = *l;
                }
                if (v4 && !valid_ip4_network(addr)) return fail("invalid IPv4 network in", term);
                if (!v4) {
                    for (char c : addr) {
                        if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.')) {
                            return fail("invalid IPv6 network in", term);
                        }
                    }
                }
                auto ip = core::IpAddress::parse(addr);
                if (!ip || ip->is_v4() != v4) return fail("invalid network in", term);
                // Host bits are allowed (and ignored: matching compares the prefix only).
                m.network = core::Cidr(*ip, len);
                break;
            }
        }
        rec.mechanisms.push_back(std::move(m));
    }
    ParsedRecord r;
    r.record = std::move(rec);
    return r;
}

}  // namespace vigil::auth::spf
