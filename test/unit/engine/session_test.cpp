#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "engine/config.hpp"
#include "engine/replay.hpp"
#include "engine/session.hpp"
#include "fakes.hpp"

using namespace vigil;
using namespace vigil::engine;
using namespace vigil::check;
using core::Action;

namespace {

// A check that records when it ran and adds what it is told to.
class ProbeCheck final : public Check {
  public:
    ProbeCheck(std::string name, std::vector<Stage> stages, std::vector<std::string_view> deps,
               std::vector<std::string>& log, bool inbound_only = true)
        : name_(std::move(name)),
          stages_(std::move(stages)),
          deps_(std::move(deps)),
          log_(log),
          inbound_only_(inbound_only) {}
    std::string symbol;
    double multiplier = 1.0;
    std::optional<Action> force_action;
    std::string_view name() const override { return name_; }
    std::vector<Stage> stages() const override { return stages_; }
    std::vector<core::SymbolDef> symbols() const override { return {{symbol, "probe", 1.0}}; }
    std::vector<std::string_view> depends_on() const override { return deps_; }
    bool inbound_only() const override { return inbound_only_; }
    void start(Context& ctx) const override {
        log_.push_back("start " + name_ + "@" + std::string(to_string(ctx.stage())));
    }
    void run(Context& ctx) const override {
        log_.push_back("run " + name_ + "@" + std::string(to_string(ctx.stage())));
        if (!symbol.empty()) ctx.add_symbol(*this, symbol, multiplier, {name_});
        if (force_action) ctx.force(*this, *force_action, "probe says so");
    }

  private:
    std::string name_;
    std::vector<Stage> stages_;
    std::vector<std::string_view> deps_;
    std::vector<std::string>& log_;
    bool inbound_only_;
};

std::shared_ptr<Config> base_config() {
    auto c = std::const_pointer_cast<Config>(
        load_config_string("[checks.gtube]\nenabled=false\n[checks.access]\n"
                           "enabled=false\n[checks.message_structure]\nenabled=false\n"));
    return c;
}

void finish(Config& c) {
    for (const auto& ch : c.checks) {
        for (const auto& s : ch->symbols()) {
            c.symbols.emplace(s.name, s);
            c.weights.emplace(s.name, s.default_weight);
        }
    }
    ConfigErrors errors("test");
    order_checks(c, errors);
    errors.raise_if_any();
}

ProbeCheck& add_probe(Config& c, std::vector<std::string>& log, std::string name, std::vector<Stage> stages,
                      std::vector<std::string_view> deps = {}, bool inbound_only = true) {
    auto p =
        std::make_unique<ProbeCheck>(std::move(name), std::move(stages), std::move(deps), log, inbound_only);
    auto& ref = *p;
    c.checks.push_back(std::move(p));
    return ref;
}

constexpr std::string_view simple_message = "From: a@example.com\r\nSubject: s\r\n\r\nbody\r\n";

ReplayInput inbound(std::string_view msg = simple_message) {
    ReplayInput in;
    in.ip = core::IpAddress::parse("203.0.113.5");
    in.helo = "mx.example.net";
    in.mail_from = "a@example.net";
    in.rcpts = {"b@example.org"};
    in.message = msg;
    return in;
}

}  // namespace

TEST_CASE("checks run in dependency order - all starts before any run", "[engine]") {
    std::vector<std::string> log;
    auto cfg = base_config();
    // Registered in the "wrong" order on purpose: dmarc-like depends on the other two.
    add_probe(*cfg, log, "c", {Stage::eom}, {"a", "b"});
    add_probe(*cfg, log, "b", {Stage::eom}, {"a"});
    add_probe(*cfg, log, "a", {Stage::eom});
    finish(*cfg);
    test::FakeClock clock;
    Session s(cfg, Services{&clock});
    replay(s, inbound());
    CHECK(log == std::vector<std::string>{"start a@eom", "start b@eom", "start c@eom", "run a@eom",
                                          "run b@eom", "run c@eom"});
}

TEST_CASE("a dependency cycle is reported - not looped on", "[engine]") {
    std::vector<std::string> log;
    auto cfg = base_config();
    add_probe(*cfg, log, "x", {Stage::eom}, {"y"});
    add_probe(*cfg, log, "y", {Stage::eom}, {"x"});
    CHECK_THROWS_WITH(finish(*cfg), Catch::Matchers::Contains("dependency cycle"));
}

