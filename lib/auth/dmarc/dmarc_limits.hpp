#pragma once
// Every cap DMARC applies to untrusted input (house rule 5): DMARC records from DNS and the From
// header fields of a message. Past a cap the input gets a defined outcome, never unbounded work.
#include <cstddef>

namespace vigil::auth::dmarc::limits {

// A DMARC record (TXT strings joined) longer than this is not parsed: it is an invalid record.
// Real records are a few hundred bytes; this bounds the tags one record can hold.
inline constexpr std::size_t max_record_bytes = 8192;
// Tags in one record; more makes the record invalid (10,000 tags cost one bounded scan).
inline constexpr std::size_t max_tags = 64;
// URIs kept per rua= / ruf= list; the rest are ignored (the record stays valid).
inline constexpr std::size_t max_report_uris = 32;
// One report URI longer than this is not syntactically valid for us.
inline constexpr std::size_t max_uri_bytes = 512;
// TXT records looked at under one _dmarc name.
inline constexpr std::size_t max_txt_records = 100;

// Bytes of one From value the strict parser reads; a longer value is unparsable (and read the
// lenient way). How many From fields and bytes a message keeps: core/limits.hpp.
inline constexpr std::size_t max_from_bytes = 64 * 1024;
// Distinct domains taken from the From fields of one message, each evaluated on its own (two
// policy lookups each). A message with more has a From no one can check: the strictest answer.
inline constexpr std::size_t max_from_domains = 8;
// '@' signs the lenient reading of one malformed From value looks behind (each may cost a domain
// normalisation); a value with more is not fully examined: the strictest answer.
inline constexpr std::size_t max_from_scan_ats = 256;
// Nesting of comments in a From field; deeper is unparsable.
inline constexpr std::size_t max_comment_depth = 32;

// Domain names (RFC 1035).
inline constexpr std::size_t max_domain_length = 253;
inline constexpr std::size_t max_label_length = 63;

// Organizational domains remembered per loaded Public Suffix List (the lookup is the costly part of
// the DMARC check); the memory is dropped whole when full.
inline constexpr std::size_t max_cached_org_domains = 4096;

}  // namespace vigil::auth::dmarc::limits
