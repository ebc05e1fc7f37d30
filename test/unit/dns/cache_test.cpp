// CachingResolver: TTLs on a fake clock, negative caching, what is never cached, LRU eviction by
// entries and by bytes, the byte accounting (held against mallinfo2()), counters, coalescing of
// identical in-flight lookups, and parsed-object storage.
#include <malloc.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dns/cache.hpp"
#include "dns/heap_size.hpp"
#include "fakes.hpp"
#include "fakes/fake_resolver.hpp"

using namespace vigil::dns;
using std::chrono::seconds;
using std::chrono::steady_clock;

namespace {

Answer now_answer(const Pending& p) {
    return p.wait_until(steady_clock::now());
}

struct Fixture {
    vigil::test::FakeClock clock;
    std::shared_ptr<FakeResolver> fake = std::make_shared<FakeResolver>();
};

}  // namespace

TEST_CASE("dns cache: answers are reused until their TTL runs out", "[dns]") {
    Fixture f;
    CachingResolver cache(f.fake, f.clock);
    f.fake->set_records("mx.example", RrType::a, {fake::address("mx.example", "192.0.2.1")}, 300);

    Answer first = now_answer(cache.lookup("MX.Example.", RrType::a));
    CHECK(first.status == Status::answer);
    CHECK(first.ttl == 300);
    CHECK(f.fake->count("mx.example", RrType::a) == 1);

    f.clock.advance(seconds(100));
    Answer second = now_answer(cache.lookup("mx.example", RrType::a));
    CHECK(second.status == Status::answer);
    CHECK(second.ttl == 200);  // the remaining TTL, not the original
    REQUIRE(second.records.size() == 1);
    CHECK(second.records[0].address->to_string() == "192.0.2.1");
    CHECK(f.fake->count("mx.example", RrType::a) == 1);

    f.clock.advance(seconds(200));  // exactly at expiry: gone
    now_answer(cache.lookup("mx.example", RrType::a));
    CHECK(f.fake->count("mx.example", RrType::a) == 2);

    auto s = cache.stats();
    CHECK(s.hits == 1);
    CHECK(s.misses == 2);
    CHECK(s.expirations == 1);
    CHECK(s.entries == 1);
    CHECK(s.in_flight == 0);
}

TEST_CASE("dns cache: type and name (case-insensitively) form the key", "[dns]") {
    Fixture f;
    CachingResolver cache(f.fake, f.clock);
    f.fake->set_records("example.com", RrType::a, {fake::address("example.com", "192.0.2.1")});
    f.fake->set_records("example.com", RrType::aaaa, {fake::address("example.com", "2001:db8::1")});
    now_answer(cache.lookup("example.com", RrType::a));
    now_answer(cache.lookup("EXAMPLE.com", RrType::a));
    now_answer(cache.lookup("example.com", RrType::aaaa));
    CHECK(f.fake->count("example.com", RrType::a) == 1);
    CHECK(f.fake->count("example.com", RrType::aaaa) == 1);
}

TEST_CASE("dns cache: NXDOMAIN and NODATA are cached for their negative TTL - capped", "[dns]") {
    Fixture f;
    CacheOptions options;
    options.max_negative_ttl = 600;
    CachingResolver cache(f.fake, f.clock, options);
    f.fake->set_status("gone.example", RrType::a, Status::nxdomain, 120);
    f.fake->set_status("nomx.example", RrType::mx, Status::nodata, 86400);  // SOA minimum of a day

    CHECK(now_answer(cache.lookup("gone.example", RrType::a)).status == Status::nxdomain);
    Answer nodata = now_answer(cache.lookup("nomx.example", RrType::mx));
    CHECK(nodata.status == Status::nodata);

    f.clock.advance(seconds(119));
    CHECK(now_answer(cache.lookup("gone.example", RrType::a)).status == Status::nxdomain);
    CHECK(f.fake->count("gone.example", RrType::a) == 1);
    f.clock.advance(seconds(1));
    now_answer(cache.lookup("gone.example", RrType::a));
    CHECK(f.fake->count("gone.example", RrType::a) == 2);

    // Capped at max_negative_ttl (600 s), not the day the server asked for.
    f.clock.advance(seconds(479));
    Answer still = now_answer(cache.lookup("nomx.example", RrType::mx));
    CHECK(still.status == Status::nodata);  // nodata stays nodata, never nxdomain
    CHECK(still.ttl == 1);
    CHECK(f.fake->count("nomx.example", RrType::mx) == 1);
    f.clock.advance(seconds(1));
    now_answer(cache.lookup("nomx.example", RrType::mx));
    CHECK(f.fake->count("nomx.example", RrType::mx) == 2);
}

