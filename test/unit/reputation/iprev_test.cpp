#include <catch2/catch.hpp>

#include "reputation/iprev.hpp"
#include "reputation_fixture.hpp"

using namespace vigil;
using namespace vigil::test;
using Catch::Matchers::Contains;
using dns::RrType;
using dns::Status;
using Strings = std::vector<std::string>;

namespace {

constexpr std::string_view iprev_conf = "[checks.iprev]\nenabled = true\n";
constexpr std::string_view ptr_q = "9.113.0.203.in-addr.arpa";

dns::Answer ptrs(std::initializer_list<std::string_view> names) {
    std::vector<dns::Record> records;
    for (auto n : names) records.push_back(dns::fake::ptr(ptr_q, n));
    return answer_of(std::move(records));
}

dns::Answer addresses(std::string_view name, std::initializer_list<std::string_view> ips) {
    std::vector<dns::Record> records;
    for (auto ip : ips) records.push_back(dns::fake::address(name, ip));
    return answer_of(std::move(records));
}

struct Iprev {
    std::shared_ptr<const engine::Config> cfg = config(std::string(iprev_conf));
    dns::FakeResolver fake;
};

}  // namespace

TEST_CASE("iprev pass when a PTR name resolves back", "[iprev]") {
    Iprev t;
    t.fake.set(ptr_q, RrType::ptr, ptrs({"mail.example.net"}));
    t.fake.set("mail.example.net", RrType::a, addresses("mail.example.net", {"198.51.100.1", "203.0.113.9"}));
    auto r = run(t.cfg, &t.fake);
    CHECK(symbols_with(r.verdict, "IPREV_") == Strings{"IPREV_PASS"});
    CHECK(options_of(r.verdict, "IPREV_PASS") == Strings{"mail.example.net"});
    CHECK(find_symbol(r.verdict, "IPREV_PASS")->score == 0.0);
    CHECK_THAT(auth_results(r.verdict), Contains("mx.test; iprev=pass policy.iprev=203.0.113.9"));
    CHECK_THAT(
        report_of(r.verdict, "iprev"),
        Contains(
            R"("result":"pass","ip":"203.0.113.9","ptr_status":"answer","ptr":["mail.example.net"],"confirmed":"mail.example.net","generic":false)"));
    // PTR first, then the forward lookup of the same family; nothing else.
    CHECK(t.fake.queries() == std::vector<dns::FakeResolver::Query>{{std::string(ptr_q), RrType::ptr},
                                                                    {"mail.example.net", RrType::a}});
}

TEST_CASE("iprev pass for IPv6 looks up AAAA", "[iprev]") {
    Iprev t;
    const std::string q = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa";
    t.fake.set(q, RrType::ptr, answer_of({dns::fake::ptr(q, "mail6.example.net")}));
    t.fake.set("mail6.example.net", RrType::aaaa, addresses("mail6.example.net", {"2001:db8::1"}));
    Dialogue d;
    d.ip = "2001:db8::1";
    auto r = run(t.cfg, &t.fake, d);
    CHECK(symbols_with(r.verdict, "IPREV_") == Strings{"IPREV_PASS"});
    CHECK_THAT(auth_results(r.verdict), Contains("iprev=pass policy.iprev=\"2001:db8::1\""));
    CHECK_FALSE(t.fake.was_queried("mail6.example.net", RrType::a));
}

TEST_CASE("iprev fail when no PTR name leads back", "[iprev]") {
    Iprev t;
    t.fake.set(ptr_q, RrType::ptr, ptrs({"liar.example.net", "gone.example.net", "empty.example.net"}));
    t.fake.set("liar.example.net", RrType::a, addresses("liar.example.net", {"198.51.100.7"}));
    t.fake.set_status("gone.example.net", RrType::a, Status::nxdomain);
    t.fake.set_status("empty.example.net", RrType::a, Status::nodata);
    auto r = run(t.cfg, &t.fake);
    CHECK(symbols_with(r.verdict, "IPREV_") == Strings{"IPREV_FAIL"});
    CHECK(find_symbol(r.verdict, "IPREV_FAIL")->score == 1.5);
    CHECK(options_of(r.verdict, "IPREV_FAIL") ==
          Strings{"ptr:liar.example.net", "ptr:gone.example.net", "ptr:empty.example.net"});
    CHECK_THAT(auth_results(r.verdict), Contains("iprev=fail policy.iprev=203.0.113.9"));
}

