// The DNSSEC status of the SPF record and DKIM key answers, from the resolver to the
// Authentication-Results comment and to the AuthFacts DMARC reads.
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "auth/dkim/dkim_fixture.hpp"
#include "auth/spf/evaluator.hpp"
#include "check/check.hpp"
#include "check/config_reader.hpp"
#include "engine/config.hpp"
#include "engine/replay.hpp"
#include "engine/session.hpp"
#include "fakes.hpp"
#include "fakes/fake_resolver.hpp"

using namespace vigil;
using dns::Dnssec;
using dns::RrType;

namespace {

dns::Answer txt_with(std::string_view name, std::string text, Dnssec status) {
    dns::Answer a;
    a.status = dns::Status::answer;
    a.dnssec = status;
    a.ttl = 300;
    a.records.push_back(dns::fake::txt(name, {std::move(text)}));
    return a;
}

// Records at end of message what SPF and DKIM left in the facts.
class FactsProbe final : public check::Check {
  public:
    explicit FactsProbe(std::vector<std::string>& seen) : seen_(seen) {}
    std::string_view name() const override { return "facts_probe"; }
    std::vector<check::Stage> stages() const override { return {check::Stage::eom}; }
    std::vector<core::SymbolDef> symbols() const override { return {}; }
    std::vector<std::string_view> depends_on() const override { return {"dkim"}; }
    void run(check::Context& ctx) const override {
        const auto& f = ctx.facts();
        auto mark = [](bool secure) { return secure ? "secure" : "-"; };
        if (f.spf) seen_.push_back("spf " + f.spf->domain + " " + mark(f.spf->dnssec_secure));
        if (f.spf_helo)
            seen_.push_back("spf_helo " + f.spf_helo->domain + " " + mark(f.spf_helo->dnssec_secure));
        for (const auto& d : f.dkim) seen_.push_back("dkim " + d.selector + " " + mark(d.dnssec_secure));
    }

  private:
    std::vector<std::string>& seen_;
};

std::string unfolded(std::string v) {
    std::string out;
    for (char c : v) {
        if (c == '\r' || c == '\n') continue;
        out += c == '\t' ? ' ' : c;
    }
    return out;
}

}  // namespace

TEST_CASE("spf: the Outcome carries the DNSSEC status of the checked domain's record answer",
          "[auth][ar][dnssec]") {
    dns::FakeResolver fake;
    fake.set("signed.example", RrType::txt,
             txt_with("signed.example", "v=spf1 redirect=unsigned.example", Dnssec::secure));
    fake.set("unsigned.example", RrType::txt, txt_with("unsigned.example", "v=spf1 -all", Dnssec::insecure));
    auto ip = *core::IpAddress::parse("192.0.2.1");
    auto eval = [&](std::string_view domain) {
        return auth::spf::evaluate(fake, std::chrono::steady_clock::now() + std::chrono::seconds(5), ip,
                                   auth::spf::Identity{"a", std::string(domain)}, "h.example", {});
    };
    auto top_signed = eval("signed.example");
    CHECK(top_signed.result == auth::spf::Result::fail);
    CHECK(top_signed.dnssec == Dnssec::secure);  // the redirect target's status does not count
    CHECK(eval("unsigned.example").dnssec == Dnssec::insecure);
    fake.set("bogus.example", RrType::txt,
             dns::Answer::failure(dns::Status::servfail, "DNSSEC bogus", Dnssec::bogus));
    auto bogus = eval("bogus.example");
    CHECK(bogus.result == auth::spf::Result::temperror);
    CHECK(bogus.dnssec == Dnssec::bogus);
}