TEST_CASE("dns cache: servfail and malformed are kept only briefly - timeouts never", "[dns]") {
    Fixture f;
    CachingResolver cache(f.fake, f.clock);  // failure_ttl = limits::failure_ttl
    f.fake->set_status("broken.example", RrType::txt, Status::servfail);
    f.fake->set_status("garbled.example", RrType::txt, Status::malformed);
    f.fake->set_status("slow.example", RrType::txt, Status::timeout);

    for (int i = 0; i < 3; ++i) {
        CHECK(now_answer(cache.lookup("broken.example", RrType::txt)).status == Status::servfail);
        CHECK(now_answer(cache.lookup("garbled.example", RrType::txt)).status == Status::malformed);
        CHECK(now_answer(cache.lookup("slow.example", RrType::txt)).status == Status::timeout);
    }
    CHECK(f.fake->count("broken.example", RrType::txt) == 1);
    CHECK(f.fake->count("garbled.example", RrType::txt) == 1);
    CHECK(f.fake->count("slow.example", RrType::txt) == 3);

    f.clock.advance(seconds(limits::failure_ttl));
    now_answer(cache.lookup("broken.example", RrType::txt));
    CHECK(f.fake->count("broken.example", RrType::txt) == 2);
}

TEST_CASE("dns cache: TTL 0 is not stored - long TTLs and bogus answers are capped", "[dns]") {
    Fixture f;
    CachingResolver cache(f.fake, f.clock);
    f.fake->set_records("zero.example", RrType::a, {fake::address("zero.example", "192.0.2.1")}, 0);
    now_answer(cache.lookup("zero.example", RrType::a));
    now_answer(cache.lookup("zero.example", RrType::a));
    CHECK(f.fake->count("zero.example", RrType::a) == 2);

    Answer bogus;
    bogus.status = Status::answer;
    bogus.dnssec = Dnssec::bogus;
    bogus.ttl = 3600;
    bogus.records = {fake::txt("bogus.example", {"v=spf1 -all"})};
    CHECK(cache_ttl(bogus, CacheOptions{}) == limits::bogus_ttl);

    Answer huge;
    huge.status = Status::answer;
    huge.ttl = 0xffffffffu;
    CHECK(cache_ttl(huge, CacheOptions{}) == limits::max_ttl);
    Answer timeout = Answer::failure(Status::timeout, "");
    timeout.ttl = 300;
    CHECK(cache_ttl(timeout, CacheOptions{}) == 0);
}

TEST_CASE("dns cache: the least recently used entry is evicted at the bound", "[dns]") {
    Fixture f;
    CacheOptions options;
    options.max_entries = 3;
    CachingResolver cache(f.fake, f.clock, options);
    for (const char* n : {"a.example", "b.example", "c.example", "d.example"}) {
        f.fake->set_records(n, RrType::a, {fake::address(n, "192.0.2.1")});
    }
    now_answer(cache.lookup("a.example", RrType::a));
    now_answer(cache.lookup("b.example", RrType::a));
    now_answer(cache.lookup("c.example", RrType::a));
    now_answer(cache.lookup("a.example", RrType::a));  // a is now the most recent; b the least
    now_answer(cache.lookup("d.example", RrType::a));  // evicts b

    auto s = cache.stats();
    CHECK(s.entries == 3);
    CHECK(s.evictions == 1);

    now_answer(cache.lookup("a.example", RrType::a));
    now_answer(cache.lookup("c.example", RrType::a));
    now_answer(cache.lookup("d.example", RrType::a));
    CHECK(f.fake->count("a.example", RrType::a) == 1);
    CHECK(f.fake->count("c.example", RrType::a) == 1);
    CHECK(f.fake->count("d.example", RrType::a) == 1);
    now_answer(cache.lookup("b.example", RrType::a));
    CHECK(f.fake->count("b.example", RrType::a) == 2);
    CHECK(cache.stats().evictions == 2);
    CHECK(cache.stats().entries == 3);
}