TEST_CASE("iprev without PTR data is permerror", "[iprev]") {
    for (auto st : {Status::nxdomain, Status::nodata}) {
        Iprev t;
        t.fake.set_status(ptr_q, RrType::ptr, st);
        auto r = run(t.cfg, &t.fake);
        CHECK(symbols_with(r.verdict, "IPREV_") == Strings{"IPREV_NO_PTR"});
        CHECK(options_of(r.verdict, "IPREV_NO_PTR") == Strings{"ptr:" + std::string(dns::to_string(st))});
        CHECK_THAT(auth_results(r.verdict), Contains("iprev=permerror policy.iprev=203.0.113.9"));
        CHECK(t.fake.queries().size() == 1);
    }
}

TEST_CASE("iprev temperror on a PTR or forward failure", "[iprev]") {
    SECTION("PTR servfail or timeout") {
        for (auto st : {Status::servfail, Status::timeout}) {
            Iprev t;
            t.fake.set_status(ptr_q, RrType::ptr, st);
            auto r = run(t.cfg, &t.fake);
            CHECK(symbols_with(r.verdict, "IPREV_") == Strings{"IPREV_TEMPERROR"});
            CHECK(find_symbol(r.verdict, "IPREV_TEMPERROR")->score == 0.0);
            CHECK_THAT(auth_results(r.verdict), Contains("iprev=temperror policy.iprev=203.0.113.9"));
        }
    }
    SECTION("a forward lookup fails and no other name confirms") {
        Iprev t;
        t.fake.set(ptr_q, RrType::ptr, ptrs({"a.example.net", "b.example.net"}));
        t.fake.set_status("a.example.net", RrType::a, Status::nxdomain);
        t.fake.set_status("b.example.net", RrType::a, Status::servfail);
        auto r = run(t.cfg, &t.fake);
        CHECK(symbols_with(r.verdict, "IPREV_") == Strings{"IPREV_TEMPERROR"});
        CHECK(options_of(r.verdict, "IPREV_TEMPERROR") == Strings{"forward:b.example.net:servfail"});
        CHECK_THAT(auth_results(r.verdict), Contains("iprev=temperror"));
    }
    SECTION("a forward lookup fails but another name confirms") {
        Iprev t;
        t.fake.set(ptr_q, RrType::ptr, ptrs({"a.example.net", "b.example.net"}));
        t.fake.set_status("a.example.net", RrType::a, Status::timeout);
        t.fake.set("b.example.net", RrType::a, addresses("b.example.net", {"203.0.113.9"}));
        auto r = run(t.cfg, &t.fake);
        CHECK(symbols_with(r.verdict, "IPREV_") == Strings{"IPREV_PASS"});
        CHECK(options_of(r.verdict, "IPREV_PASS") == Strings{"b.example.net"});
    }
    SECTION("a PTR that never answers costs the budget and no more") {
        Iprev t;
        auto cfg = config(std::string(iprev_conf) + "[dns]\nstage_budget_ms = 100\n");
        t.fake.never_answer(ptr_q, RrType::ptr);
        auto start = std::chrono::steady_clock::now();
        auto r = run(cfg, &t.fake, {}, &core::SystemClock::instance());
        auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)
                .count();
        CHECK(options_of(r.verdict, "IPREV_TEMPERROR") == Strings{"ptr:timeout"});
        CHECK(ms >= 100);
        CHECK(ms < 100 + 400);
    }
}

TEST_CASE("iprev multiple PTR names with one confirming", "[iprev]") {
    Iprev t;
    t.fake.set(ptr_q, RrType::ptr, ptrs({"one.example.net", "two.example.net", "ONE.example.net."}));
    t.fake.set("one.example.net", RrType::a, addresses("one.example.net", {"198.51.100.1"}));
    t.fake.set("two.example.net", RrType::a, addresses("two.example.net", {"203.0.113.9"}));
    auto r = run(t.cfg, &t.fake);
    CHECK(symbols_with(r.verdict, "IPREV_") == Strings{"IPREV_PASS"});
    CHECK(options_of(r.verdict, "IPREV_PASS") == Strings{"two.example.net"});
    CHECK(t.fake.count("one.example.net", RrType::a) == 1);  // a duplicate name is looked up once
}

TEST_CASE("iprev looks up at most max_ptr_names PTR names", "[iprev]") {
    Iprev t;
    std::vector<dns::Record> many;
    for (int i = 0; i < 100; ++i)
        many.push_back(dns::fake::ptr(ptr_q, "h" + std::to_string(i) + ".example.net"));
    t.fake.set(ptr_q, RrType::ptr, answer_of(std::move(many)));
    // Only the first ten are programmed: an eleventh lookup would throw. The confirming name is the
    // 51st, so it is never reached.
    for (std::size_t i = 0; i < reputation::max_ptr_names; ++i) {
        t.fake.set_status("h" + std::to_string(i) + ".example.net", RrType::a, Status::nxdomain);
    }
    auto r = run(t.cfg, &t.fake);
    CHECK(t.fake.unexpected().empty());
    CHECK(t.fake.queries().size() == 1 + reputation::max_ptr_names);
    CHECK(symbols_with(r.verdict, "IPREV_") == Strings{"IPREV_FAIL"});
    CHECK_THAT(options_of(r.verdict, "IPREV_FAIL").back(), Contains("only the first 10 PTR names"));
}