TEST_CASE("checks run at each of their stages", "[engine]") {
    std::vector<std::string> log;
    auto cfg = base_config();
    add_probe(*cfg, log, "p",
              {Stage::connect, Stage::helo, Stage::mail, Stage::rcpt, Stage::headers, Stage::eom});
    finish(*cfg);
    test::FakeClock clock;
    Session s(cfg, Services{&clock});
    auto in = inbound();
    in.rcpts = {"a@x", "b@x"};
    replay(s, in);
    std::vector<std::string> runs;
    for (auto& l : log) {
        if (l.rfind("run", 0) == 0) runs.push_back(l);
    }
    CHECK(runs == std::vector<std::string>{"run p@connect", "run p@helo", "run p@mail", "run p@rcpt",
                                           "run p@rcpt", "run p@headers", "run p@eom"});
}

TEST_CASE("score is the sum of weight x multiplier - thresholds pick the action", "[engine]") {
    std::vector<std::string> log;
    auto cfg = base_config();
    auto& a = add_probe(*cfg, log, "a", {Stage::connect});
    a.symbol = "PROBE_A";
    a.multiplier = 2.0;
    auto& b = add_probe(*cfg, log, "b", {Stage::eom});
    b.symbol = "PROBE_B";
    finish(*cfg);
    cfg->weights["PROBE_A"] = 1.5;
    cfg->weights["PROBE_B"] = 4.0;
    test::FakeClock clock;

    SECTION("7.00 is junk with the defaults (add_header 6, reject 15)") {
        Session s(cfg, Services{&clock});
        auto r = replay(s, inbound());
        CHECK(r.verdict.score == Approx(7.0));
        CHECK(r.verdict.action == Action::add_header);
        REQUIRE(r.verdict.symbols.size() == 2);
        CHECK(r.verdict.symbols[0].name == "PROBE_B");  // strongest first
        CHECK(r.verdict.symbols[1].score == Approx(3.0));
    }
    SECTION("the highest threshold reached wins") {
        cfg->actions.thresholds.quarantine = 6.5;
        cfg->actions.thresholds.tempfail = 4.0;
        Session s(cfg, Services{&clock});
        CHECK(replay(s, inbound()).verdict.action == Action::quarantine);
        cfg->actions.thresholds.reject = 7.0;
        Session s2(cfg, Services{&clock});
        auto r = replay(s2, inbound());
        CHECK(r.verdict.action == Action::reject);
        REQUIRE(r.verdict.reply);
        CHECK(r.verdict.reply->code == "550");
    }
    SECTION("below every threshold: accept") {
        cfg->weights["PROBE_B"] = 0.5;
        Session s(cfg, Services{&clock});
        CHECK(replay(s, inbound()).verdict.action == Action::accept);
    }
    SECTION("negative weights lower the score") {
        cfg->weights["PROBE_B"] = -10.0;
        Session s(cfg, Services{&clock});
        auto r = replay(s, inbound());
        CHECK(r.verdict.score == Approx(-7.0));
        CHECK(r.verdict.action == Action::accept);
    }
    SECTION("connection-level symbols count for every message of the connection") {
        Session s(cfg, Services{&clock});
        CHECK(replay(s, inbound()).verdict.score == Approx(7.0));
        // A second message on the same connection: replay() reconnects, so use the session directly.
        REQUIRE(s.mail("x@example.net").proceed());
        REQUIRE(s.rcpt("y@example.org").proceed());
        s.header("From", " x@example.net");
        s.end_of_headers();
        auto v = s.end_of_message();
        CHECK(v.score == Approx(7.0));
    }
}

