#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

#include "auth/dmarc/dmarc_check.hpp"
#include "report/dmarc_store.hpp"
#include "reputation/reputation_fixture.hpp"

using namespace vigil;
using namespace vigil::test;
using Catch::Matchers::Contains;
using dns::RrType;
using dns::Status;
namespace fake = dns::fake;

namespace {

constexpr std::string_view dmarc_on = "[checks.dmarc]\nenabled = true\n";

// Stands in for the SPF and DKIM checks: leaves the AuthFacts a test wants, at the stages the real
// checks do (SPF at MAIL FROM, DKIM at end of message). Named "dkim" so the engine orders DMARC after it.
struct Facts {
    std::optional<check::SpfFact> spf;
    bool dkim_evaluated = true;
    std::vector<check::DkimFact> dkim;
};

class FactsCheck final : public check::Check {
  public:
    explicit FactsCheck(Facts f) : facts_(std::move(f)) {}
    std::string_view name() const override { return "dkim"; }
    std::vector<check::Stage> stages() const override { return {check::Stage::mail, check::Stage::eom}; }
    std::vector<core::SymbolDef> symbols() const override { return {}; }
    void run(check::Context& ctx) const override {
        if (ctx.stage() == check::Stage::mail) {
            ctx.facts().spf = facts_.spf;
        } else {
            ctx.facts().dkim_evaluated = facts_.dkim_evaluated;
            ctx.facts().dkim = facts_.dkim;
        }
    }

  private:
    Facts facts_;
};

check::SpfFact spf(std::string result, std::string domain, std::string scope = "mfrom") {
    return {std::move(result), std::move(domain), std::move(scope), false};
}
check::DkimFact dkim(std::string result, std::string domain) {
    return {std::move(result), std::move(domain), "sel", "rsa-sha256", "abcdefgh", false};
}

class RecordingStore final : public report::DmarcStore {
  public:
    void record(const report::DmarcEvaluation& e) noexcept override { rows.push_back(e); }
    std::vector<report::DmarcEvaluation> rows;
};

struct Msg {
    std::string from = "From: Alice <alice@example.net>\r\n";
    std::string mail_from = "bounce@example.net";
    std::string ip = "203.0.113.9";
    std::string client_name = "unknown";
    std::string auth_user;
};

struct Run {
    engine::ReplayResult r;
    std::string ar;
    std::string report;
};

// A config with [checks.dmarc] (plus `options`) and the facts stand-in; the sampler, when given,
// replaces the random one.
std::shared_ptr<engine::Config> make_config(const std::string& options, const Facts& f,
                                            std::optional<int> roll = std::nullopt) {
    auto cfg = std::const_pointer_cast<engine::Config>(
        config(std::string(dmarc_on) + options + "\n[checks.message_structure]\nenabled = false\n"));
    for (auto& c : cfg->checks) {
        if (auto* d = dynamic_cast<auth::dmarc::DmarcCheck*>(c.get()); d && roll) {
            d->set_sampler([v = *roll] { return v; });
        }
    }
    cfg->checks.push_back(std::make_unique<FactsCheck>(f));
    check::ConfigErrors errors("test");
    engine::order_checks(*cfg, errors);
    errors.raise_if_any();
    return cfg;
}

std::string unfold(std::string s) {
    std::string out;
    for (char c : s) {
        if (c == '\r' || c == '\n') continue;
        out += c == '\t' ? ' ' : c;
    }
    return out;
}

Run run_msg(const std::shared_ptr<const engine::Config>& cfg, dns::FakeResolver& dns, const Msg& m = {},
            report::DmarcStore* store = nullptr) {
    FakeClock clock;
    engine::Session s(cfg, engine::Services{&clock, &dns, nullptr, store});
    engine::ReplayInput in;
    in.ip = core::IpAddress::parse(m.ip);
    in.client_name = m.client_name;
    in.helo = "mx.example.org";
    in.mail_from = m.mail_from;
    in.auth_user = m.auth_user;
    in.rcpts = {"bob@example.org"};
    std::string message = m.from + "Subject: hi\r\n\r\nbody\r\n";
    in.message = message;
    Run out;
    out.r = engine::replay(s, in);
    out.ar = unfold(auth_results(out.r.verdict));
    out.report = report_of(out.r.verdict, "dmarc");
    return out;
}

void publish(dns::FakeResolver& dns, const std::string& domain, std::vector<std::string> records) {
    std::vector<dns::Record> rr;
    for (auto& r : records) rr.push_back(fake::txt("_dmarc." + domain, {r}));
    dns.set_records("_dmarc." + domain, RrType::txt, std::move(rr));
}

Facts failing() {
    return Facts{spf("fail", "example.net"), true, {}};
}

}  // namespace

TEST_CASE("dmarc check: an aligned SPF pass passes (relaxed)", "[dmarc][check]") {
    dns::FakeResolver dns;
    publish(dns, "example.net", {"v=DMARC1; p=reject"});
    auto cfg = make_config("", Facts{spf("pass", "bounce.example.net"), true, {}});
    auto r = run_msg(cfg, dns);
    REQUIRE_FALSE(r.r.refused_at);
    CHECK(r.r.verdict.action == core::Action::accept);
    CHECK(symbols_with(r.r.verdict, "DMARC_") == std::vector<std::string>{"DMARC_POLICY_ALLOW"});
    CHECK(options_of(r.r.verdict, "DMARC_POLICY_ALLOW") == std::vector<std::string>{"example.net", "spf"});
    CHECK_THAT(r.ar, Contains("dmarc=pass header.from=example.net policy.dmarc=reject"));
    CHECK_THAT(r.report, Contains("\"result\":\"pass\""));
    CHECK_THAT(r.report, Contains("\"spf_aligned\":true"));
    CHECK_THAT(r.report, Contains("\"dkim_aligned\":false"));
    CHECK(find_symbol(r.r.verdict, "DMARC_POLICY_ALLOW")->score == Approx(-0.5));
}

