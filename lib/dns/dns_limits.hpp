#pragma once
// Every cap the DNS layer puts on names, answers, TTLs and memory, in one place (house rule 5).
// Whatever a server sends, an Answer never holds more than these allow.
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace vigil::dns::limits {

// RFC 1035 §2.3.4: 255 octets on the wire, which is 253 characters of text without the trailing dot.
inline constexpr std::size_t max_name_length = 253;
inline constexpr std::size_t max_label_length = 63;
// A wire-format name (length octets included, root label included).
inline constexpr std::size_t max_wire_name_length = 255;

// Records kept per answer; further ones are dropped and the answer's detail says so. No mail check
// needs more (SPF caps MX and PTR processing at 10 names, RFC 7208 §4.6.4).
inline constexpr std::size_t max_records_per_answer = 100;
// Bytes of TXT character-strings per answer, all records together. A larger answer is malformed rather
// than cut, because a cut SPF or DKIM record would be a different record.
inline constexpr std::size_t max_txt_bytes = 64 * 1024;

// TTLs as reported in an Answer, in seconds. A day is the longest we trust anything; unbound is told
// the same so the two layers agree.
inline constexpr std::uint32_t min_ttl = 0;
inline constexpr std::uint32_t max_ttl = 24 * 60 * 60;
// NXDOMAIN/NODATA are cached for the SOA-derived TTL (RFC 2308 §5) but never longer than this.
inline constexpr std::uint32_t max_negative_ttl = 60 * 60;
// SERVFAIL and malformed answers are cached this briefly (RFC 9520 asks for at least 1 s, at most 5 min):
// enough to stop a burst of messages for one broken domain from hammering its servers, short enough
// that a repaired domain recovers before the MTA retries.
inline constexpr std::uint32_t failure_ttl = 5;
// A DNSSEC-bogus answer's own TTL is not trustworthy; unbound's default bogus-ttl is 60 s as well.
inline constexpr std::uint32_t bogus_ttl = 60;

// The shared cache's memory (answers and parsed objects together, with the cache's own overhead),
// before least-recently-used eviction. A TXT answer can hold 64 KB of strings (about 75 KB with its
// containers), so a count of entries alone bounds nothing: 100,000 such answers would be 7 GB.
// 32 MiB holds the working set of a small server (a typical answer with its overhead is 0.5-2 KB:
// 15,000 to 60,000 entries). Set with [dns] cache_mb.
inline constexpr std::size_t default_cache_bytes = std::size_t{32} << 20;
// The most [dns] cache_mb accepts (16 GiB).
inline constexpr std::size_t max_cache_mb = 16 * 1024;
// Entries in the shared cache (answers and parsed objects together) before LRU eviction; a second
// bound next to the byte budget, so small entries cannot grow the hash table without end.
inline constexpr std::size_t default_cache_entries = 100'000;
// An in-flight upstream lookup older than this is no longer joined by new identical lookups (a guard
// against an upstream that never completes; UnboundResolver itself always completes by query_timeout).
inline constexpr std::chrono::seconds max_in_flight_age{30};

// How long UnboundResolver lets one query run before completing it with Status::timeout. Stage budgets
// are usually shorter and are enforced by Pending::wait_until; this bounds the lookup itself.
inline constexpr std::chrono::milliseconds default_query_timeout{5000};
// The longest query timeout accepted in the configuration: far beyond any SMTP stage budget, and it
// bounds how long a lookup can hold memory in the resolver.
inline constexpr std::chrono::milliseconds max_query_timeout{60'000};

// Printable bytes of server-supplied text (e.g. unbound's why_bogus) kept in Answer::detail.
inline constexpr std::size_t max_detail_length = 256;

}  // namespace vigil::dns::limits
