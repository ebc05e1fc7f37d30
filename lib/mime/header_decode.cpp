#include "mime/header_decode.hpp"

#include <algorithm>
#include <cstring>
#include <map>

#include "mime/charset.hpp"
#include "mime/transfer_decode.hpp"

namespace vigil::mime {

namespace {

bool is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = lower(c);
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_ws(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
    return s;
}

bool has_8bit(std::string_view s) {
    for (char c : s)
        if (static_cast<unsigned char>(c) & 0x80) return true;
    return false;
}

// Plain (not encoded) header text to UTF-8.
void append_plain(std::string& out, std::string_view s) {
    if (!has_8bit(s)) {
        out.append(s);
        return;
    }
    out += to_utf8(s, "", false).text;
}

struct EncodedWord {
    std::string_view charset;  // without an RFC 2231 language suffix
    char encoding = 0;         // 'b' or 'q'
    std::string_view text;
    std::size_t end = 0;  // index just past "?="
};

// An encoded-word at s[pos] ("=?" already seen there), or nullopt-ish (end == 0) when the bytes are
// not one. `malformed` when it has the shape of one but an encoding other than B or Q.
EncodedWord match_word(std::string_view s, std::size_t pos, bool& malformed) {
    EncodedWord w;
    std::size_t i = pos + 2;
    // Every search is bounded (a charset name, one word's text), so a header full of "=?" that
    // never close costs linear time, not quadratic.
    std::size_t q1 = s.substr(0, std::min(s.size(), i + 66)).find('?', i);
    if (q1 == std::string_view::npos || q1 == i || q1 - i > 64) return w;
    for (std::size_t k = i; k < q1; ++k)
        if (is_ws(s[k]) || s[k] == '=') return w;
    if (q1 + 2 >= s.size() || s[q1 + 2] != '?') return w;
    char enc = lower(s[q1 + 1]);
    std::size_t text_start = q1 + 3;
    // The text ends at the next "?="; '?' cannot occur inside B or Q text.
    std::size_t q2 = s.substr(0, std::min(s.size(), text_start + 4097)).find('?', text_start);
    if (q2 == std::string_view::npos || q2 + 1 >= s.size() || s[q2 + 1] != '=') return w;
    if (q2 - text_start > 4096) return w;
    if (enc != 'b' && enc != 'q') {
        malformed = true;
        return w;
    }
    w.charset = s.substr(i, q1 - i);
    if (auto star = w.charset.find('*'); star != std::string_view::npos)
        w.charset = w.charset.substr(0, star);
    w.encoding = enc;
    w.text = s.substr(text_start, q2 - text_start);
    w.end = q2 + 2;
    return w;
}

}  // namespace

std::string unfold_value(std::string_view raw) {
    std::string out;
    out.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
        char c = raw[i];
        if (c == '\r' || c == '\n') {
            // Skip the whole line break; if no white space follows, keep the words apart.
            if (c == '\r' && i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
            if (!(i + 1 < raw.size() && (raw[i + 1] == ' ' || raw[i + 1] == '\t'))) out.push_back(' ');
            continue;
        }
        out.push_back(c);
    }
    return out;
}

std::string decode_words(std::string_view s, bool& bad, std::size_t max) {
    std::string out;
    if (s.find("=?") == std::string_view::npos) {
        append_plain(out, s);
        if (out.size() > max) out.resize(utf8_prefix(out, max).size());
        return out;
    }
    out.reserve(s.size());
    std::string pending;          // decoded bytes of adjacent encoded-words in one charset
    std::string pending_charset;  // lowercase
    auto flush = [&] {
        if (pending_charset.empty() && pending.empty()) return;
        auto r = to_utf8(pending, pending_charset, false);
        if (r.bad) bad = true;
        out += r.text;
        pending.clear();
        pending_charset.clear();
    };
    std::size_t i = 0;
    bool last_encoded = false;
    while (i < s.size() && out.size() <= max) {
        std::size_t pos = s.find("=?", i);
        if (pos == std::string_view::npos) pos = s.size();
        EncodedWord w;
        bool malformed = false;
        if (pos < s.size()) w = match_word(s, pos, malformed);
        std::string_view between = s.substr(i, pos - i);
        if (w.end == 0) {
            // Not an encoded-word here: the text up to and including "=?" is plain.
            if (malformed) bad = true;
            std::size_t upto = pos < s.size() ? pos + 2 : pos;
            flush();
            append_plain(out, s.substr(i, upto - i));
            i = upto;
            last_encoded = false;
            continue;
        }
        bool adjacent = last_encoded && trim(between).empty();
        if (!adjacent) {
            flush();
            append_plain(out, between);
        }
        auto data = w.encoding == 'b' ? decode_base64(w.text, 4096) : decode_q(w.text);
        if (data.malformed) bad = true;
        std::string cs = lower(w.charset);
        if (cs != pending_charset) flush();
        pending_charset = cs;
        pending += data.bytes;
        i = w.end;
        last_encoded = true;
    }
    flush();
    if (out.size() > max) out.resize(utf8_prefix(out, max).size());
    return out;
}

namespace {

struct RawParam {
    std::string name;  // lowercase, without the RFC 2231 section / '*'
    int section = -1;  // -1: not a continuation
    bool extended = false;
    std::string value;
};

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2])));
            i += 2;
            continue;
        }
        out.push_back(s[i]);
    }
    return out;
}