TEST_CASE("dns cache: identical lookups in flight share one upstream query", "[dns]") {
    Fixture f;
    CachingResolver cache(f.fake, f.clock);
    f.fake->set_records("slow.example", RrType::txt, {fake::txt("slow.example", {"hello"})}, 60);
    f.fake->hold("slow.example", RrType::txt);

    std::vector<Pending> waiting;
    for (int i = 0; i < 5; ++i) waiting.push_back(cache.lookup("Slow.Example", RrType::txt));
    CHECK(f.fake->count("slow.example", RrType::txt) == 1);
    auto during = cache.stats();
    CHECK(during.misses == 1);
    CHECK(during.coalesced == 4);
    CHECK(during.in_flight == 1);
    for (const auto& p : waiting) CHECK_FALSE(p.ready());

    CHECK(f.fake->release("slow.example", RrType::txt) == 1);
    for (const auto& p : waiting) {
        Answer a = now_answer(p);
        CHECK(a.status == Status::answer);
        REQUIRE(a.records.size() == 1);
        CHECK(a.records[0].txt_joined() == "hello");
    }
    CHECK(cache.stats().in_flight == 0);
    // ...and the result was stored.
    CHECK(now_answer(cache.lookup("slow.example", RrType::txt)).status == Status::answer);
    CHECK(f.fake->count("slow.example", RrType::txt) == 1);
    CHECK(cache.stats().hits == 1);
}

TEST_CASE("dns cache: a caller's deadline does not stop the cache from being filled", "[dns]") {
    Fixture f;
    CachingResolver cache(f.fake, f.clock);
    f.fake->set_records("late.example", RrType::a, {fake::address("late.example", "192.0.2.7")}, 60);
    f.fake->hold("late.example", RrType::a);

    Pending p = cache.lookup("late.example", RrType::a);
    CHECK(p.wait_until(steady_clock::now() + std::chrono::milliseconds(20)).status == Status::timeout);
    f.fake->release("late.example", RrType::a);
    Answer later = now_answer(cache.lookup("late.example", RrType::a));
    CHECK(later.status == Status::answer);
    CHECK(f.fake->count("late.example", RrType::a) == 1);
}

TEST_CASE("dns cache: coalescing works across threads", "[dns]") {
    Fixture f;
    CachingResolver cache(f.fake, f.clock);
    f.fake->set_records("shared.example", RrType::a, {fake::address("shared.example", "192.0.2.9")}, 60);
    f.fake->hold("shared.example", RrType::a);
    std::vector<std::thread> threads;
    std::vector<Answer> answers(8);
    for (std::size_t i = 0; i < answers.size(); ++i) {
        threads.emplace_back([&, i] {
            answers[i] =
                cache.lookup("shared.example", RrType::a).wait_until(steady_clock::now() + seconds(10));
        });
    }
    // Wait until every thread has joined the lookup (or found it cached), then answer.
    while (cache.stats().misses + cache.stats().coalesced < answers.size()) std::this_thread::yield();
    f.fake->release("shared.example", RrType::a);
    for (auto& t : threads) t.join();
    for (const auto& a : answers) CHECK(a.status == Status::answer);
    CHECK(f.fake->count("shared.example", RrType::a) == 1);
}

TEST_CASE("dns cache: an in-flight lookup older than the limit is not joined", "[dns]") {
    Fixture f;
    CacheOptions options;
    options.max_in_flight_age = seconds(10);
    CachingResolver cache(f.fake, f.clock, options);
    f.fake->never_answer("dead.example", RrType::a);
    Pending first = cache.lookup("dead.example", RrType::a);
    cache.lookup("dead.example", RrType::a);
    CHECK(f.fake->count("dead.example", RrType::a) == 1);
    f.clock.advance(seconds(10));
    cache.lookup("dead.example", RrType::a);
    CHECK(f.fake->count("dead.example", RrType::a) == 2);
    CHECK_FALSE(first.ready());
}

