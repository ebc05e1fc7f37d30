#pragma once
// Content-Transfer-Encoding undone: base64 and quoted-printable, lenient the way mail readers are
// (bad bytes skipped or kept literally), with the damage reported so the content check can score it.
#include <cstddef>
#include <string>
#include <string_view>

namespace vigil::mime {

struct Decoded {
    std::string bytes;
    bool malformed = false;  // characters outside the alphabet, bad padding, stray '=' sequences
    bool truncated = false;  // stopped at `max` output bytes
};

// Base64 (RFC 2045 §6.8): CR, LF, space and tab are skipped silently; any other byte outside the
// alphabet is skipped and marks the input malformed, as does data after the padding or a final
// group of one character. `may_be_cut`: the input may have been cut short by the scan cap, so an
// incomplete last group is not counted as damage.
Decoded decode_base64(std::string_view in, std::size_t max, bool may_be_cut = false);
// Bytes that base64 text decodes to, without decoding it (for parts whose content is not kept);
// `malformed` set for bytes outside the alphabet and white space.
std::size_t base64_decoded_size(std::string_view in, bool& malformed);

// Quoted-printable (RFC 2045 §6.7): "=XX" (either case), soft line breaks "=" CRLF (or LF, and with
// trailing white space before the line end). A '=' not followed by two hex digits or a line end is
// kept literally and marks the input malformed.
Decoded decode_qp(std::string_view in, std::size_t max);

// Q-encoding of RFC 2047 encoded-words ('_' is a space, no soft breaks).
Decoded decode_q(std::string_view in);

}  // namespace vigil::mime
