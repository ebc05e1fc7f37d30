#include <catch2/catch.hpp>

#include "reputation/helo.hpp"
#include "reputation_fixture.hpp"

using namespace vigil;
using namespace vigil::test;
using Catch::Matchers::Contains;
using dns::RrType;
using dns::Status;
using Strings = std::vector<std::string>;

namespace {

constexpr std::string_view helo_conf = R"(
[checks.helo]
enabled = true
our_names = ["mail.ours.test", ".internal.ours.test"]
our_ips = ["192.0.2.0/24", "2001:db8:1::/48"]
)";

struct Helo {
    std::shared_ptr<const engine::Config> cfg = config(std::string(helo_conf));
    dns::FakeResolver fake;  // nothing programmed unless a test does: a lookup that was not wanted throws

    engine::ReplayResult say(std::string helo, std::string ip = "203.0.113.9") {
        Dialogue d;
        d.helo = std::move(helo);
        d.ip = std::move(ip);
        return run(cfg, &fake, d);
    }
    void resolves_as(std::string_view name, Status a, Status aaaa) {
        fake.set_status(name, RrType::a, a);
        fake.set_status(name, RrType::aaaa, aaaa);
    }
};

}  // namespace

TEST_CASE("helo names that need no lookup", "[helo]") {
    Helo t;
    struct Case {
        std::string helo;
        Strings symbols;
    };
    for (const auto& c : std::vector<Case>{
             {"localhost", {"HELO_NOT_FQDN"}},
             {"WIN-PC42", {"HELO_NOT_FQDN"}},
             {"bad_name.example.net", {"HELO_SYNTAX"}},
             {"-lead.example.net", {"HELO_SYNTAX"}},
             {"trail-.example.net", {"HELO_SYNTAX"}},
             {"two..dots.example", {"HELO_SYNTAX"}},
             {"sp ace.example", {"HELO_SYNTAX"}},
             {"caf\xc3\xa9.example", {"HELO_SYNTAX"}},
             {"1.2.3", {"HELO_SYNTAX"}},
             {"[not.an.ip]", {"HELO_SYNTAX"}},
             {"[203.0.113.999]", {"HELO_SYNTAX"}},
             {"[203.0.113.9", {"HELO_SYNTAX"}},
             {std::string(64, 'a') + ".example.net", {"HELO_SYNTAX"}},
             {"203.0.113.9", {"HELO_BARE_IP"}},
             {"198.51.100.1", {"HELO_BARE_IP", "HELO_IP_LITERAL_MISMATCH"}},
             {"[203.0.113.9]", {}},
             {"[198.51.100.1]", {"HELO_IP_LITERAL_MISMATCH"}},
             {"[192.0.2.25]", {"HELO_CLAIMS_OURS"}},
             {"192.0.2.25", {"HELO_BARE_IP", "HELO_CLAIMS_OURS"}},
             {"mx.ours.test", {"HELO_CLAIMS_OURS"}},  // [server] hostname
             {"MAIL.Ours.Test.", {"HELO_CLAIMS_OURS"}},
             {"db.internal.ours.test", {"HELO_CLAIMS_OURS"}},
         }) {
        INFO(c.helo);
        auto r = t.say(c.helo);
        CHECK(symbols_with(r.verdict, "HELO_") == [&] {
            auto s = c.symbols;
            std::sort(s.begin(), s.end());
            return s;
        }());
    }
    CHECK(t.fake.queries().empty());
}

TEST_CASE("helo symbol weights and printable options", "[helo]") {
    Helo t;
    auto r = t.say("198.51.100.1");
    CHECK(find_symbol(r.verdict, "HELO_BARE_IP")->score == 3.0);
    CHECK(find_symbol(r.verdict, "HELO_IP_LITERAL_MISMATCH")->score == 3.0);
    CHECK(options_of(r.verdict, "HELO_BARE_IP") == Strings{"198.51.100.1"});
    auto bad = t.say(std::string("evil\r\nname_") + std::string(300, 'x'));
    auto opts = options_of(bad.verdict, "HELO_SYNTAX");
    REQUIRE(opts.size() == 1);
    CHECK(opts[0].rfind("evil\\x0d\\x0aname_", 0) == 0);
    CHECK(opts[0].size() <= reputation::max_reported_helo + 3);
    CHECK(find_symbol(t.say("[192.0.2.1]").verdict, "HELO_CLAIMS_OURS")->score == 5.0);
}