// Parameters after the first ';' (or after the main token). Lenient: missing ';' between
// parameters, white space around '=', unquoted values running to the next ';' or white space.
std::vector<std::pair<std::string, std::string>> parse_params(std::string_view s) {
    std::vector<RawParam> raw;
    std::size_t i = 0;
    const std::size_t n = s.size();
    while (i < n && raw.size() < 64) {
        while (i < n && (is_ws(s[i]) || s[i] == ';')) ++i;
        std::size_t name_start = i;
        while (i < n && s[i] != '=' && s[i] != ';' && !is_ws(s[i])) ++i;
        std::string_view name = s.substr(name_start, i - name_start);
        while (i < n && is_ws(s[i])) ++i;
        if (i >= n || s[i] != '=') {
            // A bare word: skip it.
            while (i < n && s[i] != ';') ++i;
            continue;
        }
        ++i;
        while (i < n && is_ws(s[i])) ++i;
        std::string value;
        if (i < n && s[i] == '"') {
            ++i;
            while (i < n && s[i] != '"') {
                if (s[i] == '\\' && i + 1 < n) ++i;
                value.push_back(s[i]);
                ++i;
            }
            if (i < n) ++i;
        } else {
            std::size_t v = i;
            while (i < n && s[i] != ';' && !is_ws(s[i])) ++i;
            value.assign(s.substr(v, i - v));
        }
        if (name.empty()) continue;
        RawParam p;
        std::string lname = lower(name);
        if (!lname.empty() && lname.back() == '*') {
            p.extended = true;
            lname.pop_back();
        }
        if (auto star = lname.rfind('*'); star != std::string::npos) {
            std::string_view num = std::string_view(lname).substr(star + 1);
            if (!num.empty() && num.size() <= 3 &&
                std::all_of(num.begin(), num.end(), [](char c) { return c >= '0' && c <= '9'; })) {
                p.section = std::stoi(std::string(num));
                lname.resize(star);
            }
        }
        p.name = std::move(lname);
        p.value = std::move(value);
        raw.push_back(std::move(p));
    }
    // Join RFC 2231 sections in numeric order; decode extended values (charset'lang'%XX).
    std::vector<std::pair<std::string, std::string>> out;
    std::vector<bool> used(raw.size(), false);
    for (std::size_t k = 0; k < raw.size(); ++k) {
        if (used[k]) continue;
        const std::string& name = raw[k].name;
        if (std::any_of(out.begin(), out.end(), [&](const auto& p) { return p.first == name; })) {
            used[k] = true;
            continue;  // the first occurrence wins
        }
        std::map<int, const RawParam*> sections;
        for (std::size_t m = k; m < raw.size(); ++m) {
            if (raw[m].name != name) continue;
            used[m] = true;
            if (!sections.count(raw[m].section)) sections[raw[m].section] = &raw[m];
        }
        std::string charset;
        std::string bytes;
        bool first = true;
        bool any_extended = false;
        // Prefer the non-sectioned value if there is one and no section 0.
        if (!sections.count(0) && sections.count(-1)) {
            const RawParam* p = sections[-1];
            sections.clear();
            sections[0] = p;
        }
        sections.erase(-1);
        for (auto& [sec, p] : sections) {
            std::string_view v = p->value;
            if (p->extended) {
                any_extended = true;
                if (first) {
                    auto q1 = v.find('\'');
                    auto q2 = q1 == std::string_view::npos ? q1 : v.find('\'', q1 + 1);
                    if (q2 != std::string_view::npos) {
                        charset.assign(v.substr(0, q1));
                        v = v.substr(q2 + 1);
                    }
                }
                bytes += percent_decode(v);
            } else {
                bytes += v;
            }
            first = false;
        }
        if (any_extended && !charset.empty()) {
            out.emplace_back(name, to_utf8(bytes, charset, false).text);
        } else {
            out.emplace_back(name, std::move(bytes));
        }
    }
    return out;
}

