#include "dns/cache.hpp"

#include <algorithm>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "dns/heap_size.hpp"

namespace vigil::dns {

namespace {

// Answers use an empty tag and parsed == false; parsed objects always have parsed == true, so the two
// kinds never collide even if a caller passes an empty tag.
struct Key {
    std::string name;
    RrType type;
    std::string tag;
    bool parsed;
    friend bool operator==(const Key&, const Key&) = default;
};

struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept {
        std::size_t h = std::hash<std::string>{}(k.name);
        h ^= std::hash<std::string>{}(k.tag) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
        h ^= (static_cast<std::size_t>(k.type) << 1) | (k.parsed ? 1u : 0u);
        return h;
    }
};

using TimePoint = std::chrono::steady_clock::time_point;

std::uint32_t remaining_seconds(TimePoint expires, TimePoint now) {
    if (expires <= now) return 0;
    auto s = std::chrono::duration_cast<std::chrono::seconds>(expires - now).count();
    return static_cast<std::uint32_t>(std::min<long long>(s, limits::max_ttl));
}

std::size_t key_bytes(const Key& k) {
    return heap::of(k.name) + heap::of(k.tag);
}

}  // namespace

std::size_t answer_bytes(const Answer& a) {
    std::size_t n = heap::make_shared_block<Answer>() + heap::of(a.detail) + heap::buffer_of(a.records) +
                    heap::buffer_of(a.signatures);
    for (const auto& r : a.records) {
        n += heap::of(r.name) + heap::of(r.target) + heap::buffer_of(r.txt);
        for (const auto& t : r.txt) n += heap::of(t);
    }
    return n;
}

std::string describe(const CacheStats& s) {
    const std::uint64_t asked = s.hits + s.misses;
    return fmt::format(
        "DNS cache: {} entries, {:.1f} of {:.1f} MiB, {} hits, {} misses ({:.1f} % hits), {} evictions, {} "
        "too "
        "large to keep, {} expired",
        s.entries, static_cast<double>(s.bytes) / (1 << 20), static_cast<double>(s.max_bytes) / (1 << 20),
        s.hits, s.misses, asked ? 100.0 * static_cast<double>(s.hits) / static_cast<double>(asked) : 0.0,
        s.evictions, s.too_large, s.expirations);
}

std::uint32_t cache_ttl(const Answer& answer, const CacheOptions& options) {
    std::uint32_t ttl = 0;
    switch (answer.status) {
        case Status::answer:
            ttl = std::min(answer.ttl, options.max_ttl);
            break;
        case Status::nxdomain:
        case Status::nodata:
            ttl = std::min({answer.ttl, options.max_negative_ttl, options.max_ttl});
            break;
        case Status::servfail:
        case Status::malformed:
            ttl = options.failure_ttl;
            break;
        case Status::timeout:
            ttl = 0;
            break;
    }
    if (answer.dnssec == Dnssec::bogus) ttl = std::min(ttl, options.bogus_ttl);
    return ttl;
}

struct CachingResolver::Impl {
    struct Entry {
        std::shared_ptr<const Answer> answer;  // DNS answers
        std::any parsed;                       // parsed objects
        TimePoint expires;
        std::list<const Key*>::iterator lru;
        std::size_t bytes = 0;  // charged against the budget
    };
    using Map = std::unordered_map<Key, Entry, KeyHash>;
    // Per entry, whatever it holds: libstdc++'s hash node (the next pointer and the value; the hash is
    // not stored, as KeyHash is noexcept and not marked slow) and the LRU list node (two links and the
    // key pointer).
    static constexpr std::size_t node_bytes = heap::block(sizeof(void*) + sizeof(Map::value_type));
    static constexpr std::size_t lru_node_bytes = heap::block(2 * sizeof(void*) + sizeof(const Key*));
    // A parsed object sits in std::any as a shared_ptr, too big for any's inline buffer.
    static constexpr std::size_t any_bytes = heap::block(sizeof(std::shared_ptr<const int>));
    struct InFlight {
        Promise promise;
        std::uint64_t id;
        TimePoint started;
    };

    Impl(std::shared_ptr<Resolver> up, const core::Clock& c, CacheOptions o)
        : upstream(std::move(up)), clock(c), options(o), max_bytes(o.max_bytes) {}

    std::shared_ptr<Resolver> upstream;
    const core::Clock& clock;
    const CacheOptions options;

