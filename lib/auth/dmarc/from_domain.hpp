#pragma once
// The RFC5322.From domain DMARC evaluates (RFC 7489 §6.6.1): exactly one From field holding exactly
// one mailbox with a domain name. Every other shape is its own outcome, so local policy can decide
// what it means (reject, score, skip) instead of the parser guessing which address the reader sees.
//
// The value is parsed as an RFC 5322 address-list (RFC 6854 allows group syntax in From) with the
// obsolete forms RFC 5322 §4 still asks receivers to accept (routes, dotted phrases, quoted local
// parts, CFWS anywhere) and UTF-8 in atoms (RFC 6532). A display name followed by a bare address
// ("Name joe@example.com"), stray angle brackets, or a group without its closing ';' is unparsable.
#include <string>
#include <string_view>
#include <vector>

namespace vigil::auth::dmarc {

enum class FromStatus {
    ok,                 // one field, one mailbox: `domain` is set
    no_from,            // no From field at all
    several_fields,     // more than one From field
    several_addresses,  // one field with two or more mailboxes
    no_domain,          // no mailbox with a domain: empty value or group, "<>", an address literal
    unparsable,         // not an RFC 5322 address-list (or longer than limits::max_from_bytes)
};

std::string_view to_string(FromStatus status);  // "ok" "no_from" "several_fields" ...

struct FromDomain {
    FromStatus status = FromStatus::unparsable;
    std::string domain;  // lowercase (ASCII letters only; U-labels stay as UTF-8); set only for ok
    std::string detail;  // why, for logs and reports: printable, bounded
    bool ok() const { return status == FromStatus::ok; }
};

// `values`: the raw value of every From field of the message, in order (folding CRLFs included).
FromDomain extract_from_domain(const std::vector<std::string_view>& values);

// One From field's value.
FromDomain parse_from_value(std::string_view value);

}  // namespace vigil::auth::dmarc
