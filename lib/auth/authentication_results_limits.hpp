#pragma once
// Caps on what goes into our Authentication-Results field (house rule 5). The resinfo texts checks
// hand in carry peer and DNS data; these keep the field bounded whatever those hold.
#include <cstddef>

namespace vigil::auth::limits {

// Resinfos in one field (32 DKIM signatures are looked at, plus iprev, two SPF, DMARC, ...).
inline constexpr std::size_t max_resinfos = 64;
// Bytes of one resinfo text that are read; the rest is ignored.
inline constexpr std::size_t max_resinfo_input = 8192;
// Properties and comments kept per resinfo.
inline constexpr std::size_t max_properties = 16;
inline constexpr std::size_t max_comments = 4;
// A value (before quoting) longer than this + 3 is cut to at most this, with "..." appended: room
// for local-part@domain (64 + 1 + 253) and, quoted, still inside RFC 5322's 998-byte line.
inline constexpr std::size_t max_value_length = 320;
// Comment text, the same way.
inline constexpr std::size_t max_comment_length = 200;
// Method, result, ptype and property names (RFC 8601 Keyword); longer ones are dropped.
inline constexpr std::size_t max_keyword_length = 64;

}  // namespace vigil::auth::limits
