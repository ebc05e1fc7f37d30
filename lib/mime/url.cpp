#include "mime/url.hpp"

#include <arpa/inet.h>
#include <idn2.h>
#include <libpsl.h>

#include <array>
#include <cstdint>
#include <cstring>

#include "mime/mime_limits.hpp"

namespace vigil::mime {

namespace {

char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}
bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_alnum(char c) {
    return is_alpha(c) || is_digit(c);
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

bool istarts(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// The system Public Suffix List, loaded once (the C++ runtime serialises the first call); read-only
// afterwards, which libpsl documents as safe from several threads.
const psl_ctx_t* psl() {
    static const psl_ctx_t* ctx = [] {
        const psl_ctx_t* latest = psl_latest(nullptr);
        return latest != nullptr ? latest : psl_builtin();
    }();
    return ctx;
}

bool is_public_suffix(const std::string& s) {
    const psl_ctx_t* ctx = psl();
    return ctx != nullptr &&
           psl_is_public_suffix2(ctx, s.c_str(), PSL_TYPE_ICANN | PSL_TYPE_NO_STAR_RULE) != 0;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Bytes that end a URL in running text. Returns the length of the delimiter at s[i] (0: none):
// ASCII white space, controls and <>"`{}|\^, and the common non-ASCII spaces and CJK punctuation
// (U+00A0, U+2000..U+200F, U+2028/9, U+3000..U+303F, fullwidth punctuation) that Asian spam puts
// right after a URL.
std::size_t delimiter_at(std::string_view s, std::size_t i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
        if (c <= 0x20 || c == 0x7F) return 1;
        return std::strchr("<>\"`{}|\\^", c) != nullptr && c != 0 ? 1 : 0;
    }
    auto at = [&](std::size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0; };
    if (c == 0xC2 && at(1) == 0xA0) return 2;
    if (c == 0xE2 && at(1) == 0x80 && ((at(2) >= 0x80 && at(2) <= 0x8F) || at(2) == 0xA8 || at(2) == 0xA9))
        return 3;
    if (c == 0xE3 && at(1) == 0x80) return 3;
    if (c == 0xEF && at(1) == 0xBC && ((at(2) >= 0x80 && at(2) <= 0x8F) || (at(2) >= 0x9A && at(2) <= 0xA0)))
        return 3;
    if (c == 0xEF && at(1) == 0xBD && at(2) >= 0x9B && at(2) <= 0xA0) return 3;
    return 0;
}

// Trailing punctuation that belongs to the sentence, not the URL; a closing bracket only when the
// URL holds no matching opening one.
std::string_view trim_trailing(std::string_view u) {
    // Opening brackets counted once (a run of ")))" at the end must not rescan the URL each time).
    std::size_t parens = 0, brackets = 0;
    for (char c : u) {
        if (c == '(') ++parens;
        if (c == '[') ++brackets;
    }
    while (!u.empty()) {
        char c = u.back();
        if (std::strchr(".,;:!?'*", c) != nullptr || (c == ')' && parens == 0) ||
            (c == ']' && brackets == 0)) {
            u.remove_suffix(1);
            continue;
        }
        break;
    }
    return u;
}

bool host_chars_ok(std::string_view h) {
    for (char c : h) {
        auto u = static_cast<unsigned char>(c);
        if (u >= 0x80) continue;
        if (!(is_alnum(c) || c == '-' || c == '.' || c == '_')) return false;
    }
    return true;
}

// "example.com" with a public suffix as its last label and no odd characters.
bool plausible_domain(std::string_view h) {
    if (h.size() < 4 || h.size() > 253 || h.front() == '.' || h.front() == '-') return false;
    std::size_t dot = h.rfind('.');
    if (dot == std::string_view::npos || dot == 0) return false;
    std::string_view tld = h.substr(dot + 1);
    if (tld.size() < 2) return false;
    for (char c : tld)
        if (!is_alpha(c)) return false;
    for (std::size_t i = 0; i < h.size(); ++i) {
        char c = h[i];
        if (!(is_alnum(c) || c == '-' || c == '.')) return false;
        if (c == '.' && i + 1 < h.size() && h[i + 1] == '.') return false;
    }
    std::string t;
    for (char c : tld) t.push_back(lower(c));
    return is_public_suffix(t);
}

std::optional<unsigned long long> ipv4_part(std::string_view p) {
    if (p.empty()) return std::nullopt;
    int base = 10;
    if (p.size() >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p.remove_prefix(2);
        if (p.empty()) return 0;
    } else if (p.size() >= 2 && p[0] == '0') {
        base = 8;
        p.remove_prefix(1);
    }
    unsigned long long v = 0;
    for (char c : p) {
        int d = base == 16 ? hex_digit(c) : (is_digit(c) ? c - '0' : -1);
        if (d < 0 || d >= base) return std::nullopt;
        v = v * static_cast<unsigned>(base) + static_cast<unsigned>(d);
        if (v > 0xFFFFFFFFull) return std::nullopt;
    }
    return v;
}

}  // namespace

std::optional<std::string> normalize_ipv4(std::string_view host) {
    if (!host.empty() && host.back() == '.') host.remove_suffix(1);
    if (host.empty() || host.size() > 64) return std::nullopt;
    std::array<unsigned long long, 4> parts{};
    std::size_t n = 0;
    std::size_t start = 0;
    while (true) {
        std::size_t dot = host.find('.', start);
        std::string_view p =
            host.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (n == 4) return std::nullopt;
        auto v = ipv4_part(p);
        if (!v) return std::nullopt;
        parts[n++] = *v;
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    for (std::size_t i = 0; i + 1 < n; ++i)
        if (parts[i] > 255) return std::nullopt;
    unsigned long long last_max = n == 1   ? 0xFFFFFFFFull
                                  : n == 2 ? 0xFFFFFFull
                                  : n == 3 ? 0xFFFFull
                                           : 0xFFull;
    if (parts[n - 1] > last_max) return std::nullopt;
    std::uint32_t addr = static_cast<std::uint32_t>(parts[n - 1]);
    for (std::size_t i = 0; i + 1 < n; ++i) addr |= static_cast<std::uint32_t>(parts[i] << (8 * (3 - i)));
    return std::to_string(addr >> 24) + "." + std::to_string((addr >> 16) & 0xFF) + "." +
           std::to_string((addr >> 8) & 0xFF) + "." + std::to_string(addr & 0xFF);
}

std::optional<UrlHost> url_host(std::string_view url) {
    std::size_t colon = url.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    std::string_view scheme = url.substr(0, colon);
    if (!iequals(scheme, "http") && !iequals(scheme, "https") && !iequals(scheme, "ftp")) return std::nullopt;
    std::string_view rest = url.substr(colon + 1);
    // Browsers accept any number of slashes or backslashes after a special scheme.
    while (!rest.empty() && (rest.front() == '/' || rest.front() == '\\')) rest.remove_prefix(1);
    std::size_t end = rest.find_first_of("/?#\\");
    std::string_view authority = rest.substr(0, end);
    if (auto at = authority.rfind('@'); at != std::string_view::npos) authority = authority.substr(at + 1);
    std::string_view host;
    bool bracketed = false;
    if (!authority.empty() && authority.front() == '[') {
        std::size_t close = authority.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        host = authority.substr(1, close - 1);
        bracketed = true;
    } else {
        host = authority.substr(0, authority.find(':'));
    }
    if (host.empty() || host.size() > 1024) return std::nullopt;
    UrlHost r;
    if (bracketed) {
        std::string h(host);
        in6_addr a6{};
        if (inet_pton(AF_INET6, h.c_str(), &a6) != 1) return std::nullopt;
        char buf[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &a6, buf, sizeof buf);
        r.host = buf;
        r.is_ip = true;
        return r;
    }
    std::string h;
    h.reserve(host.size());
    for (std::size_t i = 0; i < host.size(); ++i) {
        char c = host[i];
        if (c == '%' && i + 2 < host.size() && hex_digit(host[i + 1]) >= 0 && hex_digit(host[i + 2]) >= 0) {
            c = static_cast<char>(hex_digit(host[i + 1]) * 16 + hex_digit(host[i + 2]));
            i += 2;
        }
        h.push_back(lower(c));
    }
    // U+3002 and the fullwidth / halfwidth full stops separate labels too (IDNA / UTS #46).
    for (const char* dot : {"\xE3\x80\x82", "\xEF\xBC\x8E", "\xEF\xBD\xA1"}) {
        for (std::size_t p; (p = h.find(dot)) != std::string::npos;) h.replace(p, 3, ".");
    }
    while (!h.empty() && h.back() == '.') h.pop_back();
    if (h.empty() || !host_chars_ok(h)) return std::nullopt;
    if (auto ip = normalize_ipv4(h)) {
        r.host = *ip;
        r.is_ip = true;
        return r;
    }
    bool ascii = true;
    for (char c : h)
        if (static_cast<unsigned char>(c) >= 0x80) ascii = false;
    if (!ascii) {
        char* out = nullptr;
        int rc = idn2_to_ascii_8z(h.c_str(), &out, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
        if (rc != IDN2_OK) {
            if (out) idn2_free(out);
            out = nullptr;
            rc = idn2_to_ascii_8z(h.c_str(), &out, IDN2_TRANSITIONAL | IDN2_NFC_INPUT);
        }
        if (rc == IDN2_OK && out != nullptr) {
            h = out;
        }
        // A name libidn2 rejects is kept as sent (lowercased): a browser would not reach it, but a
        // block list may still list the string.
        if (out) idn2_free(out);
    }
    r.host = std::move(h);
    return r;
}

void find_text_urls(std::string_view text, const std::function<bool(std::string_view)>& emit) {
    std::size_t i = 0;
    const std::size_t n = text.size();
    std::string buf;
    constexpr std::size_t none = std::string_view::npos;
    auto find_from = [&](std::size_t from, char c) {
        const void* p = std::memchr(text.data() + from, c, n - from);
        return p == nullptr ? none : static_cast<std::size_t>(static_cast<const char*>(p) - text.data());
    };
    // Every URL form looked for has a '.' (hosts) or "://": jump from one to the next. The next
    // position of each is cached, so each memchr covers the text once in all.
    std::size_t next_dot = n ? find_from(0, '.') : none;
    std::size_t next_colon = n ? find_from(0, ':') : none;
    while (i < n) {
        if (next_dot != none && next_dot < i) next_dot = find_from(i, '.');
        if (next_colon != none && next_colon < i) next_colon = find_from(i, ':');
        std::size_t at = std::min(next_dot, next_colon);
        if (at == none) return;
        // The token around it: back to a delimiter (not before i), forward to one.
        const std::size_t lo = i;
        std::size_t start = at;
        while (start > lo) {
            std::size_t k = start - 1;
            auto c = static_cast<unsigned char>(text[k]);
            if (c < 0x80) {
                if (delimiter_at(text, k)) break;
                start = k;
                continue;
            }
            // Multi-byte delimiters end in a continuation byte: test the sequence that ends here.
            std::size_t lead = k;
            while (lead > 0 && lead + 3 > k && (static_cast<unsigned char>(text[lead]) & 0xC0) == 0x80)
                --lead;
            std::size_t dl = delimiter_at(text, lead);
            if (dl && lead + dl == start) break;
            start = k;
        }
        std::size_t end = at;
        std::size_t dl = 0;
        while (end < n && (dl = delimiter_at(text, end)) == 0) ++end;
        i = end + (end < n ? dl : 0);
        std::string_view token = text.substr(start, end - start);
        if (token.size() > limits::max_url) continue;

        std::string_view url;
        std::string_view prefix;
        std::size_t sep = token.find("://");
        if (sep != std::string_view::npos) {
            std::size_t s = sep;
            while (s > 0 && is_alpha(token[s - 1])) --s;
            std::string_view scheme = token.substr(s, sep - s);
            if (iequals(scheme, "http") || iequals(scheme, "https") || iequals(scheme, "ftp")) {
                url = trim_trailing(token.substr(s));
                if (url.size() <= sep - s + 3) url = {};
            }
        } else {
            std::string_view t = token;
            while (!t.empty() && std::strchr("([{'\"*", t.front()) != nullptr) t.remove_prefix(1);
            t = trim_trailing(t);
            if (istarts(t, "www.") || istarts(t, "ftp.")) {
                std::string_view host = t.substr(0, t.find_first_of("/?#:"));
                if (host.find('.', 4) != std::string_view::npos && host_chars_ok(host) &&
                    host.back() != '.') {
                    url = t;
                    prefix = istarts(t, "ftp.") ? "ftp://" : "http://";
                }
            } else if (std::size_t slash = t.find('/');
                       slash != std::string_view::npos && slash > 0 &&
                       t.substr(0, slash).find('@') == std::string_view::npos) {
                if (plausible_domain(t.substr(0, slash))) {
                    url = t;
                    prefix = "http://";
                }
            }
        }
        if (url.empty()) continue;
        if (prefix.empty()) {
            if (!emit(url)) return;
        } else {
            buf.assign(prefix);
            buf.append(url);
            if (!emit(buf)) return;
        }
    }
}

std::optional<std::string> html_url(std::string_view value, std::string_view base) {
    while (!value.empty() && static_cast<unsigned char>(value.front()) <= 0x20) value.remove_prefix(1);
    while (!value.empty() && static_cast<unsigned char>(value.back()) <= 0x20) value.remove_suffix(1);
    if (value.empty() || value.size() > limits::max_url) return std::nullopt;
    std::string v;
    v.reserve(value.size());
    for (char c : value)
        if (c != '\t' && c != '\r' && c != '\n') v.push_back(c);
    if (istarts(v, "http:") || istarts(v, "https:") || istarts(v, "ftp:")) return v;
    if (v.size() > 2 && (v[0] == '/' || v[0] == '\\') && (v[1] == '/' || v[1] == '\\')) return "http:" + v;
    if (istarts(v, "www.")) return "http://" + v;
    // Another scheme ("mailto:", "javascript:", "cid:", ...): letters, digits, + - . then ':'.
    std::size_t colon = v.find(':');
    if (colon != std::string::npos && colon > 0 && is_alpha(v[0])) {
        bool scheme = true;
        for (std::size_t k = 0; k < colon; ++k)
            if (!(is_alnum(v[k]) || v[k] == '+' || v[k] == '-' || v[k] == '.')) scheme = false;
        if (scheme) return std::nullopt;
    }
    if (v[0] == '#' || base.empty()) return std::nullopt;
    // Relative reference against <base href>.
    std::size_t scheme_end = base.find("://");
    if (scheme_end == std::string_view::npos) return std::nullopt;
    std::size_t path_start = base.find('/', scheme_end + 3);
    std::string_view origin = base.substr(0, path_start);
    if (v[0] == '/') return std::string(origin) + v;
    std::string_view dir =
        path_start == std::string_view::npos ? std::string_view("/") : base.substr(path_start);
    dir = dir.substr(0, dir.find_first_of("?#"));
    dir = dir.substr(0, dir.rfind('/') + 1);
    return std::string(origin) + std::string(dir) + v;
}

std::string registrable_domain(const std::string& host) {
    const psl_ctx_t* ctx = psl();
    if (ctx == nullptr || normalize_ipv4(host) || host.find(':') != std::string::npos) return host;
    const char* reg = psl_registrable_domain(ctx, host.c_str());
    return reg != nullptr ? std::string(reg) : host;
}

std::string host_named_by(std::string_view text) {
    std::string host;
    find_text_urls(text, [&](std::string_view u) {
        if (auto h = url_host(u)) host = h->host;
        return host.empty();
    });
    if (!host.empty()) return host;
    // The whole text a bare domain or address: "paypal.com", "PayPal.com.", "192.168.1.1".
    while (!text.empty() && static_cast<unsigned char>(text.front()) <= 0x20) text.remove_prefix(1);
    while (!text.empty() && (static_cast<unsigned char>(text.back()) <= 0x20 || text.back() == '.'))
        text.remove_suffix(1);
    if (text.find('@') != std::string_view::npos) return {};
    if (plausible_domain(text)) {
        for (char c : text) host.push_back(lower(c));
        return host;
    }
    if (auto ip = normalize_ipv4(text); ip && std::count(text.begin(), text.end(), '.') == 3) return *ip;
    return {};
}

}  // namespace vigil::mime