TEST_CASE("dmarc check: an aligned DKIM pass passes; unaligned or failing ones do not", "[dmarc][check]") {
    dns::FakeResolver dns;
    publish(dns, "example.net", {"v=DMARC1; p=reject"});
    auto pass = run_msg(make_config("", Facts{spf("fail", "example.net"),
                                              true,
                                              {dkim("fail", "example.net"), dkim("pass", "other.test"),
                                               dkim("pass", "mail.example.net")}}),
                        dns);
    CHECK(symbols_with(pass.r.verdict, "DMARC_") == std::vector<std::string>{"DMARC_POLICY_ALLOW"});
    CHECK(options_of(pass.r.verdict, "DMARC_POLICY_ALLOW") ==
          std::vector<std::string>{"example.net", "dkim=mail.example.net"});
    CHECK_THAT(pass.report, Contains("\"dkim_aligned_domains\":[\"mail.example.net\"]"));

    auto fail = run_msg(make_config("", Facts{spf("pass", "other.test"),
                                              true,
                                              {dkim("fail", "example.net"), dkim("pass", "other.test")}}),
                        dns);
    CHECK(symbols_with(fail.r.verdict, "DMARC_") == std::vector<std::string>{"DMARC_POLICY_REJECT"});
}

TEST_CASE("dmarc check: p=reject rejects with 550 5.7.26, or quarantines or scores", "[dmarc][check]") {
    dns::FakeResolver dns;
    publish(dns, "example.net", {"v=DMARC1; p=reject"});
    auto r = run_msg(make_config("", failing()), dns);
    REQUIRE_FALSE(r.r.refused_at);
    CHECK(r.r.verdict.action == core::Action::reject);
    REQUIRE(r.r.verdict.reply);
    CHECK(r.r.verdict.reply->code == "550");
    CHECK(r.r.verdict.reply->xcode == "5.7.26");
    CHECK_THAT(r.r.verdict.reply->text, Contains("example.net"));
    REQUIRE(r.r.verdict.forced);
    CHECK(r.r.verdict.forced->check == "dmarc");
    CHECK(options_of(r.r.verdict, "DMARC_POLICY_REJECT") ==
          std::vector<std::string>{"example.net", "p=reject"});
    // A rejected message gets no header; the scored one shows what the header says.
    CHECK(r.ar.empty());
    CHECK_THAT(r.report, Contains("\"enforced\":\"reject\""));

    auto q = run_msg(make_config("on_reject = \"quarantine\"", failing()), dns);
    CHECK(q.r.verdict.action == core::Action::quarantine);
    CHECK_THAT(q.report, Contains("\"enforced\":\"quarantine\""));

    auto s = run_msg(make_config("on_reject = \"score\"", failing()), dns);
    CHECK(s.r.verdict.action == core::Action::accept);
    CHECK_FALSE(s.r.verdict.forced);
    CHECK(find_symbol(s.r.verdict, "DMARC_POLICY_REJECT")->score == Approx(5.0));
    CHECK_THAT(s.report, Contains("\"reasons\":[\"local_policy\"]"));
    CHECK_THAT(s.ar, Contains("dmarc=fail header.from=example.net policy.dmarc=reject"));
}

TEST_CASE("dmarc check: p=quarantine quarantines, junks or scores; p=none only scores", "[dmarc][check]") {
    dns::FakeResolver dns;
    publish(dns, "example.net", {"v=DMARC1; p=quarantine"});
    auto q = run_msg(make_config("", failing()), dns);
    CHECK(q.r.verdict.action == core::Action::quarantine);
    CHECK(symbols_with(q.r.verdict, "DMARC_") == std::vector<std::string>{"DMARC_POLICY_QUARANTINE"});
    CHECK_THAT(q.ar, Contains("dmarc=fail header.from=example.net policy.dmarc=quarantine"));

    auto j = run_msg(make_config("on_quarantine = \"junk\"", failing()), dns);
    CHECK(j.r.verdict.action == core::Action::add_header);
    CHECK_THAT(j.report, Contains("\"enforced\":\"junk\""));

    auto s = run_msg(make_config("on_quarantine = \"score\"", failing()), dns);
    CHECK(s.r.verdict.action == core::Action::accept);
    CHECK(find_symbol(s.r.verdict, "DMARC_POLICY_QUARANTINE")->score == Approx(3.0));

    dns::FakeResolver none;
    publish(none, "example.net", {"v=DMARC1; p=none; rua=mailto:d@example.net"});
    auto n = run_msg(make_config("", failing()), none);
    CHECK(n.r.verdict.action == core::Action::accept);
    CHECK_FALSE(n.r.verdict.forced);
    CHECK(symbols_with(n.r.verdict, "DMARC_") == std::vector<std::string>{"DMARC_POLICY_NONE"});
    CHECK_THAT(n.ar, Contains("dmarc=fail header.from=example.net policy.dmarc=none"));
}

