#pragma once
// Caps on untrusted DKIM input (house rule 5). A signature or key past a cap is a permerror value,
// never unbounded work.
#include <cstddef>
#include <cstdint>

namespace vigil::auth::dkim::limits {

// DKIM-Signature fields looked at per message (each one gets a result); the default number actually
// verified (crypto + DNS) is configurable ([checks.dkim] max_signatures) up to this cap.
inline constexpr std::size_t max_signature_fields = 32;
inline constexpr std::size_t default_verified_signatures = 5;
// Bytes of one tag-list (a DKIM-Signature value or a key record).
inline constexpr std::size_t max_tag_list_bytes = 16 * 1024;
inline constexpr std::size_t max_tags = 64;
// Names in one h= tag (RFC 6376 sets no cap; 10,000 names is an attack, not a signature).
inline constexpr std::size_t max_signed_header_names = 512;
// Decoded b= and bh= sizes: the largest signature we accept is that of an RSA-8192 key.
inline constexpr std::size_t max_signature_bytes = 1024;
inline constexpr std::size_t max_public_key_bytes = 2048;
// RSA key sizes: below min (configurable, RFC 8301) is policy; above max is permerror (bounded work).
inline constexpr unsigned default_min_rsa_bits = 1024;
inline constexpr unsigned max_rsa_bits = 8192;
// Our own signing keys: RFC 8301 §3.2 forbids signing with RSA keys under 1024 bits (verifiers
// treat such signatures as failed), so a shorter key is a config error, not a setting.
inline constexpr unsigned min_signing_rsa_bits = 1024;
// Distinct body hashing contexts (canonicalisation x algorithm) and l= snapshots per message.
inline constexpr std::size_t max_body_hashers = 4;
inline constexpr std::size_t max_length_snapshots = 8;
// Domain and selector lengths (a DNS name is at most 253 characters).
inline constexpr std::size_t max_domain_length = 253;
// Default clock skew accepted for t= in the future, seconds.
inline constexpr std::int64_t default_clock_skew = 300;
// Private key files read at config load.
inline constexpr std::size_t max_private_key_file = 64 * 1024;

}  // namespace vigil::auth::dkim::limits