TEST_CASE("forced actions: the strongest decides - accept overrides the score - policy may ignore them",
          "[engine]") {
    std::vector<std::string> log;
    auto cfg = base_config();
    auto& junk = add_probe(*cfg, log, "junk", {Stage::eom});
    junk.symbol = "PROBE_JUNK";
    auto& f = add_probe(*cfg, log, "forcer", {Stage::eom});
    finish(*cfg);
    cfg->weights["PROBE_JUNK"] = 20.0;
    test::FakeClock clock;

    SECTION("forced accept beats a rejecting score") {
        f.force_action = Action::accept;
        Session s(cfg, Services{&clock});
        auto v = replay(s, inbound()).verdict;
        CHECK(v.action == Action::accept);
        REQUIRE(v.forced);
        CHECK(v.forced->check == "forcer");
    }
    SECTION("a weaker forced action does not soften a rejecting score") {
        f.force_action = Action::add_header;
        Session s(cfg, Services{&clock});
        CHECK(replay(s, inbound()).verdict.action == Action::reject);
    }
    SECTION("forced quarantine applies to an innocent score") {
        cfg->weights["PROBE_JUNK"] = 0.0;
        f.force_action = Action::quarantine;
        Session s(cfg, Services{&clock});
        auto v = replay(s, inbound()).verdict;
        CHECK(v.action == Action::quarantine);
        CHECK(v.quarantine_reason == "vigil: probe says so");
    }
    SECTION("honour_forced_actions = false: only the score counts") {
        cfg->weights["PROBE_JUNK"] = 0.0;
        cfg->actions.honour_forced = false;
        f.force_action = Action::reject;
        Session s(cfg, Services{&clock});
        CHECK(replay(s, inbound()).verdict.action == Action::accept);
    }
}

TEST_CASE("early refusals stop the dialogue at their stage", "[engine]") {
    std::vector<std::string> log;
    auto cfg = base_config();
    auto& f = add_probe(*cfg, log, "early", {Stage::mail});
    f.force_action = Action::reject;
    finish(*cfg);
    test::FakeClock clock;
    Session s(cfg, Services{&clock});
    auto r = replay(s, inbound());
    REQUIRE(r.refused_at);
    CHECK(*r.refused_at == "mail");
    CHECK(r.refusal.kind == StageResult::Kind::reject);
    CHECK(r.refusal.reply.code == "550");
    CHECK(r.refusal.reason == "probe says so");
}

TEST_CASE("outbound mail skips inbound-only checks and drops their connection symbols", "[engine]") {
    std::vector<std::string> log;
    auto cfg = base_config();
    auto& rbl = add_probe(*cfg, log, "rbl", {Stage::connect, Stage::eom});
    rbl.symbol = "PROBE_RBL";
    auto& all = add_probe(*cfg, log, "all", {Stage::eom}, {}, false);
    all.symbol = "PROBE_ALL";
    finish(*cfg);
    test::FakeClock clock;

    SECTION("authenticated sender") {
        Session s(cfg, Services{&clock});
        auto in = inbound();
        in.auth_user = "alice";
        auto r = replay(s, in);
        CHECK(r.envelope.direction == core::Direction::outbound);
        REQUIRE(r.verdict.symbols.size() == 1);
        CHECK(r.verdict.symbols[0].name == "PROBE_ALL");
        CHECK(std::count(log.begin(), log.end(), "run rbl@eom") == 0);
        // No Authentication-Results on our own outbound mail.
        for (const auto& e : r.verdict.edits) CHECK(e.name != "Authentication-Results");
    }
    SECTION("trusted network") {
        Session s(cfg, Services{&clock});
        auto in = inbound();
        in.ip = core::IpAddress::parse("127.0.0.1");
        CHECK(replay(s, in).envelope.direction == core::Direction::outbound);
    }
    SECTION("authenticated but authenticated_is_outbound = false") {
        cfg->server.authenticated_is_outbound = false;
        Session s(cfg, Services{&clock});
        auto in = inbound();
        in.auth_user = "alice";
        CHECK(replay(s, in).envelope.direction == core::Direction::inbound);
    }
    SECTION("inbound") {
        Session s(cfg, Services{&clock});
        auto r = replay(s, inbound());
        CHECK(r.envelope.direction == core::Direction::inbound);
        CHECK(r.verdict.symbols.size() == 2);
    }
}

TEST_CASE("symbols of a refused recipient do not stick to the message", "[engine]") {
    auto cfg = std::const_pointer_cast<Config>(load_config_string(
        "[[checks.access.rule]]\nmatch = \"rcpt\"\npattern = \"bad@example.org\"\naction = \"reject\"\n"
        "[[checks.access.rule]]\nmatch = \"rcpt\"\npattern = \"@example.org\"\naction = \"score\"\nscore = "
        "2.0\n"));
    test::FakeClock clock;
    Session s(cfg, Services{&clock});
    auto in = inbound();
    in.rcpts = {"bad@example.org", "good@example.org"};
    auto r = replay(s, in);
    REQUIRE_FALSE(r.refused_at);
    REQUIRE(r.refused_rcpts.size() == 1);
    CHECK(r.refused_rcpts[0].first == "bad@example.org");
    CHECK(r.envelope.rcpt_count == 1);
    CHECK(r.verdict.score == Approx(2.0));  // only the accepted recipient's score rule
    CHECK_FALSE(r.verdict.forced);
}

