#include <catch2/catch.hpp>

#include "auth/spf/spf_check.hpp"
#include "reputation/reputation_fixture.hpp"

using namespace vigil;
using namespace vigil::test;
using Catch::Matchers::Contains;
using dns::RrType;
using dns::Status;
namespace fake = dns::fake;

namespace {

constexpr std::string_view spf_on = "[checks.spf]\nenabled = true\n";

std::string header(const core::Verdict& v, std::string_view name) {
    for (const auto& e : v.edits) {
        if (e.name == name && e.kind != core::HeaderEdit::Kind::remove) return e.value;
    }
    return {};
}

// The Authentication-Results value unfolded (CRLF/LF + WSP becomes one space).
std::string unfolded_ar(const core::Verdict& v) {
    std::string out;
    for (char c : auth_results(v)) {
        if (c == '\r' || c == '\n') continue;
        if (c == '\t') c = ' ';
        out += c;
    }
    return out;
}

// Sender a@example.net from 203.0.113.9 (the fixture's dialogue), HELO mx.example.net.
struct Setup {
    dns::FakeResolver dns;
    Dialogue d;
    Setup(std::string record, std::string helo_record = "v=spf1 a -all") {
        d.helo = "mx.example.net";
        dns.set_records("example.net", RrType::txt, {fake::txt("example.net", {std::move(record)})});
        dns.set_records("mx.example.net", RrType::txt,
                        {fake::txt("mx.example.net", {std::move(helo_record)})});
        dns.set_records("mx.example.net", RrType::a, {fake::address("mx.example.net", "203.0.113.9")});
    }
};

}  // namespace

TEST_CASE("spf check: symbols, Authentication-Results, Received-SPF, report", "[spf][check]") {
    Setup s("v=spf1 ip4:203.0.113.0/24 -all");
    auto r = run(config(std::string(spf_on)), &s.dns, s.d);
    REQUIRE_FALSE(r.refused_at);
    CHECK(symbols_with(r.verdict, "SPF_") == std::vector<std::string>{"SPF_HELO_PASS", "SPF_PASS"});
    auto ar = unfolded_ar(r.verdict);
    CHECK_THAT(ar, Contains("spf=pass smtp.mailfrom=example.net"));
    CHECK_THAT(ar, Contains("spf=pass smtp.helo=mx.example.net"));
    auto rspf = header(r.verdict, "Received-SPF");
    CHECK_THAT(rspf,
               Contains(" pass (mx.test: domain of example.net designates 203.0.113.9 as permitted sender)"));
    CHECK_THAT(rspf, Contains("client-ip=203.0.113.9; envelope-from=a@example.net; helo=mx.example.net;"));
    CHECK_THAT(rspf, Contains("identity=mailfrom;"));
    CHECK_THAT(report_of(r.verdict, "spf"), Contains("\"result\":\"pass\""));
    CHECK_THAT(report_of(r.verdict, "spf"), Contains("\"mechanism\":\"ip4:203.0.113.0/24\""));
    CHECK_THAT(report_of(r.verdict, "spf_helo"), Contains("\"result\":\"pass\""));
}

TEST_CASE("spf check: a fail scores by default and rejects with 5.7.23 when configured", "[spf][check]") {
    Setup s("v=spf1 -all exp=why.example.net");
    auto r =
        run(config(std::string(spf_on) + "helo_check = false\nreceived_spf_header = false\n"), &s.dns, s.d);
    REQUIRE_FALSE(r.refused_at);
    CHECK(has_symbol(r.verdict, "SPF_FAIL"));
    CHECK_FALSE(has_symbol(r.verdict, "SPF_HELO_PASS"));
    CHECK(header(r.verdict, "Received-SPF").empty());
    CHECK_FALSE(s.dns.was_queried("why.example.net", RrType::txt));

    s.dns.set_records("why.example.net", RrType::txt, {fake::txt("why.example.net", {"%{i} is not ours"})});
    auto rej = run(config(std::string(spf_on) + "reject_on_fail = true\nexplanation = true\n"), &s.dns, s.d);
    REQUIRE(rej.refused_at);
    CHECK(*rej.refused_at == "mail");
    CHECK(rej.refusal.reply.code == "550");
    CHECK(rej.refusal.reply.xcode == "5.7.23");
    CHECK(rej.refusal.reply.text == "203.0.113.9 is not ours");
}

