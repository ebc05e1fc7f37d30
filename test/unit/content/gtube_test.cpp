#include <catch2/catch.hpp>

#include <string>

#include "content/gtube.hpp"
#include "core/limits.hpp"
#include "engine/config.hpp"
#include "engine/session.hpp"
#include "fakes.hpp"

using namespace vigil;

namespace {

core::Verdict run_body(const std::vector<std::string>& chunks, const std::string& conf = "") {
    test::FakeClock clock;
    engine::Session s(engine::load_config_string(conf), engine::Services{&clock});
    REQUIRE(s.connect(core::IpAddress::parse("203.0.113.1"), "unknown").proceed());
    REQUIRE(s.mail("a@example.net").proceed());
    REQUIRE(s.rcpt("b@example.org").proceed());
    s.header("From", " a@example.net");
    s.end_of_headers();
    for (const auto& c : chunks) s.body(c);
    return s.end_of_message();
}

bool has(const core::Verdict& v, std::string_view sym) {
    return std::any_of(v.symbols.begin(), v.symbols.end(), [&](const auto& s) { return s.name == sym; });
}

}  // namespace

TEST_CASE("GTUBE is found and forces its action", "[gtube]") {
    std::string g(content::gtube_string);
    auto v = run_body({"hello\r\n" + g + "\r\n"});
    CHECK(has(v, "GTUBE"));
    CHECK(v.action == core::Action::reject);
    REQUIRE(v.reply);
    CHECK(v.reply->code == "554");
}

TEST_CASE("GTUBE split across body chunks is still found", "[gtube]") {
    std::string g(content::gtube_string);
    for (std::size_t cut = 1; cut < g.size(); cut += 7) {
        INFO(cut);
        CHECK(has(run_body({"x" + g.substr(0, cut), g.substr(cut), "tail"}), "GTUBE"));
    }
    // One byte per chunk.
    std::vector<std::string> bytes;
    for (char c : g) bytes.emplace_back(1, c);
    CHECK(has(run_body(bytes), "GTUBE"));
}

TEST_CASE("GTUBE: no false positive - scan bounded - action configurable", "[gtube]") {
    std::string g(content::gtube_string);
    CHECK_FALSE(has(run_body({g.substr(0, g.size() - 1)}), "GTUBE"));
    CHECK_FALSE(has(run_body({std::string(core::limits::gtube_scan_bytes, 'a'), g}), "GTUBE"));
    auto v = run_body({g}, "[checks.gtube]\naction = \"score\"\n");
    CHECK(has(v, "GTUBE"));
    CHECK_FALSE(v.forced);
    CHECK(v.action == core::Action::reject);  // 20 points reach the default reject threshold
    CHECK(run_body({g}, "[checks.gtube]\naction = \"quarantine\"\n[scores]\nGTUBE = 0\n").action ==
          core::Action::quarantine);
}
