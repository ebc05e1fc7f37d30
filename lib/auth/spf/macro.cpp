#include "auth/spf/macro.hpp"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "auth/spf/spf_limits.hpp"

namespace vigil::auth::spf {

namespace {

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

bool unreserved(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

std::string url_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        if (unreserved(c)) {
            out += c;
        } else {
            out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
        }
    }
    return out;
}

// Splits on any of `delims`, optionally reverses, keeps the rightmost `keep` parts (0: all),
// joins with ".".
std::string transform(std::string_view value, std::string_view delims, bool reverse, std::size_t keep) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= value.size(); ++i) {
        if (i == value.size() || delims.find(value[i]) != std::string_view::npos) {
            parts.push_back(value.substr(start, i - start));
            start = i + 1;
        }
    }
    if (reverse) std::reverse(parts.begin(), parts.end());
    std::size_t first = (keep != 0 && keep < parts.size()) ? parts.size() - keep : 0;
    std::string out;
    for (std::size_t i = first; i < parts.size(); ++i) {
        if (i != first) out += '.';
        out.append(parts[i]);
    }
    return out;
}

}  // namespace

std::string macro_ip(const core::IpAddress& ip) {
    if (ip.is_v4()) return ip.to_string();
    std::string out;
    out.reserve(63);
    constexpr std::string_view hex = "0123456789abcdef";
    for (std::size_t i = 0; i < 16; ++i) {
        auto b = ip.bytes()[i];
        if (i) out += '.';
        out += hex[b >> 4];
        out += '.';
        out += hex[b & 0xf];
    }
    return out;
}

Expansion expand_macros(std::string_view spec, const MacroContext& ctx, bool explanation) {
    Expansion r;
    auto& out = r.value;
    auto too_long = [&] {
        r.value.clear();
        r.error = fmt::format("macro expansion longer than {} bytes", limits::max_expansion_bytes);
        return r;
    };
    std::string p_cache;
    bool p_done = false;
    for (std::size_t i = 0; i < spec.size();) {
        char c = spec[i];
        if (c != '%') {
            if (c == ' ' && !explanation) {
                r.error = "space in macro-string";
                return r;
            }
            auto u = static_cast<unsigned char>(c);
            if (u < 0x20 || u > 0x7e) {
                r.error = fmt::format("byte \\x{:02x} in macro-string", u);
                return r;
            }
            out += c;
            ++i;
        } else {
            if (i + 1 >= spec.size()) {
                r.error = "'%' at end of macro-string";
                return r;
            }
            char n = spec[i + 1];
            if (n == '%') {
                out += '%';
                i += 2;
            } else if (n == '_') {
                out += ' ';
                i += 2;
            } else if (n == '-') {
                out += "%20";
                i += 2;
            } else if (n == '{') {
                std::size_t j = i + 2;
                if (j >= spec.size()) {
                    r.error = "unterminated macro";
                    return r;
                }
                char letter = spec[j];
                bool upper = letter >= 'A' && letter <= 'Z';
                letter = lower(letter);
                ++j;
                std::size_t keep = 0;
                std::size_t digits = 0;
                while (j < spec.size() && is_digit(spec[j])) {
                    if (keep <= limits::max_macro_parts)
                        keep = keep * 10 + static_cast<std::size_t>(spec[j] - '0');
                    ++digits;
                    ++j;
                }
                if (digits > 0 && keep == 0) {
                    r.error = "macro DIGIT transformer of zero";
                    return r;
                }
                if (keep > limits::max_macro_parts) keep = 0;  // more parts than any value has: all
                bool reverse = false;
                if (j < spec.size() && lower(spec[j]) == 'r') {
                    reverse = true;
                    ++j;
                }
                std::size_t dstart = j;
                constexpr std::string_view delimiters = ".-+,/_=";
                while (j < spec.size() && delimiters.find(spec[j]) != std::string_view::npos) ++j;
                std::string_view delims = spec.substr(dstart, j - dstart);
                if (j >= spec.size() || spec[j] != '}') {
                    r.error = "invalid macro";
                    return r;
                }
                i = j + 1;
                std::string value;
                switch (letter) {
                    case 's':
                        value = fmt::format("{}@{}", ctx.local_part, ctx.sender_domain);
                        break;
                    case 'l':
                        value = std::string(ctx.local_part);
                        break;
                    case 'o':
                        value = std::string(ctx.sender_domain);
                        break;
                    case 'd':
                        value = std::string(ctx.domain);
                        break;
                    case 'i':
                        value = macro_ip(ctx.ip);
                        break;
                    case 'p':
                        if (!p_done) {
                            p_cache = ctx.validated_ptr ? ctx.validated_ptr() : "unknown";
                            p_done = true;
                        }
                        value = p_cache;
                        break;
                    case 'v':
                        value = ctx.ip.is_v4() ? "in-addr" : "ip6";
                        break;
                    case 'h':
                        value = std::string(ctx.helo);
                        break;
                    case 'c':
                    case 'r':
                    case 't':
                        if (!explanation) {
                            r.error = fmt::format("macro %{{{}}} outside an explanation", letter);
                            return r;
                        }
                        if (letter == 'c')
                            value = ctx.ip.to_string();
                        else if (letter == 'r')
                            value = std::string(ctx.receiver);
                        else
                            value = fmt::format("{}", ctx.timestamp);
                        break;
                    default:
                        r.error = "unknown macro letter";
                        return r;
                }
                if (value.size() > limits::max_expansion_bytes) return too_long();
                value = transform(value, delims.empty() ? std::string_view(".") : delims, reverse, keep);
                if (upper) value = url_escape(value);
                out += value;
            } else {
                r.error = "invalid '%' escape";
                return r;
            }
        }
        if (out.size() > limits::max_expansion_bytes) return too_long();
    }
    return r;
}

Expansion expand_domain(std::string_view spec, const MacroContext& ctx) {
    auto r = expand_macros(spec, ctx, false);
    if (!r.ok()) return r;
    auto& v = r.value;
    while (v.size() > limits::max_domain_length) {
        auto dot = v.find('.');
        if (dot == std::string::npos) {
            r.error = "expanded domain has no label boundary to shorten at";
            return r;
        }
        v.erase(0, dot + 1);
    }
    return r;
}

}  // namespace vigil::auth::spf
