#include <catch2/catch.hpp>

#include "engine/access_list.hpp"
#include "engine/config.hpp"
#include "engine/replay.hpp"
#include "fakes.hpp"

using namespace vigil;
using namespace vigil::engine;
using namespace vigil::check;
using Field = AccessRule::Field;

TEST_CASE("access address patterns", "[access]") {
    CHECK(access_pattern_matches(Field::sender, "user@example.com", "User@Example.com"));
    CHECK_FALSE(access_pattern_matches(Field::sender, "user@example.com", "other@example.com"));
    CHECK(access_pattern_matches(Field::sender, "@example.com", "x@example.com"));
    CHECK_FALSE(access_pattern_matches(Field::sender, "@example.com", "x@sub.example.com"));
    CHECK(access_pattern_matches(Field::sender, "@.example.com", "x@sub.example.com"));
    CHECK_FALSE(access_pattern_matches(Field::sender, "@.example.com", "x@example.com"));
    CHECK_FALSE(access_pattern_matches(Field::sender, "@.example.com", "x@badexample.com"));
    CHECK(access_pattern_matches(Field::rcpt, "abuse@", "abuse@anything.example"));
    CHECK(access_pattern_matches(Field::sender, "<>", ""));
    CHECK_FALSE(access_pattern_matches(Field::sender, "<>", "a@b"));
    CHECK_FALSE(access_pattern_matches(Field::sender, "@example.com", ""));
    CHECK(access_pattern_matches(Field::helo, ".example.net", "mx1.Example.NET"));
    CHECK(access_pattern_matches(Field::helo, "mx.example.net", "MX.example.net"));
    CHECK_FALSE(access_pattern_matches(Field::helo, "mx.example.net", "mx.example.net.evil"));
}

TEST_CASE("access rules act at their stage with their own reply", "[access]") {
    auto cfg = load_config_string(R"(
[[checks.access.rule]]
match = "ip"
pattern = "198.51.100.0/24"
action = "reject"
reply = "554 5.7.1 Go away"
[[checks.access.rule]]
match = "sender"
pattern = "@spam.example"
action = "tempfail"
[[checks.access.rule]]
match = "sender"
pattern = "@hold.example"
action = "quarantine"
[[checks.access.rule]]
match = "sender"
pattern = "boss@example.com"
action = "accept"
)");
    test::FakeClock clock;
    ReplayInput in;
    in.ip = core::IpAddress::parse("203.0.113.9");
    in.helo = "client.example";
    in.rcpts = {"x@example.org"};
    in.message = "From: a@b\r\n\r\nXJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n";

    SECTION("ip reject at connect with the rule's reply") {
        in.ip = core::IpAddress::parse("198.51.100.77");
        Session s(cfg, Services{&clock});
        auto r = replay(s, in);
        REQUIRE(r.refused_at);
        CHECK(*r.refused_at == "connect");
        CHECK(r.refusal.reply.code == "554");
        CHECK(r.refusal.reply.text == "Go away");
    }
    SECTION("sender tempfail at MAIL") {
        in.mail_from = "x@spam.example";
        Session s(cfg, Services{&clock});
        auto r = replay(s, in);
        REQUIRE(r.refused_at);
        CHECK(*r.refused_at == "mail");
        CHECK(r.refusal.kind == StageResult::Kind::tempfail);
        CHECK(r.refusal.reply.code == "451");
    }
    SECTION("quarantine is decided at end of message, stronger than GTUBE's reject? no: reject wins") {
        in.mail_from = "x@hold.example";
        Session s(cfg, Services{&clock});
        CHECK(replay(s, in).verdict.action == core::Action::reject);
    }
    SECTION("quarantine without GTUBE") {
        in.mail_from = "x@hold.example";
        in.message = "From: a@b\r\n\r\nhello\r\n";
        Session s(cfg, Services{&clock});
        auto v = replay(s, in).verdict;
        CHECK(v.action == core::Action::quarantine);
        CHECK(v.quarantine_reason.find("@hold.example") != std::string::npos);
    }
    SECTION("an allow rule does not outvote another check's forced reject") {
        in.mail_from = "boss@example.com";
        Session s(cfg, Services{&clock});
        CHECK(replay(s, in).verdict.action == core::Action::reject);
    }
}
