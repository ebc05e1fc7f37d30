#pragma once
// The message as the content checks see it: MIME parts decoded to UTF-8 text, HTML rendered to the
// text a reader sees, header values decoded, URLs found. Built once per message (by mime::parse) and
// shared read-only by every content check (rules, Bayes, URI lists, antivirus), so no check decodes
// the message again and no rule type keeps a copy of its own.
//
// Caps on untrusted input live in mime/mime_limits.hpp. Past a cap the parser stops adding (parts,
// bytes, URLs) and records it in `anomalies`: the checks still run on what was kept, and the content
// check turns each anomaly into a symbol, so a message can never skip the checks by being large.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vigil::mime {

struct DecodedHeader {
    std::string name;   // as sent
    std::string raw;    // the value as sent (folding CRLFs kept, leading white space removed)
    std::string value;  // unfolded, RFC 2047 encoded-words decoded, converted to UTF-8
};

enum class UrlSource { text, html_href, html_src };

struct Url {
    std::string url;   // as found, with a scheme added where the text had none ("www.x.com/..")
    std::string host;  // lowercase; IDNs as A-labels; an IP literal without brackets
    bool host_is_ip = false;
    UrlSource source = UrlSource::text;
    // For an HTML link: the visible text of the <a> element (bounded), and whether that text itself
    // names a different host than the link goes to (the classic phishing shape).
    std::string display_text;
    bool display_mismatch = false;
    std::size_t part = 0;  // index into ParsedMessage::parts
};

struct Part {
    std::string content_type;  // lowercase "type/subtype"; "text/plain" when absent
    std::string charset;       // declared, lowercase; empty when none
    std::string filename;      // from Content-Disposition or Content-Type name=, decoded to UTF-8
    bool attachment = false;   // Content-Disposition: attachment, or a filename on a non-text part
    int depth = 0;             // multipart nesting (0: the message itself)
    std::size_t encoded_size = 0;
    std::size_t decoded_size = 0;
    // Text parts only (text/*, and message bodies without a type): the content transfer encoding
    // undone and the charset converted to UTF-8 (rawbody), and, for HTML, the visible text with
    // tags, scripts, styles and hidden elements left out (body). For text/plain both are the same
    // text and `visible` is empty: use text_for_body(). Line ends are "\n" in both (CRLF and lone
    // CR converted); `visible` has white space collapsed as a browser shows it, a "\n" per block.
    std::string decoded;
    std::string visible;
    bool is_text = false;
    bool is_html = false;
    bool charset_guessed = false;  // the declared charset was missing, unknown or wrong
    // The charset the text was read as (lowercase: "utf-8", "windows-1252", "gb18030", ...): the
    // declared one, or the guess when charset_guessed. Empty for non-text parts.
    std::string charset_used;
    const std::string& text_for_body() const { return is_html ? visible : decoded; }
};

// Structural findings; each becomes a MIME_* symbol in the content check.
enum class Anomaly : std::uint32_t {
    too_many_parts = 1u << 0,       // mime::limits::max_parts reached; later parts not decoded
    too_deep = 1u << 1,             // nesting beyond max_depth; deeper parts not decoded
    decoded_truncated = 1u << 2,    // max_decoded_bytes reached; the rest of the text not kept
    too_many_urls = 1u << 3,        // max_urls reached
    message_truncated = 1u << 4,    // the body was longer than the scan cap the engine keeps
    bad_boundary = 1u << 5,         // multipart without a usable boundary, or a missing final one
    bad_base64 = 1u << 6,           // characters outside the alphabet, or bad padding
    bad_qp = 1u << 7,               // malformed quoted-printable
    bad_charset = 1u << 8,          // declared charset unknown or the text not valid in it
    bad_header_encoding = 1u << 9,  // a malformed RFC 2047 encoded-word
    html_hidden_text = 1u << 10,    // HTML text made invisible (display:none, tiny or same-colour font)
    html_link_mismatch = 1u << 11,  // a link whose visible text names another host
    too_many_headers = 1u << 12,    // max_headers / max_part_headers reached; later fields not decoded
    html_truncated = 1u << 13,      // an HTML cap (size, tags, attributes) reached; the rest not rendered
};

struct ParsedMessage {
    std::vector<DecodedHeader> headers;  // in order, as many as core::Message kept
    std::vector<Part> parts;             // leaf parts in document order
    std::vector<Url> urls;               // de-duplicated by url, in order of first appearance
    std::string subject;                 // decoded Subject, empty when none
    std::uint32_t anomalies = 0;         // Anomaly bits
    bool has(Anomaly a) const { return (anomalies & static_cast<std::uint32_t>(a)) != 0; }
    void add(Anomaly a) { anomalies |= static_cast<std::uint32_t>(a); }
};

}  // namespace vigil::mime
