// Incoming fields Vigil removes (forged Authentication-Results, the sender's X-Spam-*) and the cap
// on how many: a message that needs more removals than core::limits::max_removed_fields_per_name of
// one name is refused, never edited field by field (Postfix's cleanup walks the header per removal)
// and never delivered with the forgeries in place.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "core/limits.hpp"
#include "core/printable.hpp"
#include "engine/actions.hpp"
#include "engine/config.hpp"
#include "engine/incoming_fields.hpp"
#include "engine/replay.hpp"
#include "engine/session.hpp"
#include "fakes.hpp"

using namespace vigil;
using namespace vigil::engine;
using K = core::HeaderEdit::Kind;

namespace {

constexpr auto cap = core::limits::max_removed_fields_per_name;

std::shared_ptr<const Config> config(const std::string& extra = "") {
    return load_config_string("[server]\nauthserv_id = \"mx.vigil.test\"\n" + extra);
}

std::vector<std::pair<std::string, int>> removed(const std::vector<core::HeaderEdit>& edits) {
    std::vector<std::pair<std::string, int>> out;
    for (const auto& e : edits) {
        if (e.kind == K::remove) out.emplace_back(e.name, e.index);
    }
    return out;
}

// The whole message through a Session, as the milter and `vigil check` run it.
core::Verdict run(const std::shared_ptr<const Config>& cfg, const std::string& header, const std::string& ip,
                  const std::string& from = "a@example.org") {
    std::string msg = "From: a@example.org\r\nSubject: s\r\n" + header + "\r\nbody\r\n";
    test::FakeClock clock;
    Session s(cfg, Services{&clock});
    ReplayInput in;
    in.ip = core::IpAddress::parse(ip);
    in.mail_from = from;
    in.rcpts = {"r@vigil.test"};
    in.message = msg;
    auto r = replay(s, in);
    REQUIRE_FALSE(r.refused_at);
    return r.verdict;
}

std::string repeat(const std::string& field, std::size_t n) {
    std::string out;
    out.reserve(field.size() * n);
    for (std::size_t i = 0; i < n; ++i) out += field;
    return out;
}

}  // namespace

TEST_CASE("incoming fields: forged Authentication-Results and the sender's X-Spam-* are removed",
          "[incoming][actions]") {
    auto cfg = config();
    IncomingFields in(*cfg);
    in.add("Authentication-Results", " mx.vigil.test; spf=pass");
    in.add("X-Spam-Flag", " NO");
    in.add("authentication-results", " other.example; spf=pass");  // another host's: kept
    in.add("x-spam-status", " No, score=-5");
    in.add("Authentication-Results", " (comment) \"MX.Vigil.Test\"; dkim=pass");
    in.add("X-Spam-Flag", " NO");
    in.add("X-Spam-Score", " -5");
    in.add("X-Spam-Level", " *");  // not one of ours: kept
    CHECK_FALSE(in.excess());
    // Each name from its last occurrence backwards.
    CHECK(removed(in.removals()) == std::vector<std::pair<std::string, int>>{{"Authentication-Results", 3},
                                                                             {"Authentication-Results", 1},
                                                                             {"X-Spam-Flag", 2},
                                                                             {"X-Spam-Flag", 1},
                                                                             {"X-Spam-Status", 1},
                                                                             {"X-Spam-Score", 1}});
}

TEST_CASE("incoming fields: the configured names, and remove_incoming = false", "[incoming][config]") {
    SECTION("renamed junk headers: those names are removed") {
        auto cfg = config("[headers]\nflag = \"X-Junk\"\nstatus = \"X-Junk-Why\"\nscore = \"X-Junk\"\n");
        IncomingFields in(*cfg);
        in.add("X-Spam-Flag", " NO");
        in.add("X-Junk", " no");
        in.add("X-Junk-Why", " none");
        in.add("X-Junk", " no");
        // One name configured twice is one set of removals.
        CHECK(removed(in.removals()) ==
              std::vector<std::pair<std::string, int>>{{"X-Junk", 2}, {"X-Junk", 1}, {"X-Junk-Why", 1}});
    }
    SECTION("remove_incoming = false keeps them, but never a forged Authentication-Results") {
        auto cfg = config("[headers]\nremove_incoming = false\n");
        CHECK_FALSE(cfg->headers.remove_incoming);
        IncomingFields in(*cfg);
        for (std::size_t i = 0; i < cap + 5; ++i) in.add("X-Spam-Status", " No");
        in.add("Authentication-Results", " mx.vigil.test; none");
        CHECK_FALSE(in.excess());
        CHECK(removed(in.removals()) ==
              std::vector<std::pair<std::string, int>>{{"Authentication-Results", 1}});
    }
    SECTION("on by default") {
        CHECK(config()->headers.remove_incoming);
        CHECK_THROWS(config("[headers]\nremove_incoming = \"yes\"\n"));
    }
}

