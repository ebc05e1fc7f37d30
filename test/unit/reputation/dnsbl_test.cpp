#include <catch2/catch.hpp>

#include "reputation/dnsbl.hpp"
#include "reputation_fixture.hpp"

using namespace vigil;
using namespace vigil::test;
using Catch::Matchers::Contains;
using dns::RrType;
using dns::Status;
using Strings = std::vector<std::string>;

namespace {

// A Spamhaus-ZEN-like block list and a DNSWL-like allow list, both on IPv6 too.
constexpr std::string_view lists_conf = R"(
[checks.dnsbl]
enabled = true
[[checks.dnsbl.list]]
name = "zen"
zone = "zen.example"
ipv6 = true
weight = 1.5
[checks.dnsbl.list.codes]
"127.0.0.2" = "RBL_ZEN_SBL"
"127.0.0.3" = "RBL_ZEN_CSS"
"127.0.0.4-7" = "RBL_ZEN_XBL"
"127.0.0.10-127.0.0.11" = "RBL_ZEN_PBL"
[checks.dnsbl.list.weights]
RBL_ZEN_SBL = 4.0
RBL_ZEN_XBL = 3.5
[[checks.dnsbl.list]]
name = "dnswl"
zone = "wl.example"
type = "allow"
ipv6 = true
)";

constexpr std::string_view zen_q = "9.113.0.203.zen.example";
constexpr std::string_view wl_q = "9.113.0.203.wl.example";

dns::Answer codes(std::string_view query, std::initializer_list<std::string_view> list) {
    std::vector<dns::Record> records;
    for (auto c : list) records.push_back(dns::fake::address(query, c));
    return answer_of(std::move(records));
}

struct Lists {
    std::shared_ptr<const engine::Config> cfg = config(std::string(lists_conf));
    dns::FakeResolver fake;
    Lists() { fake.set_status(wl_q, RrType::a, Status::nxdomain); }
};

}  // namespace

TEST_CASE("dnsbl listed codes map to their symbols and weights", "[dnsbl]") {
    Lists t;
    SECTION("a single code") {
        t.fake.set(zen_q, RrType::a, codes(zen_q, {"127.0.0.2"}));
        auto r = run(t.cfg, &t.fake);
        REQUIRE(has_symbol(r.verdict, "RBL_ZEN_SBL"));
        CHECK(find_symbol(r.verdict, "RBL_ZEN_SBL")->score == 4.0);
        CHECK(options_of(r.verdict, "RBL_ZEN_SBL") == Strings{"zen:127.0.0.2"});
        CHECK(symbols_with(r.verdict, "RBL_") == Strings{"RBL_ZEN_SBL"});
        CHECK(r.verdict.score == 4.0);
        CHECK(t.fake.count(zen_q, RrType::a) == 1);
        CHECK_THAT(
            report_of(r.verdict, "dnsbl"),
            Contains(
                R"("list":"zen","type":"block","query":"9.113.0.203.zen.example","status":"answer","codes":["127.0.0.2"],"result":"listed","symbols":["RBL_ZEN_SBL"])"));
        CHECK_THAT(
            report_of(r.verdict, "dnsbl"),
            Contains(
                R"("list":"dnswl","type":"allow","query":"9.113.0.203.wl.example","status":"nxdomain","codes":[],"result":"not_listed")"));
    }
    SECTION("a range written with the last octet only and one written in full") {
        t.fake.set(zen_q, RrType::a, codes(zen_q, {"127.0.0.6", "127.0.0.11"}));
        auto r = run(t.cfg, &t.fake);
        CHECK(symbols_with(r.verdict, "RBL_") == Strings{"RBL_ZEN_PBL", "RBL_ZEN_XBL"});
        CHECK(find_symbol(r.verdict, "RBL_ZEN_XBL")->score == 3.5);
        CHECK(find_symbol(r.verdict, "RBL_ZEN_PBL")->score == 1.5);  // the list's weight
    }
    SECTION("several codes of one symbol are one symbol with every code as an option") {
        t.fake.set(zen_q, RrType::a, codes(zen_q, {"127.0.0.4", "127.0.0.7", "127.0.0.4"}));
        auto r = run(t.cfg, &t.fake);
        CHECK(options_of(r.verdict, "RBL_ZEN_XBL") == Strings{"zen:127.0.0.4", "zen:127.0.0.7"});
        CHECK(r.verdict.score == 3.5);
    }
    SECTION("an unknown 127.0.0.x code gets the list's default symbol") {
        t.fake.set(zen_q, RrType::a, codes(zen_q, {"127.0.0.9"}));
        auto r = run(t.cfg, &t.fake);
        CHECK(symbols_with(r.verdict, "RBL_") == Strings{"RBL_ZEN"});
        CHECK(find_symbol(r.verdict, "RBL_ZEN")->score == 1.5);
        CHECK(options_of(r.verdict, "RBL_ZEN") == Strings{"zen:127.0.0.9"});
    }
}