TEST_CASE("dmarc check: libopendmarc's misalignments are failures here", "[dmarc][check]") {
    // d=x.com must not align with From: paypal.com.
    dns::FakeResolver dns;
    publish(dns, "paypal.com", {"v=DMARC1; p=reject"});
    Msg m;
    m.from = "From: service@paypal.com\r\n";
    auto r = run_msg(make_config("", Facts{spf("pass", "x.com"), true, {dkim("pass", "x.com")}}), dns, m);
    CHECK(r.r.verdict.action == core::Action::reject);
    CHECK(has_symbol(r.r.verdict, "DMARC_POLICY_REJECT"));

    // adkim=s: a.example.com does not align with b.example.com (the record is the org domain's).
    dns::FakeResolver s;
    s.set_status("_dmarc.a.example.com", RrType::txt, Status::nxdomain);
    publish(s, "example.com", {"v=DMARC1; p=reject; adkim=s"});
    Msg sm;
    sm.from = "From: u@a.example.com\r\n";
    sm.mail_from = "u@elsewhere.test";
    Facts f{spf("pass", "elsewhere.test"), true, {dkim("pass", "b.example.com")}};
    auto strict = run_msg(make_config("", f), s, sm);
    CHECK(has_symbol(strict.r.verdict, "DMARC_POLICY_REJECT"));
    CHECK(options_of(strict.r.verdict, "DMARC_POLICY_REJECT") ==
          std::vector<std::string>{"a.example.com", "p=reject"});

    // The same signature under adkim=r passes.
    dns::FakeResolver rel;
    rel.set_status("_dmarc.a.example.com", RrType::txt, Status::nxdomain);
    publish(rel, "example.com", {"v=DMARC1; p=reject"});
    CHECK(has_symbol(run_msg(make_config("", f), rel, sm).r.verdict, "DMARC_POLICY_ALLOW"));
}

TEST_CASE("dmarc check: the organizational domain's record, sp for subdomains", "[dmarc][check]") {
    dns::FakeResolver dns;
    dns.set_status("_dmarc.mail.example.net", RrType::txt, Status::nodata);
    publish(dns, "example.net", {"v=spf1 -all", "v=DMARC1; p=reject; sp=quarantine"});
    Msg m;
    m.from = "From: a@Mail.Example.NET\r\n";
    auto r = run_msg(make_config("", failing()), dns, m);
    CHECK(r.r.verdict.action == core::Action::quarantine);
    CHECK(options_of(r.r.verdict, "DMARC_POLICY_QUARANTINE") ==
          std::vector<std::string>{"mail.example.net", "sp=quarantine"});
    CHECK_THAT(r.ar, Contains("header.from=mail.example.net policy.dmarc=quarantine"));
    CHECK_THAT(r.report, Contains("\"policy_domain\":\"example.net\""));
    // Both names were asked at once, the From domain's first.
    auto q = dns.queries();
    REQUIRE(q.size() == 2);
    CHECK(q[0].name == "_dmarc.mail.example.net");
    CHECK(q[1].name == "_dmarc.example.net");

    // A record at the From domain itself wins and its p applies.
    dns::FakeResolver own;
    publish(own, "mail.example.net", {"v=DMARC1; p=none"});
    publish(own, "example.net", {"v=DMARC1; p=reject"});
    auto o = run_msg(make_config("", failing()), own, m);
    CHECK(symbols_with(o.r.verdict, "DMARC_") == std::vector<std::string>{"DMARC_POLICY_NONE"});
}

TEST_CASE("dmarc check: np for a non-existent subdomain (RFC 9091)", "[dmarc][check]") {
    Msg m;
    m.from = "From: a@nx.example.net\r\n";
    auto setup = [](dns::FakeResolver& dns) {
        dns.set_status("_dmarc.nx.example.net", RrType::txt, Status::nxdomain);
        publish(dns, "example.net", {"v=DMARC1; p=none; sp=quarantine; np=reject"});
    };
    dns::FakeResolver nx;
    setup(nx);
    nx.set_status("nx.example.net", RrType::a, Status::nxdomain);
    nx.set_status("nx.example.net", RrType::aaaa, Status::nxdomain);
    nx.set_status("nx.example.net", RrType::mx, Status::nodata);
    auto r = run_msg(make_config("", failing()), nx, m);
    CHECK(r.r.verdict.action == core::Action::reject);
    CHECK(options_of(r.r.verdict, "DMARC_POLICY_REJECT") ==
          std::vector<std::string>{"nx.example.net", "np=reject"});
    CHECK_THAT(r.report, Contains("\"applied\":\"reject\""));

    dns::FakeResolver exists;
    setup(exists);
    exists.set_records("nx.example.net", RrType::a, {fake::address("nx.example.net", "192.0.2.1")});
    exists.set_status("nx.example.net", RrType::aaaa, Status::nodata);
    exists.set_status("nx.example.net", RrType::mx, Status::nodata);
    auto e = run_msg(make_config("", failing()), exists, m);
    CHECK(e.r.verdict.action == core::Action::quarantine);
    CHECK(options_of(e.r.verdict, "DMARC_POLICY_QUARANTINE") ==
          std::vector<std::string>{"nx.example.net", "sp=quarantine"});

    dns::FakeResolver unknown;
    setup(unknown);
    unknown.set_status("nx.example.net", RrType::a, Status::nxdomain);
    unknown.set_status("nx.example.net", RrType::aaaa, Status::servfail);
    unknown.set_status("nx.example.net", RrType::mx, Status::nxdomain);
    auto u = run_msg(make_config("", failing()), unknown, m);
    CHECK(u.r.verdict.action == core::Action::quarantine);
    CHECK(options_of(u.r.verdict, "DMARC_POLICY_QUARANTINE") ==
          std::vector<std::string>{"nx.example.net", "sp=quarantine", "np not applied: existence unknown"});

    // A pass needs no existence lookups (the fake would throw on them).
    dns::FakeResolver pass;
    setup(pass);
    auto p = run_msg(make_config("", Facts{spf("pass", "example.net"), true, {}}), pass, m);
    CHECK(has_symbol(p.r.verdict, "DMARC_POLICY_ALLOW"));
    CHECK(pass.unexpected().empty());
}

