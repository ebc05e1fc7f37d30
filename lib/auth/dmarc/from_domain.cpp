#include "auth/dmarc/from_domain.hpp"

#include <algorithm>
#include <optional>

#include <fmt/format.h>

#include "auth/dmarc/dmarc_limits.hpp"
#include "auth/dmarc/org_domain.hpp"
#include "core/printable.hpp"

namespace vigil::auth::dmarc {

namespace {

enum class Tok { atom, dot, qstring, dliteral, lt, gt, at, comma, colon, semi };

struct Token {
    Tok kind;
    std::string_view text;  // atom text; for qstring/dliteral the raw text including delimiters
};

bool atext(unsigned char c) {
    if (c >= 0x80) return true;  // UTF-8 (RFC 6532); validity is the domain normaliser's business
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
        case '!':
        case '#':
        case '$':
        case '%':
        case '&':
        case '\'':
        case '*':
        case '+':
        case '-':
        case '/':
        case '=':
        case '?':
        case '^':
        case '_':
        case '`':
        case '{':
        case '|':
        case '}':
        case '~':
            return true;
        default:
            return false;
    }
}

bool fws(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// Splits into tokens, dropping white space and comments. Fails on an unterminated quoted string,
// comment or literal, a comment nested deeper than the cap, or a byte that fits nowhere.
std::optional<std::vector<Token>> tokenize(std::string_view s, std::string& why) {
    std::vector<Token> out;
    std::size_t i = 0;
    while (i < s.size()) {
        char c = s[i];
        if (fws(c)) {
            ++i;
            continue;
        }
        if (c == '(') {
            std::size_t depth = 0;
            while (i < s.size()) {
                if (s[i] == '\\') {
                    i += 2;
                    continue;
                }
                if (s[i] == '(' && ++depth > limits::max_comment_depth) {
                    why = "comments nested too deep";
                    return std::nullopt;
                }
                if (s[i] == ')' && --depth == 0) break;
                ++i;
            }
            if (i >= s.size()) {
                why = "unterminated comment";
                return std::nullopt;
            }
            ++i;
            continue;
        }
        if (c == '"' || c == '[') {
            char close = c == '"' ? '"' : ']';
            std::size_t j = i + 1;
            while (j < s.size() && s[j] != close) {
                if (s[j] == '\\')
                    ++j;
                else if (c == '[' && s[j] == '[')
                    break;
                ++j;
            }
            if (j >= s.size() || s[j] != close) {
                why = c == '"' ? "unterminated quoted string" : "unterminated address literal";
                return std::nullopt;
            }
            out.push_back({c == '"' ? Tok::qstring : Tok::dliteral, s.substr(i, j + 1 - i)});
            i = j + 1;
            continue;
        }
        if (atext(static_cast<unsigned char>(c))) {
            std::size_t j = i;
            while (j < s.size() && atext(static_cast<unsigned char>(s[j]))) ++j;
            out.push_back({Tok::atom, s.substr(i, j - i)});
            i = j;
            continue;
        }
        Tok k;
        switch (c) {
            case '.':
                k = Tok::dot;
                break;
            case '<':
                k = Tok::lt;
                break;
            case '>':
                k = Tok::gt;
                break;
            case '@':
                k = Tok::at;
                break;
            case ',':
                k = Tok::comma;
                break;
            case ':':
                k = Tok::colon;
                break;
            case ';':
                k = Tok::semi;
                break;
            default:
                why = fmt::format("unexpected character '{}'", core::printable(s.substr(i, 1)));
                return std::nullopt;
        }
        out.push_back({k, s.substr(i, 1)});
        ++i;
    }
    return out;
}

// A recursive-descent parser over the tokens of RFC 5322 §3.4 (plus §4.4 obsolete forms).
class Parser {
  public:
    explicit Parser(const std::vector<Token>& t) : t_(t) {}

    // address-list; each mailbox's domain ("" for "<>" or a literal) lands in `domains`.
    bool address_list() {
        while (true) {
            while (is(Tok::comma)) ++pos_;  // obs-addr-list: empty elements
            if (at_end()) return true;
            if (!address()) return false;
            if (at_end()) return true;
            if (!is(Tok::comma)) return fail("expected ',' between addresses");
        }
    }

    std::vector<std::string> domains;
    std::vector<bool> literal;  // per mailbox: the domain was an address literal
    std::string why;

  private:
    bool at_end() const { return pos_ >= t_.size(); }
    bool is(Tok k) const { return !at_end() && t_[pos_].kind == k; }
    bool is_at(std::size_t p, Tok k) const { return p < t_.size() && t_[p].kind == k; }
    bool fail(std::string w) {
        if (why.empty()) why = std::move(w);
        return false;
    }
    bool word_at(std::size_t p) const { return is_at(p, Tok::atom) || is_at(p, Tok::qstring); }

    // End of a phrase starting at p (obs-phrase: word *(word / "." / CFWS)); p when there is none.
    std::size_t phrase_end(std::size_t p) const {
        if (!word_at(p)) return p;
        ++p;
        while (word_at(p) || is_at(p, Tok::dot)) ++p;
        return p;
    }

    bool address() {
        auto end = phrase_end(pos_);
        if (end != pos_ && is_at(end, Tok::colon)) {
            pos_ = end + 1;
            return group();
        }
        return mailbox();
    }

    bool group() {
        while (true) {
            while (is(Tok::comma)) ++pos_;
            if (is(Tok::semi)) {
                ++pos_;
                return true;
            }
            if (at_end()) return fail("group without its closing ';'");
            if (!mailbox()) return false;
            if (!is(Tok::comma) && !is(Tok::semi)) return fail("expected ',' or ';' in a group");
        }
    }

    bool mailbox() {
        auto end = phrase_end(pos_);
        if (is_at(end, Tok::lt)) {
            pos_ = end + 1;
            return angle_addr();
        }
        return addr_spec();
    }

    bool angle_addr() {
        if (is(Tok::gt)) {  // "<>": a mailbox without any address
            ++pos_;
            domains.emplace_back();
            literal.push_back(false);
            return true;
        }
        if (is(Tok::at)) {  // obs-route: "@a.example,@b.example:"
            while (is(Tok::at) || is(Tok::comma)) {
                if (is(Tok::at)) {
                    ++pos_;
                    std::string ignored;
                    bool lit = false;
                    if (!domain(ignored, lit)) return false;
                } else {
                    ++pos_;
                }
            }
            if (!is(Tok::colon)) return fail("malformed route in angle brackets");
            ++pos_;
        }
        if (!addr_spec()) return false;
        if (!is(Tok::gt)) return fail("expected '>'");
        ++pos_;
        return true;
    }

    bool addr_spec() {
        // local-part = word *("." word): dot-atom, quoted-string and obs-local-part alike.
        if (!word_at(pos_)) return fail(at_end() ? "missing address" : "expected an address");
        ++pos_;
        while (is(Tok::dot)) {
            ++pos_;
            if (!word_at(pos_)) return fail("malformed local part");
            ++pos_;
        }
        if (!is(Tok::at)) {
            // A bare local part ("From: MAILER-DAEMON") is an address without a domain; anything
            // else after it is a display name without angle brackets.
            if (at_end() || is(Tok::comma) || is(Tok::semi) || is(Tok::gt)) {
                domains.emplace_back();
                literal.push_back(false);
                return true;
            }
            return fail("address without '@'");
        }
        ++pos_;
        std::string d;
        bool lit = false;
        if (!domain(d, lit)) return false;
        domains.push_back(std::move(d));
        literal.push_back(lit);
        return true;
    }

    bool domain(std::string& out, bool& lit) {
        if (is(Tok::dliteral)) {
            ++pos_;
            lit = true;
            return true;
        }
        if (!is(Tok::atom)) return fail("missing domain");
        out = std::string(t_[pos_].text);
        ++pos_;
        while (is(Tok::dot)) {
            ++pos_;
            if (!is(Tok::atom)) return fail("malformed domain");
            out += '.';
            out += t_[pos_].text;
            ++pos_;
        }
        return true;
    }

    const std::vector<Token>& t_;
    std::size_t pos_ = 0;
};

FromDomain outcome(FromStatus status, std::string detail) {
    FromDomain f;
    f.status = status;
    f.detail = std::move(detail);
    return f;
}

}  // namespace

std::string_view to_string(FromStatus status) {
    switch (status) {
        case FromStatus::ok:
            return "ok";
        case FromStatus::no_from:
            return "no_from";
        case FromStatus::several_fields:
            return "several_fields";
        case FromStatus::several_addresses:
            return "several_addresses";
        case FromStatus::no_domain:
            return "no_domain";
        case FromStatus::unparsable:
            return "unparsable";
    }
    return "unparsable";
}

namespace {

// One value through the strict parser: the outcome, and the domain of every mailbox it found ("" for
// "<>", a bare local part or an address literal).
struct Parsed {
    FromDomain result;
    std::vector<std::string> domains;
};

Parsed parse_value(std::string_view value) {
    Parsed out;
    if (value.size() > limits::max_from_bytes) {
        out.result =
            outcome(FromStatus::unparsable, fmt::format("From longer than {} bytes", limits::max_from_bytes));
        return out;
    }
    std::string why;
    auto tokens = tokenize(value, why);
    if (!tokens) {
        out.result = outcome(FromStatus::unparsable, why);
        return out;
    }
    Parser p(*tokens);
    if (!p.address_list()) {
        out.result = outcome(FromStatus::unparsable, p.why);
        return out;
    }
    for (std::size_t i = 0; i < p.domains.size(); ++i) {
        if (p.literal[i]) p.domains[i].clear();
    }
    out.domains = std::move(p.domains);
    if (out.domains.empty()) {
        out.result = outcome(FromStatus::no_domain, "no address");
    } else if (out.domains.size() > 1) {
        out.result = outcome(FromStatus::several_addresses, fmt::format("{} addresses", out.domains.size()));
    } else if (p.literal[0]) {
        out.result = outcome(FromStatus::no_domain, "address literal instead of a domain");
    } else if (out.domains[0].empty()) {
        out.result = outcome(FromStatus::no_domain, "address without a domain");
    } else {
        out.result.status = FromStatus::ok;  // result.domain: parse_from_value() fills it in
    }
    return out;
}

bool domain_byte(unsigned char c, bool utf8) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || (utf8 && c >= 0x80);
}

// Adds `name` (normalized) unless already there. False when it would go past the cap.
bool add_normalized(std::vector<std::string>& out, std::string name) {
    if (std::find(out.begin(), out.end(), name) != out.end()) return true;
    if (out.size() >= limits::max_from_domains) return false;
    out.push_back(std::move(name));
    return true;
}

// Adds `raw` with its leading and trailing dots dropped, when it is a usable name.
bool add_domain(std::vector<std::string>& out, std::string_view raw) {
    while (!raw.empty() && raw.back() == '.') raw.remove_suffix(1);
    while (!raw.empty() && raw.front() == '.') raw.remove_prefix(1);
    if (raw.empty()) return true;
    // The same name again (an ASCII one compares as normalized): no normalisation needed.
    for (const auto& known : out) {
        if (core::iequals(known, raw)) return true;
    }
    auto n = normalize_domain(raw);
    return !n.ok() || add_normalized(out, std::move(n.name));
}

// The lenient reading of a value the strict parser refused (RFC 7489 §6.6.1 leaves it to the
// receiver): whatever follows each '@', quoted strings and comments included (a reader may show
// them), white space after the '@' skipped. From each run the name as written, its ASCII start
// ("victim.example" of "victim.example\xff") and its start before an empty label ("victim.example"
// of "victim.example..x"): whichever normalize are candidates. False when `out` is full or the value
// has more '@' than limits::max_from_scan_ats.
bool scan_domains(std::string_view value, std::vector<std::string>& out) {
    std::size_t at = 0;
    std::size_t ats = 0;
    while ((at = value.find('@', at)) != std::string_view::npos) {
        if (++ats > limits::max_from_scan_ats) return false;
        std::size_t start = at + 1;
        while (start < value.size() && fws(value[start])) ++start;
        std::size_t ascii_end = start;
        while (ascii_end < value.size() && domain_byte(static_cast<unsigned char>(value[ascii_end]), false))
            ++ascii_end;
        std::size_t end = ascii_end;
        while (end < value.size() && domain_byte(static_cast<unsigned char>(value[end]), true)) ++end;
        auto run = value.substr(start, end - start);
        auto ascii = value.substr(start, ascii_end - start);
        auto before_empty_label = ascii.substr(0, ascii.find(".."));
        if (!add_domain(out, run)) return false;
        if (ascii != run && !add_domain(out, ascii)) return false;
        if (before_empty_label != ascii && !add_domain(out, before_empty_label)) return false;
        at = std::max(end, at + 1);
    }
    return true;
}

}  // namespace