TEST_CASE("dkim: key outcomes and signature results carry the key answer's DNSSEC status",
          "[auth][ar][dnssec]") {
    using namespace vigil::test::dkim;
    auto secure = txt_answer("s._domainkey.example.com", "v=DKIM1; p=");
    secure.dnssec = Dnssec::secure;
    auto k = key_from_answer(secure);
    CHECK(k.status == Result::pass);
    CHECK(k.dnssec == Dnssec::secure);
    CHECK(key_from_answer(dns::Answer::failure(dns::Status::nxdomain, "no", Dnssec::secure)).dnssec ==
          Dnssec::secure);
    CHECK(key_from_answer(txt_answer("s._domainkey.example.com", "v=DKIM1; p=")).dnssec == Dnssec::unchecked);

    SignatureResult r;
    r.result = Result::pass;
    r.domain = "example.com";
    r.selector = "s";
    r.algorithm = "rsa-sha256";
    r.dnssec = Dnssec::secure;
    CHECK(auth_result_text(r) ==
          "dkim=pass (dnssec: secure) header.d=example.com header.s=s header.a=rsa-sha256");
    r.result = Result::fail;
    r.detail = "body hash did not verify";
    CHECK(auth_result_text(r) ==
          "dkim=fail (dnssec: secure) (body hash did not verify) header.d=example.com header.s=s "
          "header.a=rsa-sha256");
    r.dnssec = Dnssec::insecure;
    CHECK(auth_result_text(r) ==
          "dkim=fail (body hash did not verify) header.d=example.com header.s=s header.a=rsa-sha256");
}

TEST_CASE("the engine: DNSSEC comments in Authentication-Results and dnssec_secure in the facts",
          "[auth][ar][dnssec]") {
    using namespace vigil::test::dkim;
    auto rsa = make_key(KeyType::rsa, "example.com", "sel");
    auto ed = make_key(KeyType::ed25519, "example.com", "ed");
    const std::string body =
        "From: Joe <joe@example.com>\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nHello.\r\n";
    auto signed_msg = sign_message(body, {rsa.signing, ed.signing}, SignParams{});
    REQUIRE(signed_msg.rfind("DKIM-Signature:", 0) == 0);

    dns::FakeResolver fake;
    fake.set("example.com", RrType::txt,
             txt_with("example.com", "v=spf1 ip4:203.0.113.0/24 -all", Dnssec::secure));
    fake.set("mx.example.net", RrType::txt,
             txt_with("mx.example.net", "v=spf1 ip4:203.0.113.9 -all", Dnssec::unchecked));
    auto key = txt_answer("sel._domainkey.example.com", rsa.record);
    key.dnssec = Dnssec::secure;
    fake.set("sel._domainkey.example.com", RrType::txt, key);
    fake.set("ed._domainkey.example.com", RrType::txt, txt_answer("ed._domainkey.example.com", ed.record));

    auto cfg = std::const_pointer_cast<engine::Config>(engine::load_config_string(
        "[server]\nauthserv_id = \"mx.test\"\nhostname = \"mx.ours.test\"\n"
        "[checks.spf]\nenabled = true\nreceived_spf_header = false\n[checks.dkim]\nenabled = true\n"));
    std::vector<std::string> seen;
    cfg->checks.push_back(std::make_unique<FactsProbe>(seen));
    check::ConfigErrors errors("test");
    engine::order_checks(*cfg, errors);
    errors.raise_if_any();

    vigil::test::FakeClock clock;
    engine::Session s(cfg, engine::Services{&clock, &fake});
    engine::ReplayInput in;
    in.ip = core::IpAddress::parse("203.0.113.9");
    in.helo = "mx.example.net";
    in.mail_from = "joe@example.com";
    in.rcpts = {"b@example.org"};
    in.message = signed_msg;
    auto r = engine::replay(s, in);
    CHECK(fake.unexpected().empty());

    std::string ar;
    for (const auto& e : r.verdict.edits) {
        if (e.name == "Authentication-Results" && e.kind == core::HeaderEdit::Kind::insert_top) ar = e.value;
    }
    INFO(ar);
    CHECK(ar.rfind(" mx.test;\r\n\tspf=pass (dnssec: secure) smtp.mailfrom=example.com;\r\n\tspf=pass "
                   "smtp.helo=mx.example.net;"
                   "\r\n\tdkim=pass (dnssec: secure) header.d=example.com header.i=@example.com",
                   0) == 0);
    auto flat = unfolded(ar);
    CHECK(flat.find("header.s=sel header.a=rsa-sha256 header.b=\"") != std::string::npos);
    CHECK(flat.find(
              "; dkim=pass header.d=example.com header.i=@example.com header.s=ed header.a=ed25519-sha256") !=
          std::string::npos);
    std::sort(seen.begin(), seen.end());
    CHECK(seen == std::vector<std::string>{"dkim ed -", "dkim sel secure", "spf example.com secure",
                                           "spf_helo mx.example.net -"});
}
