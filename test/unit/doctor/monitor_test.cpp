#include <catch2/catch.hpp>

#include <chrono>
#include <mutex>
#include <thread>

#include "doctor/monitor.hpp"
#include "doctor_fixture.hpp"
#include "engine/config.hpp"
#include "fakes.hpp"

using namespace vigil;
using namespace vigil::test::doctor;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using Priority = doctor::Monitor::Priority;

namespace {

constexpr std::string_view conf = R"(
[checks.dnsbl]
enabled = true
[[checks.dnsbl.list]]
name = "bl"
zone = "bl.example"
[checks.dnsbl.list.codes]
"127.0.0.2" = "RBL_BL_SPAM"
[[checks.dnsbl.list]]
name = "zen"
zone = "zen.spamhaus.org"
)";

struct Log {
    std::mutex m;
    std::vector<std::pair<Priority, std::string>> lines;
    doctor::Monitor::Log fn() {
        return [this](Priority p, const std::string& s) {
            std::lock_guard lock(m);
            lines.emplace_back(p, s);
        };
    }
    std::vector<std::pair<Priority, std::string>> take() {
        std::lock_guard lock(m);
        auto out = std::move(lines);
        lines.clear();
        return out;
    }
};

dns::Answer listed(std::string_view name, std::string_view code = "127.0.0.2") {
    return answer_of({dns::fake::address(name, code)});
}

struct Fixture {
    std::shared_ptr<const engine::Config> cfg = engine::load_config_string(std::string(conf), "t.conf");
    dns::FakeResolver f;
    test::FakeClock clock;
    Log log;
    doctor::Monitor::Options options() {
        doctor::Monitor::Options o;
        o.ips = {*core::IpAddress::parse("192.0.2.2"), *core::IpAddress::parse("192.0.2.10")};
        o.lists = doctor::select_lists(*cfg, {"configured"});
        o.interval = std::chrono::seconds(3600);
        return o;
    }
    void all_clean() {
        for (auto ip : {"2.2.0.192", "10.2.0.192"}) {
            for (auto zone : {"bl.example", "zen.spamhaus.org"}) {
                f.set_status(std::string(ip) + "." + zone, dns::RrType::a, dns::Status::nxdomain);
            }
        }
    }
};

}  // namespace

TEST_CASE("monitor: a summary at start, then a warning when listed and when de-listed", "[doctor][monitor]") {
    Fixture t;
    t.all_clean();
    doctor::Monitor m(t.options(), t.f, t.clock, t.log.fn());
    m.run_once();
    auto start = t.log.take();
    REQUIRE(start.size() == 1);
    CHECK(start[0].first == Priority::notice);
    CHECK(start[0].second ==
          "reputation monitor: 2 IPs on 2 lists, every 3600 s: listed nowhere; 4 answers clean");

    // Nothing changed: nothing logged.
    t.clock.advance(std::chrono::hours(1));
    m.run_once();
    CHECK(t.log.take().empty());

    t.f.set("2.2.0.192.bl.example", dns::RrType::a, listed("2.2.0.192.bl.example"));
    t.clock.advance(std::chrono::hours(1));
    m.run_once();
    auto now_listed = t.log.take();
    REQUIRE(now_listed.size() == 1);
    CHECK(now_listed[0].first == Priority::warning);
    CHECK(now_listed[0].second ==
          "reputation: 192.0.2.2 is now LISTED on bl.example (bl): 127.0.0.2: RBL_BL_SPAM");

    t.clock.advance(std::chrono::hours(1));
    m.run_once();
    CHECK(t.log.take().empty());

    t.f.set_status("2.2.0.192.bl.example", dns::RrType::a, dns::Status::nxdomain);
    t.clock.advance(std::chrono::hours(1));
    m.run_once();
    auto delisted = t.log.take();
    REQUIRE(delisted.size() == 1);
    CHECK(delisted[0].first == Priority::warning);
    CHECK(delisted[0].second ==
          "reputation: 192.0.2.2 is no longer listed on bl.example (bl) (de-listed after 7200 s)");
    CHECK(m.rounds() == 5);
}

TEST_CASE("monitor: cannot tell never counts as de-listed, and is said once", "[doctor][monitor]") {
    Fixture t;
    t.all_clean();
    t.f.set("2.2.0.192.zen.spamhaus.org", dns::RrType::a, listed("2.2.0.192.zen.spamhaus.org", "127.0.0.4"));
    doctor::Monitor m(t.options(), t.f, t.clock, t.log.fn());
    m.run_once();
    auto start = t.log.take();
    REQUIRE(start.size() == 1);
    CHECK(start[0].first == Priority::warning);
    CHECK_THAT(
        start[0].second,
        Contains("LISTED: 192.0.2.2 on zen.spamhaus.org (Spamhaus ZEN) (127.0.0.4: XBL, an exploited host"));

    // The list now refuses us (a public resolver): a warning, but the listing is not forgotten.
    t.f.set("2.2.0.192.zen.spamhaus.org", dns::RrType::a,
            listed("2.2.0.192.zen.spamhaus.org", "127.255.255.254"));
    m.run_once();
    auto refused = t.log.take();
    REQUIRE(refused.size() == 1);
    CHECK(refused[0].first == Priority::warning);
    CHECK(refused[0].second ==
          "reputation: cannot tell whether 192.0.2.2 is listed on zen.spamhaus.org (Spamhaus ZEN): refused "
          "with "
          "127.255.255.254: the query came through a public or shared resolver (it was listed)");
    m.run_once();
    CHECK(t.log.take().empty());  // still refusing: said once

    t.f.set_status("2.2.0.192.zen.spamhaus.org", dns::RrType::a, dns::Status::nxdomain);
    m.run_once();
    auto back = t.log.take();
    REQUIRE(back.size() == 2);
    CHECK(back[0].first == Priority::notice);
    CHECK_THAT(back[0].second, StartsWith("reputation: zen.spamhaus.org (Spamhaus ZEN) answers again"));
    CHECK_THAT(back[1].second, StartsWith("reputation: 192.0.2.2 is no longer listed on zen.spamhaus.org"));
}

TEST_CASE("monitor thread: first round at start, stop() returns promptly mid-interval and mid-lookup",
          "[doctor][monitor]") {
    Fixture t;
    t.all_clean();
    {
        doctor::Monitor m(t.options(), t.f, core::SystemClock::instance(), t.log.fn());
        m.start();
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (m.rounds() == 0 && std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        REQUIRE(m.rounds() == 1);
        auto t0 = std::chrono::steady_clock::now();
        m.stop();  // waiting out a 1 h interval
        CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(500));
    }
    {
        // A list that never answers: the round waits for it, and stop() still returns at once.
        t.f.never_answer("10.2.0.192.zen.spamhaus.org", dns::RrType::a);
        auto o = t.options();
        o.timeout = std::chrono::seconds(60);
        doctor::Monitor m(o, t.f, core::SystemClock::instance(), t.log.fn());
        m.start();
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        auto t0 = std::chrono::steady_clock::now();
        m.stop();
        CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(500));
        CHECK(m.rounds() == 0);
    }
}