TEST_CASE("spf check: temperror and permerror reach the header apart", "[spf][check]") {
    Setup s("v=spf1 a:slow.example.net -all", "v=spf1 a:museum");
    s.dns.set_status("slow.example.net", RrType::a, Status::timeout);
    auto r = run(config(std::string(spf_on)), &s.dns, s.d);
    REQUIRE_FALSE(r.refused_at);
    CHECK(symbols_with(r.verdict, "SPF_") == std::vector<std::string>{"SPF_HELO_PERMERROR", "SPF_TEMPERROR"});
    CHECK_THAT(unfolded_ar(r.verdict), Contains("spf=temperror smtp.mailfrom=example.net"));
    CHECK_THAT(unfolded_ar(r.verdict), Contains("spf=permerror smtp.helo=mx.example.net"));
    CHECK_THAT(header(r.verdict, "Received-SPF"), Contains(" temperror ("));

    auto t = run(config(std::string(spf_on) + "tempfail_on_temperror = true\n"), &s.dns, s.d);
    REQUIRE(t.refused_at);
    CHECK(t.refusal.reply.code == "451");
    CHECK(t.refusal.reply.xcode == "4.4.3");
}

TEST_CASE("spf check: the null sender is checked as postmaster@HELO and reported as smtp.helo",
          "[spf][check]") {
    Setup s("v=spf1 -all");
    FakeClock clock;
    engine::Session session(config(std::string(spf_on)), engine::Services{&clock, &s.dns});
    engine::ReplayInput in;
    in.ip = core::IpAddress::parse("203.0.113.9");
    in.helo = "mx.example.net";
    in.mail_from = "";
    in.rcpts = {"b@example.org"};
    in.message = test_message;
    auto r = engine::replay(session, in);
    REQUIRE_FALSE(r.refused_at);
    CHECK(symbols_with(r.verdict, "SPF_") == std::vector<std::string>{"SPF_PASS"});
    CHECK_THAT(unfolded_ar(r.verdict), Contains("spf=pass smtp.helo=mx.example.net"));
    CHECK_THAT(header(r.verdict, "Received-SPF"), Contains("envelope-from=\"<>\"; helo=mx.example.net;"));
    CHECK_FALSE(s.dns.was_queried("example.net", RrType::txt));
}

TEST_CASE("spf check: outbound mail is not checked", "[spf][check]") {
    dns::FakeResolver none;
    Dialogue d;
    d.auth_user = "alice";
    auto r = run(config(std::string(spf_on)), &none, d);
    CHECK(symbols_with(r.verdict, "SPF_").empty());
    CHECK(none.queries().empty());
}

TEST_CASE("spf check: header values from the peer are quoted and printable", "[spf][check][malformed]") {
    auth::spf::Outcome o;
    o.result = auth::spf::Result::permerror;
    o.domain = "ex(ample).net";
    o.problem = "bad \"record\"";
    auto v = auth::spf::received_spf_value(o, *core::IpAddress::parse("192.0.2.1"), "a\"b@ex\x01.net",
                                           "he lo", "mx.test", "mailfrom");
    CHECK_THAT(v, Contains("envelope-from=\"a\\\"b@ex\\\\x01.net\";"));
    CHECK_THAT(v, Contains("helo=\"he lo\";"));
    CHECK_THAT(v, Contains("problem=\"bad \\\"record\\\"\";"));
    CHECK(v.find('\x01') == std::string::npos);
    CHECK(auth::spf::auth_result(o, "smtp.mailfrom", "a b") == "spf=permerror smtp.mailfrom=\"a b\"");
}