TEST_CASE("helo IPv6 literals", "[helo]") {
    Helo t;
    CHECK(symbols_with(t.say("[IPv6:2001:db8::7]", "2001:db8::7").verdict, "HELO_").empty());
    CHECK(symbols_with(t.say("[IPv6:2001:db8::8]", "2001:db8::7").verdict, "HELO_") ==
          Strings{"HELO_IP_LITERAL_MISMATCH"});
    CHECK(symbols_with(t.say("[IPv6:2001:db8:1::25]", "2001:db8::7").verdict, "HELO_") ==
          Strings{"HELO_CLAIMS_OURS"});
    CHECK(symbols_with(t.say("[203.0.113.9]", "::ffff:203.0.113.9").verdict, "HELO_").empty());
}

TEST_CASE("helo name lookups", "[helo]") {
    Helo t;
    const std::string name = "client.example.net";
    SECTION("an address record means nothing to report") {
        t.fake.set(name, RrType::a, answer_of({dns::fake::address(name, "198.51.100.1")}));
        t.fake.set_status(name, RrType::aaaa, Status::nodata);
        auto r = t.say("Client.Example.NET");
        CHECK(symbols_with(r.verdict, "HELO_").empty());
        CHECK(t.fake.was_queried(name, RrType::a));
        CHECK(t.fake.was_queried(name, RrType::aaaa));
        CHECK_THAT(report_of(r.verdict, "helo"), Contains(R"("a":"answer","aaaa":"nodata")"));
    }
    SECTION("only AAAA is enough") {
        t.fake.set_status(name, RrType::a, Status::nodata);
        t.fake.set(name, RrType::aaaa, answer_of({dns::fake::address(name, "2001:db8::5")}));
        CHECK(symbols_with(t.say(name).verdict, "HELO_").empty());
    }
    SECTION("NXDOMAIN") {
        t.resolves_as(name, Status::nxdomain, Status::nxdomain);
        auto r = t.say(name);
        CHECK(symbols_with(r.verdict, "HELO_") == Strings{"HELO_NO_RESOLVE"});
        CHECK(find_symbol(r.verdict, "HELO_NO_RESOLVE")->score == 1.0);
        CHECK(options_of(r.verdict, "HELO_NO_RESOLVE") == Strings{name, "A:nxdomain", "AAAA:nxdomain"});
    }
    SECTION("NXDOMAIN settles it even if the other lookup failed") {
        t.resolves_as(name, Status::nxdomain, Status::timeout);
        CHECK(symbols_with(t.say(name).verdict, "HELO_") == Strings{"HELO_NO_RESOLVE"});
    }
    SECTION("the name exists without any address") {
        t.resolves_as(name, Status::nodata, Status::nodata);
        CHECK(symbols_with(t.say(name).verdict, "HELO_") == Strings{"HELO_NO_RESOLVE"});
    }
    SECTION("timeout servfail and malformed are a temperror and never a finding") {
        for (auto [a, aaaa] :
             {std::pair{Status::timeout, Status::timeout}, std::pair{Status::servfail, Status::nodata},
              std::pair{Status::nodata, Status::malformed}}) {
            t.resolves_as(name, a, aaaa);
            auto r = t.say(name);
            CHECK(symbols_with(r.verdict, "HELO_") == Strings{"HELO_TEMPERROR"});
            CHECK(find_symbol(r.verdict, "HELO_TEMPERROR")->score == 0.0);
            CHECK(r.verdict.score == 0.0);
        }
    }
    SECTION("a lookup that never answers costs the budget and no more") {
        auto cfg = config(std::string(helo_conf) + "[dns]\nstage_budget_ms = 100\n");
        t.fake.never_answer(name, RrType::a);
        t.fake.never_answer(name, RrType::aaaa);
        Dialogue d;
        d.helo = name;
        auto start = std::chrono::steady_clock::now();
        auto r = run(cfg, &t.fake, d, &core::SystemClock::instance());
        auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)
                .count();
        CHECK(options_of(r.verdict, "HELO_TEMPERROR") == Strings{name, "A:timeout", "AAAA:timeout"});
        CHECK(ms >= 100);
        CHECK(ms < 100 + 400);
    }
    SECTION("resolve = false makes no lookup") {
        auto cfg = config("[checks.helo]\nenabled = true\nresolve = false\n");
        Dialogue d;
        d.helo = name;
        CHECK(symbols_with(run(cfg, &t.fake, d).verdict, "HELO_").empty());
        CHECK(t.fake.queries().empty());
    }
}

