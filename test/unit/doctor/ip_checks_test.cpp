#include <catch2/catch.hpp>

#include "doctor/checks.hpp"
#include "doctor_fixture.hpp"

using namespace vigil;
using namespace vigil::test::doctor;
using Catch::Matchers::Contains;

namespace {

constexpr std::string_view rev = "10.2.0.192.in-addr.arpa";
const auto ip = *core::IpAddress::parse("192.0.2.10");

struct Rdns {
    dns::FakeResolver f;
    doctor::Probe probe{f};
    std::vector<Finding> run(std::string_view host = "mx.example.test") {
        return doctor::check_reverse_dns(probe, ip, host);
    }
    void ptr(std::vector<std::string> names) {
        std::vector<dns::Record> rr;
        for (auto& n : names) rr.push_back(dns::fake::ptr(rev, n));
        f.set(rev, dns::RrType::ptr, answer_of(std::move(rr)));
    }
};

}  // namespace

TEST_CASE("reverse DNS: a PTR naming our host name that resolves back is all ok", "[doctor][rdns]") {
    Rdns t;
    t.ptr({"mx.example.test"});
    addr(t.f, "mx.example.test", {"192.0.2.10"});
    auto out = t.run("MX.example.test");
    INFO(dump(out));
    REQUIRE(out.size() == 2);
    CHECK(count(out, Level::ok) == 2);
    CHECK(out[0].reason == "PTR mx.example.test resolves back to 192.0.2.10 (FCrDNS)");
    CHECK(out[1].reason == "PTR names mx.example.test, the host name we say in HELO");
}

TEST_CASE("reverse DNS: no PTR is a fail whose fix is the PTR record to ask for", "[doctor][rdns]") {
    Rdns t;
    t.f.set_status(rev, dns::RrType::ptr, dns::Status::nxdomain);
    auto out = t.run();
    REQUIRE(out.size() == 1);
    CHECK(out[0].level == Level::fail);
    CHECK_THAT(out[0].reason, Contains("no PTR record for 192.0.2.10 (nxdomain)"));
    CHECK_THAT(out[0].fix, Contains("10.2.0.192.in-addr.arpa. IN PTR mx.example.test."));
}

TEST_CASE("reverse DNS: a PTR that does not resolve back fails FCrDNS and does not name us",
          "[doctor][rdns]") {
    Rdns t;
    t.ptr({"liar.example.test"});
    addr(t.f, "liar.example.test", {"192.0.2.99"});
    auto out = t.run();
    INFO(dump(out));
    REQUIRE(out.size() == 2);
    CHECK(out[0].level == Level::fail);
    CHECK_THAT(out[0].reason, Contains("PTR liar.example.test does not resolve back to 192.0.2.10"));
    CHECK_THAT(out[0].fix,
               Contains("IN PTR mx.example.test.") && Contains("mx.example.test. IN A 192.0.2.10"));
    CHECK(out[1].level == Level::warn);
    CHECK_THAT(out[1].reason, Contains("does not name mx.example.test"));
}

TEST_CASE("reverse DNS: a confirmed but generic name is two warnings", "[doctor][rdns]") {
    Rdns t;
    t.ptr({"192-0-2-10.dyn.isp.example"});
    addr(t.f, "192-0-2-10.dyn.isp.example", {"192.0.2.10"});
    auto out = t.run();
    INFO(dump(out));
    REQUIRE(out.size() == 3);
    CHECK(out[0].level == Level::ok);
    CHECK(out[1].level == Level::warn);
    CHECK_THAT(out[1].fix, Contains("[server] hostname = \"192-0-2-10.dyn.isp.example\""));
    CHECK(out[2].level == Level::warn);
    CHECK_THAT(out[2].reason, Contains("looks generic"));
}

TEST_CASE("reverse DNS: a timeout is cannot tell", "[doctor][rdns]") {
    Rdns t;
    t.f.set_status(rev, dns::RrType::ptr, dns::Status::timeout);
    auto out = t.run();
    REQUIRE(out.size() == 1);
    CHECK(out[0].level == Level::unknown);
}

