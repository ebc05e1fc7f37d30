#include <catch2/catch.hpp>

#include <thread>

#include "doctor/lists.hpp"
#include "doctor/monitor.hpp"
#include "doctor_fixture.hpp"
#include "engine/config.hpp"

using namespace vigil;
using namespace vigil::test::doctor;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

constexpr std::string_view lists_conf = R"(
[checks.dnsbl]
enabled = true
[[checks.dnsbl.list]]
name = "bl"
zone = "bl.example"
[checks.dnsbl.list.codes]
"127.0.0.2" = "RBL_BL_SPAM"
[[checks.dnsbl.list]]
name = "zen-local"
zone = "zen.spamhaus.org"
ipv6 = true
[[checks.dnsbl.list]]
name = "wl"
zone = "wl.example"
type = "allow"
)";

std::shared_ptr<const engine::Config> conf(std::string_view extra = "") {
    return engine::load_config_string(std::string(lists_conf) + std::string(extra), "test.conf");
}

dns::Answer code(std::string_view name, std::string_view c) {
    return answer_of({dns::fake::address(name, c)});
}

const doctor::WatchedList& by_zone(const std::vector<doctor::WatchedList>& l, std::string_view zone) {
    for (const auto& w : l) {
        if (w.list.zone == zone) return w;
    }
    FAIL("no list " << zone);
    throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("the built-in public lists parse with the dnsbl check's own parser", "[doctor][lists]") {
    const auto& pub = doctor::public_lists();
    REQUIRE(pub.size() == doctor::public_list_names().size());
    const auto& zen = pub.front();
    CHECK(zen.list.zone == "zen.spamhaus.org");
    CHECK(zen.list.ipv6);
    CHECK(zen.title == "Spamhaus ZEN");
    // The parser's default refusal codes apply: a public resolver's 127.255.255.254 is not a listing.
    auto refused = reputation::classify_answer(zen.list, code("x", "127.255.255.254"));
    CHECK(refused.kind == reputation::ListResult::Kind::refused);
    for (const auto& p : pub) {
        for (const auto& rule : p.list.codes) {
            INFO(p.list.name << " " << rule.symbol);
            CHECK(p.meanings.count(rule.symbol) == 1);  // every code has a meaning for the operator
        }
    }
}

TEST_CASE("list selectors: configured, public, single public lists; a zone is checked once",
          "[doctor][lists]") {
    auto cfg = conf();
    auto both = doctor::select_lists(*cfg, {"configured", "public"});
    CHECK(both.size() == 3 + doctor::public_lists().size() - 1);        // zen is configured and public: once
    CHECK(by_zone(both, "zen.spamhaus.org").list.name == "zen-local");  // the configured one wins...
    REQUIRE(by_zone(both, "zen.spamhaus.org").known != nullptr);        // ...with the public meanings
    CHECK(by_zone(both, "bl.example").known == nullptr);

    auto configured = doctor::select_lists(*cfg, {"configured"});
    CHECK(configured.size() == 3);
    auto one = doctor::select_lists(*cfg, {"spamcop"});
    REQUIRE(one.size() == 1);
    CHECK(one.front().list.zone == "bl.spamcop.net");

    CHECK_FALSE(doctor::list_selector_error("public"));
    CHECK_FALSE(doctor::list_selector_error("dnswl"));
    REQUIRE(doctor::list_selector_error("spamhaus"));
    CHECK_THAT(*doctor::list_selector_error("spamhaus"), Contains("\"spamhaus-zen\""));
}

TEST_CASE("a listing is a fail with the list's meaning and where to ask for removal", "[doctor][lists]") {
    auto cfg = conf();
    auto lists = doctor::select_lists(*cfg, {"configured"});
    auto ip = *core::IpAddress::parse("192.0.2.2");

    auto zen = doctor::list_finding(by_zone(lists, "zen.spamhaus.org"), ip, code("q", "127.0.0.4"));
    CHECK(zen.level == Level::fail);
    CHECK(zen.area == "lists");
    CHECK(zen.subject == "192.0.2.2");
    CHECK_THAT(zen.reason, Contains("LISTED on zen.spamhaus.org (Spamhaus ZEN) with 127.0.0.4: XBL"));
    CHECK_THAT(zen.fix, Contains("https://check.spamhaus.org/"));

    auto pbl = doctor::list_finding(by_zone(lists, "zen.spamhaus.org"), ip, code("q", "127.0.0.10"));
    CHECK(pbl.level == Level::fail);
    CHECK_THAT(pbl.fix,
               StartsWith("If 192.0.2.2 is a mail server with a fixed address, remove it from the PBL"));

    auto own = doctor::list_finding(by_zone(lists, "bl.example"), ip, code("q", "127.0.0.2"));
    CHECK(own.level == Level::fail);
    CHECK_THAT(own.reason, Contains("with 127.0.0.2: RBL_BL_SPAM"));
    CHECK_THAT(own.fix, Contains("the operator of bl.example"));
}

TEST_CASE("a refusal code or a failed lookup is cannot tell, never clean", "[doctor][lists]") {
    auto cfg = conf();
    auto lists = doctor::select_lists(*cfg, {"configured"});
    auto ip = *core::IpAddress::parse("192.0.2.40");
    const auto& bl = by_zone(lists, "bl.example");

    auto refused = doctor::list_finding(bl, ip, code("q", "127.255.255.254"));
    CHECK(refused.level == Level::unknown);
    CHECK_THAT(refused.reason,
               Contains("cannot tell: bl.example (bl) refused our query (127.255.255.254: the query "
                        "came through a public or shared resolver)"));
    CHECK_THAT(refused.fix, Contains("resolver of your own"));

    auto outside = doctor::list_finding(bl, ip, code("q", "10.0.0.2"));
    CHECK(outside.level == Level::unknown);
    CHECK_THAT(outside.reason, Contains("outside 127.0.0.0/8"));

    auto timeout = doctor::list_finding(bl, ip, dns::Answer::failure(dns::Status::timeout, "slow"));
    CHECK(timeout.level == Level::unknown);
    CHECK_THAT(timeout.reason, Contains("ended in timeout"));

    dns::Answer nx;
    nx.status = dns::Status::nxdomain;
    auto clean = doctor::list_finding(bl, ip, nx);
    CHECK(clean.level == Level::ok);
    CHECK(clean.reason == "not listed on bl.example (bl)");
    CHECK(clean.fix.empty());
}

TEST_CASE("allow lists: being on one, or not, is never a fault", "[doctor][lists]") {
    auto cfg = conf();
    auto lists = doctor::select_lists(*cfg, {"configured"});
    auto ip = *core::IpAddress::parse("192.0.2.10");
    auto on = doctor::list_finding(by_zone(lists, "wl.example"), ip, code("q", "127.0.10.3"));
    CHECK(on.level == Level::ok);
    CHECK_THAT(on.reason, Contains("on the allow list wl.example"));
    dns::Answer nx;
    nx.status = dns::Status::nxdomain;
    CHECK(doctor::list_finding(by_zone(lists, "wl.example"), ip, nx).level == Level::ok);
}

TEST_CASE("check_lists asks every list about every IP at once, IPv6 only where a list takes it",
          "[doctor][lists]") {
    auto cfg = conf();
    auto lists = doctor::select_lists(*cfg, {"configured"});
    dns::FakeResolver f;
    f.set("2.2.0.192.bl.example", dns::RrType::a, code("2.2.0.192.bl.example", "127.0.0.2"));
    f.set_status("2.2.0.192.zen.spamhaus.org", dns::RrType::a, dns::Status::nxdomain);
    f.set_status("2.2.0.192.wl.example", dns::RrType::a, dns::Status::nxdomain);
    const std::string v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.spamhaus.org";
    f.set_status(v6, dns::RrType::a, dns::Status::nxdomain);
    f.hold("2.2.0.192.bl.example", dns::RrType::a);
    std::vector<core::IpAddress> ips = {*core::IpAddress::parse("192.0.2.2"),
                                        *core::IpAddress::parse("2001:db8::1")};
    doctor::Probe probe{f, std::chrono::milliseconds(2000)};
    std::thread later([&] {
        // Released only once the other lookups were issued: nothing waited before asking all.
        while (f.queries().size() < 4) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        f.release("2.2.0.192.bl.example", dns::RrType::a);
    });
    auto out = doctor::check_lists(probe, ips, lists);
    later.join();
    REQUIRE(out.size() == 4);  // 3 lists for IPv4, only zen for IPv6
    CHECK(count(out, Level::fail) == 1);
    CHECK(count(out, Level::ok) == 3);
    CHECK(f.unexpected().empty());
}
