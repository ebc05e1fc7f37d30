#pragma once
// The process-wide DNS cache: a Resolver in front of another Resolver, shared by every session.
//
// What it keeps, and for how long (all measured on Clock::monotonic()):
//   answer              the answer's TTL, at most CacheOptions::max_ttl
//   nxdomain, nodata    the SOA-derived TTL the upstream reported (RFC 2308), at most max_negative_ttl
//   servfail, malformed failure_ttl (a few seconds; 0 turns it off)
//   timeout             never: a timeout says nothing about the name, only about one attempt
//   DNSSEC bogus        at most bogus_ttl, whatever its status, since its TTL is not trustworthy
//   TTL 0               not stored (but still shared by lookups that arrive while it is in flight)
// Identical lookups (same lowercase name and type) that arrive while one is in flight join it instead
// of asking upstream again. Parsed objects (e.g. DKIM public keys, which are expensive to parse)
// live in the same table under (name, type, tag) with the same TTL and eviction rules.
//
// Memory is bounded by a byte budget (max_bytes) and, second, by a number of entries (max_entries),
// with least-recently-used eviction. Every entry is charged what it really holds: the answer's records
// and strings, its name, a parsed object as its producer sizes it, and the cache's own containers
// (hash node, LRU node, shared_ptr counts, malloc's block overhead; see heap_size.hpp), plus the hash
// table's bucket array. An entry bigger than the whole budget is not stored. Lookups in flight are
// not charged: they are bounded by the callers waiting for them, not by the cache.
#include <any>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <typeinfo>

#include "core/clock.hpp"
#include "dns/dns_limits.hpp"
#include "dns/resolver.hpp"

namespace vigil::dns {

struct CacheOptions {
    std::size_t max_bytes = limits::default_cache_bytes;
    std::size_t max_entries = limits::default_cache_entries;
    std::uint32_t max_ttl = limits::max_ttl;
    std::uint32_t max_negative_ttl = limits::max_negative_ttl;
    std::uint32_t failure_ttl = limits::failure_ttl;
    std::uint32_t bogus_ttl = limits::bogus_ttl;
    std::chrono::steady_clock::duration max_in_flight_age = limits::max_in_flight_age;
};

struct CacheStats {
    std::uint64_t hits = 0;         // lookups answered from the cache
    std::uint64_t misses = 0;       // lookups sent upstream
    std::uint64_t coalesced = 0;    // lookups that joined an identical lookup already in flight
    std::uint64_t evictions = 0;    // entries dropped to stay within max_bytes and max_entries
    std::uint64_t expirations = 0;  // entries found past their TTL and dropped
    std::uint64_t parsed_hits = 0;
    std::uint64_t parsed_misses = 0;  // absent, expired, or stored as a different type
    std::uint64_t too_large = 0;      // answers and objects not stored: bigger than max_bytes alone
    std::size_t entries = 0;          // answers and parsed objects currently held
    std::size_t bytes = 0;            // what they hold, bucket array included; never above max_bytes
    std::size_t max_bytes = 0;        // the budget
    std::size_t in_flight = 0;        // distinct upstream lookups not yet completed
};

// One line for the log: entries, bytes against the budget, hits, misses, evictions.
std::string describe(const CacheStats& stats);

class CachingResolver final : public Resolver {
  public:
    using Stats = CacheStats;

    // `clock` must outlive this object. `upstream` is shared because completions may arrive after the
    // caller has let go of it.
    CachingResolver(std::shared_ptr<Resolver> upstream, const core::Clock& clock, CacheOptions options = {});
    ~CachingResolver() override;
    CachingResolver(const CachingResolver&) = delete;
    CachingResolver& operator=(const CachingResolver&) = delete;

    // A cache hit is a ready Pending whose answer carries the remaining TTL. An invalid name is an
    // immediate Status::malformed answer and never reaches upstream. If upstream throws (a test fake
    // refusing an unexpected query), the exception propagates and nothing is left in flight.
    Pending lookup(std::string_view name, RrType type) override;

    // Parsed objects derived from an answer. `tag` names the kind of object ("dkim-key") so that two
    // parsers of the same TXT record never see each other's objects. get_parsed returns null when
    // absent, expired, or stored as another type. put_parsed with ttl 0 (or an invalid name) stores
    // nothing; the ttl is capped like an answer's. `bytes` is what `value` keeps alive: the object
    // with its shared_ptr counts (heap::make_shared_block<T>() when made by make_shared) and
    // everything it owns; the cache adds its own overhead.
    template <class T>
    std::shared_ptr<const T> get_parsed(std::string_view name, RrType type, std::string_view tag) const {
        std::any found = get_parsed_any(name, type, tag, typeid(std::shared_ptr<const T>));
        if (auto* p = std::any_cast<std::shared_ptr<const T>>(&found)) return *p;
        return nullptr;
    }
    template <class T>
    void put_parsed(std::string_view name, RrType type, std::string_view tag, std::shared_ptr<const T> value,
                    std::uint32_t ttl, std::size_t bytes) {
        if (value) put_parsed_any(name, type, tag, std::any(std::move(value)), ttl, bytes);
    }

    // Counters and the current size; cheap (one lock), for the log and a metrics endpoint.
    Stats stats() const;
    // A new budget (a reload): evicts at once down to it.
    void set_max_bytes(std::size_t max_bytes);
    // Drops every stored entry (in-flight lookups are unaffected). For tests and `vigil doctor`.
    void clear();

  private:
    std::any get_parsed_any(std::string_view name, RrType type, std::string_view tag,
                            const std::type_info& expected) const;
    void put_parsed_any(std::string_view name, RrType type, std::string_view tag, std::any value,
                        std::uint32_t ttl, std::size_t bytes);

    struct Impl;
    // Shared with completion callbacks, which may run on the upstream's thread after this object is gone.
    std::shared_ptr<Impl> impl_;
};

// The TTL the cache keeps `answer` for under `options` (0: not stored). Exposed for tests and docs.
std::uint32_t cache_ttl(const Answer& answer, const CacheOptions& options);

// What a stored answer holds (the make_shared block, records, strings), without the cache's own
// per-entry overhead. Exposed for tests.
std::size_t answer_bytes(const Answer& answer);

}  // namespace vigil::dns