TEST_CASE("helo trusted clients and no HELO are left alone", "[helo]") {
    Helo t;
    CHECK(symbols_with(t.say("mx.ours.test", "127.0.0.1").verdict, "HELO_").empty());
    CHECK(symbols_with(t.say("localhost", "127.0.0.1").verdict, "HELO_").empty());
    CHECK(symbols_with(t.say("").verdict, "HELO_").empty());
    CHECK(report_of(t.say("").verdict, "helo").empty());
    CHECK(t.fake.queries().empty());
    SECTION("an authenticated client's HELO findings are dropped") {
        Dialogue d;
        d.helo = "localhost";
        d.auth_user = "alice";
        CHECK(run(t.cfg, &t.fake, d).verdict.symbols.empty());
    }
}

TEST_CASE("helo host name syntax", "[helo]") {
    using reputation::valid_hostname;
    CHECK(valid_hostname("mx.example.net"));
    CHECK(valid_hostname("mx.example.net."));
    CHECK(valid_hostname("localhost"));
    CHECK(valid_hostname("1a.example"));
    CHECK(valid_hostname("xn--caf-dma.example"));
    CHECK(valid_hostname(std::string(63, 'a') + ".example"));
    CHECK_FALSE(valid_hostname(std::string(64, 'a') + ".example"));
    std::string long_name;
    while (long_name.size() < 250) long_name += "abcdefghi.";
    CHECK_FALSE(valid_hostname(long_name + "example"));
    CHECK_FALSE(valid_hostname(""));
    CHECK_FALSE(valid_hostname("."));
    CHECK_FALSE(valid_hostname("a..b"));
    CHECK_FALSE(valid_hostname("under_score.example"));
    CHECK_FALSE(valid_hostname("mx.123"));
}

TEST_CASE("helo config mistakes are reported", "[helo][config]") {
    auto error_of = [](const std::string& body) -> std::string {
        try {
            engine::load_config_string("[checks.helo]\nenabled = true\n" + body, "test.conf");
        } catch (const check::ConfigError& e) {
            return e.what();
        }
        return "(no error)";
    };
    CHECK(error_of("our_names = [\"mx.example.net\", \".example.org\"]\nour_ips = [\"192.0.2.1\"]\n") ==
          "(no error)");
    CHECK_THAT(error_of("our_names = [\"bad name\"]\n"), Contains("test.conf:3:1"));
    CHECK_THAT(error_of("our_names = [\"bad name\"]\n"), Contains("'bad name' is not a host name"));
    CHECK_THAT(error_of("our_ips = [\"192.0.2.1/8\"]\n"), Contains("'192.0.2.1/8' is not a network"));
    CHECK_THAT(error_of("resolve = \"yes\"\n"), Contains("resolve: must be true or false"));
    CHECK_THAT(error_of("colour = 1\n"), Contains("test.conf:3:10: unknown key 'colour' in [checks.helo]"));
}
