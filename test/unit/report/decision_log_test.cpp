#include <catch2/catch.hpp>

#include "engine/actions.hpp"
#include "engine/config.hpp"
#include "report/decision_log.hpp"

using namespace vigil;

namespace {

core::Envelope sample_env() {
    core::Envelope env;
    env.queue_id = "4F1A2B";
    env.client_ip = core::IpAddress::parse("192.0.2.1");
    env.helo = "mx.example.net";
    env.mail_from = "a@example.net";
    env.rcpt_count = 2;
    return env;
}

core::Verdict sample_verdict() {
    core::Verdict v;
    v.action = core::Action::add_header;
    v.score = 7.2;
    v.reject_threshold = 15;
    v.symbols = {{"RBL_X", 5.0, {"127.0.0.2"}}, {"SPF_SOFTFAIL", 2.2, {}}};
    return v;
}

}  // namespace

TEST_CASE("the text decision line", "[log]") {
    auto line = report::format_decision(report::LogFormat::text, sample_env(), sample_verdict(), 3);
    CHECK(line ==
          "4F1A2B: inbound action=add_header score=7.20/15.00 symbols=RBL_X(5.00),SPF_SOFTFAIL(2.20) "
          "ip=192.0.2.1 helo=mx.example.net from=<a@example.net> rcpts=2 ms=3");
}

TEST_CASE("peer data in the log line is printable and bounded", "[log]") {
    auto env = sample_env();
    env.queue_id.clear();
    env.helo = std::string("evil\nvigil-milter[1]: FAKE: inbound action=accept", 48) + std::string(5000, 'A');
    env.mail_from = std::string("x\0y\xff@z", 6);
    auto line = report::format_decision(report::LogFormat::text, env, sample_verdict(), 1);
    CHECK(line.rfind("NOQUEUE: ", 0) == 0);
    CHECK(line.find('\n') == std::string::npos);
    CHECK(line.find("evil\\x0avigil-milter") != std::string::npos);
    CHECK(line.find("from=<x\\x00y\\xff@z>") != std::string::npos);
    CHECK(line.size() < 700);
}

TEST_CASE("the JSON decision line", "[log]") {
    auto env = sample_env();
    env.helo = "quote\"back\\slash";
    auto line = report::format_decision(report::LogFormat::json, env, sample_verdict(), 3);
    CHECK(
        line ==
        "{\"queue_id\":\"4F1A2B\",\"direction\":\"inbound\",\"action\":\"add_header\",\"score\":7.20,"
        "\"reject_score\":15.00,\"symbols\":[{\"name\":\"RBL_X\",\"score\":5.00,\"options\":[\"127.0.0.2\"]},"
        "{\"name\":\"SPF_SOFTFAIL\",\"score\":2.20,\"options\":[]}],\"ip\":\"192.0.2.1\","
        "\"helo\":\"quote\\\"back\\\\\\\\slash\",\"from\":\"a@example.net\",\"rcpts\":2,\"ms\":3}");
}

TEST_CASE("early refusal lines", "[log]") {
    auto env = sample_env();
    auto line = report::format_early_decision(report::LogFormat::text, env, "rcpt", "reject",
                                              {"550", "5.7.1", "No"}, "access rule", "bad@example.org");
    CHECK(line ==
          "4F1A2B: reject at rcpt reply=\"550 5.7.1 No\" reason=\"access rule\" ip=192.0.2.1 "
          "helo=mx.example.net from=<a@example.net> rcpt=<bad@example.org>");
}

TEST_CASE("header edits: forged Authentication-Results removed - ours on top - junk headers", "[actions]") {
    auto cfg = engine::load_config_string(
        "[server]\nauthserv_id = \"mx.vigil.test\"\n[headers]\nsubject_tag = \"[SPAM]\"\n");
    core::Message msg;
    msg.add_header("Authentication-Results", " other.example; spf=pass");
    msg.add_header("Authentication-Results", " MX.Vigil.Test; dkim=pass");
    msg.add_header("Subject", " hello");
    msg.add_header("Authentication-Results", " (c) mx.vigil.test; spf=pass");
    core::Envelope env;
    auto v = sample_verdict();
    auto edits = engine::header_edits(*cfg, env, msg, v, {});
    using K = core::HeaderEdit::Kind;
    REQUIRE(edits.size() == 7);
    CHECK((edits[0].kind == K::remove && edits[0].index == 3));  // last first
    CHECK((edits[1].kind == K::remove && edits[1].index == 2));
    CHECK((edits[2].kind == K::insert_top && edits[2].value == " mx.vigil.test; none"));
    CHECK((edits[3].name == "X-Spam-Flag" && edits[3].value == " YES"));
    CHECK((edits[4].name == "X-Spam-Score" && edits[4].value == " 7.20"));
    CHECK(edits[5].value == " Yes, score=7.20 required=6.00 tests=RBL_X,SPF_SOFTFAIL");
    CHECK((edits[6].kind == K::change && edits[6].name == "Subject" && edits[6].value == " [SPAM] hello"));

    SECTION("rejected mail gets no edits") {
        v.action = core::Action::reject;
        CHECK(engine::header_edits(*cfg, env, msg, v, {}).empty());
    }
    SECTION("accepted outbound mail: forged fields still removed, no A-R of ours") {
        v.action = core::Action::accept;
        env.direction = core::Direction::outbound;
        auto e = engine::header_edits(*cfg, env, msg, v, {});
        REQUIRE(e.size() == 2);
        CHECK(e[0].kind == K::remove);
    }
}