TEST_CASE("dns cache: invalid names never reach upstream", "[dns]") {
    Fixture f;
    CachingResolver cache(f.fake, f.clock);
    Answer a = now_answer(cache.lookup("bad..example", RrType::a));
    CHECK(a.status == Status::malformed);
    CHECK(now_answer(cache.lookup(std::string(300, 'a'), RrType::a)).status == Status::malformed);
    CHECK(now_answer(cache.lookup("ok.example", static_cast<RrType>(99))).status == Status::malformed);
    CHECK(f.fake->queries().empty());
    CHECK(cache.stats().misses == 0);
}

TEST_CASE("dns cache: an upstream that throws leaves nothing in flight", "[dns]") {
    Fixture f;
    CachingResolver cache(f.fake, f.clock);
    CHECK_THROWS_AS(cache.lookup("unprogrammed.example", RrType::a), std::logic_error);
    CHECK(cache.stats().in_flight == 0);
    REQUIRE(f.fake->unexpected().size() == 1);
    CHECK(f.fake->unexpected()[0].name == "unprogrammed.example");
    // The next attempt asks (and fails) again rather than hanging on a dead in-flight entry.
    CHECK_THROWS_AS(cache.lookup("unprogrammed.example", RrType::a), std::logic_error);
}

namespace {
struct DkimKey {
    std::string algorithm;
    int bits;
};
struct OtherThing {
    int x;
};
}  // namespace

TEST_CASE("dns cache: parsed objects are stored by name - type and tag with a TTL", "[dns]") {
    Fixture f;
    CachingResolver cache(f.fake, f.clock);
    const char* name = "sel._domainkey.example.com";
    CHECK(cache.get_parsed<DkimKey>(name, RrType::txt, "dkim-key") == nullptr);

    cache.put_parsed(name, RrType::txt, "dkim-key", std::make_shared<const DkimKey>(DkimKey{"rsa", 2048}),
                     300, 100);
    auto key = cache.get_parsed<DkimKey>("SEL._domainkey.Example.com.", RrType::txt, "dkim-key");
    REQUIRE(key != nullptr);
    CHECK(key->algorithm == "rsa");
    CHECK(key->bits == 2048);

    // Another tag, another type or another C++ type does not see it.
    CHECK(cache.get_parsed<DkimKey>(name, RrType::txt, "other") == nullptr);
    CHECK(cache.get_parsed<DkimKey>(name, RrType::a, "dkim-key") == nullptr);
    CHECK(cache.get_parsed<OtherThing>(name, RrType::txt, "dkim-key") == nullptr);
    // Nor does an answer lookup of the same name: that goes upstream.
    f.fake->set_status(name, RrType::txt, Status::nxdomain);
    now_answer(cache.lookup(name, RrType::txt));
    CHECK(f.fake->count(name, RrType::txt) == 1);

    auto s = cache.stats();
    CHECK(s.parsed_hits == 1);
    CHECK(s.parsed_misses == 4);

    f.clock.advance(seconds(300));
    CHECK(cache.get_parsed<DkimKey>(name, RrType::txt, "dkim-key") == nullptr);

    // TTL 0 stores nothing; a long TTL is capped like an answer's.
    cache.put_parsed(name, RrType::txt, "dkim-key", std::make_shared<const DkimKey>(DkimKey{"ed25519", 256}),
                     0, 100);
    CHECK(cache.get_parsed<DkimKey>(name, RrType::txt, "dkim-key") == nullptr);
    cache.put_parsed(name, RrType::txt, "dkim-key", std::make_shared<const DkimKey>(DkimKey{"ed25519", 256}),
                     10 * limits::max_ttl, 100);
    f.clock.advance(seconds(limits::max_ttl));
    CHECK(cache.get_parsed<DkimKey>(name, RrType::txt, "dkim-key") == nullptr);
}

TEST_CASE("dns cache: parsed objects share the entry bound with answers", "[dns]") {
    Fixture f;
    CacheOptions options;
    options.max_entries = 2;
    CachingResolver cache(f.fake, f.clock, options);
    cache.put_parsed("a.example", RrType::txt, "t", std::make_shared<const int>(1), 60, 32);
    cache.put_parsed("b.example", RrType::txt, "t", std::make_shared<const int>(2), 60, 32);
    f.fake->set_records("c.example", RrType::a, {fake::address("c.example", "192.0.2.3")});
    now_answer(cache.lookup("c.example", RrType::a));
    CHECK(cache.stats().entries == 2);
    CHECK(cache.stats().evictions == 1);
    CHECK(cache.get_parsed<int>("a.example", RrType::txt, "t") == nullptr);
    REQUIRE(cache.get_parsed<int>("b.example", RrType::txt, "t") != nullptr);
    CHECK(*cache.get_parsed<int>("b.example", RrType::txt, "t") == 2);
}

