#pragma once
// Every cap SPF evaluation applies to untrusted input (house rule 5). RFC 7208 §4.6.4 gives the
// first five; the rest bound the work and memory any one record or macro can cost.
#include <cstddef>

namespace vigil::auth::spf::limits {

// DNS-querying terms (include, a, mx, ptr, exists, redirect) across one whole evaluation,
// includes and redirects included; one more is a permerror.
inline constexpr std::size_t max_dns_terms = 10;
// Lookups answering NXDOMAIN or NODATA ("void lookups"); one more is a permerror.
inline constexpr std::size_t max_void_lookups = 2;
// MX names one "mx" mechanism may look up; more MX records is a permerror (RFC 7208 §4.6.4).
inline constexpr std::size_t max_mx_names = 10;
// PTR names one "ptr" mechanism (or %{p}) validates; the rest are ignored, not an error.
inline constexpr std::size_t max_ptr_names = 10;

// An SPF record (the TXT strings joined) longer than this is a permerror: no real record comes
// near it, and it bounds the terms one record can have.
inline constexpr std::size_t max_record_bytes = 8192;
// Terms (mechanisms and modifiers) in one record; more is a permerror.
inline constexpr std::size_t max_terms = 1024;
// Any one macro expansion stops (permerror) past this many bytes, before any domain truncation.
inline constexpr std::size_t max_expansion_bytes = 2048;
// RFC 7208 §7.3: implementations must support at least 128 parts; a larger DIGIT means "all".
inline constexpr std::size_t max_macro_parts = 128;
// An explanation (exp= text after expansion) is cut to this length.
inline constexpr std::size_t max_explanation_bytes = 512;
// A domain name after macro expansion: longer ones lose labels on the left (RFC 7208 §7.3).
inline constexpr std::size_t max_domain_length = 253;
inline constexpr std::size_t max_label_length = 63;
// include/redirect nesting; the DNS term limit already bounds it, this is a second guard.
inline constexpr std::size_t max_recursion_depth = 12;
// TXT records looked at per name when selecting the SPF record.
inline constexpr std::size_t max_txt_records = 100;

}  // namespace vigil::auth::spf::limits
