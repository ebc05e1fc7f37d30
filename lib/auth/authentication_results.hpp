#pragma once
// RFC 8601 Authentication-Results: writing ours, and recognising forged ones that claim our
// authserv-id (§5: such fields must be removed before delivery).
//
// Checks hand in one resinfo each as text, "method=result (comment) ptype.property=value ...",
// through Context::add_auth_result(). The formatter re-reads that text and writes every part again
// in a safe form, so a peer- or DNS-supplied byte that a check passed on unquoted can neither break
// the field's syntax nor add a line: values become RFC 2045 tokens, local-part@domain forms or
// quoted-strings of printable ASCII; other bytes appear as \xNN. Checks should still pass values
// through ar_value(), since an unquoted space or parenthesis would split the value.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dns/resolver.hpp"

namespace vigil::auth {

// One resinfo, read back from a check's text.
struct ResInfo {
    std::string method;                 // lowercase, optionally "/version"
    std::string result;                 // lowercase
    std::vector<std::string> comments;  // text inside the parentheses, quoted-pairs undone
    std::optional<std::string> reason;
    struct Property {
        std::string name;     // "smtp.mailfrom", lowercase
        std::string value;    // quoting undone
        bool quoted = false;  // the check quoted it: it stays quoted (header.b reads the same every time)
    };
    std::vector<Property> properties;
};

// Tolerant reader of a check's resinfo text: comments anywhere after the result, values bare or
// quoted, unterminated quotes and comments end at the end of the text. Properties without a
// "ptype.property=" name are dropped. nullopt when there is no "method=result".
std::optional<ResInfo> parse_resinfo(std::string_view text);

// A property value for the field (RFC 8601 pvalue): as is when it is an RFC 2045 token or
// [local-part]@domain-name; otherwise a quoted-string. Bytes outside printable ASCII become \xNN,
// and the value is cut at limits::max_value_length with "..." appended.
std::string ar_value(std::string_view raw);

// " (dnssec: secure)" when the record answer behind a result validated, " (dnssec: bogus)" when
// validation failed, "" otherwise (unsigned zone, validation off). Goes right after "method=result".
std::string dnssec_comment(dns::Dnssec status);

// One resinfo as written into the field, on one line: "spf=pass (dnssec: secure) smtp.mailfrom=x".
std::string resinfo_text(const ResInfo& r);

// The field value (what follows "Authentication-Results:"), starting with a space. Resinfos are put
// in method order (iprev, spf, dkim, dmarc, then any other in the order given); resinfos without a
// method=result are dropped; no results gives "authserv-id; none". When the field does not fit in
// 78 columns, every resinfo starts a line of its own and a resinfo that is still too long continues
// on further lines, folded (CRLF TAB) only between its parts, never inside a value or comment.
std::string format_authentication_results(std::string_view authserv_id,
                                          const std::vector<std::string>& resinfos);

// The authserv-id an existing field claims, or nullopt when the value is not parsable.
// CFWS and comments before it are skipped; a quoted-string id is unquoted (RFC 8601 §2.2).
std::optional<std::string> claimed_authserv_id(std::string_view value);

}  // namespace vigil::auth