const std::string* find_param(const std::vector<std::pair<std::string, std::string>>& params,
                              std::string_view name) {
    for (const auto& p : params)
        if (p.first == name) return &p.second;
    return nullptr;
}

// Removes RFC 5322 comments ("(...)", nested) outside quoted strings.
std::string strip_comments(std::string_view s) {
    if (s.find('(') == std::string_view::npos) return std::string(s);
    std::string out;
    int depth = 0;
    bool quoted = false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (quoted) {
            out.push_back(c);
            if (c == '\\' && i + 1 < s.size())
                out.push_back(s[++i]);
            else if (c == '"')
                quoted = false;
            continue;
        }
        if (depth > 0) {
            if (c == '\\')
                ++i;
            else if (c == '(')
                ++depth;
            else if (c == ')')
                --depth;
            continue;
        }
        if (c == '(') {
            depth = 1;
            continue;
        }
        if (c == '"') quoted = true;
        out.push_back(c);
    }
    return out;
}

bool token_char(char c) {
    auto u = static_cast<unsigned char>(c);
    return u > 32 && u < 127 && !std::strchr("()<>@,;:\\\"/[]?=", c);
}

}  // namespace

const std::string* MediaType::param(std::string_view name) const {
    return find_param(params, name);
}
const std::string* Disposition::param(std::string_view name) const {
    return find_param(params, name);
}

MediaType parse_media_type(std::string_view value) {
    MediaType mt;
    std::string s = strip_comments(value);
    std::string_view v = s;
    std::size_t semi = v.find(';');
    std::string_view main = trim(v.substr(0, semi));
    std::size_t slash = main.find('/');
    if (slash != std::string_view::npos) {
        std::string_view t = trim(main.substr(0, slash));
        std::string_view st = trim(main.substr(slash + 1));
        // "text/html foo" (a missing ';'): the subtype is the first token.
        std::size_t k = 0;
        while (k < st.size() && token_char(st[k])) ++k;
        std::string_view rest = st.substr(k);
        st = st.substr(0, k);
        if (!t.empty() && !st.empty() && std::all_of(t.begin(), t.end(), token_char)) {
            mt.type = lower(t);
            mt.subtype = lower(st);
            mt.valid = true;
        }
        if (semi == std::string_view::npos && !rest.empty()) {
            mt.params = parse_params(rest);
            return mt;
        }
    }
    if (semi != std::string_view::npos) mt.params = parse_params(v.substr(semi + 1));
    return mt;
}

Disposition parse_disposition(std::string_view value) {
    Disposition d;
    std::string s = strip_comments(value);
    std::string_view v = s;
    std::size_t semi = v.find(';');
    d.kind = lower(trim(v.substr(0, semi)));
    if (semi != std::string_view::npos) d.params = parse_params(v.substr(semi + 1));
    return d;
}

std::string parse_cte(std::string_view value) {
    std::string s = strip_comments(value);
    std::string out;
    for (char c : s)
        if (!is_ws(c) && c != '"') out.push_back(lower(c));
    return out;
}

}  // namespace vigil::mime
