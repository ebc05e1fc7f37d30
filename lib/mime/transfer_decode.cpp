#include "mime/transfer_decode.hpp"

#include <array>
#include <cstdint>

namespace vigil::mime {

namespace {

constexpr std::uint8_t b64_skip = 0xFE;  // white space: ignored
constexpr std::uint8_t b64_bad = 0xFF;   // not in the alphabet

constexpr std::array<std::uint8_t, 256> make_b64_table() {
    std::array<std::uint8_t, 256> t{};
    for (auto& v : t) v = b64_bad;
    for (int i = 0; i < 26; ++i) {
        t['A' + i] = static_cast<std::uint8_t>(i);
        t['a' + i] = static_cast<std::uint8_t>(26 + i);
    }
    for (int i = 0; i < 10; ++i) t['0' + i] = static_cast<std::uint8_t>(52 + i);
    t['+'] = 62;
    t['/'] = 63;
    t['\r'] = t['\n'] = t[' '] = t['\t'] = b64_skip;
    return t;
}
constexpr auto b64_table = make_b64_table();

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

}  // namespace

Decoded decode_base64(std::string_view in, std::size_t max, bool may_be_cut) {
    Decoded d;
    d.bytes.reserve(std::min(max, in.size() / 4 * 3 + 3));
    std::uint32_t acc = 0;
    int n = 0;
    std::size_t pad = 0;
    for (std::size_t i = 0; i < in.size(); ++i) {
        auto c = static_cast<unsigned char>(in[i]);
        std::uint8_t v = b64_table[c];
        if (v == b64_skip) continue;
        if (c == '=') {
            ++pad;
            continue;
        }
        if (v == b64_bad) {
            d.malformed = true;
            continue;
        }
        if (pad) {
            // Data after padding: concatenated base64 blocks (some senders do this); decode on.
            d.malformed = true;
            pad = 0;
            if (n == 2) {
                if (d.bytes.size() < max) d.bytes.push_back(static_cast<char>(acc >> 4));
            } else if (n == 3) {
                if (d.bytes.size() + 2 <= max) {
                    d.bytes.push_back(static_cast<char>(acc >> 10));
                    d.bytes.push_back(static_cast<char>((acc >> 2) & 0xFF));
                }
            }
            acc = 0;
            n = 0;
        }
        acc = (acc << 6) | v;
        if (++n == 4) {
            if (d.bytes.size() + 3 > max) {
                d.truncated = true;
                return d;
            }
            d.bytes.push_back(static_cast<char>(acc >> 16));
            d.bytes.push_back(static_cast<char>((acc >> 8) & 0xFF));
            d.bytes.push_back(static_cast<char>(acc & 0xFF));
            acc = 0;
            n = 0;
        }
    }
    // The final group: 2 or 3 characters carry 1 or 2 bytes; a lone character carries none.
    if (n == 1 && !may_be_cut) d.malformed = true;
    if (n >= 2) {
        // Missing padding is common and harmless: decoded without flagging.
        if (d.bytes.size() + static_cast<std::size_t>(n - 1) > max) {
            d.truncated = true;
            return d;
        }
        if (n == 2) {
            d.bytes.push_back(static_cast<char>(acc >> 4));
        } else {
            d.bytes.push_back(static_cast<char>(acc >> 10));
            d.bytes.push_back(static_cast<char>((acc >> 2) & 0xFF));
        }
    }
    if (n == 0 && pad > 0) d.malformed = true;  // padding with no group to pad
    if (n >= 2 && pad > 0 && static_cast<std::size_t>(n) + pad > 4) d.malformed = true;
    return d;
}

std::size_t base64_decoded_size(std::string_view in, bool& malformed) {
    std::size_t chars = 0, bad = 0;
    for (unsigned char c : in) {
        std::uint8_t v = b64_table[c];
        chars += v < 64;
        bad += v == b64_bad && c != '=';
    }
    if (bad) malformed = true;
    return chars / 4 * 3 + (chars % 4 >= 2 ? chars % 4 - 1 : 0);
}

Decoded decode_qp(std::string_view in, std::size_t max) {
    Decoded d;
    d.bytes.reserve(std::min(max, in.size()));
    std::size_t i = 0;
    const std::size_t n = in.size();
    while (i < n) {
        if (d.bytes.size() >= max) {
            d.truncated = true;
            return d;
        }
        char c = in[i];
        if (c != '=') {
            d.bytes.push_back(c);
            ++i;
            continue;
        }
        int h1 = i + 1 < n ? hex_value(in[i + 1]) : -1;
        int h2 = i + 2 < n ? hex_value(in[i + 2]) : -1;
        if (h1 >= 0 && h2 >= 0) {
            d.bytes.push_back(static_cast<char>(h1 * 16 + h2));
            i += 3;
            continue;
        }
        // Soft line break: '=', optional trailing white space, then CRLF, LF or the end of input.
        std::size_t j = i + 1;
        while (j < n && (in[j] == ' ' || in[j] == '\t')) ++j;
        if (j == n) {
            i = n;
            continue;
        }
        if (in[j] == '\n') {
            i = j + 1;
            continue;
        }
        if (in[j] == '\r') {
            i = j + 1;
            if (i < n && in[i] == '\n') ++i;
            continue;
        }
        d.malformed = true;
        d.bytes.push_back('=');
        ++i;
    }
    return d;
}

Decoded decode_q(std::string_view in) {
    Decoded d;
    d.bytes.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '_') {
            d.bytes.push_back(' ');
        } else if (c == '=') {
            int h1 = i + 1 < in.size() ? hex_value(in[i + 1]) : -1;
            int h2 = i + 2 < in.size() ? hex_value(in[i + 2]) : -1;
            if (h1 >= 0 && h2 >= 0) {
                d.bytes.push_back(static_cast<char>(h1 * 16 + h2));
                i += 2;
            } else {
                d.malformed = true;
                d.bytes.push_back('=');
            }
        } else {
            d.bytes.push_back(c);
        }
    }
    return d;
}

}  // namespace vigil::mime
