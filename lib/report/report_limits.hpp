#pragma once
// Every cap the DMARC report store puts on what senders control (house rule 5). A sender decides
// how many messages arrive and what its DMARC record says; the store, which usually shares a disk
// with the mail queue, must not grow with either beyond these.
#include <cstddef>
#include <cstdint>

namespace vigil::report::limits {

// rua= URIs kept per policy record, in the order published; the rest are ignored. RFC 7489 §6.2 has
// receivers send to at least two; real records name the domain's own address and one or two report
// processors. (The DMARC record parser keeps up to 32, which the store once kept in every row.)
inline constexpr std::size_t max_rua_uris = 5;
// A rua= URI longer than this is dropped, never cut (a cut address is another address). The DMARC
// record parser's own cap, repeated so the store holds whatever its caller does.
inline constexpr std::size_t max_rua_uri_bytes = 512;

// Rows (evaluations) are capped per reporting period: one UTC day, the period `vigil dmarc report`
// reports by default. When a day is full its oldest rows make room for new ones.
inline constexpr std::int64_t period_seconds = 24 * 60 * 60;
// [dmarc_reports] max_rows_per_day: the default, and the most the configuration accepts. A row takes
// about 200 bytes on disk with its index entries (measured: 1,002 rows of one sender with a 30-URI
// rua= record in 200,704 bytes; schema version 1 took 4.2 KB a row), more with several long DKIM
// domains. 50,000 is far more than a small server receives from domains that ask for reports, and
// bounds a day at about 10 MB, keep_days (31) days at about 300 MB.
inline constexpr std::uint64_t default_max_rows_per_day = 50'000;
inline constexpr std::uint64_t max_rows_per_day = 100'000'000;

}  // namespace vigil::report::limits
