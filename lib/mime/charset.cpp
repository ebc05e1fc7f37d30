#include "mime/charset.hpp"

#include <unicode/ucnv.h>
#include <unicode/ucnv_err.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>

#include "mime/mime_limits.hpp"

namespace vigil::mime {

namespace {

// windows-1252's 0x80..0x9F (WHATWG; the five unassigned bytes map to the C1 controls, as browsers do).
constexpr std::array<char16_t, 32> cp1252_high = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

enum class Family { none, ascii, utf8, latin1, other, unknown_name };

bool is_ascii(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    std::size_t n = s.size(), i = 0;
    for (; i + 8 <= n; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, p + i, 8);
        if (w & 0x8080808080808080ull) return false;
    }
    for (; i < n; ++i)
        if (p[i] & 0x80) return false;
    return true;
}

std::string lower_name(std::string_view declared) {
    std::string out;
    for (char c : declared) {
        if (c == '"' || c == '\'' || c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
        out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
        if (out.size() > 64) return "?";  // no charset name is this long
    }
    return out;
}

Family classify(const std::string& n) {
    if (n.empty()) return Family::none;
    if (n == "utf-8" || n == "utf8" || n == "x-unicode20utf8" || n == "unicode-1-1-utf-8")
        return Family::utf8;
    if (n == "us-ascii" || n == "ascii" || n == "ansi_x3.4-1968" || n == "iso646-us" || n == "646" ||
        n == "us" || n == "default" || n == "iso-ir-6")
        return Family::ascii;
    // WHATWG decodes all of these as windows-1252 (0x80..0x9F as the 1252 punctuation, which is what
    // senders who declare ISO-8859-1 mean).
    if (n == "iso-8859-1" || n == "iso8859-1" || n == "iso_8859-1" || n == "latin1" || n == "latin-1" ||
        n == "l1" || n == "cp819" || n == "ibm819" || n == "windows-1252" || n == "cp1252" ||
        n == "x-cp1252" || n == "iso_8859-1:1987" || n == "iso-ir-100" || n == "iso88591" || n == "8859-1")
        return Family::latin1;
    for (char c : n) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
                  c == ':' || c == '+';
        if (!ok) return Family::unknown_name;
    }
    return Family::other;
}

// Charsets in which pure ASCII bytes are not ASCII text (escape-based or wide encodings).
bool ascii_is_not_ascii(const std::string& n) {
    return n.find("2022") != std::string::npos || n.find("utf-7") != std::string::npos ||
           n.find("utf7") != std::string::npos || n.find("utf-16") != std::string::npos ||
           n.find("utf16") != std::string::npos || n.find("utf-32") != std::string::npos ||
           n.find("utf32") != std::string::npos || n.find("ucs") != std::string::npos ||
           n.find("hz") != std::string::npos || n.find("unicode") != std::string::npos;
}

void append_1252(std::string& out, std::string_view s) {
    out.reserve(out.size() + s.size() + s.size() / 4);
    for (unsigned char c : s) {
        if (c < 0x80) {
            out.push_back(static_cast<char>(c));
        } else if (c < 0xA0) {
            append_utf8(out, cp1252_high[c - 0x80]);
        } else {
            out.push_back(static_cast<char>(0xC0 | (c >> 6)));
            out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
        }
    }
}

// Length of the valid UTF-8 sequence at s[i], or 0.
std::size_t utf8_seq(const unsigned char* p, std::size_t n, std::size_t i) {
    unsigned char c = p[i];
    if (c < 0x80) return 1;
    std::size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (i + len > n) return 0;
    if (p[i + 1] < lo || p[i + 1] > hi) return 0;
    for (std::size_t k = 2; k < len; ++k)
        if ((p[i + k] & 0xC0) != 0x80) return 0;
    return len;
}

struct Utf8Stats {
    std::size_t multibyte = 0;  // valid sequences of 2..4 bytes
    std::size_t invalid = 0;    // bytes that start no valid sequence
};

Utf8Stats utf8_stats(std::string_view s) {
    Utf8Stats st;
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    std::size_t n = s.size();
    for (std::size_t i = 0; i < n;) {
        if (p[i] < 0x80) {
            ++i;
            continue;
        }
        std::size_t len = utf8_seq(p, n, i);
        if (len == 0) {
            ++st.invalid;
            ++i;
        } else {
            ++st.multibyte;
            i += len;
        }
    }
    return st;
}

// UTF-8 with each invalid byte replaced by U+FFFD.
void append_utf8_lossy(std::string& out, std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    std::size_t n = s.size();
    out.reserve(out.size() + n);
    for (std::size_t i = 0; i < n;) {
        std::size_t len = utf8_seq(p, n, i);
        if (len == 0) {
            append_utf8(out, 0xFFFD);
            ++i;
        } else {
            out.append(s.data() + i, len);
            i += len;
        }
    }
}

struct ConverterClose {
    void operator()(UConverter* c) const { ucnv_close(c); }
};

// Counts the bytes ICU could not convert, then substitutes U+FFFD as the default callback would.
void count_and_substitute(const void* context, UConverterToUnicodeArgs* args, const char* units,
                          int32_t length, UConverterCallbackReason reason, UErrorCode* err) {
    if (reason <= UCNV_IRREGULAR) {
        *static_cast<std::size_t*>(const_cast<void*>(context)) += static_cast<std::size_t>(length);
        // ICU's own substitute callback writes its substitution character (U+FFFD for Unicode targets).
        UCNV_TO_U_CALLBACK_SUBSTITUTE(nullptr, args, units, length, reason, err);
    }
}

// Converts with ICU. Returns false when ICU has no converter of that name.
bool icu_convert(std::string_view bytes, const char* name, std::string& out, std::size_t& errors) {
    UErrorCode status = U_ZERO_ERROR;
    std::unique_ptr<UConverter, ConverterClose> conv(ucnv_open(name, &status));
    if (U_FAILURE(status) || !conv) return false;
    errors = 0;
    ucnv_setToUCallBack(conv.get(), count_and_substitute, &errors, nullptr, nullptr, &status);
    if (U_FAILURE(status)) return false;
    std::array<UChar, 2048> buf;
    const char* src = bytes.data();
    const char* end = bytes.data() + bytes.size();
    out.reserve(out.size() + bytes.size() + bytes.size() / 2);
    char16_t pending_high = 0;
    bool flush = false;
    while (!flush) {
        UChar* target = buf.data();
        status = U_ZERO_ERROR;
        ucnv_toUnicode(conv.get(), &target, buf.data() + buf.size(), &src, end, nullptr, true, &status);
        if (status != U_BUFFER_OVERFLOW_ERROR) {
            if (U_FAILURE(status)) return false;
            flush = true;
        }
        for (const UChar* q = buf.data(); q < target; ++q) {
            char16_t u = *q;
            if (pending_high) {
                if (u >= 0xDC00 && u <= 0xDFFF) {
                    append_utf8(
                        out, 0x10000 + ((static_cast<char32_t>(pending_high) - 0xD800) << 10) + (u - 0xDC00));
                    pending_high = 0;
                    continue;
                }
                append_utf8(out, 0xFFFD);
                pending_high = 0;
            }
            if (u >= 0xD800 && u <= 0xDBFF) {
                pending_high = u;
            } else if (u >= 0xDC00 && u <= 0xDFFF) {
                append_utf8(out, 0xFFFD);
            } else {
                append_utf8(out, u);
            }
        }
    }
    if (pending_high) append_utf8(out, 0xFFFD);
    return true;
}

// A cheap guess for 8-bit text that is not UTF-8: the byte structure of the CJK multi-byte families
// and the letter-case distribution of the two common Cyrillic code pages, else windows-1252. ICU's
// statistical detector (ucsdet) costs ~190 ns per byte here (docs/content-mime.md): far over budget.
const char* guess_legacy(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    std::size_t n = std::min(s.size(), limits::charset_detect_bytes);
    std::size_t high = 0, euc_pairs = 0, euc_bad = 0, sjis_pairs = 0, sjis_bad = 0, big5_pairs = 0,
                big5_bad = 0;
    std::size_t kana_leads = 0, upper_leads = 0, c0_df = 0, e0_ff = 0;
    for (std::size_t i = 0; i < n; ++i)
        if (p[i] & 0x80) {
            ++high;
            if (p[i] >= 0xC0 && p[i] <= 0xDF) ++c0_df;
            if (p[i] >= 0xE0) ++e0_ff;
        }
    if (high == 0) return "windows-1252";
    // EUC (CN/KR/JP): every 8-bit byte in a pair of 0xA1..0xFE (EUC-JP also 0x8E + kana).
    for (std::size_t i = 0; i < n; ++i) {
        if (!(p[i] & 0x80)) continue;
        if (i + 1 < n && ((p[i] >= 0xA1 && p[i] <= 0xFE) || p[i] == 0x8E) && p[i + 1] >= 0xA1 &&
            p[i + 1] <= 0xFE) {
            ++euc_pairs;
            if (p[i] == 0xA4 || p[i] == 0xA5) ++kana_leads;
            if (p[i] >= 0xC9) ++upper_leads;
            ++i;
        } else {
            ++euc_bad;
        }
    }
    // Shift_JIS: lead 0x81..0x9F / 0xE0..0xFC, trail 0x40..0xFC but not 0x7F; 0xA1..0xDF single kana.
    for (std::size_t i = 0; i < n; ++i) {
        unsigned char c = p[i];
        if (!(c & 0x80)) continue;
        if (c >= 0xA1 && c <= 0xDF) continue;
        if (i + 1 < n && ((c >= 0x81 && c <= 0x9F) || (c >= 0xE0 && c <= 0xFC)) && p[i + 1] >= 0x40 &&
            p[i + 1] <= 0xFC && p[i + 1] != 0x7F) {
            ++sjis_pairs;
            ++i;
        } else {
            ++sjis_bad;
        }
    }
    // Big5 (and GBK): lead 0x81..0xFE, trail 0x40..0x7E / 0xA1..0xFE (GBK: 0x80..0xFE).
    bool low_trail = false;
    for (std::size_t i = 0; i < n; ++i) {
        unsigned char c = p[i];
        if (!(c & 0x80)) continue;
        if (i + 1 < n && c >= 0x81 && c <= 0xFE && p[i + 1] >= 0x40 && p[i + 1] <= 0xFE && p[i + 1] != 0x7F) {
            if (p[i + 1] < 0x80) low_trail = true;
            ++big5_pairs;
            ++i;
        } else {
            ++big5_bad;
        }
    }
    // Multi-byte text is dense in 8-bit bytes; an accent here and there in Latin text is not.
    bool dense = high * 5 >= n || high >= 64;
    if (dense && euc_bad == 0 && euc_pairs > 0) {
        if (kana_leads * 4 >= euc_pairs) return "euc-jp";
        // Korean syllables live under lead 0xC9 (Hangul block 0xB0..0xC8); Chinese spreads to 0xF7.
        return upper_leads * 6 >= euc_pairs ? "gb18030" : "euc-kr";
    }
    if (dense && sjis_bad == 0 && sjis_pairs > 0) return "shift_jis";
    if (dense && big5_bad == 0 && big5_pairs > 0) return low_trail ? "big5" : "gb18030";
    // Cyrillic: lower case dominates text; it is 0xC0..0xDF in KOI8-R and 0xE0..0xFF in windows-1251.
    if (high * 3 >= n) {
        if (c0_df > 2 * e0_ff) return "koi8-r";
        if (e0_ff > 2 * c0_df) return "windows-1251";
    }
    return "windows-1252";
}

void guess(std::string_view bytes, bool detect, Utf8Text& r) {
    r.guessed = true;
    if (valid_utf8(bytes)) {
        r.used = "utf-8";
        r.text.assign(bytes);
        return;
    }
    const char* g = detect ? guess_legacy(bytes) : "windows-1252";
    if (std::strcmp(g, "windows-1252") != 0) {
        std::string out;
        std::size_t errors = 0;
        // A guess that leaves more than 1 in 20 bytes unconverted was wrong.
        if (icu_convert(bytes, g, out, errors) && errors * 20 <= bytes.size()) {
            r.used = g;
            r.text = std::move(out);
            return;
        }
    }
    r.used = "windows-1252";
    append_1252(r.text, bytes);
}

}  // namespace

