#pragma once
// STOPGAP until mime::parse() lands: a crude raw-message-to-ParsedMessage conversion so that
// `vigil learn` and the Bayes evaluation have something to tokenize. It splits multipart bodies on
// their boundaries, undoes base64 and quoted-printable, converts declared charsets with iconv,
// decodes RFC 2047 words in headers, drops HTML tags (and script/style contents) for the visible
// text and picks http(s)/www URLs out of text and href/src attributes. It is not the MIME parser:
// no anomaly detection, no hidden-text rules, no IDN handling. Replace every call with mime::parse()
// when that exists (the tokenizer and the store do not change).
#include <cstddef>
#include <string_view>

#include "mime/parsed_message.hpp"

namespace vigil::content::bayes {

namespace crude_limits {
inline constexpr std::size_t max_depth = 8;
inline constexpr std::size_t max_parts = 100;
inline constexpr std::size_t max_decoded_bytes = 1024 * 1024;  // per part
inline constexpr std::size_t max_urls = 200;
}  // namespace crude_limits

// Accepts a leading mbox "From " line. Never throws on malformed input.
mime::ParsedMessage crude_parse(std::string_view raw);

}  // namespace vigil::content::bayes