TEST_CASE("dmarc check: none, several records, invalid, temperror stay distinct", "[dmarc][check]") {
    auto facts = failing();
    dns::FakeResolver nx;
    nx.set_status("_dmarc.example.net", RrType::txt, Status::nxdomain);
    auto none = run_msg(make_config("", facts), nx);
    CHECK(symbols_with(none.r.verdict, "DMARC_") == std::vector<std::string>{"DMARC_NA"});
    CHECK_THAT(none.ar, Contains("dmarc=none header.from=example.net"));
    CHECK(none.r.verdict.action == core::Action::accept);

    dns::FakeResolver several;
    publish(several, "example.net", {"v=DMARC1; p=reject", "v=DMARC1; p=none"});
    auto sev = run_msg(make_config("", facts), several);
    CHECK(symbols_with(sev.r.verdict, "DMARC_") == std::vector<std::string>{"DMARC_NA"});
    CHECK(options_of(sev.r.verdict, "DMARC_NA") ==
          std::vector<std::string>{"example.net", "2 DMARC records at _dmarc.example.net"});
    CHECK(sev.r.verdict.action == core::Action::accept);

    // Several records at the From domain end discovery: the organizational domain is not used.
    dns::FakeResolver sub;
    publish(sub, "mail.example.net", {"v=DMARC1; p=none", "v=DMARC1; p=none"});
    publish(sub, "example.net", {"v=DMARC1; p=reject"});
    Msg m;
    m.from = "From: a@mail.example.net\r\n";
    CHECK(symbols_with(run_msg(make_config("", facts), sub, m).r.verdict, "DMARC_") ==
          std::vector<std::string>{"DMARC_NA"});

    dns::FakeResolver bad;
    publish(bad, "example.net", {"v=DMARC1; p=r"});
    auto perm = run_msg(make_config("", facts), bad);
    CHECK(symbols_with(perm.r.verdict, "DMARC_") == std::vector<std::string>{"DMARC_PERMERROR"});
    CHECK_THAT(perm.ar, Contains("dmarc=permerror header.from=example.net"));
    CHECK_THAT(perm.report, Contains("invalid p= value 'r'"));
    CHECK(perm.r.verdict.action == core::Action::accept);

    dns::FakeResolver slow;
    slow.set_status("_dmarc.example.net", RrType::txt, Status::timeout);
    auto temp = run_msg(make_config("", facts), slow);
    CHECK(symbols_with(temp.r.verdict, "DMARC_") == std::vector<std::string>{"DMARC_TEMPERROR"});
    CHECK_THAT(temp.ar, Contains("dmarc=temperror header.from=example.net"));
    CHECK(temp.r.verdict.action == core::Action::accept);
    auto deferred = run_msg(make_config("tempfail_on_temperror = true", facts), slow);
    CHECK(deferred.r.verdict.action == core::Action::tempfail);
    REQUIRE(deferred.r.verdict.reply);
    CHECK(deferred.r.verdict.reply->xcode == "4.4.3");

    // A SERVFAIL at the organizational domain is a temperror too, not "none".
    dns::FakeResolver org;
    org.set_status("_dmarc.mail.example.net", RrType::txt, Status::nxdomain);
    org.set_status("_dmarc.example.net", RrType::txt, Status::servfail);
    CHECK(symbols_with(run_msg(make_config("", facts), org, m).r.verdict, "DMARC_") ==
          std::vector<std::string>{"DMARC_TEMPERROR"});
}

TEST_CASE("dmarc check: an aligned DKIM or SPF temperror is a temperror, not a fail", "[dmarc][check]") {
    dns::FakeResolver dns;
    publish(dns, "example.net", {"v=DMARC1; p=reject"});
    auto r = run_msg(
        make_config("", Facts{spf("fail", "example.net"), true, {dkim("temperror", "example.net")}}), dns);
    CHECK(symbols_with(r.r.verdict, "DMARC_") == std::vector<std::string>{"DMARC_TEMPERROR"});
    CHECK(r.r.verdict.action == core::Action::accept);
    CHECK_THAT(r.ar, Contains("dmarc=temperror"));
    // An unaligned temperror changes nothing.
    auto f = run_msg(
        make_config("", Facts{spf("fail", "example.net"), true, {dkim("temperror", "other.test")}}), dns);
    CHECK(f.r.verdict.action == core::Action::reject);
}

TEST_CASE("dmarc check: pct sampling applies the next policy down", "[dmarc][check]") {
    dns::FakeResolver dns;
    publish(dns, "example.net", {"v=DMARC1; p=reject; pct=50"});
    auto in = run_msg(make_config("", failing(), 49), dns);
    CHECK(in.r.verdict.action == core::Action::reject);
    auto out = run_msg(make_config("", failing(), 50), dns);
    CHECK(out.r.verdict.action == core::Action::quarantine);
    CHECK(options_of(out.r.verdict, "DMARC_POLICY_REJECT") ==
          std::vector<std::string>{"example.net", "p=reject", "pct=50 sampled out"});
    CHECK_THAT(out.ar, Contains("policy.dmarc=quarantine"));
    CHECK_THAT(out.report, Contains("\"reasons\":[\"sampled_out\"]"));

    dns::FakeResolver q;
    publish(q, "example.net", {"v=DMARC1; p=quarantine; pct=0"});
    auto none = run_msg(make_config("", failing(), 0), q);
    CHECK(none.r.verdict.action == core::Action::accept);
    CHECK_THAT(none.ar, Contains("policy.dmarc=none"));

    // The real sampler stays in range: pct=100 always applies, pct=0 never does.
    auto sampler = auth::dmarc::random_sampler();
    for (int i = 0; i < 1000; ++i) {
        int v = sampler();
        REQUIRE(v >= 0);
        REQUIRE(v < 100);
    }
}