TEST_CASE("a second HELO replaces the first one's findings", "[engine]") {
    auto cfg = std::const_pointer_cast<Config>(
        load_config_string("[[checks.access.rule]]\nmatch = \"helo\"\npattern = \".bad.example\"\naction = "
                           "\"score\"\nscore = 5.0\n"));
    test::FakeClock clock;
    Session s(cfg, Services{&clock});
    REQUIRE(s.connect(core::IpAddress::parse("203.0.113.1"), "unknown").proceed());
    REQUIRE(s.helo("x.bad.example").proceed());
    REQUIRE(s.helo("mx.good.example").proceed());
    REQUIRE(s.mail("a@b.example").proceed());
    REQUIRE(s.rcpt("c@d.example").proceed());
    s.header("From", " a@b.example");
    s.end_of_headers();
    CHECK(s.end_of_message().score == Approx(0.0));
}

TEST_CASE("a forged Authentication-Results after thousands of filler fields is still removed",
          "[engine][ar]") {
    auto cfg = load_config_string("[server]\nauthserv_id = \"mx.vigil.test\"\n");
    test::FakeClock clock;
    Session s(cfg, Services{&clock});
    REQUIRE(s.connect(core::IpAddress::parse("203.0.113.5"), "unknown").proceed());
    REQUIRE(s.mail("a@example.org").proceed());
    REQUIRE(s.rcpt("r@vigil.test").proceed());
    s.header("From", " a@example.org");
    s.header("Authentication-Results", " other.example; spf=pass");
    for (int i = 0; i < 5004; ++i) s.header("X-Filler", " x");
    s.header("Authentication-Results", " MX.vigil.test; spf=pass");
    s.end_of_headers();
    auto v = s.end_of_message();
    std::vector<int> removed;
    for (const auto& e : v.edits) {
        if (e.kind == core::HeaderEdit::Kind::remove) removed.push_back(e.index);
    }
    CHECK(removed == std::vector<int>{2});
    CHECK(std::any_of(v.symbols.begin(), v.symbols.end(),
                      [](const auto& x) { return x.name == "MSG_HEADER_LIMIT"; }));
}

TEST_CASE("connect-stage findings of a check that also runs at HELO survive the HELO", "[engine]") {
    auto cfg = load_config_string(
        "[[checks.access.rule]]\nmatch = \"ip\"\npattern = \"203.0.113.0/24\"\naction = \"score\"\nscore = "
        "7.0\n");
    test::FakeClock clock;
    Session s(cfg, Services{&clock});
    auto in = inbound();
    in.ip = core::IpAddress::parse("203.0.113.5");
    auto r = replay(s, in);
    CHECK(r.verdict.score == Approx(7.0));
    CHECK(r.verdict.action == Action::add_header);
}

TEST_CASE("end of message without end of headers still runs the header checks", "[engine]") {
    auto cfg = load_config_string("");
    test::FakeClock clock;
    Session s(cfg, Services{&clock});
    REQUIRE(s.connect(core::IpAddress::parse("203.0.113.5"), "unknown").proceed());
    REQUIRE(s.mail("a@example.org").proceed());
    REQUIRE(s.rcpt("r@vigil.test").proceed());
    auto v = s.end_of_message();
    CHECK(std::any_of(v.symbols.begin(), v.symbols.end(),
                      [](const auto& x) { return x.name == "MSG_NO_HEADERS"; }));
}

namespace {
// Writes the SPF fact at MAIL FROM; at end of message records what it can read back.
class FactsProbe final : public Check {
  public:
    explicit FactsProbe(std::vector<std::string>& seen) : seen_(seen) {}
    std::string_view name() const override { return "facts_probe"; }
    std::vector<Stage> stages() const override { return {Stage::mail, Stage::eom}; }
    std::vector<core::SymbolDef> symbols() const override { return {}; }
    void run(Context& ctx) const override {
        if (ctx.stage() == Stage::mail) {
            seen_.push_back(ctx.facts().spf ? "stale" : "empty");
            ctx.facts().spf = SpfFact{"pass", "example.net", "mfrom", false};
        } else {
            seen_.push_back(ctx.facts().spf ? ctx.facts().spf->result + " " + ctx.facts().spf->domain
                                            : "missing");
        }
    }

