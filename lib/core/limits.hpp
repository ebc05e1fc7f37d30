#pragma once
// Every cap on untrusted input in one place (house rule 5). Sizes in bytes unless named otherwise.
#include <cstddef>

namespace vigil::core::limits {

// Header fields kept per message; fields past either cap are counted but not stored, and the
// message gets the MSG_HEADER_LIMIT symbol rather than an error, so mail keeps flowing.
inline constexpr std::size_t max_header_fields = 5000;
inline constexpr std::size_t max_header_bytes = 4 * 1024 * 1024;
inline constexpr std::size_t max_header_name = 1024;

// Incoming header fields Vigil removes, per message and field name (Authentication-Results claiming
// our authserv-id; with [headers] remove_incoming, the sender's X-Spam-* fields). Each removal costs
// Postfix's cleanup a walk of the header (20,000 made it panic), so a message that would need more
// is refused rather than edited (policy/incoming_fields.hpp).
inline constexpr std::size_t max_removed_fields_per_name = 16;
// From fields are captured apart from the caps above, wherever they are in the header: DMARC must
// see every From a reader sees, and 5,000 filler fields must not push one out of sight. The first
// max_from_fields values are kept (more From fields are counted: itself a finding), each up to
// max_from_bytes (a longer one is cut and marked as cut). The caps bound memory, not checking:
// whoever reads the fields treats anything it could not see as the strictest case.
inline constexpr std::size_t max_from_fields = 16;
inline constexpr std::size_t max_from_bytes = 128 * 1024;

// Envelope strings as the MTA hands them to us; longer ones are cut (and flagged).
inline constexpr std::size_t max_envelope_string = 1024;
inline constexpr std::size_t max_recipients_kept = 1000;

// Peer-supplied strings in log lines: made printable, then cut to this many bytes.
inline constexpr std::size_t max_log_field = 256;
inline constexpr std::size_t max_log_symbols = 64;

// The GTUBE check looks for its string in the first part of the body only.
inline constexpr std::size_t gtube_scan_bytes = 64 * 1024;

// A message file read by `vigil check` (the milter streams and has no such cap).
inline constexpr std::size_t max_check_file = 256 * 1024 * 1024;

}  // namespace vigil::core::limits