TEST_CASE("dns cache: a late completion after the cache is gone still reaches the waiter", "[dns]") {
    vigil::test::FakeClock clock;
    auto fake = std::make_shared<FakeResolver>();
    fake->set_records("late.example", RrType::a, {fake::address("late.example", "192.0.2.1")});
    fake->hold("late.example", RrType::a);
    std::optional<Pending> p;
    {
        CachingResolver cache(fake, clock);
        p.emplace(cache.lookup("late.example", RrType::a));
    }
    fake->release("late.example", RrType::a);
    CHECK(now_answer(*p).status == Status::answer);
}

// ---- The byte budget: eviction, and accounting that matches what the heap really gives back ----

namespace {

// A TXT answer of `kb` KiB in 250-byte character-strings: the shape of the answers that made the
// cache grow without a byte bound (a wildcard TXT of 60 KB, one distinct name per message).
std::vector<Record> big_txt(const std::string& name, std::size_t kb) {
    std::vector<std::string> strings;
    for (std::size_t n = 0; n < kb * 1024; n += 250) strings.push_back(std::string(250, 'x'));
    return {fake::txt(name, std::move(strings))};
}

// Bytes malloc has handed out and not got back (arenas and mmapped blocks). Meaningless under a
// sanitizer, which brings its own allocator.
#if defined(__SANITIZE_ADDRESS__)
#define VIGIL_OWN_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VIGIL_OWN_MALLOC 1
#endif
#endif
#ifndef VIGIL_OWN_MALLOC
std::size_t heap_in_use() {
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}
#endif

}  // namespace

TEST_CASE("dns cache: the byte budget evicts least recently used entries and is never exceeded", "[dns]") {
    Fixture f;
    Answer sample;
    sample.status = Status::answer;
    sample.records = big_txt("x.example", 8);
    const std::size_t one = answer_bytes(sample);
    CacheOptions options;
    options.max_bytes = 3 * one + 4096;  // three 8 KiB answers with their overhead, not four
    CachingResolver cache(f.fake, f.clock, options);
    const char* names[] = {"a.example", "b.example", "c.example", "d.example"};
    for (const char* n : names) f.fake->set_records(n, RrType::txt, big_txt(n, 8), 300);

    for (const char* n : {"a.example", "b.example", "c.example"}) {
        now_answer(cache.lookup(n, RrType::txt));
        CHECK(cache.stats().bytes <= options.max_bytes);
    }
    auto s = cache.stats();
    CHECK(s.entries == 3);
    CHECK(s.evictions == 0);
    CHECK(s.bytes > 3 * one);  // the answers plus the cache's own overhead
    CHECK(s.max_bytes == options.max_bytes);

    now_answer(cache.lookup("a.example", RrType::txt));  // a is now the most recent; b the least
    now_answer(cache.lookup("d.example", RrType::txt));  // evicts b, by bytes (the entry bound is far)
    s = cache.stats();
    CHECK(s.entries == 3);
    CHECK(s.evictions == 1);
    CHECK(s.bytes <= options.max_bytes);
    for (const char* n : {"a.example", "c.example", "d.example"}) now_answer(cache.lookup(n, RrType::txt));
    for (const char* n : {"a.example", "c.example", "d.example"}) CHECK(f.fake->count(n, RrType::txt) == 1);
    now_answer(cache.lookup("b.example", RrType::txt));
    CHECK(f.fake->count("b.example", RrType::txt) == 2);

    // Small answers are charged too: a thousand A records do not fit where three big TXT did.
    for (int i = 0; i < 1000; ++i) {
        auto n = "host" + std::to_string(i) + ".example";
        f.fake->set_records(n, RrType::a, {fake::address(n, "192.0.2.1")}, 300);
        now_answer(cache.lookup(n, RrType::a));
        REQUIRE(cache.stats().bytes <= options.max_bytes);
    }
    s = cache.stats();
    CHECK(s.entries < 200);
    CHECK(s.entries > 20);
    CHECK(s.bytes > options.max_bytes / 2);

    // Everything expired or cleared: nothing is charged but the (never shrinking) bucket array.
    cache.clear();
    CHECK(cache.stats().entries == 0);
    CHECK(cache.stats().bytes < 8 * 1024);
}