  private:
    std::vector<std::string>& seen_;
};
}  // namespace

TEST_CASE("auth facts live for one message - later stages read them, the next message starts empty",
          "[engine]") {
    auto cfg = base_config();
    std::vector<std::string> seen;
    cfg->checks.push_back(std::make_unique<FactsProbe>(seen));
    finish(*cfg);
    test::FakeClock clock;
    Session s(cfg, Services{&clock});
    replay(s, inbound());
    s.reset_message();
    REQUIRE(s.mail("a@example.net").kind == StageResult::Kind::proceed);
    CHECK(seen == std::vector<std::string>{"empty", "pass example.net", "empty"});
}

namespace {
// Reports and warns at connect and HELO, naming the HELO it saw.
class ReportProbe final : public Check {
  public:
    std::string_view name() const override { return "report_probe"; }
    std::vector<Stage> stages() const override { return {Stage::connect, Stage::helo}; }
    std::vector<core::SymbolDef> symbols() const override { return {}; }
    void run(Context& ctx) const override {
        std::string tag = std::string(to_string(ctx.stage())) + ":" + ctx.envelope().helo;
        ctx.add_report(std::string(to_string(ctx.stage())), "\"" + tag + "\"");
        ctx.add_auth_result("probe=" + tag);
        ctx.warn(tag);
    }
};
}  // namespace

TEST_CASE("a second HELO replaces the first one's reports, A-R entries and warnings too", "[engine]") {
    auto cfg = base_config();
    cfg->checks.push_back(std::make_unique<ReportProbe>());
    finish(*cfg);
    test::FakeClock clock;
    Session s(cfg, Services{&clock});
    REQUIRE(s.connect(core::IpAddress::parse("203.0.113.1"), "unknown").proceed());
    REQUIRE(s.helo("first.example").proceed());
    REQUIRE(s.helo("second.example").proceed());
    REQUIRE(s.mail("a@b.example").proceed());
    REQUIRE(s.rcpt("c@d.example").proceed());
    s.header("From", " a@b.example");
    s.end_of_headers();
    auto v = s.end_of_message();
    std::vector<std::string> reports;
    for (const auto& [k, j] : v.reports) reports.push_back(k + "=" + j);
    CHECK(reports == std::vector<std::string>{"connect=\"connect:\"", "helo=\"helo:second.example\""});
    CHECK(v.warnings == std::vector<std::string>{"connect:", "helo:second.example"});
}

TEST_CASE("without keep_reports (the milter) checks are told and no report is kept; the rest is unchanged",
          "[engine]") {
    auto cfg = base_config();
    cfg->checks.push_back(std::make_unique<ReportProbe>());
    finish(*cfg);
    test::FakeClock clock;
    auto run = [&](bool keep) {
        Services services{&clock};
        services.keep_reports = keep;
        Session s(cfg, services);
        REQUIRE(s.connect(core::IpAddress::parse("203.0.113.1"), "unknown").proceed());
        REQUIRE(s.helo("mx.example").proceed());
        REQUIRE(s.mail("a@b.example").proceed());
        REQUIRE(s.rcpt("c@d.example").proceed());
        s.header("From", " a@b.example");
        s.end_of_headers();
        return s.end_of_message();
    };
    auto kept = run(true);
    auto dropped = run(false);
    CHECK(kept.reports.size() == 2);
    CHECK(dropped.reports.empty());
    CHECK(dropped.warnings == kept.warnings);
    REQUIRE(dropped.edits.size() == kept.edits.size());
    for (std::size_t i = 0; i < kept.edits.size(); ++i) CHECK(dropped.edits[i].value == kept.edits[i].value);
}

namespace {
class WantsReportsProbe final : public Check {
  public:
    explicit WantsReportsProbe(std::vector<bool>& seen) : seen_(seen) {}
    std::string_view name() const override { return "wants_reports_probe"; }
    std::vector<Stage> stages() const override { return {Stage::connect}; }
    std::vector<core::SymbolDef> symbols() const override { return {}; }
    void run(Context& ctx) const override { seen_.push_back(ctx.wants_reports()); }

  private:
    std::vector<bool>& seen_;
};
}  // namespace