TEST_CASE("dnsbl refusal codes never score as a listing", "[dnsbl]") {
    Lists t;
    SECTION("127.255.255.254 public resolver") {
        t.fake.set(zen_q, RrType::a, codes(zen_q, {"127.255.255.254"}));
        auto r = run(t.cfg, &t.fake);
        CHECK(symbols_with(r.verdict, "RBL_") == Strings{"RBL_QUERY_REFUSED"});
        CHECK(find_symbol(r.verdict, "RBL_QUERY_REFUSED")->score == 0.0);
        CHECK(options_of(r.verdict, "RBL_QUERY_REFUSED") == Strings{"zen:127.255.255.254"});
        CHECK(r.verdict.score == 0.0);
        CHECK_THAT(report_of(r.verdict, "dnsbl"), Contains(R"("result":"refused")"));
        REQUIRE(r.verdict.warnings.size() == 1);
        CHECK(
            r.verdict.warnings[0] ==
            "dnsbl list zen (zen.example) refused query 9.113.0.203.zen.example with 127.255.255.254: public "
            "resolver or over quota? Its answers are ignored until DNS is fixed");
    }
    SECTION("127.255.255.252 and 255 as well") {
        for (auto code : {"127.255.255.252", "127.255.255.255", "127.0.0.255"}) {
            t.fake.set(zen_q, RrType::a, codes(zen_q, {code}));
            auto r = run(t.cfg, &t.fake);
            CHECK(symbols_with(r.verdict, "RBL_") == Strings{"RBL_QUERY_REFUSED"});
            CHECK(r.verdict.score == 0.0);
        }
    }
    SECTION("a code outside 127.0.0.0/8") {
        t.fake.set(zen_q, RrType::a, codes(zen_q, {"10.0.0.2"}));
        auto r = run(t.cfg, &t.fake);
        CHECK(symbols_with(r.verdict, "RBL_") == Strings{"RBL_QUERY_REFUSED"});
        CHECK(options_of(r.verdict, "RBL_QUERY_REFUSED") == Strings{"zen:10.0.0.2"});
    }
    SECTION("a refusal code next to a listing code poisons the whole answer") {
        t.fake.set(zen_q, RrType::a, codes(zen_q, {"127.0.0.2", "127.255.255.255"}));
        auto r = run(t.cfg, &t.fake);
        CHECK(symbols_with(r.verdict, "RBL_") == Strings{"RBL_QUERY_REFUSED"});
        CHECK(r.verdict.score == 0.0);
    }
    SECTION("the warning names the list the code and what to do") {
        reputation::DnsblList list;
        list.name = "zen";
        list.zone = "zen.spamhaus.org";
        auto w = reputation::refused_warning(list, "2.0.0.127.zen.spamhaus.org", "127.255.255.254");
        CHECK_THAT(w, Contains("zen (zen.spamhaus.org)"));
        CHECK_THAT(w, Contains("127.255.255.254"));
        CHECK_THAT(w, Contains("resolver"));
        CHECK(w.size() < 200);
    }
}