void append_utf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

bool valid_utf8(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    std::size_t n = s.size();
    std::size_t i = 0;
    while (i < n) {
        // ASCII runs eight bytes at a time: most mail text is mostly ASCII.
        while (i + 8 <= n) {
            std::uint64_t w;
            std::memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        std::size_t len = utf8_seq(p, n, i);
        if (len == 0) return false;
        i += len;
    }
    return true;
}

std::string_view utf8_prefix(std::string_view s, std::size_t max) {
    if (s.size() <= max) return s;
    std::size_t cut = max;
    // Back up over continuation bytes to the start of the sequence that straddles the cut.
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    return s.substr(0, cut);
}

Utf8Text to_utf8(std::string_view bytes, std::string_view declared, bool detect) {
    Utf8Text r;
    std::string name = lower_name(declared);
    Family fam = classify(name);
    if (is_ascii(bytes) && (fam == Family::none || fam == Family::ascii || fam == Family::utf8 ||
                            fam == Family::latin1 || ((fam == Family::other) && !ascii_is_not_ascii(name)))) {
        r.used = fam == Family::none ? "us-ascii" : name;
        r.text.assign(bytes);
        return r;
    }
    switch (fam) {
        case Family::none:
            guess(bytes, detect, r);
            return r;
        case Family::ascii:  // 8-bit bytes in "US-ASCII": the declaration is wrong
        case Family::unknown_name:
            r.bad = true;
            guess(bytes, detect, r);
            return r;
        case Family::utf8: {
            r.used = "utf-8";
            auto st = utf8_stats(bytes);
            if (st.invalid == 0) {
                r.text.assign(bytes);
                return r;
            }
            r.bad = true;
            // Mostly UTF-8 with a few broken bytes: keep it as UTF-8. Otherwise the label is wrong.
            if (st.multibyte >= st.invalid) {
                append_utf8_lossy(r.text, bytes);
                return r;
            }
            guess(bytes, detect, r);
            return r;
        }
        case Family::latin1:
        case Family::other: {
            // A single- or multi-byte legacy label on text that is valid UTF-8 with several multi-byte
            // sequences: genuine legacy text almost never is. The label lies (a common spam trait).
            auto st = utf8_stats(bytes);
            if (st.invalid == 0 && st.multibyte >= 2) {
                r.bad = true;
                r.guessed = true;
                r.used = "utf-8";
                r.text.assign(bytes);
                return r;
            }
            if (fam == Family::latin1) {
                r.used = name == "windows-1252" || name == "cp1252" ? name : "iso-8859-1";
                append_1252(r.text, bytes);
                return r;
            }
            std::size_t errors = 0;
            std::string out;
            if (!icu_convert(bytes, name.c_str(), out, errors)) {
                r.bad = true;
                guess(bytes, detect, r);
                return r;
            }
            if (errors == 0) {
                r.used = name;
                r.text = std::move(out);
                return r;
            }
            r.bad = true;
            if (errors * 20 > bytes.size()) {
                guess(bytes, detect, r);
                return r;
            }
            r.used = name;
            r.text = std::move(out);
            return r;
        }
    }
    return r;
}

}  // namespace vigil::mime