TEST_CASE("iprev generic PTR names", "[iprev]") {
    Iprev t;
    const std::string name = "203-0-113-9.dyn.example.net";
    t.fake.set(ptr_q, RrType::ptr, ptrs({name}));
    t.fake.set(name, RrType::a, addresses(name, {"203.0.113.9"}));
    auto r = run(t.cfg, &t.fake);
    CHECK(symbols_with(r.verdict, "IPREV_") == Strings{"IPREV_GENERIC", "IPREV_PASS"});
    CHECK(options_of(r.verdict, "IPREV_GENERIC") == Strings{name});
    CHECK(r.verdict.score == 1.0);
    CHECK_THAT(report_of(r.verdict, "iprev"), Contains(R"("generic":true)"));

    SECTION("a failing generic name is both") {
        dns::FakeResolver f;
        f.set(ptr_q, RrType::ptr, ptrs({"pool-9-113-0-203.example.net"}));
        f.set_status("pool-9-113-0-203.example.net", RrType::a, Status::nxdomain);
        auto r2 = run(t.cfg, &f);
        CHECK(symbols_with(r2.verdict, "IPREV_") == Strings{"IPREV_FAIL", "IPREV_GENERIC"});
    }
}

TEST_CASE("iprev generic name forms", "[iprev]") {
    auto ip = *core::IpAddress::parse("203.0.113.9");
    for (auto n : {"203-0-113-9.example.net", "9.113.0.203.example.net", "host_203_0_113_9.example.net",
                   "ip203-0-113-9.isp.example", "203000113009.example.net", "cb007109.example.net",
                   "p-cb007109.example.net", "3405803785.example.net", "mail.dynamic.example.net",
                   "x.DHCP.example.net", "adsl123.example.net", "host.pool-3.example.net",
                   "ppp.example.net.br", "cable-1.isp.example", "a.b.dsl.example.net"}) {
        INFO(n);
        CHECK(reputation::looks_generic(n, ip));
    }
    for (auto n : {"mail.example.net", "mx1.example.net", "cable.example", "dsl-shop.example",
                   "203-0-113-99.example.net", "1203-0-113-9.example.net", "mail203.example.net",
                   "mx.dynamo.example.net", "pooling.example.net", "cb0071090.example.net"}) {
        INFO(n);
        CHECK_FALSE(reputation::looks_generic(n, ip));
    }
    CHECK(reputation::looks_generic("dyn.ip6.example.net", *core::IpAddress::parse("2001:db8::1")));
    CHECK_FALSE(reputation::looks_generic("mail.example.net", *core::IpAddress::parse("2001:db8::1")));
    CHECK(
        reputation::looks_generic("203-0-113-9.example.net", *core::IpAddress::parse("::ffff:203.0.113.9")));
    // Zero-padded forms of small octets.
    auto low = *core::IpAddress::parse("10.0.0.5");
    for (auto n : {"010000000005.example.net", "0a000005.example.net", "167772165.example.net",
                   "5.0.0.10.rev.example"}) {
        INFO(n);
        CHECK(reputation::looks_generic(n, low));
    }
    CHECK_FALSE(reputation::looks_generic("a000005.example.net", low));
}

