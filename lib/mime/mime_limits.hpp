#pragma once
// Caps on the MIME layer's untrusted input (house rule 5). Past each cap the parser keeps what it has,
// sets the named Anomaly and goes on, so the content checks still run on what was kept.
// Sizes in bytes unless named otherwise.
#include <cstddef>

namespace vigil::mime::limits {

// Header fields decoded into ParsedMessage::headers (the MTA-side store keeps up to 5,000); past it
// Anomaly::too_many_headers. Fields read from the header block of each MIME part, per part.
inline constexpr std::size_t max_headers = 1000;
inline constexpr std::size_t max_part_headers = 100;
// One decoded header value (unfolded, encoded-words decoded); the rest is cut.
inline constexpr std::size_t max_header_value = 16 * 1024;

// MIME entities visited (leaves and containers; SpamAssassin's default is 1,000): too_many_parts.
inline constexpr std::size_t max_parts = 1000;
// Multipart / message/rfc822 nesting below the message itself: too_many_parts past it is too_deep.
inline constexpr int max_depth = 20;
// A boundary longer than this is not one (RFC 2046 allows 70): the multipart is bad_boundary.
inline constexpr std::size_t max_boundary = 200;

// Text kept (decoded + visible, all parts together) and per part: decoded_truncated.
inline constexpr std::size_t max_decoded_bytes = 4 * 1024 * 1024;
inline constexpr std::size_t max_part_decoded_bytes = 1024 * 1024;
// Bytes of undeclared/lying 8-bit text handed to ICU's charset detector.
inline constexpr std::size_t charset_detect_bytes = 8 * 1024;

// URLs kept per message: too_many_urls. A longer URL than max_url is not kept.
inline constexpr std::size_t max_urls = 1000;
inline constexpr std::size_t max_url = 8 * 1024;
// Visible text kept per <a> element for the display-text comparison.
inline constexpr std::size_t max_link_text = 256;

// HTML given to libxml2 per part, start+end tags per part, attributes per tag and bytes per attribute
// value: html_truncated. libxml2 2.9's HTML parser is quadratic in the attributes of one tag and in
// (unmatched end tags x open elements); these caps bound both (docs/content-mime.md has the figures).
inline constexpr std::size_t max_html_bytes = 512 * 1024;
inline constexpr std::size_t max_html_tags = 4096;
inline constexpr std::size_t max_html_attributes = 64;
inline constexpr std::size_t max_html_attribute_value = 8 * 1024;

}  // namespace vigil::mime::limits
