#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "core/limits.hpp"
#include "engine/config.hpp"
#include "engine/session.hpp"
#include "fakes.hpp"

using namespace vigil;

namespace {

// The fields as the MTA sends them, through the engine with its default checks.
core::Verdict run_headers(const std::vector<std::pair<std::string, std::string>>& fields) {
    test::FakeClock clock;
    engine::Session s(engine::load_config_string(""), engine::Services{&clock});
    REQUIRE(s.connect(core::IpAddress::parse("203.0.113.1"), "unknown").proceed());
    REQUIRE(s.mail("a@example.net").proceed());
    REQUIRE(s.rcpt("b@example.org").proceed());
    for (const auto& [name, value] : fields) s.header(name, value);
    s.end_of_headers();
    s.body("hello\r\n");
    return s.end_of_message();
}

const core::ScoredSymbol* find(const core::Verdict& v, std::string_view sym) {
    auto it = std::find_if(v.symbols.begin(), v.symbols.end(), [&](const auto& s) { return s.name == sym; });
    return it == v.symbols.end() ? nullptr : &*it;
}

std::vector<std::pair<std::string, std::string>> fillers(std::size_t n) {
    return std::vector<std::pair<std::string, std::string>>(n, {"X-Filler", " x"});
}

}  // namespace

TEST_CASE("message structure: one From, two, none", "[message_structure]") {
    auto one = run_headers({{"From", " a@example.net"}, {"Subject", " hi"}});
    CHECK(find(one, "MSG_NO_FROM") == nullptr);
    CHECK(find(one, "MSG_MULTIPLE_FROM") == nullptr);
    CHECK(find(one, "MSG_HEADER_LIMIT") == nullptr);

    auto two = run_headers({{"From", " a@example.net"}, {"from", " b@example.org"}});
    REQUIRE(find(two, "MSG_MULTIPLE_FROM") != nullptr);
    CHECK(find(two, "MSG_MULTIPLE_FROM")->options == std::vector<std::string>{"2 fields"});

    auto none = run_headers({{"Subject", " hi"}});
    CHECK(find(none, "MSG_NO_FROM") != nullptr);

    auto empty = run_headers({});
    CHECK(find(empty, "MSG_NO_HEADERS") != nullptr);
    CHECK(find(empty, "MSG_NO_FROM") == nullptr);
}

TEST_CASE("message structure: From fields count past the cap on kept fields", "[message_structure][from]") {
    SECTION("the only From after 5,000 fields: there is a From") {
        auto f = fillers(core::limits::max_header_fields);
        f.emplace_back("From", " ceo@victim.example");
        auto v = run_headers(f);
        CHECK(find(v, "MSG_HEADER_LIMIT") != nullptr);
        CHECK(find(v, "MSG_NO_FROM") == nullptr);
        CHECK(find(v, "MSG_MULTIPLE_FROM") == nullptr);
    }
    SECTION("one From before 5,000 fields and one after: two") {
        std::vector<std::pair<std::string, std::string>> f{{"From", " me@attacker.example"}};
        auto more = fillers(core::limits::max_header_fields);
        f.insert(f.end(), more.begin(), more.end());
        f.emplace_back("From", " ceo@victim.example");
        auto v = run_headers(f);
        REQUIRE(find(v, "MSG_MULTIPLE_FROM") != nullptr);
        CHECK(find(v, "MSG_MULTIPLE_FROM")->options == std::vector<std::string>{"2 fields"});
    }
    SECTION("no From at all in more fields than are kept: no From") {
        auto v = run_headers(fillers(core::limits::max_header_fields + 10));
        CHECK(find(v, "MSG_HEADER_LIMIT") != nullptr);
        CHECK(find(v, "MSG_NO_FROM") != nullptr);
    }
    SECTION("more From fields than are kept: counted, and said") {
        std::vector<std::pair<std::string, std::string>> f(core::limits::max_from_fields + 4,
                                                           {"From", " a@example.net"});
        auto v = run_headers(f);
        REQUIRE(find(v, "MSG_MULTIPLE_FROM") != nullptr);
        CHECK(find(v, "MSG_MULTIPLE_FROM")->options ==
              std::vector<std::string>{"20 fields", "only the first 16 examined"});
    }
}
