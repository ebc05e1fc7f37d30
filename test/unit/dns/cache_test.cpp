// CachingResolver: TTLs on a fake clock, negative caching, what is never cached, LRU eviction,
// counters, coalescing of identical in-flight lookups, and parsed-object storage.
#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dns/cache.hpp"
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
                     300);
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
                     0);
    CHECK(cache.get_parsed<DkimKey>(name, RrType::txt, "dkim-key") == nullptr);
    cache.put_parsed(name, RrType::txt, "dkim-key", std::make_shared<const DkimKey>(DkimKey{"ed25519", 256}),
                     10 * limits::max_ttl);
    f.clock.advance(seconds(limits::max_ttl));
    CHECK(cache.get_parsed<DkimKey>(name, RrType::txt, "dkim-key") == nullptr);
}

TEST_CASE("dns cache: parsed objects share the entry bound with answers", "[dns]") {
    Fixture f;
    CacheOptions options;
    options.max_entries = 2;
    CachingResolver cache(f.fake, f.clock, options);
    cache.put_parsed("a.example", RrType::txt, "t", std::make_shared<const int>(1), 60);
    cache.put_parsed("b.example", RrType::txt, "t", std::make_shared<const int>(2), 60);
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
