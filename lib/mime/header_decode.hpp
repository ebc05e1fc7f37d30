#pragma once
// Header values for content checks: unfolded, RFC 2047 encoded-words decoded into UTF-8, and the
// structured fields the MIME walker needs (Content-Type, Content-Disposition with RFC 2231
// parameters). Lenient the way mail readers are, with malformed encoded-words reported.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil::mime {

// CRLF / LF / CR followed by white space become that white space; other line breaks become a space.
std::string unfold_value(std::string_view raw);

// Decodes encoded-words (=?charset?B|Q?text?=, also inside words and in quoted strings, as mail
// readers do), joins adjacent ones (the white space between them dropped, bytes of one charset
// concatenated before conversion, so a character split across two words survives), converts the rest
// to UTF-8 (undeclared 8-bit bytes: UTF-8 if valid, else windows-1252). `bad` is set for an
// encoded-word with an unknown encoding or charset, malformed base64/Q data, or bytes not valid in its
// charset. The result is cut at `max` bytes.
std::string decode_words(std::string_view unfolded, bool& bad, std::size_t max);

struct MediaType {
    std::string type = "text";  // lowercase
    std::string subtype = "plain";
    bool valid = false;                                       // a type/subtype was present and well formed
    std::vector<std::pair<std::string, std::string>> params;  // names lowercase; RFC 2231 joined
    const std::string* param(std::string_view name) const;
    std::string full() const { return type + "/" + subtype; }
};

// Content-Type (value after the colon, unfolded or not). Parameter values: quoted strings unquoted,
// RFC 2231 continuations and charset'lang'%XX values decoded to UTF-8; encoded-words are NOT decoded
// here (decode_words on filename/name where wanted).
MediaType parse_media_type(std::string_view value);

// Content-Disposition: the disposition (lowercase) and parameters, same rules as above.
struct Disposition {
    std::string kind;
    std::vector<std::pair<std::string, std::string>> params;
    const std::string* param(std::string_view name) const;
};
Disposition parse_disposition(std::string_view value);

// The Content-Transfer-Encoding token, lowercase, without comments or white space.
std::string parse_cte(std::string_view value);

}  // namespace vigil::mime