TEST_CASE("dmarc check: failures of listed forwarders and domains are only scored", "[dmarc][check]") {
    dns::FakeResolver dns;
    publish(dns, "example.net", {"v=DMARC1; p=reject"});
    publish(dns, "lists.example.com", {"v=DMARC1; p=reject"});
    dns.set_status("_dmarc.example.com", RrType::txt, Status::nxdomain);
    auto cfg = make_config(
        "score_only_networks = [\"198.51.100.0/24\"]\nscore_only_hosts = [\".fwd.example\", "
        "\"relay.example\"]\n"
        "score_only_domains = [\".example.com\"]",
        failing());

    Msg by_ip;
    by_ip.ip = "198.51.100.7";
    auto a = run_msg(cfg, dns, by_ip);
    CHECK(a.r.verdict.action == core::Action::accept);
    CHECK(options_of(a.r.verdict, "DMARC_POLICY_REJECT") ==
          std::vector<std::string>{"example.net", "p=reject", "score only: score_only_networks"});
    CHECK_THAT(a.report, Contains("\"reasons\":[\"trusted_forwarder\"]"));

    Msg by_name;
    by_name.client_name = "Out1.FWD.example";
    CHECK(run_msg(cfg, dns, by_name).r.verdict.action == core::Action::accept);
    by_name.client_name = "relay.example";
    CHECK(run_msg(cfg, dns, by_name).r.verdict.action == core::Action::accept);
    by_name.client_name = "notrelay.example";
    CHECK(run_msg(cfg, dns, by_name).r.verdict.action == core::Action::reject);
    by_name.client_name = "fwd.example";  // ".fwd.example" means subdomains only
    CHECK(run_msg(cfg, dns, by_name).r.verdict.action == core::Action::reject);

    Msg by_domain;
    by_domain.from = "From: x@lists.example.com\r\n";
    auto d = run_msg(cfg, dns, by_domain);
    CHECK(d.r.verdict.action == core::Action::accept);
    CHECK_THAT(d.report, Contains("\"reasons\":[\"local_policy\"]"));

    CHECK(run_msg(cfg, dns).r.verdict.action == core::Action::reject);

    CHECK_THROWS_WITH(config(std::string(dmarc_on) + "score_only_hosts = [\"bad..name\"]\n"),
                      Contains("is not a domain name"));
    CHECK_THROWS_WITH(config(std::string(dmarc_on) + "on_reject = \"bounce\"\n"), Contains("on_reject"));
}

TEST_CASE("dmarc check: without SPF and DKIM results a failure is never enforced", "[dmarc][check]") {
    dns::FakeResolver dns;
    publish(dns, "example.net", {"v=DMARC1; p=reject"});
    auto r = run_msg(make_config("", Facts{spf("fail", "example.net"), false, {}}), dns);
    CHECK(r.r.verdict.action == core::Action::accept);
    CHECK(options_of(r.r.verdict, "DMARC_POLICY_REJECT") ==
          std::vector<std::string>{"example.net", "p=reject", "score only: no DKIM verification"});
    REQUIRE(r.r.verdict.warnings.size() == 1);
    CHECK_THAT(r.r.verdict.warnings[0], Contains("[checks.dkim]"));
    auto nospf = run_msg(make_config("", Facts{std::nullopt, true, {}}), dns);
    CHECK(nospf.r.verdict.action == core::Action::accept);
}

TEST_CASE("dmarc check: bad_from = score, reject, skip ask no DNS", "[dmarc][check]") {
    dns::FakeResolver dns;  // nothing programmed: any lookup would throw
    Msg two;
    two.from = "From: a@example.net\r\nFrom: b@example.org\r\n";
    auto s = run_msg(make_config("bad_from = \"score\"", failing()), dns, two);
    CHECK(symbols_with(s.r.verdict, "DMARC_") == std::vector<std::string>{"DMARC_BAD_FROM"});
    CHECK(options_of(s.r.verdict, "DMARC_BAD_FROM") ==
          std::vector<std::string>{"several_fields", "2 From fields"});
    CHECK_THAT(s.ar, Contains("dmarc=permerror (From: several_fields)"));
    CHECK(s.r.verdict.action == core::Action::accept);

    Msg many;
    many.from = "From: a@example.net, b@example.org\r\n";
    auto rej = run_msg(make_config("bad_from = \"reject\"", failing()), dns, many);
    CHECK(rej.r.verdict.action == core::Action::reject);
    REQUIRE(rej.r.verdict.reply);
    CHECK(rej.r.verdict.reply->code == "550");
    CHECK(rej.r.verdict.reply->xcode == "5.7.1");

    Msg nofrom;
    nofrom.from = "";
    auto skip = run_msg(make_config("bad_from = \"skip\"", failing()), dns, nofrom);
    CHECK(symbols_with(skip.r.verdict, "DMARC_").empty());
    CHECK_THAT(skip.report, Contains("\"result\":\"skipped\",\"from_status\":\"no_from\""));

    Msg garbage;
    garbage.from = "From: <<<><joe@example.net>>>\r\n";
    CHECK(options_of(run_msg(make_config("bad_from = \"score\"", failing()), dns, garbage).r.verdict,
                     "DMARC_BAD_FROM")
              .front() == "unparsable");
    Msg badidn;
    badidn.from =
        "From: a@exa\xff"
        "mple.net\r\n";
    CHECK(options_of(run_msg(make_config("bad_from = \"score\"", failing()), dns, badidn).r.verdict,
                     "DMARC_BAD_FROM")
              .front() == "unparsable");
    CHECK(dns.queries().empty());
}

TEST_CASE("dmarc check: a From without any domain is scored, with no DNS", "[dmarc][check]") {
    dns::FakeResolver dns;  // nothing programmed: any lookup would throw
    for (const char* from : {"", "From: <>\r\n", "From: MAILER-DAEMON\r\n", "From: joe@[192.0.2.1]\r\n",
                             "From: (unclosed\r\n", "From: <>\r\nFrom: undisclosed-recipients:;\r\n"}) {
        INFO(from);
        Msg m;
        m.from = from;
        auto r = run_msg(make_config("", failing()), dns, m);
        CHECK(symbols_with(r.r.verdict, "DMARC_") == std::vector<std::string>{"DMARC_BAD_FROM"});
        CHECK(r.r.verdict.action == core::Action::accept);
        CHECK_THAT(r.ar, Contains("dmarc=permerror (From: "));
    }
    CHECK(dns.queries().empty());
}

