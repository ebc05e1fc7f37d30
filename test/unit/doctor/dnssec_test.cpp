// check_dnssec through a resolver that does not validate (--dns): the zone's DNSKEY and the RRSIGs
// that come with it decide, against the fake clock.
#include <catch2/catch.hpp>

#include "doctor/checks.hpp"
#include "doctor_fixture.hpp"
#include "fakes.hpp"

using namespace vigil;
using namespace vigil::test::doctor;
using Catch::Matchers::Contains;

namespace {

constexpr std::int64_t day = 24 * 3600;

struct Zone {
    dns::FakeResolver f;
    test::FakeClock clock;
    doctor::Probe probe{f};
    Zone() { probe.clock = &clock; }

    std::int64_t now() const {
        return std::chrono::duration_cast<std::chrono::seconds>(clock.now().time_since_epoch()).count();
    }
    void soa(std::string_view name, dns::Status status = dns::Status::answer) {
        if (status != dns::Status::answer) return f.set_status(name, dns::RrType::soa, status);
        f.set(name, dns::RrType::soa, answer_of({dns::fake::ns(name, "ns.example")}));  // data unused
    }
    // A DNSKEY answer with one RRSIG valid from now+from to now+until (seconds, may be negative).
    void signed_keys(std::string_view name, std::int64_t from, std::int64_t until, std::uint8_t alg = 13) {
        dns::Record key;
        key.type = dns::RrType::dnskey;
        key.name = std::string(name);
        key.flags = 257;
        key.algorithm = alg;
        auto a = answer_of({key});
        a.signatures.push_back({alg, 12345, static_cast<std::uint32_t>(now() + from),
                                static_cast<std::uint32_t>(now() + until)});
        f.set(name, dns::RrType::dnskey, a);
    }
    Finding run(std::string_view domain = "example.test") {
        auto out = doctor::check_dnssec(probe, domain);
        REQUIRE(out.size() == 1);
        INFO(dump(out));
        CHECK(out[0].area == "dnssec");
        CHECK(out[0].subject == domain);
        return out[0];
    }
};

}  // namespace

TEST_CASE("DNSSEC without validation: no DNSKEY at the apex is an unsigned zone (warn, with the fix)",
          "[doctor][dnssec]") {
    Zone z;
    z.soa("example.test");
    z.f.set_status("example.test", dns::RrType::dnskey, dns::Status::nodata);
    auto r = z.run();
    CHECK(r.level == Level::warn);
    CHECK_THAT(r.reason, Contains("the zone is not signed (no DNSKEY)"));
    CHECK_THAT(r.fix, Contains("Sign the zone") && Contains("DS record at your registrar"));
    CHECK(z.f.was_queried("example.test", dns::RrType::dnskey));
}

TEST_CASE("DNSSEC without validation: signed with a current signature is ok, with the caveat",
          "[doctor][dnssec]") {
    Zone z;
    z.soa("example.test");
    z.signed_keys("example.test", -day, 20 * day);
    auto r = z.run();
    CHECK(r.level == Level::ok);
    CHECK_THAT(r.reason,
               Contains("the zone is signed (algorithm 13, key tag 12345, signatures valid until "));
    CHECK_THAT(r.reason, Contains("validation not checked: this resolver does not validate") &&
                             Contains("run without --dns or with a validating resolver to confirm"));
    CHECK(r.fix.empty());
}

TEST_CASE("DNSSEC without validation: lookup errors are cannot tell, never ok", "[doctor][dnssec]") {
    Zone z;
    z.soa("servfail.test");
    z.f.set_status("servfail.test", dns::RrType::dnskey, dns::Status::servfail);
    auto r = z.run("servfail.test");
    CHECK(r.level == Level::unknown);
    CHECK_THAT(r.reason, Contains("cannot tell: the DNSKEY lookup of servfail.test ended in servfail"));
    CHECK_THAT(r.fix, Contains("resolver works"));

    z.probe.timeout = std::chrono::milliseconds(50);
    z.soa("slow.test");
    z.f.never_answer("slow.test", dns::RrType::dnskey);
    r = z.run("slow.test");
    CHECK(r.level == Level::unknown);
    CHECK_THAT(r.reason, Contains("ended in timeout"));

    // The SOA itself failing stops before any DNSKEY lookup.
    z.soa("dead.test", dns::Status::timeout);
    r = z.run("dead.test");
    CHECK(r.level == Level::unknown);
    CHECK_THAT(r.reason, Contains("cannot tell: the SOA lookup ended in timeout"));
    CHECK_FALSE(z.f.was_queried("dead.test", dns::RrType::dnskey));
}