FromDomain parse_from_value(std::string_view value) {
    auto parsed = parse_value(value);
    if (parsed.result.ok()) {
        parsed.result.domain = std::move(parsed.domains[0]);
        for (auto& c : parsed.result.domain) {
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return std::move(parsed.result);
}

FromDomain extract_from_domain(const std::vector<std::string_view>& values) {
    if (values.empty()) return outcome(FromStatus::no_from, "no From field");
    if (values.size() > 1)
        return outcome(FromStatus::several_fields, fmt::format("{} From fields", values.size()));
    return parse_from_value(values.front());
}

FromDomains from_domains(const std::vector<std::string_view>& values, std::size_t fields_seen, bool cut) {
    FromDomains out;
    if (fields_seen < values.size()) fields_seen = values.size();
    if (fields_seen == 0) {
        out.status = FromStatus::no_from;
        out.detail = "no From field";
        return out;
    }
    bool room = true;
    for (std::size_t i = 0; i < values.size() && room; ++i) {
        auto parsed = parse_value(values[i]);
        // A value the strict parser accepts gives its mailboxes' domains; one it refuses, or with a
        // domain that is no usable name, is read the lenient way (what it added is taken back).
        bool clean = parsed.result.status != FromStatus::unparsable;
        const auto mark = out.domains.size();
        for (const auto& d : parsed.domains) {
            if (!clean || !room || d.empty()) continue;
            auto n = normalize_domain(d);
            if (n.ok()) {
                room = add_normalized(out.domains, std::move(n.name));
                continue;
            }
            clean = false;
            room = true;
            out.domains.resize(mark);
            if (parsed.result.ok()) parsed.result = outcome(FromStatus::unparsable, n.error);
        }
        if (!clean) room = scan_domains(values[i], out.domains);
        if (fields_seen == 1) {
            out.status = parsed.result.status;
            out.detail = std::move(parsed.result.detail);
        }
    }
    if (fields_seen > 1) {
        out.status = FromStatus::several_fields;
        out.detail = fmt::format("{} From fields", fields_seen);
    }
    if (fields_seen > values.size()) {
        out.incomplete =
            fmt::format("{} From fields, only the first {} examined", fields_seen, values.size());
    } else if (cut) {
        out.incomplete = "a From field longer than Vigil keeps";
    } else if (!room) {
        out.incomplete =
            out.domains.size() < limits::max_from_domains
                ? fmt::format("a malformed From with more than {} '@'", limits::max_from_scan_ats)
                : fmt::format("more than {} From domains", limits::max_from_domains);
    }
    if (!out.incomplete.empty() && out.status == FromStatus::ok) {
        out.status = FromStatus::unparsable;
        out.detail = out.incomplete;
    }
    return out;
}

}  // namespace vigil::auth::dmarc
