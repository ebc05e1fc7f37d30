#include <catch2/catch.hpp>

#include "doctor/report.hpp"
#include "doctor_fixture.hpp"

using namespace vigil;
using namespace vigil::test::doctor;
using Catch::Matchers::Contains;

namespace {

std::vector<Finding> sample() {
    return {
        {"lists", "192.0.2.2", Level::fail, "LISTED on bl.test (bl) with 127.0.0.2: SPAM", "Ask for removal"},
        {"spf", "example.test", Level::ok, "ends in -all", ""},
        {"rdns", "192.0.2.2", Level::unknown, "cannot tell: timeout", "Run again"},
        {"dmarc", "example.test", Level::warn, "p=none without rua", "Publish: _dmarc \"x\""},
    };
}

}  // namespace

TEST_CASE("exit status: 0 ok, 1 warn or cannot tell, 2 fail", "[doctor][report]") {
    std::vector<Finding> all_ok = {{"spf", "d", Level::ok, "fine", ""}};
    CHECK(doctor::exit_status(all_ok) == 0);
    CHECK(doctor::exit_status({}) == 0);
    auto unknown = all_ok;
    unknown.push_back({"lists", "ip", Level::unknown, "cannot tell", "x"});
    CHECK(doctor::exit_status(unknown) == 1);
    auto warn = all_ok;
    warn.push_back({"dkim", "d", Level::warn, "weak", "x"});
    CHECK(doctor::exit_status(warn) == 1);
    CHECK(doctor::exit_status(sample()) == 2);
}

TEST_CASE("the table groups findings by subject in order of first appearance", "[doctor][report]") {
    auto t = doctor::format_table(sample(), false);
    CHECK(t ==
          "192.0.2.2\n"
          "  FAIL  lists   LISTED on bl.test (bl) with 127.0.0.2: SPAM\n"
          "                fix: Ask for removal\n"
          "  ??    rdns    cannot tell: timeout\n"
          "                fix: Run again\n"
          "\n"
          "example.test\n"
          "  ok    spf     ends in -all\n"
          "  WARN  dmarc   p=none without rua\n"
          "                fix: Publish: _dmarc \"x\"\n"
          "\n"
          "1 ok, 1 warn, 1 fail, 1 cannot tell\n");
    CHECK(t.find('\033') == std::string::npos);
    auto coloured = doctor::format_table(sample(), true);
    CHECK_THAT(coloured, Contains("\033[1;31mFAIL\033[0m"));
}

TEST_CASE("DNS data in a finding cannot put control bytes on the terminal", "[doctor][report]") {
    std::vector<Finding> f = {{"spf", "evil\033[2J.test", Level::fail, "record \"\033]0;x\007\"", ""}};
    auto t = doctor::format_table(f, false);
    CHECK(t.find('\033') == std::string::npos);
    CHECK(t.find('\007') == std::string::npos);
    auto j = doctor::format_json(f);
    CHECK(j.find('\033') == std::string::npos);
}

TEST_CASE("JSON carries every finding, the summary and the exit status", "[doctor][report]") {
    auto j = doctor::format_json(sample());
    CHECK_THAT(
        j,
        Contains(
            R"({"area":"lists","subject":"192.0.2.2","level":"fail","reason":"LISTED on bl.test (bl) with 127.0.0.2: SPAM","fix":"Ask for removal"})"));
    CHECK_THAT(j, Contains(R"("level":"unknown")"));
    CHECK_THAT(j, Contains(R"("fix":"Publish: _dmarc \"x\""})"));
    CHECK_THAT(j, Contains(R"("summary":{"ok":1,"warn":1,"fail":1,"unknown":1},"exit":2})"));
}