TEST_CASE("Context::wants_reports follows Services::keep_reports", "[engine]") {
    auto cfg = base_config();
    std::vector<bool> seen;
    cfg->checks.push_back(std::make_unique<WantsReportsProbe>(seen));
    finish(*cfg);
    test::FakeClock clock;
    for (bool keep : {true, false}) {
        Services services{&clock};
        services.keep_reports = keep;
        Session s(cfg, services);
        REQUIRE(s.connect(core::IpAddress::parse("203.0.113.1"), "unknown").proceed());
    }
    CHECK(seen == std::vector<bool>{true, false});
}

TEST_CASE("delay_reject: a refusal decided at connect or HELO is re-decided at MAIL FROM", "[engine]") {
    std::vector<std::string> log;
    auto cfg = base_config();
    auto& rbl = add_probe(*cfg, log, "rbl", {Stage::connect});  // inbound only, like a block list
    rbl.force_action = Action::reject;
    auto& mail = add_probe(*cfg, log, "mailcheck", {Stage::mail}, {}, false);
    mail.symbol = "PROBE_MAIL";
    auto& helo = add_probe(*cfg, log, "helocheck", {Stage::helo}, {}, false);
    helo.symbol = "PROBE_HELO";
    finish(*cfg);
    test::FakeClock clock;

    SECTION("inbound: it holds, decided at connect; HELO's checks ran, MAIL's need not") {
        Session s(cfg, Services{&clock});
        auto r = replay(s, inbound());
        REQUIRE(r.refused_at);
        CHECK(*r.refused_at == "connect");
        CHECK(r.refusal.kind == StageResult::Kind::reject);
        CHECK(r.refusal.decided_at == Stage::connect);
        CHECK(r.envelope.helo == "mx.example.net");
        CHECK(r.envelope.mail_from == "a@example.net");
        CHECK(std::count(log.begin(), log.end(), "run helocheck@helo") == 1);
        CHECK(std::count(log.begin(), log.end(), "run mailcheck@mail") == 0);
        // It holds for the next transaction of the session too.
        auto again = s.mail("b@example.net");
        CHECK_FALSE(again.proceed());
        CHECK(again.decided_at == Stage::connect);
    }
    SECTION("authenticated: an inbound-only check's refusal does not hold") {
        Session s(cfg, Services{&clock});
        auto in = inbound();
        in.auth_user = "alice";
        auto r = replay(s, in);
        CHECK_FALSE(r.refused_at);
        CHECK(r.envelope.direction == core::Direction::outbound);
        CHECK(std::count(log.begin(), log.end(), "run mailcheck@mail") == 1);
        CHECK(s.mail("b@example.net", "alice").proceed());
    }
    SECTION("delay_reject = false: refused at connect, before anything else runs") {
        cfg->milter.delay_reject = false;
        Session s(cfg, Services{&clock});
        auto in = inbound();
        in.auth_user = "alice";
        auto r = replay(s, in);
        REQUIRE(r.refused_at);
        CHECK(*r.refused_at == "connect");
        CHECK(std::count(log.begin(), log.end(), "run helocheck@helo") == 0);
    }
}

TEST_CASE("delay_reject: a refusal by a check that is not inbound-only holds for our own users too",
          "[engine]") {
    std::vector<std::string> log;
    auto cfg = base_config();
    auto& deny = add_probe(*cfg, log, "deny", {Stage::helo}, {}, false);
    deny.force_action = Action::tempfail;
    finish(*cfg);
    test::FakeClock clock;
    Session s(cfg, Services{&clock});
    auto in = inbound();
    in.auth_user = "alice";
    auto r = replay(s, in);
    REQUIRE(r.refused_at);
    CHECK(*r.refused_at == "helo");
    CHECK(r.refusal.kind == StageResult::Kind::tempfail);
    CHECK(r.refusal.decided_at == Stage::helo);
    // Step by step: decided at HELO, and it still holds at MAIL FROM for an authenticated sender.
    Session fresh(cfg, Services{&clock});
    REQUIRE(fresh.connect(core::IpAddress::parse("203.0.113.5"), "unknown").proceed());
    CHECK_FALSE(fresh.helo("x.example").proceed());
    auto at_mail = fresh.mail("a@example.net", "alice");
    CHECK(at_mail.kind == StageResult::Kind::tempfail);
    CHECK(at_mail.decided_at == Stage::helo);
}