namespace {

// victim.example publishes p=reject and sends nothing here; attacker.example passes SPF (its own
// envelope sender from its own server) under its own p=reject.
struct Spoof {
    dns::FakeResolver dns;
    Facts facts{spf("pass", "attacker.example"), true, {}};
    Spoof() {
        publish(dns, "victim.example", {"v=DMARC1; p=reject"});
        publish(dns, "attacker.example", {"v=DMARC1; p=reject"});
    }
    Run run(const std::string& from, const std::string& options = "") {
        Msg m;
        m.from = from;
        m.mail_from = "bounce@attacker.example";
        return run_msg(make_config(options, facts), dns, m);
    }
};

std::string fillers(std::size_t n) {
    std::string out;
    out.reserve(n * 16);
    for (std::size_t i = 0; i < n; ++i) out += "X-Filler: x\r\n";
    return out;
}

void rejected_for_victim(const Run& r) {
    CHECK(r.r.verdict.action == core::Action::reject);
    REQUIRE(r.r.verdict.reply);
    CHECK(r.r.verdict.reply->code == "550");
    CHECK(r.r.verdict.reply->xcode == "5.7.26");
    CHECK_THAT(r.r.verdict.reply->text, Contains("victim.example"));
    REQUIRE(r.r.verdict.forced);
    CHECK(r.r.verdict.forced->check == "dmarc");
    CHECK_THAT(r.r.verdict.forced->reason, Contains("dmarc=fail p=reject for victim.example"));
}

}  // namespace

TEST_CASE("dmarc check: a From after 5,000 other fields is still the one evaluated", "[dmarc][check][from]") {
    Spoof t;
    SECTION("the only From, past the cap on kept fields") {
        auto r = t.run(fillers(5000) + "From: CEO <ceo@victim.example>\r\n");
        rejected_for_victim(r);
        CHECK(options_of(r.r.verdict, "DMARC_POLICY_REJECT") ==
              std::vector<std::string>{"victim.example", "p=reject"});
        CHECK_FALSE(has_symbol(r.r.verdict, "DMARC_BAD_FROM"));
    }
    SECTION("the attacker's own From first, the victim's after the fillers") {
        auto r =
            t.run("From: me@attacker.example\r\n" + fillers(5000) + "From: CEO <ceo@victim.example>\r\n");
        rejected_for_victim(r);
        CHECK_FALSE(has_symbol(r.r.verdict, "DMARC_POLICY_ALLOW"));
        CHECK(options_of(r.r.verdict, "DMARC_BAD_FROM") ==
              std::vector<std::string>{"several_fields", "2 From fields"});
        CHECK(t.dns.was_queried("_dmarc.victim.example", RrType::txt));
    }
}

TEST_CASE("dmarc check: a malformed or repeated From gets the strictest policy of its domains",
          "[dmarc][check][from]") {
    Spoof t;
    for (const char* from : {
             "From: Name <user@victim.example> x\r\n",                         // trailing junk
             "From: Name <user@victim.example> (unclosed\r\n",                 // unclosed comment
             "From: user@victim.example (unclosed\r\n",                        //
             "From: Name <user@victim.example.>\r\n",                          // trailing dot
             "From: user@victim.example, other@attacker.example\r\n",          // two mailboxes
             "From: other@attacker.example, user@victim.example\r\n",          //
             "From: user@victim.example\r\nFrom: other@attacker.example\r\n",  // two fields
             "From: other@attacker.example\r\nFrom: user@victim.example\r\n",  //
             "From: Name user@victim.example\r\n",                             // no brackets
             "From: <user@victim.example\r\n",                                 // unclosed bracket
         }) {
        INFO(from);
        auto r = t.run(from);
        rejected_for_victim(r);
        CHECK(has_symbol(r.r.verdict, "DMARC_BAD_FROM"));
    }

    SECTION("scored instead of enforced: Authentication-Results names the failing domain") {
        auto r =
            t.run("From: other@attacker.example\r\nFrom: user@victim.example\r\n", "on_reject = \"score\"");
        // Scored: 5 + 1 reaches the default add_header threshold, nothing is forced.
        CHECK(r.r.verdict.action == core::Action::add_header);
        CHECK_FALSE(r.r.verdict.forced);
        CHECK_THAT(
            r.ar,
            Contains("dmarc=fail (From: several_fields) header.from=victim.example policy.dmarc=reject"));
        CHECK(symbols_with(r.r.verdict, "DMARC_") ==
              std::vector<std::string>{"DMARC_BAD_FROM", "DMARC_POLICY_REJECT"});
        CHECK(options_of(r.r.verdict, "DMARC_POLICY_REJECT") ==
              std::vector<std::string>{"victim.example", "p=reject"});
        CHECK_THAT(r.report, Contains("\"result\":\"fail\",\"from\":\"victim.example\""));
        CHECK_THAT(r.report, Contains("\"from_status\":\"several_fields\""));
        CHECK_THAT(r.report, Contains("\"from_domains\":[\"attacker.example\",\"victim.example\"]"));
        CHECK_THAT(r.report,
                   Contains("\"evaluated\":[{\"from\":\"attacker.example\",\"result\":\"pass\",\"policy\":"
                            "\"reject\"},{\"from\":\"victim.example\",\"result\":\"fail\",\"policy\":"
                            "\"reject\"}]"));
    }
}