TEST_CASE("dnsbl lookup failures are RBL_TEMPFAIL and never a listing", "[dnsbl]") {
    Lists t;
    SECTION("nxdomain and nodata are not listed and add nothing") {
        for (auto st : {Status::nxdomain, Status::nodata}) {
            t.fake.set_status(zen_q, RrType::a, st);
            auto r = run(t.cfg, &t.fake);
            CHECK(symbols_with(r.verdict, "RBL_").empty());
            CHECK(symbols_with(r.verdict, "DNSWL").empty());
            CHECK_THAT(report_of(r.verdict, "dnsbl"),
                       Contains(std::string(R"("status":")") + std::string(dns::to_string(st))));
        }
    }
    SECTION("servfail timeout and malformed") {
        for (auto st : {Status::servfail, Status::timeout, Status::malformed}) {
            t.fake.set_status(zen_q, RrType::a, st);
            auto r = run(t.cfg, &t.fake);
            CHECK(symbols_with(r.verdict, "RBL_") == Strings{"RBL_TEMPFAIL"});
            CHECK(options_of(r.verdict, "RBL_TEMPFAIL") == Strings{"zen:" + std::string(dns::to_string(st))});
            CHECK(r.verdict.score == 0.0);
        }
    }
    SECTION("an answer without any IPv4 address is malformed") {
        t.fake.set(zen_q, RrType::a, answer_of({dns::fake::txt(zen_q, {"listed"})}));
        auto r = run(t.cfg, &t.fake);
        CHECK(options_of(r.verdict, "RBL_TEMPFAIL") == Strings{"zen:malformed"});
    }
    SECTION("a huge answer is looked at only up to the cap") {
        std::vector<dns::Record> many;
        for (int i = 0; i < 100; ++i)
            many.push_back(dns::fake::address(zen_q, "127.0.1." + std::to_string(i)));
        t.fake.set(zen_q, RrType::a, answer_of(std::move(many), 0xffffffffu));
        auto r = run(t.cfg, &t.fake);
        REQUIRE(has_symbol(r.verdict, "RBL_ZEN"));
        CHECK(options_of(r.verdict, "RBL_ZEN").size() == reputation::max_dnsbl_codes);
    }
    SECTION("without a resolver every list is a tempfail") {
        auto r = run(t.cfg, nullptr);
        CHECK(options_of(r.verdict, "RBL_TEMPFAIL") == Strings{"zen:servfail", "dnswl:servfail"});
    }
}

TEST_CASE("dnsbl allow list trust levels lower the score", "[dnsbl]") {
    Lists t;
    t.fake.set_status(zen_q, RrType::a, Status::nxdomain);
    struct Case {
        const char* code;
        const char* symbol;
        double score;
    };
    for (auto c : {Case{"127.0.10.0", "DNSWL_NONE", 0.0}, Case{"127.0.10.1", "DNSWL_LOW", -0.7},
                   Case{"127.0.15.2", "DNSWL_MED", -2.3}, Case{"127.0.10.3", "DNSWL_HI", -5.0},
                   Case{"127.0.10.9", "DNSWL", 0.0}}) {
        t.fake.set(wl_q, RrType::a, codes(wl_q, {c.code}));
        auto r = run(t.cfg, &t.fake);
        INFO(c.code);
        CHECK(symbols_with(r.verdict, "DNSWL") == Strings{c.symbol});
        CHECK(find_symbol(r.verdict, c.symbol)->score == c.score);
        CHECK(options_of(r.verdict, c.symbol) == Strings{std::string("dnswl:") + c.code});
        CHECK(r.verdict.score == c.score);
    }
}

TEST_CASE("dnsbl queries IPv6 clients in nibble form only where asked", "[dnsbl]") {
    auto cfg = config(std::string(lists_conf) + R"(
[[checks.dnsbl.list]]
name = "v4only"
zone = "v4.example"
)");
    dns::FakeResolver fake;
    const std::string nibbles = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2";
    fake.set(nibbles + ".zen.example", RrType::a, codes(nibbles + ".zen.example", {"127.0.0.3"}));
    fake.set_status(nibbles + ".wl.example", RrType::a, Status::nxdomain);
    Dialogue d;
    d.ip = "2001:db8::1";
    auto r = run(cfg, &fake, d);
    CHECK(symbols_with(r.verdict, "RBL_") == Strings{"RBL_ZEN_CSS"});
    CHECK(fake.queries().size() == 2);
    CHECK(fake.unexpected().empty());

    SECTION("an IPv4-mapped client is queried as IPv4 on every list") {
        dns::FakeResolver f4;
        f4.set_status(zen_q, RrType::a, Status::nxdomain);
        f4.set_status(wl_q, RrType::a, Status::nxdomain);
        f4.set(std::string("9.113.0.203.v4.example"), RrType::a,
               codes("9.113.0.203.v4.example", {"127.0.0.2"}));
        d.ip = "::ffff:203.0.113.9";
        auto r4 = run(cfg, &f4, d);
        CHECK(symbols_with(r4.verdict, "RBL_") == Strings{"RBL_V4ONLY"});
        CHECK(f4.queries().size() == 3);
    }
    CHECK(reputation::dnsbl_query_name(*core::IpAddress::parse("2001:db8::1"), "x.example") ==
          nibbles + ".x.example");
}

TEST_CASE("dnsbl bitmask lists", "[dnsbl]") {
    auto cfg = config(R"(
[checks.dnsbl]
enabled = true
[[checks.dnsbl.list]]
name = "multi"
zone = "multi.example"
bitmask = true
symbol = "URIBL_OTHER"
refused_codes = ["127.0.0.1", "127.255.255.252-255"]
[checks.dnsbl.list.codes]
"2" = "URIBL_BLACK"
"127.0.0.4" = "URIBL_GREY"
"8" = "URIBL_RED"
[checks.dnsbl.list.weights]
URIBL_BLACK = 5.0
URIBL_GREY = 1.0
URIBL_RED = 2.0
)");
    dns::FakeResolver fake;
    const std::string q = "9.113.0.203.multi.example";
    SECTION("several bits add several symbols") {
        fake.set(q, RrType::a, codes(q, {"127.0.0.14"}));
        auto r = run(cfg, &fake);
        CHECK(symbols_with(r.verdict, "URIBL_") == Strings{"URIBL_BLACK", "URIBL_GREY", "URIBL_RED"});
        CHECK(r.verdict.score == 8.0);
    }
    SECTION("no known bit gives the default symbol") {
        fake.set(q, RrType::a, codes(q, {"127.0.0.64"}));
        auto r = run(cfg, &fake);
        CHECK(symbols_with(r.verdict, "URIBL_") == Strings{"URIBL_OTHER"});
    }
    SECTION("the list's own refusal code 127.0.0.1 is refused") {
        fake.set(q, RrType::a, codes(q, {"127.0.0.1"}));
        auto r = run(cfg, &fake);
        CHECK(symbols_with(r.verdict, "URIBL_").empty());
        CHECK(options_of(r.verdict, "RBL_QUERY_REFUSED") == Strings{"multi:127.0.0.1"});
    }
}

TEST_CASE("dnsbl reject codes refuse recipients of inbound mail", "[dnsbl]") {
    auto zen = [](const std::string& extra) {
        return R"(
[checks.dnsbl]
enabled = true
[[checks.dnsbl.list]]
name = "zen"
zone = "zen.example"
reject_codes = ["127.0.0.2", "127.0.0.4-7"]
)" + extra + R"(
[checks.dnsbl.list.codes]
"127.0.0.2" = "RBL_ZEN_SBL"
"127.0.0.10" = "RBL_ZEN_PBL"
)";
    };
    const std::string base = zen("");
    dns::FakeResolver fake;
    SECTION("at RCPT by default with the list's reply") {
        fake.set(zen_q, RrType::a, codes(zen_q, {"127.0.0.2"}));
        auto cfg = config(base);
        Dialogue d;
        d.rcpts = {"b@example.org", "c@example.org"};
        auto r = run(cfg, &fake, d);
        REQUIRE(r.refused_at);
        CHECK(*r.refused_at == "rcpt");
        REQUIRE(r.refused_rcpts.size() == 2);
        const auto& reply = r.refused_rcpts[0].second.reply;
        CHECK(reply.code == "554");
        CHECK(reply.xcode == "5.7.1");
        CHECK(reply.text == "Service unavailable; client [203.0.113.9] blocked using zen.example");
        CHECK_THAT(r.refused_rcpts[0].second.reason,
                   Contains("dnsbl zen: 203.0.113.9 listed with 127.0.0.2"));
        // Asked again at RCPT (the connect-stage answer is gone by then), but once per message.
        CHECK(fake.count(zen_q, RrType::a) == 2);
    }
    SECTION("an authenticated client on a listed address can still submit") {
        fake.set(zen_q, RrType::a, codes(zen_q, {"127.0.0.5"}));
        Dialogue d;
        d.auth_user = "alice";
        auto r = run(config(base), &fake, d);
        CHECK_FALSE(r.refused_at);
        CHECK(r.refused_rcpts.empty());
        CHECK(r.verdict.action == core::Action::accept);
        CHECK(symbols_with(r.verdict, "RBL_").empty());  // connect-stage findings dropped for outbound
    }
    SECTION("a listing without a reject code only scores") {
        fake.set(zen_q, RrType::a, codes(zen_q, {"127.0.0.10"}));
        auto r = run(config(base), &fake);
        CHECK_FALSE(r.refused_at);
        CHECK(r.refused_rcpts.empty());
        CHECK(has_symbol(r.verdict, "RBL_ZEN_PBL"));
    }
    SECTION("an answer not known at RCPT never holds RCPT up") {
        // The connect-stage lookup times out; at RCPT the repeated one is still pending.
        fake.never_answer(zen_q, RrType::a);
        auto start = std::chrono::steady_clock::now();
        auto r =
            run(config(base + "[dns]\nstage_budget_ms = 50\n"), &fake, {}, &core::SystemClock::instance());
        auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)
                .count();
        CHECK(r.refused_rcpts.empty());
        CHECK(options_of(r.verdict, "RBL_TEMPFAIL") == Strings{"zen:timeout"});
        CHECK(ms < 50 + 500);
    }
    SECTION("at connect when asked to with a custom reply") {
        fake.set(zen_q, RrType::a, codes(zen_q, {"127.0.0.6"}));
        auto cfg =
            config(zen("reject_at = \"connect\"\nreply = \"550 5.7.1 {list} says {code} for {ip}\"\n"));
        auto r = run(cfg, &fake);
        REQUIRE(r.refused_at);
        // The engine answers a connect-stage forced reject at connect today (the lead may move it to
        // MAIL, once the direction is known); either way nothing gets to RCPT.
        CHECK((*r.refused_at == "connect" || *r.refused_at == "mail"));
        CHECK(r.refusal.reply.code == "550");
        CHECK(r.refusal.reply.text == "zen says 127.0.0.6 for 203.0.113.9");
        CHECK(fake.count(zen_q, RrType::a) == 1);
    }
}