    mutable std::mutex mutex;
    // Most recently used at the front. The list points at keys owned by `entries` (node-based, so the
    // pointers stay valid until the entry is erased).
    mutable std::list<const Key*> lru;
    mutable Map entries;
    mutable std::size_t entry_bytes = 0;  // the sum of Entry::bytes
    std::size_t max_bytes;
    std::unordered_map<Key, InFlight, KeyHash> in_flight;
    std::uint64_t next_id = 1;
    bool closed = false;  // set when the CachingResolver is destroyed; late completions store nothing
    mutable CacheStats stats;

    // Under `mutex`. Everything the cache holds: its entries and the hash table's bucket array (which
    // never shrinks; a single bucket lives inside the table itself).
    std::size_t bytes() const {
        std::size_t buckets = entries.bucket_count();
        return entry_bytes + (buckets > 1 ? heap::block(buckets * sizeof(void*)) : 0);
    }

    // Under `mutex`.
    void erase(Map::iterator it) const {
        entry_bytes -= it->second.bytes;
        lru.erase(it->second.lru);
        entries.erase(it);
    }

    // Under `mutex`. Drops the least recently used entries until within both bounds.
    void evict() {
        while (!lru.empty() && (bytes() > max_bytes || entries.size() > options.max_entries)) {
            erase(entries.find(*lru.back()));
            ++stats.evictions;
        }
    }

    // Under `mutex`. The entry for `key` if present and fresh (then marked most recently used); an
    // expired entry is erased.
    Entry* find_fresh(const Key& key, TimePoint now) const {
        auto it = entries.find(key);
        if (it == entries.end()) return nullptr;
        if (it->second.expires <= now) {
            erase(it);
            ++stats.expirations;
            return nullptr;
        }
        lru.splice(lru.begin(), lru, it->second.lru);
        return &it->second;
    }

    // Under `mutex`. Inserts or replaces, then evicts from the cold end until within the bounds.
    // `object_bytes`: what the answer or parsed object holds.
    void store(Key key, std::shared_ptr<const Answer> answer, std::any parsed, std::size_t object_bytes,
               std::uint32_t ttl, TimePoint now) {
        if (ttl == 0 || options.max_entries == 0) return;
        const std::size_t fixed = node_bytes + lru_node_bytes + object_bytes;
        auto it = entries.find(key);
        if (fixed + key_bytes(key) > max_bytes) {
            // Whatever an older entry said is outdated now, so it goes too.
            if (it != entries.end()) erase(it);
            ++stats.too_large;
            return;
        }
        auto expires = now + std::chrono::seconds(ttl);
        if (it != entries.end()) {
            entry_bytes -= it->second.bytes;
            it->second.answer = std::move(answer);
            it->second.parsed = std::move(parsed);
            it->second.expires = expires;
            it->second.bytes = fixed + key_bytes(it->first);
            entry_bytes += it->second.bytes;
            lru.splice(lru.begin(), lru, it->second.lru);
        } else {
            auto [pos, inserted] =
                entries.emplace(std::move(key), Entry{std::move(answer), std::move(parsed), expires, {}, 0});
            lru.push_front(&pos->first);
            pos->second.lru = lru.begin();
            pos->second.bytes = fixed + key_bytes(pos->first);
            entry_bytes += pos->second.bytes;
        }
        evict();
    }

    // Runs on whichever thread completed the upstream lookup.
    void finish(const Key& key, std::uint64_t id, const Answer& answer) {
        // The copy and its size outside the lock; nothing at all for what is not kept.
        const std::uint32_t ttl = cache_ttl(answer, options);
        std::shared_ptr<const Answer> copy;
        std::size_t size = 0;
        if (ttl != 0) {
            copy = std::make_shared<const Answer>(answer);
            size = answer_bytes(*copy);
        }
        std::lock_guard lock(mutex);
        auto it = in_flight.find(key);
        // Only the lookup that owns the in-flight slot clears it; a stale one that was superseded
        // (see max_in_flight_age) must not remove its successor.
        if (it != in_flight.end() && it->second.id == id) in_flight.erase(it);
        if (closed || !copy) return;
        store(key, std::move(copy), {}, size, ttl, clock.monotonic());
    }
};

CachingResolver::CachingResolver(std::shared_ptr<Resolver> upstream, const core::Clock& clock,
                                 CacheOptions options)
    : impl_(std::make_shared<Impl>(std::move(upstream), clock, options)) {}

