#pragma once
// Text in a declared (or missing, or lying) charset to UTF-8. UTF-8, US-ASCII, ISO-8859-1 and
// windows-1252 (the bulk of mail) are handled here without a converter; everything else goes through
// an ICU converter opened per call (ICU converters are per-object state; opening one looks up ICU's
// shared, mutex-protected cache, so concurrent calls from several threads are safe).
#include <cstddef>
#include <string>
#include <string_view>

namespace vigil::mime {

struct Utf8Text {
    std::string text;      // valid UTF-8
    std::string used;      // the charset the bytes were read as, lowercase
    bool guessed = false;  // `used` is a guess: the declared charset was missing, unknown or wrong
    bool bad = false;      // the declared charset was unknown, or the bytes were not valid in it
};

// `declared` as it appeared in the parameter (any case, maybe quoted); empty when there was none.
// `detect`: allow ICU's statistical detector for undeclared or lying 8-bit text (bodies); header
// strings are too short for it and fall back to UTF-8, then windows-1252.
Utf8Text to_utf8(std::string_view bytes, std::string_view declared, bool detect = true);

// Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
bool valid_utf8(std::string_view s);

// Longest prefix of s that is at most `max` bytes and does not end inside a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view s, std::size_t max);

// Appends code point cp as UTF-8 (cp must be a Unicode scalar value).
void append_utf8(std::string& out, char32_t cp);

}  // namespace vigil::mime