TEST_CASE("dmarc check: several From domains pass only if every one passes", "[dmarc][check][from]") {
    Spoof t;
    auto both = t.run("From: a@attacker.example, Name <b@attacker.example>\r\n");
    CHECK(both.r.verdict.action == core::Action::accept);
    CHECK(symbols_with(both.r.verdict, "DMARC_") ==
          std::vector<std::string>{"DMARC_BAD_FROM", "DMARC_POLICY_ALLOW"});
    CHECK_THAT(both.ar, Contains("dmarc=pass (From: several_addresses) header.from=attacker.example"));

    publish(t.dns, "other.example", {"v=DMARC1; p=none"});
    auto mixed = t.run("From: a@attacker.example, b@other.example\r\n", "on_reject = \"score\"");
    CHECK(mixed.r.verdict.action == core::Action::accept);
    CHECK(symbols_with(mixed.r.verdict, "DMARC_") ==
          std::vector<std::string>{"DMARC_BAD_FROM", "DMARC_POLICY_NONE"});
    CHECK_THAT(mixed.ar,
               Contains("dmarc=fail (From: several_addresses) header.from=other.example policy.dmarc=none"));

    // A domain without a policy does not pass either: the message is not DMARC-authenticated.
    t.dns.set_status("_dmarc.nopolicy.example", RrType::txt, Status::nxdomain);
    auto none = t.run("From: a@attacker.example\r\nFrom: b@nopolicy.example\r\n");
    CHECK(none.r.verdict.action == core::Action::accept);
    CHECK_FALSE(has_symbol(none.r.verdict, "DMARC_POLICY_ALLOW"));
    CHECK(has_symbol(none.r.verdict, "DMARC_NA"));
    CHECK_THAT(none.ar, Contains("dmarc=none (From: several_fields) header.from=nopolicy.example"));
}

TEST_CASE("dmarc check: the strictest outcome decides, in whatever order the domains come",
          "[dmarc][check][from]") {
    Spoof t;
    publish(t.dns, "quarantined.example", {"v=DMARC1; p=quarantine"});
    publish(t.dns, "monitored.example", {"v=DMARC1; p=none"});
    for (const char* from :
         {"From: a@quarantined.example, b@victim.example, c@monitored.example\r\n",
          "From: b@victim.example, a@quarantined.example\r\n",
          "From: c@monitored.example\r\nFrom: b@victim.example\r\nFrom: a@quarantined.example\r\n"}) {
        INFO(from);
        rejected_for_victim(t.run(from));
    }
    auto q = t.run("From: c@monitored.example, a@quarantined.example x\r\n");
    CHECK(q.r.verdict.action == core::Action::quarantine);
    REQUIRE(q.r.verdict.forced);
    CHECK_THAT(q.r.verdict.forced->reason, Contains("for quarantined.example"));

    // A temperror of one domain does not hide the failure of another.
    t.dns.set_status("_dmarc.flaky.example", RrType::txt, Status::servfail);
    rejected_for_victim(t.run("From: a@flaky.example, b@victim.example\r\n", "tempfail_on_temperror = true"));
    auto temp = t.run("From: a@flaky.example, b@attacker.example\r\n", "tempfail_on_temperror = true");
    CHECK(temp.r.verdict.action == core::Action::tempfail);

    // A listed domain's failure is only scored; the other one's is still enforced.
    rejected_for_victim(t.run("From: a@quarantined.example, b@victim.example\r\n",
                              "score_only_domains = [\"quarantined.example\"]"));
    auto listed = t.run("From: a@quarantined.example, b@victim.example\r\n",
                        "score_only_domains = [\"victim.example\"]");
    CHECK(listed.r.verdict.action == core::Action::quarantine);
}

TEST_CASE("dmarc check: a From not fully examined is a failure under p=reject", "[dmarc][check][from]") {
    dns::FakeResolver dns;  // nothing programmed: decided without DNS
    auto cfg = make_config("", Facts{spf("pass", "attacker.example"), true, {}});
    Msg m;
    m.mail_from = "bounce@attacker.example";
    SECTION("more From fields than Vigil keeps") {
        for (std::size_t i = 0; i < 17; ++i)
            m.from += "From: u" + std::to_string(i) + "@attacker.example\r\n";
    }
    SECTION("more distinct domains than are evaluated") {
        m.from = "From: ";
        for (std::size_t i = 0; i < 9; ++i) m.from += (i ? ", u@d" : "u@d") + std::to_string(i) + ".example";
        m.from += "\r\n";
    }
    SECTION("a malformed value with more '@' than are looked behind") {
        m.from = "From: x";
        for (std::size_t i = 0; i < 300; ++i) m.from += " @attacker.example";
        m.from += " <ceo@victim.example>\r\n";
    }
    auto r = run_msg(cfg, dns, m);
    CHECK(r.r.verdict.action == core::Action::reject);
    REQUIRE(r.r.verdict.reply);
    CHECK(r.r.verdict.reply->code == "550");
    CHECK(r.r.verdict.reply->xcode == "5.7.1");
    CHECK(has_symbol(r.r.verdict, "DMARC_BAD_FROM"));
    CHECK(options_of(r.r.verdict, "DMARC_POLICY_REJECT").front() == "From not fully examined");
    CHECK(dns.queries().empty());

    auto scored = run_msg(
        make_config("on_reject = \"score\"", Facts{spf("pass", "attacker.example"), true, {}}), dns, m);
    CHECK(scored.r.verdict.action == core::Action::add_header);
    CHECK_FALSE(scored.r.verdict.forced);
    CHECK_THAT(scored.ar, Contains("dmarc=fail (From: "));
    CHECK_THAT(scored.ar, Contains("policy.dmarc=reject"));
    CHECK_THAT(scored.report, Contains("\"incomplete\":"));
}

TEST_CASE("dmarc check: IDN From domains are looked up as A-labels", "[dmarc][check]") {
    dns::FakeResolver dns;
    publish(dns, "xn--bcher-kva.example", {"v=DMARC1; p=reject"});
    Msg m;
    m.from =
        "From: a@B\xc3\xbc"
        "cher.example\r\n";
    auto r = run_msg(make_config("", Facts{spf("pass", "xn--bcher-kva.example"), true, {}}), dns, m);
    CHECK(has_symbol(r.r.verdict, "DMARC_POLICY_ALLOW"));
    CHECK_THAT(r.ar, Contains("header.from=xn--bcher-kva.example"));
}