TEST_CASE("dns cache: an answer bigger than the whole budget is not kept - nor is what it replaces",
          "[dns]") {
    Fixture f;
    CacheOptions options;
    options.max_bytes = 16 * 1024;
    CachingResolver cache(f.fake, f.clock, options);
    f.fake->set_records("big.example", RrType::txt, big_txt("big.example", 60), 300);
    f.fake->set_records("small.example", RrType::a, {fake::address("small.example", "192.0.2.1")}, 300);
    now_answer(cache.lookup("small.example", RrType::a));
    CHECK(now_answer(cache.lookup("big.example", RrType::txt)).status == Status::answer);
    CHECK(now_answer(cache.lookup("big.example", RrType::txt)).status == Status::answer);
    CHECK(f.fake->count("big.example", RrType::txt) == 2);  // asked again: never stored
    auto s = cache.stats();
    CHECK(s.too_large == 2);
    CHECK(s.entries == 1);  // the small one was not evicted to make room for nothing
    CHECK(s.evictions == 0);

    // A stored object replaced by one too big to keep is dropped, not kept stale.
    cache.put_parsed("grows.example", RrType::txt, "t", std::make_shared<const int>(1), 60, 100);
    CHECK(cache.stats().entries == 2);
    cache.put_parsed("grows.example", RrType::txt, "t", std::make_shared<const int>(2), 60, 20 * 1024);
    CHECK(cache.get_parsed<int>("grows.example", RrType::txt, "t") == nullptr);
    CHECK(cache.stats().entries == 1);
    CHECK(cache.stats().too_large == 3);
}

TEST_CASE("dns cache: a smaller budget (a reload) evicts at once", "[dns]") {
    Fixture f;
    CachingResolver cache(f.fake, f.clock);
    CHECK(cache.stats().max_bytes == limits::default_cache_bytes);
    for (int i = 0; i < 20; ++i) {
        auto n = "t" + std::to_string(i) + ".example";
        f.fake->set_records(n, RrType::txt, big_txt(n, 4), 300);
        now_answer(cache.lookup(n, RrType::txt));
    }
    auto before = cache.stats();
    CHECK(before.entries == 20);
    cache.set_max_bytes(before.bytes / 2);
    auto after = cache.stats();
    CHECK(after.max_bytes == before.bytes / 2);
    CHECK(after.bytes <= after.max_bytes);
    CHECK(after.entries < 11);
    CHECK(after.evictions == 20 - after.entries);
    // The most recently used survived.
    now_answer(cache.lookup("t19.example", RrType::txt));
    CHECK(f.fake->count("t19.example", RrType::txt) == 1);
}

TEST_CASE("dns cache: parsed objects are charged what their producer says, plus the cache's overhead",
          "[dns]") {
    Fixture f;
    CacheOptions options;
    options.max_bytes = 64 * 1024;
    CachingResolver cache(f.fake, f.clock, options);
    cache.put_parsed("a.example", RrType::txt, "t", std::make_shared<const int>(1), 60, 1000);
    auto one = cache.stats().bytes;
    CHECK(one > 1000);
    CHECK(one < 1000 + 512);
    cache.put_parsed("b.example", RrType::txt, "t", std::make_shared<const int>(2), 60, 40 * 1024);
    CHECK(cache.stats().entries == 2);
    // 30 KiB more does not fit beside 41 KiB in 64 KiB: the least recently used (a) goes first.
    cache.get_parsed<int>("a.example", RrType::txt, "t");
    cache.put_parsed("c.example", RrType::txt, "t", std::make_shared<const int>(3), 60, 30 * 1024);
    CHECK(cache.stats().bytes <= options.max_bytes);
    CHECK(cache.get_parsed<int>("b.example", RrType::txt, "t") == nullptr);
    CHECK(cache.get_parsed<int>("a.example", RrType::txt, "t") != nullptr);
    CHECK(cache.get_parsed<int>("c.example", RrType::txt, "t") != nullptr);
    // Bigger than the budget on its own: not kept.
    cache.put_parsed("d.example", RrType::txt, "t", std::make_shared<const int>(4), 60, 65 * 1024);
    CHECK(cache.get_parsed<int>("d.example", RrType::txt, "t") == nullptr);
    CHECK(cache.stats().too_large == 1);
}