CachingResolver::~CachingResolver() {
    {
        std::lock_guard lock(impl_->mutex);
        impl_->closed = true;
    }
    // Release the upstream here, on the owner's thread: if a completion callback held the last
    // reference, the upstream would be destroyed on its own I/O thread.
    impl_->upstream.reset();
}

Pending CachingResolver::lookup(std::string_view raw_name, RrType type) {
    QueryName q = normalize_query_name(raw_name);
    if (!q.ok()) return Pending::of(Answer::failure(Status::malformed, q.error));
    if (!is_known_type(type))
        return Pending::of(Answer::failure(Status::malformed, "unsupported query type"));

    Key key{std::move(q.name), type, {}, false};
    std::optional<Promise> made;  // only for a miss: a hit costs no shared state of its own
    std::uint64_t id = 0;
    {
        std::unique_lock lock(impl_->mutex);
        const TimePoint now = impl_->clock.monotonic();
        if (const auto* entry = impl_->find_fresh(key, now)) {
            ++impl_->stats.hits;
            std::shared_ptr<const Answer> cached = entry->answer;
            const std::uint32_t left = remaining_seconds(entry->expires, now);
            lock.unlock();
            Answer a = *cached;
            a.ttl = std::min(a.ttl, left);
            return Pending::of(std::move(a));
        }
        if (auto it = impl_->in_flight.find(key);
            it != impl_->in_flight.end() && now - it->second.started < impl_->options.max_in_flight_age) {
            ++impl_->stats.coalesced;
            return it->second.promise.pending();
        }
        ++impl_->stats.misses;
        id = impl_->next_id++;
        made.emplace();
        impl_->in_flight.insert_or_assign(key, Impl::InFlight{*made, id, now});
    }
    const Promise& promise = *made;

    // Not under the lock: the upstream may answer synchronously and run our callback right here.
    std::optional<Pending> upstream;
    try {
        upstream.emplace(impl_->upstream->lookup(key.name, type));
    } catch (...) {
        {
            std::lock_guard lock(impl_->mutex);
            auto it = impl_->in_flight.find(key);
            if (it != impl_->in_flight.end() && it->second.id == id) impl_->in_flight.erase(it);
        }
        // Anyone who joined meanwhile gets a value, not a hang.
        promise.complete(Answer::failure(Status::servfail, "upstream resolver threw"));
        throw;
    }
    std::weak_ptr<Impl> weak = impl_;
    upstream->on_ready([weak, key = std::move(key), id, promise](const Answer& answer) {
        if (auto self = weak.lock()) self->finish(key, id, answer);
        promise.complete(answer);
    });
    return promise.pending();
}

std::any CachingResolver::get_parsed_any(std::string_view name, RrType type, std::string_view tag,
                                         const std::type_info& expected) const {
    QueryName q = normalize_query_name(name);
    std::lock_guard lock(impl_->mutex);
    if (!q.ok()) {
        ++impl_->stats.parsed_misses;
        return {};
    }
    const Key key{std::move(q.name), type, std::string(tag), true};
    const auto* entry = impl_->find_fresh(key, impl_->clock.monotonic());
    if (entry == nullptr || entry->parsed.type() != expected) {
        ++impl_->stats.parsed_misses;
        return {};
    }
    ++impl_->stats.parsed_hits;
    return entry->parsed;
}

void CachingResolver::put_parsed_any(std::string_view name, RrType type, std::string_view tag, std::any value,
                                     std::uint32_t ttl, std::size_t bytes) {
    QueryName q = normalize_query_name(name);
    if (!q.ok()) return;
    std::lock_guard lock(impl_->mutex);
    impl_->store(Key{std::move(q.name), type, std::string(tag), true}, nullptr, std::move(value),
                 Impl::any_bytes + bytes, std::min(ttl, impl_->options.max_ttl), impl_->clock.monotonic());
}

CachingResolver::Stats CachingResolver::stats() const {
    std::lock_guard lock(impl_->mutex);
    Stats s = impl_->stats;
    s.entries = impl_->entries.size();
    s.bytes = impl_->bytes();
    s.max_bytes = impl_->max_bytes;
    s.in_flight = impl_->in_flight.size();
    return s;
}

void CachingResolver::set_max_bytes(std::size_t max_bytes) {
    std::lock_guard lock(impl_->mutex);
    impl_->max_bytes = max_bytes;
    impl_->evict();
}

void CachingResolver::clear() {
    std::lock_guard lock(impl_->mutex);
    impl_->entries.clear();
    impl_->lru.clear();
    impl_->entry_bytes = 0;
}

}  // namespace vigil::dns