TEST_CASE("host name: its addresses, and each sending IP among them", "[doctor][host]") {
    dns::FakeResolver f;
    doctor::Probe probe{f};
    addr(f, "mx.example.test", {"192.0.2.10", "2001:db8::10"});
    auto out =
        doctor::check_host(probe, "mx.example.test",
                           {*core::IpAddress::parse("192.0.2.10"), *core::IpAddress::parse("192.0.2.11")});
    INFO(dump(out));
    REQUIRE(out.size() == 2);
    CHECK(out[0].level == Level::ok);
    CHECK(out[0].reason == "mx.example.test resolves to 192.0.2.10, 2001:db8::10");
    CHECK(out[1].level == Level::warn);
    CHECK(out[1].fix ==
          "Publish: mx.example.test. IN A 192.0.2.11 (or send from mx.example.test only from an address it "
          "resolves to)");

    f.set_status("gone.example.test", dns::RrType::a, dns::Status::nxdomain);
    f.set_status("gone.example.test", dns::RrType::aaaa, dns::Status::nxdomain);
    auto gone = doctor::check_host(probe, "gone.example.test", {*core::IpAddress::parse("192.0.2.10")});
    REQUIRE(gone.size() == 1);
    CHECK(gone[0].level == Level::fail);
    CHECK(gone[0].fix == "Publish: gone.example.test. IN A 192.0.2.10");

    auto bare = doctor::check_host(probe, "localhost", {});
    REQUIRE(bare.size() == 1);
    CHECK(bare[0].level == Level::fail);
    CHECK_THAT(bare[0].reason, Contains("not a fully qualified"));
}

TEST_CASE("MX: present and resolving, missing, or pointing nowhere", "[doctor][mx]") {
    dns::FakeResolver f;
    doctor::Probe probe{f};
    f.set("ok.test", dns::RrType::mx, answer_of({dns::fake::mx("ok.test", 10, "mx.ok.test")}));
    addr(f, "mx.ok.test", {"192.0.2.1"});
    auto ok = doctor::check_mx(probe, "ok.test", "mx.ok.test");
    REQUIRE(ok.size() == 1);
    CHECK(ok[0].level == Level::ok);
    CHECK(ok[0].reason == "MX 10 mx.ok.test");

    f.set_status("nomx.test", dns::RrType::mx, dns::Status::nodata);
    auto none = doctor::check_mx(probe, "nomx.test", "mx.ok.test");
    REQUIRE(none.size() == 1);
    CHECK(none[0].level == Level::warn);
    CHECK(none[0].fix == "Publish: nomx.test. IN MX 10 mx.ok.test.");

    f.set("dangling.test", dns::RrType::mx, answer_of({dns::fake::mx("dangling.test", 5, "nowhere.test")}));
    f.set_status("nowhere.test", dns::RrType::a, dns::Status::nxdomain);
    f.set_status("nowhere.test", dns::RrType::aaaa, dns::Status::nxdomain);
    auto dangling = doctor::check_mx(probe, "dangling.test", "mx.ok.test");
    REQUIRE(dangling.size() == 1);
    CHECK(dangling[0].level == Level::fail);
}

TEST_CASE("DNSSEC: secure, insecure, bogus and unchecked answers", "[doctor][dnssec]") {
    dns::FakeResolver f;
    doctor::Probe probe{f};
    auto soa = [&](std::string_view name, dns::Dnssec d) {
        auto a = answer_of({dns::fake::ns(name, "ns.example")});  // the record data does not matter here
        a.dnssec = d;
        f.set(name, dns::RrType::soa, a);
    };
    soa("s.test", dns::Dnssec::secure);
    soa("i.test", dns::Dnssec::insecure);
    soa("u.test", dns::Dnssec::unchecked);
    f.set("b.test", dns::RrType::soa,
          dns::Answer::failure(dns::Status::servfail, "DNSSEC bogus: expired", dns::Dnssec::bogus));
    CHECK(doctor::check_dnssec(probe, "s.test").at(0).level == Level::ok);
    auto i = doctor::check_dnssec(probe, "i.test").at(0);
    CHECK(i.level == Level::warn);
    CHECK_THAT(i.reason, Contains("not signed"));
    auto b = doctor::check_dnssec(probe, "b.test").at(0);
    CHECK(b.level == Level::fail);
    CHECK_THAT(b.reason, Contains("expired"));
    // Only an unchecked answer makes the doctor ask for DNSKEY (the fake throws on any other query).
    CHECK(f.queries().size() == 3);
    f.set_status("u.test", dns::RrType::dnskey, dns::Status::servfail);
    auto u = doctor::check_dnssec(probe, "u.test").at(0);
    CHECK(u.level == Level::unknown);
    CHECK_THAT(u.reason, Contains("cannot tell: the DNSKEY lookup of u.test ended in servfail"));
}