TEST_CASE("dns cache: the log line states entries, bytes against the budget, hits, misses, evictions",
          "[dns]") {
    CacheStats s;
    s.entries = 1234;
    s.bytes = 3 * (1 << 20) / 2;
    s.max_bytes = 32 << 20;
    s.hits = 900;
    s.misses = 100;
    s.evictions = 7;
    s.too_large = 2;
    s.expirations = 5;
    CHECK(describe(s) ==
          "DNS cache: 1234 entries, 1.5 of 32.0 MiB, 900 hits, 100 misses (90.0 % hits), 7 evictions, 2 too "
          "large to keep, 5 expired");
}

// The accounting is an estimate: held against what malloc really gives back when the cache goes.
TEST_CASE("dns cache: the byte count matches the heap the entries really hold", "[dns][memory]") {
#ifdef VIGIL_OWN_MALLOC
    WARN("skipped: mallinfo2() says nothing under a sanitizer's allocator");
#else
    Fixture f;
    // Answers of every shape, programmed before the first measurement.
    struct Programmed {
        std::string name;
        RrType type;
    };
    std::vector<Programmed> asked;
    for (int i = 0; i < 3000; ++i) {
        auto n = "h" + std::to_string(i) + ".some-longer-domain-name.example";
        switch (i % 5) {
            case 0:
                f.fake->set_records(n, RrType::a,
                                    {fake::address(n, "192.0.2.1"), fake::address(n, "192.0.2.2")});
                asked.push_back({n, RrType::a});
                break;
            case 1:
                f.fake->set_records(n, RrType::mx,
                                    {fake::mx(n, 10, "mx1.some-longer-domain-name.example"),
                                     fake::mx(n, 20, "mx2.some-longer-domain-name.example")});
                asked.push_back({n, RrType::mx});
                break;
            case 2:
                f.fake->set_records(n, RrType::txt, {fake::txt(n, {"v=spf1 ip4:192.0.2.0/24 -all"})});
                asked.push_back({n, RrType::txt});
                break;
            case 3:
                f.fake->set_records(n, RrType::txt, big_txt(n, 6));
                asked.push_back({n, RrType::txt});
                break;
            default:
                f.fake->set_status(n, RrType::a, Status::nxdomain, 300);
                asked.push_back({n, RrType::a});
                break;
        }
    }
    const std::size_t parsed_objects = 500;
    std::size_t stored_bytes = 0;
    std::size_t freed = 0;
    {
        CachingResolver cache(f.fake, f.clock);
        for (const auto& q : asked) now_answer(cache.lookup(q.name, q.type));
        // Parsed objects whose size is known exactly: a vector of 1,000 ints made by make_shared.
        for (std::size_t i = 0; i < parsed_objects; ++i) {
            auto v = std::make_shared<const std::vector<int> >(1000, 7);
            cache.put_parsed("p" + std::to_string(i) + ".example", RrType::txt, "t", std::move(v), 300,
                             heap::make_shared_block<std::vector<int> >() + heap::block(1000 * sizeof(int)));
        }
        auto s = cache.stats();
        REQUIRE(s.entries == asked.size() + parsed_objects);
        REQUIRE(s.evictions == 0);
        stored_bytes = s.bytes;
        std::size_t before = heap_in_use();
        cache.clear();
        std::size_t after = heap_in_use();
        freed = before - after;
        // clear() keeps the bucket array: what the entries held is everything else.
        auto buckets = cache.stats().bytes;
        stored_bytes -= buckets;
    }
    INFO("the cache counted " << stored_bytes << " bytes for its entries; clearing them gave back " << freed);
    // Within 5 %: malloc's per-thread caches keep a few freed blocks looking busy.
    CHECK(static_cast<double>(stored_bytes) >= 0.95 * static_cast<double>(freed));
    CHECK(static_cast<double>(stored_bytes) <= 1.05 * static_cast<double>(freed));
#endif
}
