#include "auth/dmarc/record.hpp"

#include <fmt/format.h>

#include "auth/dmarc/dmarc_limits.hpp"
#include "core/printable.hpp"

namespace vigil::auth::dmarc {

namespace {

constexpr std::size_t max_error_value = 40;

bool wsp(char c) {
    return c == ' ' || c == '\t';
}

std::string_view trim_wsp(std::string_view s) {
    while (!s.empty() && wsp(s.front())) s.remove_prefix(1);
    while (!s.empty() && wsp(s.back())) s.remove_suffix(1);
    return s;
}

bool alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool digit(char c) {
    return c >= '0' && c <= '9';
}

// One "tag = value" part; the name keeps its case (callers compare case-insensitively).
struct Tag {
    std::string_view name, value;
    bool ok = false;
};

Tag split_tag(std::string_view part) {
    Tag t;
    auto eq = part.find('=');
    if (eq == std::string_view::npos) return t;
    t.name = trim_wsp(part.substr(0, eq));
    t.value = trim_wsp(part.substr(eq + 1));
    t.ok = !t.name.empty();
    return t;
}

std::optional<Policy> parse_policy(std::string_view v) {
    // ABNF strings are case-insensitive; abbreviations ("p=r", "p=n") are not policies.
    if (core::iequals(v, "none")) return Policy::none;
    if (core::iequals(v, "quarantine")) return Policy::quarantine;
    if (core::iequals(v, "reject")) return Policy::reject;
    return std::nullopt;
}

std::optional<AlignMode> parse_mode(std::string_view v) {
    if (core::iequals(v, "r")) return AlignMode::relaxed;
    if (core::iequals(v, "s")) return AlignMode::strict;
    return std::nullopt;
}

std::optional<std::uint64_t> parse_number(std::string_view v, std::size_t max_digits) {
    if (v.empty() || v.size() > max_digits) return std::nullopt;
    std::uint64_t n = 0;
    for (char c : v) {
        if (!digit(c)) return std::nullopt;
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return n;
}

// RFC 3986 characters a URI may hold (unreserved, reserved, '%'), minus the two that DMARC
// requires to be percent-encoded inside a report URI: ',' and '!' (RFC 7489 §6.2).
bool uri_char(char c) {
    if (alpha(c) || digit(c)) return true;
    switch (c) {
        case '-':
        case '.':
        case '_':
        case '~':
        case ':':
        case '/':
        case '?':
        case '#':
        case '[':
        case ']':
        case '@':
        case '$':
        case '&':
        case '\'':
        case '(':
        case ')':
        case '*':
        case '+':
        case ';':
        case '=':
        case '%':
            return true;
        default:
            return false;
    }
}

bool hex(char c) {
    return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// scheme ":" hier-part..., checked for its character set and percent-encodings only: the report
// tool, not the parser, decides which schemes it can use.
bool valid_uri(std::string_view u) {
    if (u.empty() || u.size() > limits::max_uri_bytes || !alpha(u.front())) return false;
    auto colon = u.find(':');
    if (colon == std::string_view::npos || colon + 1 == u.size()) return false;
    for (std::size_t i = 1; i < colon; ++i) {
        char c = u[i];
        if (!alpha(c) && !digit(c) && c != '+' && c != '-' && c != '.') return false;
    }
    for (std::size_t i = colon + 1; i < u.size(); ++i) {
        if (!uri_char(u[i])) return false;
        if (u[i] == '%' && (i + 2 >= u.size() || !hex(u[i + 1]) || !hex(u[i + 2]))) return false;
    }
    return true;
}

// dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]
std::optional<ReportUri> parse_uri(std::string_view item) {
    item = trim_wsp(item);
    ReportUri out;
    auto bang = item.find('!');
    std::string_view uri = item.substr(0, bang);
    if (bang != std::string_view::npos) {
        auto size = item.substr(bang + 1);
        std::uint64_t unit = 1;
        if (!size.empty() && !digit(size.back())) {
            switch (size.back()) {
                case 'k':
                case 'K':
                    unit = 1024ULL;
                    break;
                case 'm':
                case 'M':
                    unit = 1024ULL * 1024;
                    break;
                case 'g':
                case 'G':
                    unit = 1024ULL * 1024 * 1024;
                    break;
                case 't':
                case 'T':
                    unit = 1024ULL * 1024 * 1024 * 1024;
                    break;
                default:
                    return std::nullopt;
            }
            size.remove_suffix(1);
        }
        // 12 digits times a terabyte still fits in 64 bits.
        auto n = parse_number(size, 12);
        if (!n) return std::nullopt;
        out.max_bytes = *n * unit;
    }
    if (!valid_uri(uri)) return std::nullopt;
    out.uri = std::string(uri);
    return out;
}

// Keeps the valid URIs (at most limits::max_report_uris); false when the list held an invalid one.
bool parse_uris(std::string_view v, std::vector<ReportUri>& into) {
    bool all_valid = true;
    std::size_t start = 0;
    while (start <= v.size()) {
        auto comma = v.find(',', start);
        auto item = v.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        if (auto u = parse_uri(item)) {
            if (into.size() < limits::max_report_uris) into.push_back(std::move(*u));
        } else {
            all_valid = false;
        }
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return all_valid;
}

// fo = "0" / "1" / "d" / "s", colon-separated; all or nothing.
std::optional<std::string> parse_fo(std::string_view v) {
    std::string out;
    std::size_t start = 0;
    while (true) {
        auto colon = v.find(':', start);
        auto opt = trim_wsp(
            v.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start));
        if (opt.size() != 1) return std::nullopt;
        char c = static_cast<char>(opt[0] | 0x20);
        if (c != '0' && c != '1' && c != 'd' && c != 's') return std::nullopt;
        if (!out.empty()) out += ':';
        out += c;
        if (colon == std::string_view::npos) break;
        start = colon + 1;
    }
    return out;
}

bool valid_rf(std::string_view v) {
    std::size_t start = 0;
    while (true) {
        auto colon = v.find(':', start);
        auto opt = trim_wsp(
            v.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start));
        if (!core::iequals(opt, "afrf")) return false;
        if (colon == std::string_view::npos) return true;
        start = colon + 1;
    }
}

RecordParse failure(RecordStatus status, std::string error) {
    RecordParse r;
    r.status = status;
    r.error = std::move(error);
    return r;
}

std::string shown(std::string_view v) {
    return core::printable(v, max_error_value);
}

}  // namespace

std::string_view to_string(Policy policy) {
    switch (policy) {
        case Policy::none:
            return "none";
        case Policy::quarantine:
            return "quarantine";
        case Policy::reject:
            return "reject";
    }
    return "none";
}

std::string_view to_string(AlignMode mode) {
    return mode == AlignMode::strict ? "s" : "r";
}

bool is_dmarc_record(std::string_view txt) {
    auto semi = txt.find(';');
    auto t = split_tag(txt.substr(0, semi));
    // The tag name is an ABNF string (any case); the value is given as %x44 %x4d ...: exactly "DMARC1".
    return t.ok && core::iequals(t.name, "v") && t.value == "DMARC1";
}

RecordParse parse_record(std::string_view txt) {
    if (trim_wsp(txt).empty()) return failure(RecordStatus::not_dmarc, "empty record");
    if (!is_dmarc_record(txt))
        return failure(RecordStatus::not_dmarc, "not a DMARC record: v=DMARC1 is not the first tag");
    if (txt.size() > limits::max_record_bytes) {
        return failure(RecordStatus::invalid,
                       fmt::format("record longer than {} bytes", limits::max_record_bytes));
    }

    Record rec;
    bool have_p = false, p_bad = false, sp_bad = false;
    bool seen_sp = false, seen_np = false, seen_adkim = false, seen_aspf = false, seen_pct = false,
         seen_rua = false, seen_ruf = false, seen_fo = false, seen_ri = false;
    std::string p_problem = "no p= tag";
    std::size_t tags = 0;
    auto note = [&](std::string_view name) {
        if (rec.ignored.size() < limits::max_tags)
            rec.ignored.push_back(core::printable(core::to_lower(name), 16));
    };

    std::size_t start = txt.find(';');
    while (start != std::string_view::npos) {
        ++start;
        auto semi = txt.find(';', start);
        auto part = trim_wsp(
            txt.substr(start, semi == std::string_view::npos ? std::string_view::npos : semi - start));
        start = semi;
        if (part.empty()) continue;  // a trailing or doubled separator
        if (++tags > limits::max_tags) {
            return failure(RecordStatus::invalid, fmt::format("more than {} tags", limits::max_tags));
        }
        auto t = split_tag(part);
        if (!t.ok) {
            note(part.substr(0, part.find('=')));
            continue;
        }
        auto name = core::to_lower(t.name);
        auto v = t.value;
        if (name == "p") {
            // A second p= leaves no way to know which one the owner meant: not guessed.
            if (have_p || p_bad) {
                p_bad = true;
                p_problem = "duplicate p= tag";
                continue;
            }
            if (auto p = parse_policy(v)) {
                rec.p = *p;
                have_p = true;
            } else {
                p_bad = true;
                p_problem = fmt::format("invalid p= value '{}'", shown(v));
            }
        } else if (name == "sp") {
            if (seen_sp) {
                sp_bad = true;
                continue;
            }
            seen_sp = true;
            if (auto p = parse_policy(v))
                rec.sp = *p;
            else
                sp_bad = true;
        } else if (name == "np") {
            if (seen_np) {
                note(name);
                continue;
            }
            seen_np = true;
            if (auto p = parse_policy(v))
                rec.np = *p;
            else
                note(name);
        } else if (name == "adkim" || name == "aspf") {
            bool& seen = name == "adkim" ? seen_adkim : seen_aspf;
            if (seen) {
                note(name);
                continue;
            }
            seen = true;
            if (auto m = parse_mode(v))
                (name == "adkim" ? rec.adkim : rec.aspf) = *m;
            else
                note(name);
        } else if (name == "pct") {
            if (seen_pct) {
                note(name);
                continue;
            }
            seen_pct = true;
            auto n = parse_number(v, 3);
            if (n && *n <= 100)
                rec.pct = static_cast<int>(*n);
            else
                note(name);
        } else if (name == "rua" || name == "ruf") {
            bool& seen = name == "rua" ? seen_rua : seen_ruf;
            if (seen) {
                note(name);
                continue;
            }
            seen = true;
            if (!parse_uris(v, name == "rua" ? rec.rua : rec.ruf)) note(name);
        } else if (name == "fo") {
            if (seen_fo) {
                note(name);
                continue;
            }
            seen_fo = true;
            if (auto fo = parse_fo(v))
                rec.fo = *fo;
            else
                note(name);
        } else if (name == "rf") {
            if (!valid_rf(v)) note(name);
        } else if (name == "ri") {
            if (seen_ri) {
                note(name);
                continue;
            }
            seen_ri = true;
            auto n = parse_number(v, 10);
            if (n && *n <= 0xffffffffULL)
                rec.ri = static_cast<std::uint32_t>(*n);
            else
                note(name);
        }
        // Unknown tags (and v= again) are ignored (§6.3).
    }

    if (!have_p || p_bad || sp_bad) {
        std::string problem = (!have_p || p_bad) ? p_problem : "invalid sp= value";
        // §6.6.3: with a usable rua=, act as if the record were "v=DMARC1; p=none".
        if (rec.rua.empty()) return failure(RecordStatus::invalid, problem + " and no valid rua=");
        rec.p = Policy::none;
        rec.sp.reset();
        rec.np.reset();
        rec.p_defaulted = true;
        rec.ignored.insert(rec.ignored.begin(), (!have_p || p_bad) ? "p" : "sp");
    }
    RecordParse out;
    out.record = std::move(rec);
    return out;
}

}  // namespace vigil::auth::dmarc
