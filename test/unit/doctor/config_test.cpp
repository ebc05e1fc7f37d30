#include <catch2/catch.hpp>

#include "auth/dkim/dkim_fixture.hpp"
#include "doctor/doctor.hpp"
#include "doctor_fixture.hpp"
#include "engine/config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

using namespace vigil;
using namespace vigil::test::doctor;
using Catch::Matchers::Contains;

namespace {

std::string errors_of(std::string_view toml) {
    try {
        engine::load_config_string(toml, "t.conf");
    } catch (const check::ConfigError& e) {
        return e.what();
    }
    return {};
}

}  // namespace

TEST_CASE("[server] sending_ips and domains, [monitor]: defaults and values", "[doctor][config]") {
    auto def = engine::load_config_string("", "t.conf");
    CHECK(def->server.sending_ips.empty());
    CHECK(def->server.domains.empty());
    CHECK(def->monitor.enabled);
    CHECK(def->monitor.interval == std::chrono::seconds(3600));
    CHECK(def->monitor.lists == std::vector<std::string>{"configured", "public"});

    auto cfg = engine::load_config_string(R"(
[server]
sending_ips = ["192.0.2.10", "2001:db8::10", "::ffff:192.0.2.10"]
domains = ["Example.TEST.", "example.test", "other.test"]
[monitor]
enabled = false
interval = 600
lists = ["configured", "spamcop"]
)",
                                          "t.conf");
    REQUIRE(cfg->server.sending_ips.size() == 2);  // the mapped address is the same IPv4 address
    CHECK(cfg->server.sending_ips[1].to_string() == "2001:db8::10");
    CHECK(cfg->server.domains == std::vector<std::string>{"example.test", "other.test"});
    CHECK_FALSE(cfg->monitor.enabled);
    CHECK(cfg->monitor.interval == std::chrono::seconds(600));
}

TEST_CASE("[server] and [monitor] mistakes are config errors with their place", "[doctor][config]") {
    CHECK_THAT(errors_of("[server]\nsending_ips = [\"192.0.2.0/24\"]\n"),
               Contains("t.conf:2:") && Contains("not an IP address"));
    CHECK_THAT(errors_of("[server]\ndomains = [\"no_dot\"]\n"), Contains("'no_dot' is not a domain name"));
    CHECK_THAT(errors_of("[monitor]\ninterval = 0\n"), Contains("interval"));
    CHECK_THAT(errors_of("[monitor]\nlists = [\"spamhaus\"]\n"), Contains("'spamhaus' is not a list"));
    CHECK_THAT(errors_of("[monitor]\nintervall = 5\n"), Contains("intervall"));
}

TEST_CASE("the doctor's target comes from [server] and the DKIM keys and signing rules", "[doctor][config]") {
    // Real key files, as the config loader reads them (mode 0600).
    auto dir = std::string("/tmp/vigil-doctor-test-") + std::to_string(::getpid());
    ::mkdir(dir.c_str(), 0700);
    auto write_key = [&](const std::string& name, auth::dkim::KeyType type) {
        auto g = auth::dkim::generate_key(type, 2048);
        auto path = dir + "/" + name;
        std::ofstream(path) << g.private_pem;
        ::chmod(path.c_str(), 0600);
        return path;
    };
    auto k1 = write_key("a.pem", auth::dkim::KeyType::rsa);
    auto k2 = write_key("b.pem", auth::dkim::KeyType::ed25519);
    auto k3 = write_key("c.pem", auth::dkim::KeyType::ed25519);
    auto cfg = engine::load_config_string(
        "[server]\nhostname = \"MX.example.test\"\nsending_ips = [\"192.0.2.10\"]\n"
        "domains = [\"example.test\", \"shop.test\", \"plain.test\"]\n"
        "[checks.dkim]\nenabled = true\n"
        "[[checks.dkim.key]]\ndomain = \"example.test\"\nselector = \"r1\"\nfile = \"" +
            k1 +
            "\"\n"
            "[[checks.dkim.key]]\ndomain = \"example.test\"\nselector = \"e1\"\nfile = \"" +
            k2 +
            "\"\n"
            "[[checks.dkim.key]]\ndomain = \"mailer.test\"\nselector = \"m\"\nfile = \"" +
            k3 +
            "\"\n"
            "[[checks.dkim.signing]]\nfrom = \"shop.test\"\ndomain = \"mailer.test\"\n",
        "t.conf");
    auto t = doctor::make_target(*cfg);
    CHECK(t.hostname == "mx.example.test");
    REQUIRE(t.ips.size() == 1);
    CHECK(t.domains == std::vector<std::string>{"example.test", "shop.test", "plain.test"});
    REQUIRE(t.dkim.size() == 3);
    CHECK(t.dkim[0].first == "example.test");
    REQUIRE(t.dkim[0].second.size() == 2);
    CHECK(t.dkim[0].second[0].name == "r1");
    CHECK(t.dkim[0].second[0].key->file == k1);
    CHECK(t.dkim[1].first == "mailer.test");
    CHECK(t.dkim[2].first == "plain.test");
    CHECK(t.dkim[2].second.empty());
    CHECK(t.signing_domains["shop.test"] == std::vector<std::string>{"mailer.test"});
    CHECK(t.signing_domains["plain.test"].empty());

    // The command line replaces the config's lists; --selector is tried for every domain, with the
    // config's private key where one matches.
    doctor::TargetOverrides ov;
    ov.domains = {"example.test"};
    ov.selectors = {"e1", "x"};
    ov.hostname = "other.example.test";
    auto o = doctor::make_target(*cfg, ov);
    CHECK(o.hostname == "other.example.test");
    REQUIRE(o.dkim.size() == 1);
    REQUIRE(o.dkim[0].second.size() == 2);
    CHECK(o.dkim[0].second[0].key->file == k2);
    CHECK(o.dkim[0].second[1].key == nullptr);

    // Without [server] domains, the DKIM key domains are ours.
    auto keys_only = engine::load_config_string(
        "[checks.dkim]\nenabled = true\n[[checks.dkim.key]]\ndomain = \"example.test\"\nselector = "
        "\"r1\"\nfile = \"" +
            k1 + "\"\n",
        "t.conf");
    CHECK(doctor::make_target(*keys_only).domains == std::vector<std::string>{"example.test"});
    for (auto* p : {&k1, &k2, &k3}) std::remove(p->c_str());
    ::rmdir(dir.c_str());
}
