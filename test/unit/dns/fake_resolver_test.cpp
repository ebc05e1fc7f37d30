// FakeResolver, the fake every check's unit tests use: it must fail loudly on anything unprogrammed.
#include <catch2/catch.hpp>

#include <chrono>
#include <stdexcept>
#include <string>

#include "fakes/fake_resolver.hpp"

using namespace vigil::dns;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {
Answer now_answer(const Pending& p) {
    return p.wait_until(steady_clock::now());
}
}  // namespace

TEST_CASE("dns fake: programmed answers come back at once - matched case-insensitively", "[dns]") {
    FakeResolver fake;
    fake.set_records(
        "example.com", RrType::mx,
        {fake::mx("example.com", 10, "MX1.example.com."), fake::mx("example.com", 20, "mx2.example.com")},
        600);
    Pending p = fake.lookup("EXAMPLE.com.", RrType::mx);
    CHECK(p.ready());
    Answer a = now_answer(p);
    CHECK(a.status == Status::answer);
    CHECK(a.ttl == 600);
    REQUIRE(a.records.size() == 2);
    CHECK(a.records[0].name == "example.com");
    CHECK(a.records[0].type == RrType::mx);
    CHECK(a.records[0].preference == 10);
    CHECK(a.records[0].target == "mx1.example.com");
    CHECK(a.records[1].target == "mx2.example.com");
}

TEST_CASE("dns fake: builders fill the record fields", "[dns]") {
    CHECK(fake::address("h.example", "192.0.2.1").type == RrType::a);
    CHECK(fake::address("h.example", "2001:db8::1").type == RrType::aaaa);
    CHECK(fake::address("h.example", "2001:db8::1").address->to_string() == "2001:db8::1");
    CHECK_THROWS_AS(fake::address("h.example", "not-an-ip"), std::invalid_argument);
    CHECK(fake::txt("t.example", {"a", "b"}).txt_joined() == "ab");
    CHECK(fake::mx("example", 0, ".").target.empty());  // null MX
    CHECK(fake::ptr("1.2.0.192.in-addr.arpa", "Host.Example.").target == "host.example");
    CHECK(fake::cname("alias.example", "real.example").type == RrType::cname);
    CHECK(fake::ns("example", "ns.example").target == "ns.example");
}

TEST_CASE("dns fake: statuses are programmed separately per type", "[dns]") {
    FakeResolver fake;
    fake.set_status("gone.example", RrType::a, Status::nxdomain, 300);
    fake.set_status("host.example", RrType::aaaa, Status::nodata);
    fake.set_status("broken.example", RrType::txt, Status::servfail);
    CHECK(now_answer(fake.lookup("gone.example", RrType::a)).status == Status::nxdomain);
    CHECK(now_answer(fake.lookup("gone.example", RrType::a)).ttl == 300);
    CHECK(now_answer(fake.lookup("host.example", RrType::aaaa)).status == Status::nodata);
    CHECK(now_answer(fake.lookup("broken.example", RrType::txt)).status == Status::servfail);
    // Programming (gone.example, A) says nothing about (gone.example, MX).
    CHECK_THROWS_AS(fake.lookup("gone.example", RrType::mx), std::logic_error);
}

TEST_CASE("dns fake: an unprogrammed query throws - naming it - and is recorded", "[dns]") {
    FakeResolver fake;
    try {
        fake.lookup("Surprise.Example", RrType::txt);
        FAIL("expected std::logic_error");
    } catch (const std::logic_error& e) {
        const std::string what = e.what();
        CHECK(what.find("surprise.example") != std::string::npos);
        CHECK(what.find("TXT") != std::string::npos);
    }
    REQUIRE(fake.unexpected().size() == 1);
    CHECK(fake.unexpected()[0] == FakeResolver::Query{"surprise.example", RrType::txt});
    CHECK(fake.queries().size() == 1);
}

TEST_CASE("dns fake: invalid names get the same malformed answer as from any resolver", "[dns]") {
    FakeResolver fake;
    Answer a = now_answer(fake.lookup("a..b", RrType::a));
    CHECK(a.status == Status::malformed);
    CHECK(fake.unexpected().empty());
}

TEST_CASE("dns fake: records every query in order for issued/not-issued assertions", "[dns]") {
    FakeResolver fake;
    fake.set_status("a.example", RrType::a, Status::nxdomain);
    fake.set_status("b.example", RrType::txt, Status::nodata);
    fake.lookup("a.example", RrType::a);
    fake.lookup("b.example", RrType::txt);
    fake.lookup("A.example", RrType::a);
    auto q = fake.queries();
    REQUIRE(q.size() == 3);
    CHECK(q[0] == FakeResolver::Query{"a.example", RrType::a});
    CHECK(q[1] == FakeResolver::Query{"b.example", RrType::txt});
    CHECK(q[2] == FakeResolver::Query{"a.example", RrType::a});
    CHECK(fake.count("a.example", RrType::a) == 2);
    CHECK(fake.was_queried("b.example", RrType::txt));
    CHECK_FALSE(fake.was_queried("b.example", RrType::a));
    fake.clear_queries();
    CHECK(fake.queries().empty());
}

TEST_CASE("dns fake: held answers wait for release; the deadline still applies", "[dns]") {
    FakeResolver fake;
    fake.set_records("slow.example", RrType::a, {fake::address("slow.example", "192.0.2.5")});
    fake.hold("slow.example", RrType::a);
    Pending p1 = fake.lookup("slow.example", RrType::a);
    Pending p2 = fake.lookup("slow.example", RrType::a);
    CHECK_FALSE(p1.ready());

    const auto start = steady_clock::now();
    CHECK(p1.wait_until(start + milliseconds(30)).status == Status::timeout);
    CHECK(steady_clock::now() - start >= milliseconds(30));

    CHECK(fake.release("slow.example", RrType::a) == 2);
    CHECK(p1.ready());
    CHECK(now_answer(p1).status == Status::answer);
    CHECK(now_answer(p2).records.at(0).address->to_string() == "192.0.2.5");
    // Released: later lookups answer at once.
    CHECK(fake.lookup("slow.example", RrType::a).ready());
    CHECK(fake.release("slow.example", RrType::a) == 0);
}

TEST_CASE("dns fake: a held query still has to be programmed", "[dns]") {
    FakeResolver fake;
    fake.hold("x.example", RrType::a);
    CHECK_THROWS_AS(fake.lookup("x.example", RrType::a), std::logic_error);
}

TEST_CASE("dns fake: never_answer lookups stay pending", "[dns]") {
    FakeResolver fake;
    fake.never_answer("dead.example", RrType::txt);
    Pending p = fake.lookup("dead.example", RrType::txt);
    CHECK(p.wait_until(steady_clock::now() + milliseconds(20)).status == Status::timeout);
    CHECK_FALSE(p.ready());
    CHECK(fake.was_queried("dead.example", RrType::txt));
}