TEST_CASE("iprev unusable PTR data is permerror or skipped", "[iprev]") {
    Iprev t;
    auto bad_ptr = [](std::string target) {
        dns::Record r = dns::fake::ptr(ptr_q, "placeholder.example");
        r.target = std::move(target);  // as a decoder could hand it over, not normalized
        return r;
    };
    const std::string too_long = std::string(60, 'a') + "." + std::string(60, 'b') + "." +
                                 std::string(60, 'c') + "." + std::string(60, 'd') + "." +
                                 std::string(60, 'e') + ".example";
    SECTION("only invalid names: over 253 characters and non-ASCII and escaped") {
        t.fake.set(
            ptr_q, RrType::ptr,
            answer_of({bad_ptr(too_long), bad_ptr("m\xc3\xa9l.example.net"), bad_ptr("a\\046b.example.net"),
                       bad_ptr(std::string(64, 'x') + ".example.net"), bad_ptr("")}));
        auto r = run(t.cfg, &t.fake);
        CHECK(symbols_with(r.verdict, "IPREV_") == Strings{"IPREV_PERMERROR"});
        CHECK(options_of(r.verdict, "IPREV_PERMERROR") == Strings{"ptr:no valid name (5 invalid)"});
        CHECK_THAT(auth_results(r.verdict), Contains("iprev=permerror policy.iprev=203.0.113.9"));
        CHECK(t.fake.queries().size() == 1);
    }
    SECTION("invalid names next to a valid confirming one") {
        t.fake.set(ptr_q, RrType::ptr,
                   answer_of({bad_ptr("m\xc3\xa9l.example.net"), dns::fake::ptr(ptr_q, "ok.example.net")},
                             0xffffffffu));
        t.fake.set("ok.example.net", RrType::a, addresses("ok.example.net", {"203.0.113.9"}));
        auto r = run(t.cfg, &t.fake);
        CHECK(options_of(r.verdict, "IPREV_PASS") ==
              Strings{"ok.example.net", "1 invalid PTR names skipped"});
    }
    SECTION("a malformed PTR answer") {
        t.fake.set_status(ptr_q, RrType::ptr, Status::malformed);
        auto r = run(t.cfg, &t.fake);
        CHECK(options_of(r.verdict, "IPREV_PERMERROR") == Strings{"ptr:malformed"});
        CHECK_THAT(auth_results(r.verdict), Contains("iprev=permerror"));
    }
    SECTION("a malformed forward answer") {
        t.fake.set(ptr_q, RrType::ptr, ptrs({"bad.example.net"}));
        t.fake.set_status("bad.example.net", RrType::a, Status::malformed);
        auto r = run(t.cfg, &t.fake);
        CHECK(options_of(r.verdict, "IPREV_PERMERROR") == Strings{"forward:bad.example.net:malformed"});
    }
    SECTION("PTR records of another type are ignored") {
        t.fake.set(ptr_q, RrType::ptr, answer_of({dns::fake::txt(ptr_q, {"x"})}));
        auto r = run(t.cfg, &t.fake);
        CHECK(symbols_with(r.verdict, "IPREV_") == Strings{"IPREV_PERMERROR"});
    }
}

TEST_CASE("iprev skips trusted and local clients and is dropped for outbound mail", "[iprev]") {
    Iprev t;  // nothing programmed: any lookup would throw
    Dialogue d;
    d.ip = "127.0.0.1";
    auto r = run(t.cfg, &t.fake, d);
    CHECK(r.verdict.symbols.empty());
    CHECK(auth_results(r.verdict).empty());  // outbound: no Authentication-Results of ours
    d.ip = "";
    run(t.cfg, &t.fake, d);
    CHECK(t.fake.queries().empty());

    t.fake.set_status(ptr_q, RrType::ptr, Status::nxdomain);
    d.ip = "203.0.113.9";
    d.auth_user = "alice";
    auto out = run(t.cfg, &t.fake, d);
    CHECK(out.verdict.symbols.empty());
    CHECK(out.verdict.score == 0.0);
}

TEST_CASE("iprev forward lookups are not starved by a dead block list", "[iprev][dnsbl]") {
    // iprev runs before dnsbl in the connect stage, so its second round starts as soon as the PTR
    // answer is in. Were the dead list waited for first, the forward lookup would be issued after the
    // deadline and come back as a timeout (temperror).
    auto cfg = config(R"(
[checks.iprev]
enabled = true
[checks.dnsbl]
enabled = true
[[checks.dnsbl.list]]
name = "dead"
zone = "dead.example"
[dns]
stage_budget_ms = 300
)");
    dns::FakeResolver fake;
    fake.never_answer("9.113.0.203.dead.example", RrType::a);
    fake.set(ptr_q, RrType::ptr, ptrs({"mail.example.net"}));
    fake.set("mail.example.net", RrType::a, addresses("mail.example.net", {"203.0.113.9"}));
    fake.hold("mail.example.net", RrType::a);
    LateRelease late(fake, "mail.example.net", RrType::a, std::chrono::milliseconds(50));
    auto start = std::chrono::steady_clock::now();
    auto r = run(cfg, &fake, {}, &core::SystemClock::instance());
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)
                  .count();
    CHECK(symbols_with(r.verdict, "IPREV_") == Strings{"IPREV_PASS"});
    CHECK(options_of(r.verdict, "RBL_TEMPFAIL") == Strings{"dead:timeout"});
    CHECK(ms >= 300);
    CHECK(ms < 300 + 400);
}