TEST_CASE("incoming fields: at most the cap of one name is removed, more refuse the message",
          "[incoming][limits]") {
    auto cfg = config();
    SECTION("exactly the cap of each name: all removed") {
        IncomingFields in(*cfg);
        for (const char* name : {"Authentication-Results", "X-Spam-Flag", "X-Spam-Status", "X-Spam-Score"}) {
            for (std::size_t i = 0; i < cap; ++i) in.add(name, " mx.vigil.test; none");
        }
        CHECK_FALSE(in.excess());
        CHECK(in.removals().size() == 4 * cap);
    }
    SECTION("one forged Authentication-Results over") {
        IncomingFields in(*cfg);
        for (std::size_t i = 0; i < cap + 1; ++i) in.add("Authentication-Results", " mx.vigil.test; none");
        in.add("Authentication-Results", " other.example; none");  // not counted
        auto e = in.excess();
        REQUIRE(e);
        CHECK(e->reason ==
              "17 Authentication-Results fields claim our authserv-id mx.vigil.test (at most 16 "
              "are removed)");
        CHECK(e->reply.code == "554");
        CHECK(e->reply.xcode == "5.7.1");
        CHECK(e->reply.text == "too many forged Authentication-Results fields");
        CHECK(in.removals().empty());
    }
    SECTION("one X-Spam-Status over") {
        IncomingFields in(*cfg);
        for (std::size_t i = 0; i < cap + 1; ++i) in.add("X-SPAM-STATUS", " No");
        auto e = in.excess();
        REQUIRE(e);
        CHECK(e->reason == "17 incoming X-Spam-Status fields (at most 16 are removed)");
        CHECK(e->reply.text == "too many incoming X-Spam-Status fields");
    }
    SECTION("a '%' in a configured name does not reach the SMTP reply") {
        auto odd = config("[headers]\nflag = \"X-100%-Spam\"\n");
        IncomingFields in(*odd);
        for (std::size_t i = 0; i < cap + 1; ++i) in.add("X-100%-Spam", " no");
        auto e = in.excess();
        REQUIRE(e);
        CHECK(e->reply.text.find('%') == std::string::npos);
    }
    SECTION("20,000: counted, not stored") {
        IncomingFields in(*cfg);
        for (int i = 0; i < 20'000; ++i) in.add("Authentication-Results", " mx.vigil.test; spf=pass");
        auto e = in.excess();
        REQUIRE(e);
        CHECK(e->reason.rfind("20000 Authentication-Results fields", 0) == 0);
        CHECK(in.removals().empty());
    }
}

TEST_CASE("incoming fields: header_edits gives no edits at all for a message over the cap",
          "[incoming][actions]") {
    auto cfg = config();
    core::Message msg;
    for (std::size_t i = 0; i < cap + 1; ++i) msg.add_header("X-Spam-Flag", " NO");
    core::Envelope env;
    core::Verdict v;
    v.action = core::Action::add_header;
    CHECK(header_edits(*cfg, env, msg, v, {}).empty());  // scanned from the message
    IncomingFields in = IncomingFields::of(*cfg, msg);
    CHECK(header_edits(*cfg, env, msg, v, {}, {}, &in).empty());
}

TEST_CASE("incoming fields: refuse_excess turns any verdict but a reject into a 554 naming the cause",
          "[incoming][engine]") {
    auto cfg = config();
    IncomingFields over(*cfg);
    for (std::size_t i = 0; i < cap + 1; ++i) over.add("Authentication-Results", " mx.vigil.test; none");
    for (auto action :
         {core::Action::accept, core::Action::add_header, core::Action::quarantine, core::Action::tempfail}) {
        core::Verdict v;
        v.action = action;
        v.quarantine_reason = "vigil: score 12.00";
        v.edits.push_back({K::append, "X-Spam-Flag", " YES", 0});
        CHECK(refuse_excess(over, v));
        CHECK(v.action == core::Action::reject);
        REQUIRE(v.reply);
        CHECK(v.reply->code == "554");
        CHECK(v.reply->text == "too many forged Authentication-Results fields");
        REQUIRE(v.forced);
        CHECK(v.forced->check == "header_edits");
        CHECK(v.forced->reason.find("17 Authentication-Results fields") != std::string::npos);
        CHECK(v.edits.empty());
        CHECK(v.quarantine_reason.empty());
        REQUIRE(v.warnings.size() == 1);
        CHECK(v.warnings[0].rfind("refused: 17 Authentication-Results", 0) == 0);
    }
    SECTION("a reject stays the reject it was") {
        core::Verdict v;
        v.action = core::Action::reject;
        v.reply = core::SmtpReply{"550", "5.7.1", "Message rejected by policy"};
        CHECK_FALSE(refuse_excess(over, v));
        CHECK(v.reply->code == "550");
        CHECK_FALSE(v.forced);
    }
    SECTION("within the cap nothing changes") {
        IncomingFields fine(*cfg);
        fine.add("Authentication-Results", " mx.vigil.test; none");
        core::Verdict v;
        CHECK_FALSE(refuse_excess(fine, v));
        CHECK(v.action == core::Action::accept);
    }
}

TEST_CASE("incoming fields through the engine: removed before ours are added, the flood refused",
          "[incoming][engine]") {
    auto cfg = config(
        "[[checks.access.rule]]\nmatch = \"sender\"\npattern = \"@junk.test\"\naction = \"score\"\nscore = "
        "7.5\n");

    SECTION("junk: the sender's X-Spam-* go, ours come after") {
        auto v = run(cfg,
                     "X-Spam-Flag : NO\r\nX-Spam-Status: No, score=-5.0\r\nX-Spam-Score: -5.0\r\n"
                     "Authentication-Results: mx.vigil.test; dmarc=pass\r\n",
                     "203.0.113.5", "x@junk.test");
        REQUIRE(v.action == core::Action::add_header);
        REQUIRE(v.edits.size() >= 4);
        CHECK(removed(v.edits) == std::vector<std::pair<std::string, int>>{{"Authentication-Results", 1},
                                                                           {"X-Spam-Flag", 1},
                                                                           {"X-Spam-Status", 1},
                                                                           {"X-Spam-Score", 1}});
        // Every removal comes before the first field is added, so no index can hit one of ours.
        auto first_add =
            std::find_if(v.edits.begin(), v.edits.end(), [](const auto& e) { return e.kind != K::remove; });
        CHECK(std::all_of(first_add, v.edits.end(), [](const auto& e) { return e.kind != K::remove; }));
        CHECK(std::any_of(v.edits.begin(), v.edits.end(),
                          [](const auto& e) { return e.kind == K::append && e.name == "X-Spam-Flag"; }));
    }
    SECTION("outbound mail loses them too") {
        auto v = run(cfg, "X-Spam-Flag: NO\r\n", "127.0.0.1");
        CHECK(removed(v.edits) == std::vector<std::pair<std::string, int>>{{"X-Spam-Flag", 1}});
    }
    SECTION("20,000 forged Authentication-Results: 554 5.7.1, no edits") {
        auto v =
            run(cfg, repeat("Authentication-Results: mx.vigil.test; spf=pass\r\n", 20'000), "203.0.113.5");
        CHECK(v.action == core::Action::reject);
        REQUIRE(v.reply);
        CHECK(v.reply->code == "554");
        CHECK(v.reply->xcode == "5.7.1");
        CHECK(v.reply->text == "too many forged Authentication-Results fields");
        CHECK(v.edits.empty());
        REQUIRE(v.forced);
        CHECK(v.forced->reason ==
              "20000 Authentication-Results fields claim our authserv-id mx.vigil.test (at most 16 are "
              "removed)");
    }
    SECTION("past the header-field cap of the message, still counted") {
        auto v = run(cfg,
                     repeat("X-Filler: x\r\n", core::limits::max_header_fields) +
                         repeat("X-Spam-Status: No\r\n", cap + 1),
                     "203.0.113.5");
        CHECK(v.action == core::Action::reject);
        CHECK(v.reply->text == "too many incoming X-Spam-Status fields");
    }
    SECTION("also with honour_forced_actions = false") {
        auto lax = config("[actions]\nhonour_forced_actions = false\n");
        auto v = run(lax, repeat("X-Spam-Flag: NO\r\n", 100), "203.0.113.5");
        CHECK(v.action == core::Action::reject);
        CHECK(v.edits.empty());
    }
    SECTION("the next message on the connection starts counting afresh") {
        test::FakeClock clock;
        Session s(cfg, Services{&clock});
        REQUIRE(s.connect(core::IpAddress::parse("203.0.113.5"), "unknown").proceed());
        REQUIRE(s.mail("a@example.org").proceed());
        REQUIRE(s.rcpt("r@vigil.test").proceed());
        for (std::size_t i = 0; i < cap; ++i) s.header("X-Spam-Flag", " NO");
        CHECK(s.end_of_message().action == core::Action::accept);
        s.reset_message();
        REQUIRE(s.mail("a@example.org").proceed());
        REQUIRE(s.rcpt("r@vigil.test").proceed());
        for (std::size_t i = 0; i < cap; ++i) s.header("X-Spam-Flag", " NO");
        auto v = s.end_of_message();
        CHECK(v.action == core::Action::accept);
        CHECK(removed(v.edits).size() == cap);
    }
}