TEST_CASE("DNSSEC without validation: DNSKEY without RRSIG is cannot tell", "[doctor][dnssec]") {
    Zone z;
    z.soa("example.test");
    dns::Record key;
    key.type = dns::RrType::dnskey;
    key.name = "example.test";
    z.f.set("example.test", dns::RrType::dnskey, answer_of({key}));
    auto r = z.run();
    CHECK(r.level == Level::unknown);
    CHECK_THAT(r.reason, Contains("no RRSIG came with them"));
    CHECK_THAT(r.fix, Contains("without --dns"));
}

TEST_CASE("DNSSEC without validation: expired, expiring, not yet valid and SHA-1 signatures",
          "[doctor][dnssec]") {
    Zone z;
    z.soa("expired.test");
    z.signed_keys("expired.test", -30 * day, -day);
    auto r = z.run("expired.test");
    CHECK(r.level == Level::fail);
    CHECK_THAT(r.reason, Contains("signatures expired on") && Contains("SERVFAIL"));
    CHECK_THAT(r.fix, Contains("Re-sign the zone now"));

    z.soa("soon.test");
    z.signed_keys("soon.test", -day, day);
    r = z.run("soon.test");
    CHECK(r.level == Level::warn);
    CHECK_THAT(r.reason, Contains("expire in under 3 days"));

    z.soa("future.test");
    z.signed_keys("future.test", day, 30 * day);
    r = z.run("future.test");
    CHECK(r.level == Level::warn);
    CHECK_THAT(r.reason, Contains("not valid yet"));

    z.soa("sha1.test");
    z.signed_keys("sha1.test", -day, 30 * day, 7);
    r = z.run("sha1.test");
    CHECK(r.level == Level::warn);
    CHECK_THAT(r.reason, Contains("algorithm 7") && Contains("RFC 8624"));
}

TEST_CASE("DNSSEC without validation: the longest-lasting current signature counts, across 2^32 s",
          "[doctor][dnssec]") {
    Zone z;
    // Past 2106-02-07 the 32-bit RRSIG times have wrapped (RFC 4034 §3.1.5): serial arithmetic still
    // sees these as current.
    z.clock.advance(std::chrono::seconds((std::int64_t{1} << 32) - 1'700'000'000 - day));
    z.soa("example.test");
    z.signed_keys("example.test", -day, 10 * day);
    auto two = z.f.resolve("example.test", dns::RrType::dnskey, std::chrono::steady_clock::now());
    z.f.clear_queries();
    // An expired signature from an old key beside the current one does not matter.
    two.signatures.insert(two.signatures.begin(), {8, 1, static_cast<std::uint32_t>(z.now() - 40 * day),
                                                   static_cast<std::uint32_t>(z.now() - 10 * day)});
    z.f.set("example.test", dns::RrType::dnskey, two);
    auto r = z.run();
    CHECK(r.level == Level::ok);
    CHECK_THAT(r.reason, Contains("algorithm 13, key tag 12345") && Contains("until 2106-02-"));
}

TEST_CASE("DNSSEC without validation: a name inside a parent's zone is judged by that zone",
          "[doctor][dnssec]") {
    Zone z;
    z.soa("news.example.test", dns::Status::nodata);
    z.soa("example.test");
    z.signed_keys("example.test", -day, 20 * day);
    auto r = z.run("news.example.test");
    CHECK(r.level == Level::ok);
    CHECK_THAT(r.reason, Contains("its zone example.test is signed"));
    CHECK_FALSE(z.f.was_queried("news.example.test", dns::RrType::dnskey));

    // No SOA anywhere up to the top-level domain (never asked): cannot tell.
    z.soa("a.b.test", dns::Status::nodata);
    z.soa("b.test", dns::Status::nodata);
    r = z.run("a.b.test");
    CHECK(r.level == Level::unknown);
    CHECK_THAT(r.reason, Contains("no zone apex (SOA) found at or above a.b.test"));
    CHECK_FALSE(z.f.was_queried("test", dns::RrType::soa));
}
