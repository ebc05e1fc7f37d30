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
    unparsable,         // not an RFC 5322 address-list (or longer than limits::max_from_bytes), or
                        // a domain normalize_domain() refuses, or not all of it examined
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

// Every domain a reader of the From fields may take for the author's, for DMARC to evaluate each
// (RFC 7489 §6.6.1: "apply the DMARC check using each of those domains ... and apply the most
// strict policy"). For `status` ok it is the one domain. Values the strict parser accepts give the
// domains of their mailboxes; a value it refuses (trailing text, an unclosed comment or bracket, a
// trailing dot, a display name before a bare address) is read leniently: the name after every '@'
// anywhere in it, leading/trailing dots dropped. Only names normalize_domain() accepts are kept.
struct FromDomains {
    FromStatus status = FromStatus::no_from;  // as extract_from_domain() for all fields
    std::string detail;                       // printable, bounded
    std::vector<std::string> domains;         // normalized, distinct, in order; <= limits::max_from_domains
    // Not empty when some of the From could not be examined: more fields than the message kept,
    // a value cut at its cap, more distinct domains than limits::max_from_domains. Then `status`
    // is never ok.
    std::string incomplete;
    bool ok() const { return status == FromStatus::ok; }
    bool complete() const { return incomplete.empty(); }
};

// `values`: the first From values (core::Message::from_value()), `fields_seen` how many From fields
// the message had in all, `cut`: a value was cut at core::limits::max_from_bytes.
FromDomains from_domains(const std::vector<std::string_view>& values, std::size_t fields_seen, bool cut);

}  // namespace vigil::auth::dmarc