TEST_CASE("dnsbl makes no lookups for trusted clients", "[dnsbl]") {
    dns::FakeResolver fake;  // nothing programmed: any lookup would throw
    auto cfg = config(std::string(lists_conf), "trusted_networks = [\"203.0.113.0/24\", \"127.0.0.0/8\"]\n");
    Dialogue d;
    for (auto ip : {"203.0.113.9", "127.0.0.1", "not an address: local submission"}) {
        d.ip = ip;
        auto r = run(cfg, &fake, d);
        CHECK(r.verdict.symbols.empty());
        CHECK(report_of(r.verdict, "dnsbl").empty());
    }
    CHECK(fake.queries().empty());
}

TEST_CASE("dnsbl issues every list before waiting for any", "[dnsbl]") {
    auto cfg = config(std::string(lists_conf) + R"(
[[checks.dnsbl.list]]
name = "third"
zone = "third.example"
[dns]
stage_budget_ms = 2000
)");
    dns::FakeResolver fake;
    const std::string third_q = "9.113.0.203.third.example";
    fake.set(zen_q, RrType::a, codes(zen_q, {"127.0.0.2"}));
    fake.set(wl_q, RrType::a, codes(wl_q, {"127.0.10.3"}));
    fake.set(third_q, RrType::a, codes(third_q, {"127.0.0.2"}));
    for (auto q : {std::string(zen_q), std::string(wl_q), third_q}) fake.hold(q, RrType::a);
    // Each answer comes 100 ms after the LAST of the three was asked: a check that waited for one
    // before asking the next would see its first answer only at the deadline (2 s), and time out.
    std::thread releaser([&] {
        auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (fake.queries().size() < 3 && std::chrono::steady_clock::now() < give_up) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        for (auto q : {std::string(zen_q), std::string(wl_q), third_q}) fake.release(q, RrType::a);
    });
    auto start = std::chrono::steady_clock::now();
    auto r = run(cfg, &fake, {}, &core::SystemClock::instance());
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)
                  .count();
    releaser.join();
    CHECK(symbols_with(r.verdict, "RBL_") == Strings{"RBL_THIRD", "RBL_ZEN_SBL"});
    CHECK(has_symbol(r.verdict, "DNSWL_HI"));
    CHECK(ms < 1000);
}