TEST_CASE("dmarc check: outbound mail is not checked", "[dmarc][check]") {
    dns::FakeResolver none;
    Msg m;
    m.auth_user = "alice";
    auto r = run_msg(make_config("", failing()), none, m);
    CHECK(symbols_with(r.r.verdict, "DMARC_").empty());
    CHECK(none.queries().empty());
}

TEST_CASE("dmarc check: evaluations of domains with rua= go to the report store", "[dmarc][check]") {
    dns::FakeResolver dns;
    publish(dns, "example.net",
            {"v=DMARC1; p=reject; sp=none; adkim=s; pct=100; fo=1; rua=mailto:agg@example.net"});
    RecordingStore store;
    auto cfg = make_config("", Facts{spf("fail", "example.net"), true, {dkim("pass", "other.test")}});
    auto r = run_msg(cfg, dns, {}, &store);
    CHECK(r.r.verdict.action == core::Action::reject);
    REQUIRE(store.rows.size() == 1);
    const auto& e = store.rows[0];
    CHECK(e.time == 1'700'000'000);
    CHECK(e.policy_domain == "example.net");
    CHECK(e.p == "reject");
    CHECK(e.sp == "none");
    CHECK(e.np.empty());
    CHECK(e.adkim == "s");
    CHECK(e.aspf == "r");
    CHECK(e.fo == "1");
    CHECK(e.rua == std::vector<std::string>{"mailto:agg@example.net"});
    CHECK(e.source_ip == "203.0.113.9");
    CHECK(e.disposition == "reject");
    CHECK(e.dkim_aligned == "fail");
    CHECK(e.spf_aligned == "fail");
    CHECK(e.header_from == "example.net");
    CHECK(e.envelope_from == "example.net");
    CHECK(e.envelope_to == "example.org");
    REQUIRE(e.dkim.size() == 1);
    CHECK(e.dkim[0].domain == "other.test");
    CHECK(e.dkim[0].selector == "sel");
    CHECK(e.dkim[0].result == "pass");
    REQUIRE(e.spf.size() == 1);
    CHECK(e.spf[0].scope == "mfrom");
    CHECK(e.spf[0].result == "fail");

    SECTION("forced actions only scored: the report says none, by local policy") {
        auto scored = make_config("", Facts{spf("fail", "example.net"), true, {dkim("pass", "other.test")}});
        scored->actions.honour_forced = false;
        RecordingStore st;
        auto s = run_msg(scored, dns, {}, &st);
        CHECK(s.r.verdict.action != core::Action::reject);
        REQUIRE(st.rows.size() == 1);
        CHECK(st.rows[0].disposition == "none");
        CHECK(st.rows[0].reasons == std::vector<std::string>{"local_policy"});
        CHECK(st.rows[0].reason_comment == "honour_forced_actions = false");
    }

    dns::FakeResolver norua;
    publish(norua, "example.net", {"v=DMARC1; p=reject"});
    RecordingStore empty;
    run_msg(cfg, norua, {}, &empty);
    CHECK(empty.rows.empty());
}

TEST_CASE("dmarc check: the policy lookup starts at end of headers, before the body", "[dmarc][check]") {
    dns::FakeResolver dns;
    publish(dns, "example.net", {"v=DMARC1; p=reject"});
    FakeClock clock;
    engine::Session s(make_config("", Facts{spf("pass", "example.net"), true, {}}),
                      engine::Services{&clock, &dns});
    REQUIRE(s.connect(core::IpAddress::parse("203.0.113.9"), "unknown").proceed());
    REQUIRE(s.helo("mx.example.org").proceed());
    REQUIRE(s.mail("a@example.net").proceed());
    REQUIRE(s.rcpt("b@example.org").proceed());
    s.header("From", " a@example.net");
    CHECK_FALSE(dns.was_queried("_dmarc.example.net", RrType::txt));
    s.end_of_headers();
    CHECK(dns.count("_dmarc.example.net", RrType::txt) == 1);
    s.body("hello\r\n");
    auto v = s.end_of_message();
    CHECK(dns.count("_dmarc.example.net", RrType::txt) == 1);
    CHECK(has_symbol(v, "DMARC_POLICY_ALLOW"));
}

TEST_CASE("dmarc check: with the real SPF and DKIM checks", "[dmarc][check]") {
    dns::FakeResolver dns;
    dns.set_records("example.net", RrType::txt,
                    {fake::txt("example.net", {"v=spf1 ip4:203.0.113.0/24 -all"})});
    publish(dns, "example.net", {"v=DMARC1; p=reject"});
    auto cfg = config(std::string(dmarc_on) +
                      "[checks.spf]\nenabled = true\nhelo_check = false\nreceived_spf_header = false\n"
                      "[checks.dkim]\nenabled = true\n");
    Msg ok;
    auto pass = run_msg(cfg, dns, ok);
    CHECK(has_symbol(pass.r.verdict, "SPF_PASS"));
    CHECK(has_symbol(pass.r.verdict, "DKIM_NONE"));
    CHECK(has_symbol(pass.r.verdict, "DMARC_POLICY_ALLOW"));
    CHECK_THAT(pass.ar, Contains("dmarc=pass header.from=example.net"));

    Msg forged;
    forged.ip = "192.0.2.66";
    auto fail = run_msg(cfg, dns, forged);
    CHECK(has_symbol(fail.r.verdict, "SPF_FAIL"));
    CHECK(fail.r.verdict.action == core::Action::reject);
    REQUIRE(fail.r.verdict.reply);
    CHECK(fail.r.verdict.reply->xcode == "5.7.26");
}