TEST_CASE("dnsbl a list that never answers costs at most the stage budget", "[dnsbl]") {
    auto cfg = config(std::string(lists_conf) + "[dns]\nstage_budget_ms = 100\n");
    dns::FakeResolver fake;
    fake.never_answer(zen_q, RrType::a);
    fake.set(wl_q, RrType::a, codes(wl_q, {"127.0.10.2"}));
    auto start = std::chrono::steady_clock::now();
    auto r = run(cfg, &fake, {}, &core::SystemClock::instance());
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)
                  .count();
    CHECK(options_of(r.verdict, "RBL_TEMPFAIL") == Strings{"zen:timeout"});
    CHECK(has_symbol(r.verdict, "DNSWL_MED"));
    CHECK(ms >= 100);
    CHECK(ms < 100 + 400);
}

TEST_CASE("dnsbl config mistakes are reported with their position", "[dnsbl][config]") {
    auto error_of = [](const std::string& body) -> std::string {
        try {
            engine::load_config_string("[checks.dnsbl]\nenabled = true\n[[checks.dnsbl.list]]\n" + body,
                                       "test.conf");
        } catch (const check::ConfigError& e) {
            return e.what();
        }
        return "(no error)";
    };
    const std::string ok = "name = \"zen\"\nzone = \"zen.example\"\n";
    CHECK(error_of(ok) == "(no error)");
    CHECK_THAT(error_of("name = \"zen\"\nzone = \"zen..example\"\n"),
               Contains("test.conf:5:8: [checks.dnsbl.list[0]] zone: has an empty label"));
    CHECK_THAT(error_of("name = \"zen\"\nzone = \"zen example\"\n"),
               Contains("zone: 'zen example' is not a DNS name"));
    CHECK_THAT(error_of("name = \"zen\"\n"), Contains("zone: is required"));
    CHECK_THAT(error_of("name = \"zen\"\nipv6 = true\nzone = \"" + std::string(60, 'a') + "." +
                        std::string(60, 'b') + "." + std::string(60, 'c') + ".example\"\n"),
               Contains("zone: is too long"));
    CHECK_THAT(error_of("zone = \"zen.example\"\n"), Contains("name: is required"));
    CHECK_THAT(error_of("name = \"Zen!\"\nzone = \"zen.example\"\n"), Contains("name: is required: 1 to 32"));
    CHECK_THAT(error_of(ok + "colour = \"red\"\n"),
               Contains("test.conf:6:10: unknown key 'colour' in [checks.dnsbl.list[0]]"));
    CHECK_THAT(error_of(ok + "type = \"maybe\"\n"), Contains("'maybe' is not one of: block, allow"));
    CHECK_THAT(
        error_of(ok + "[checks.dnsbl.list.codes]\n\"128.0.0.2\" = \"RBL_X\"\n"),
        Contains(
            "test.conf:7:15: [checks.dnsbl.list[0].codes] 128.0.0.2: a code is an address in 127.0.0.0/8"));
    CHECK_THAT(error_of(ok + "[checks.dnsbl.list.codes]\n\"127.0.0.x\" = \"RBL_X\"\n"),
               Contains("127.0.0.x: a code is"));
    CHECK_THAT(error_of(ok + "[checks.dnsbl.list.codes]\n\"127.0.0.7-4\" = \"RBL_X\"\n"),
               Contains("127.0.0.7-4: a code is"));
    CHECK_THAT(error_of(ok + "[checks.dnsbl.list.codes]\n\"127.0.0.2\" = \"rbl_lower\"\n"),
               Contains("'rbl_lower' is not a symbol name"));
    CHECK_THAT(error_of(ok + "[checks.dnsbl.list.codes]\n\"127.0.0.2\" = 5\n"),
               Contains("127.0.0.2: must be a string"));
    CHECK_THAT(error_of(ok + "bitmask = true\n[checks.dnsbl.list.codes]\n\"0\" = \"RBL_X\"\n"),
               Contains("bit value"));
    CHECK_THAT(error_of(ok + "bitmask = true\n[checks.dnsbl.list.codes]\n\"16777216\" = \"RBL_X\"\n"),
               Contains("bit value"));
    CHECK_THAT(error_of(ok + "reject_codes = [\"10.0.0.2\"]\n"),
               Contains("'10.0.0.2' is not a code in 127.0.0.0/8"));
    CHECK_THAT(error_of(ok + "refused_codes = [\"nope\"]\n"), Contains("'nope' is not a code or range"));
    CHECK_THAT(error_of(ok + "type = \"allow\"\nreject_codes = [\"127.0.0.2\"]\n"),
               Contains("an allow list cannot reject"));
    CHECK_THAT(error_of(ok + "levels = true\n"), Contains("only allow lists have trust levels"));
    CHECK_THAT(error_of(ok + "reject_at = \"data\"\n"), Contains("'data' is not one of: rcpt, connect"));
    CHECK_THAT(error_of(ok + "reply = \"250 ok\"\n"), Contains("reply: expected \"5xx 5.x.y text\""));
    CHECK_THAT(error_of(ok + "reply = \"554 5.7.1 100% spam\"\n"), Contains("reply: expected"));
    CHECK_THAT(error_of(ok + "[checks.dnsbl.list.weights]\nRBL_OTHER = 1.0\n"),
               Contains("RBL_OTHER: is not a symbol of this list"));
    CHECK_THAT(error_of(ok + "symbol = \"RBL_TEMPFAIL\"\n"), Contains("symbol RBL_TEMPFAIL is reserved"));
    CHECK_THAT(error_of(ok + "[[checks.dnsbl.list]]\nname = \"zen\"\nzone = \"b.example\"\n"),
               Contains("'zen' is used by another list"));
    CHECK_THAT(
        error_of(
            ok +
            "[checks.dnsbl.list.codes]\n\"127.0.0.2\" = \"RBL_X\"\n[[checks.dnsbl.list]]\nname = \"two\"\n"
            "zone = \"b.example\"\nweight = 3.0\n[checks.dnsbl.list.codes]\n\"127.0.0.2\" = \"RBL_X\"\n"),
        Contains("symbol RBL_X has weight 3 here but 2 in list zen"));
    std::string many;
    for (int i = 0; i <= 32; ++i) {
        many += "[[checks.dnsbl.list]]\nname = \"l" + std::to_string(i) + "\"\nzone = \"l.example\"\n";
    }
    CHECK_THAT(error_of(ok + many), Contains("at most 32 lists"));
}

TEST_CASE("dnsbl list symbols are known to the config and can be rescored", "[dnsbl][config]") {
    auto cfg = config(std::string(lists_conf) + "[scores]\nRBL_ZEN_CSS = 7.5\nDNSWL_HI = -9\n");
    REQUIRE(cfg->symbol("RBL_ZEN_SBL") != nullptr);
    CHECK(cfg->weight("RBL_ZEN_SBL") == 4.0);
    CHECK(cfg->weight("RBL_ZEN_CSS") == 7.5);
    CHECK(cfg->weight("DNSWL_HI") == -9.0);
    CHECK(cfg->weight("DNSWL_LOW") == -0.7);
    CHECK(cfg->weight("RBL_QUERY_REFUSED") == 0.0);
    CHECK(cfg->weight("RBL_TEMPFAIL") == 0.0);
    CHECK_THAT(cfg->symbol("RBL_ZEN_XBL")->description, Contains("127.0.0.4-127.0.0.7"));
}
