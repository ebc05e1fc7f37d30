#include <catch2/catch.hpp>

#include <string>

#include "engine/config.hpp"

using namespace vigil::engine;
using namespace vigil::check;
using Catch::Matchers::Contains;

namespace {

std::string error_of(const std::string& toml) {
    try {
        load_config_string(toml, "test.conf");
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("the shipped defaults are safe", "[config]") {
    auto cfg = load_config_string("", "empty.conf");
    CHECK(cfg->milter.socket == "inet:8891@127.0.0.1");
    CHECK(cfg->milter.on_internal_error == vigil::core::Action::tempfail);
    CHECK(cfg->actions.thresholds.reject == 15.0);
    CHECK(cfg->actions.thresholds.add_header == 6.0);
    CHECK_FALSE(cfg->actions.thresholds.quarantine);
    CHECK_FALSE(cfg->milter.allow_root);
    CHECK(cfg->server.authserv_id == cfg->server.hostname);
    CHECK(cfg->server.trusted_networks.size() == 2);
    CHECK(cfg->weight("GTUBE") == 20.0);
    CHECK(cfg->checks.size() == 3);
    CHECK(cfg->milter.delay_reject);
}

TEST_CASE("socket_group: empty by default, else the unix socket's group", "[config]") {
    CHECK(load_config_string("", "t.conf")->milter.socket_group.empty());
    CHECK(load_config_string("[milter]\nsocket_group = \"postfix\"\n", "t.conf")->milter.socket_group ==
          "postfix");
    CHECK_THAT(error_of("[milter]\nsocket_group = 105\n"), Contains("socket_group"));
}

TEST_CASE("delay_reject can be turned off and must be a boolean", "[config]") {
    CHECK_FALSE(load_config_string("[milter]\ndelay_reject = false\n", "t.conf")->milter.delay_reject);
    CHECK_THAT(error_of("[milter]\ndelay_reject = \"yes\"\n"), Contains("delay_reject"));
}

TEST_CASE("the shipped conf/vigil.conf loads", "[config]") {
    auto cfg = load_config_file(VIGIL_SOURCE_DIR "/conf/vigil.conf");
    CHECK(cfg->milter.user == "vigil");
    CHECK(cfg->dns.stage_budget.count() == 3000);
}

TEST_CASE("config errors name file - line and the mistake", "[config]") {
    CHECK_THAT(error_of("[milter]\nsocet = \"inet:1@127.0.0.1\"\n"),
               Contains("test.conf:2:9: unknown key 'socet' in [milter]"));
    CHECK_THAT(error_of("[milter]\ntimeout = \"ten\"\n"),
               Contains("test.conf:2:11: [milter] timeout: must be a whole number"));
    CHECK_THAT(error_of("[server]\ntrusted_networks = [\"10.0.0.0/33\"]\n"),
               Contains("test.conf:2:21: [server] trusted_networks: '10.0.0.0/33' is not a network"));
    CHECK_THAT(error_of("[milter]\nsocket = \"tcp:25\"\n"), Contains("unknown socket type 'tcp'"));
    CHECK_THAT(error_of("[milter]\nsocket = \"inet:99999@127.0.0.1\"\n"), Contains("port from 1 to 65535"));
    CHECK_THAT(error_of("[milter]\nsocket_mode = \"0999\"\n"), Contains("octal mode"));
    CHECK_THAT(error_of("[milter]\non_internal_error = \"discard\"\n"), Contains("'discard' is not one of"));
    CHECK_THAT(error_of("[scores]\nNO_SUCH_SYMBOL = 1.0\n"),
               Contains("test.conf:2:18: [scores] NO_SUCH_SYMBOL: unknown symbol"));
    CHECK_THAT(error_of("[scores]\nGTUBE = \"high\"\n"), Contains("must be a number"));
    CHECK_THAT(error_of("[checks.nope]\nenabled = true\n"), Contains("[checks] nope: unknown check"));
    CHECK_THAT(error_of("[replies]\nreject = \"451 4.7.1 soft\"\n"),
               Contains("[replies] reject: expected \"5xx"));
    CHECK_THAT(error_of("[replies]\nreject = \"550 5.7.1 100% sure\"\n"), Contains("without '%'"));
    CHECK_THAT(error_of("[dns]\nserver = \"dns.example:53\"\n"), Contains("is not an IP address"));
    CHECK_THAT(error_of("[dns]\nstage_budget_ms = 0\n"), Contains("between 10 and 60000"));
    CHECK_THAT(error_of("[log]\nformat = \"xml\"\n"), Contains("'xml' is not one of: text, json"));
    CHECK_THAT(error_of("[server]\nauthserv_id = \"a b\"\n"), Contains("authserv_id: must be a host name"));
    CHECK_THAT(error_of("[headers]\nflag = \"X:Bad\"\n"), Contains("header field name"));
    CHECK_THAT(error_of("bogus = 1\n"), Contains("test.conf:1:9: unknown section or key 'bogus'"));
    CHECK_THAT(error_of("[milter\n"), Contains("test.conf:1:"));  // TOML syntax error with its position
    CHECK_THAT(error_of("[milter]\nuser = 5\n"), Contains("[milter] user: must be a string"));
}

TEST_CASE("every mistake is reported at once", "[config]") {
    auto e = error_of("[milter]\nfoo = 1\nbar = 2\n[log]\nformat = \"x\"\n");
    CHECK_THAT(e, Contains("'foo'"));
    CHECK_THAT(e, Contains("'bar'"));
    CHECK_THAT(e, Contains("'x' is not one of"));
}

TEST_CASE("access rules are validated", "[config][access]") {
    CHECK_THAT(error_of("[[checks.access.rule]]\nmatch = \"ip\"\npattern = \"10.1.2.3/8\"\n"),
               Contains("test.conf:3:11: [checks.access.rule[0]] pattern: '10.1.2.3/8' is not a network"));
    CHECK_THAT(error_of("[[checks.access.rule]]\nmatch = \"sender\"\npattern = \"example.com\"\n"),
               Contains("needs an '@'"));
    CHECK_THAT(error_of("[[checks.access.rule]]\nmatch = \"mx\"\npattern = \"a\"\n"),
               Contains("'mx' is not one of"));
    CHECK_THAT(error_of("[[checks.access.rule]]\nmatch = \"rcpt\"\npattern = \"a@\"\naction = \"score\"\n"),
               Contains("score: is required"));
    CHECK_THAT(error_of("[[checks.access.rule]]\nmatch = \"rcpt\"\npattern = \"a@\"\nreply = \"250 ok\"\n"),
               Contains("expected \"5xx"));
    CHECK_THAT(error_of("[[checks.access.rule]]\nmatch = \"rcpt\"\npattern = \"a@\"\ncolour = 1\n"),
               Contains("unknown key 'colour' in [checks.access.rule[0]]"));
}

TEST_CASE("weights and thresholds come from the config", "[config]") {
    auto cfg = load_config_string(
        "[scores]\nGTUBE = 3.5\n[actions]\nquarantine = 9\n[checks.gtube]\nenabled = false\n");
    CHECK(cfg->weight("GTUBE") == 3.5);
    CHECK(cfg->actions.thresholds.quarantine == 9.0);
    CHECK(cfg->checks.size() == 2);          // gtube disabled
    CHECK(cfg->symbol("GTUBE") != nullptr);  // its symbols are still known (so [scores] may name them)
}

TEST_CASE("command-line overrides win over the file", "[config]") {
    Overrides ov;
    ov.dns_server = "127.0.0.1:5353";
    ov.authserv_id = "mx.override.test";
    auto cfg = load_config_string("[dns]\nserver = \"127.0.0.1:53\"\n", "t", ov);
    CHECK(cfg->dns.server == "127.0.0.1:5353");
    CHECK(cfg->server.authserv_id == "mx.override.test");
    ov.dns_server = "nonsense";
    CHECK_THROWS_WITH(load_config_string("", "t", ov), Contains("--dns nonsense"));
}

TEST_CASE("socket and DNS server specs", "[config]") {
    CHECK_FALSE(socket_spec_error("unix:/run/vigil/vigil.sock"));
    CHECK_FALSE(socket_spec_error("inet:8891@127.0.0.1"));
    CHECK_FALSE(socket_spec_error("inet6:8891@[::1]"));
    CHECK(socket_spec_error("unix:relative.sock"));
    CHECK(socket_spec_error("inet:@127.0.0.1"));
    CHECK_FALSE(dns_server_error("127.0.0.1:53"));
    CHECK_FALSE(dns_server_error("[::1]:5353"));
    CHECK(dns_server_error("127.0.0.1"));
    CHECK(dns_server_error("127.0.0.1:0"));
}

TEST_CASE("whether anything configured can refuse before DATA", "[config]") {
    // Nothing in the defaults or the shipped file refuses before end of message.
    CHECK_FALSE(load_config_string("", "empty.conf")->may_refuse_before_data());
    CHECK_FALSE(load_config_file(VIGIL_SOURCE_DIR "/conf/vigil.conf")->may_refuse_before_data());
    const std::string deny_ip =
        "[[checks.access.rule]]\nmatch = \"ip\"\npattern = \"192.0.2.1\"\naction = \"reject\"\n";
    CHECK(load_config_string(deny_ip, "t.conf")->may_refuse_before_data());
    CHECK(load_config_string(
              "[[checks.access.rule]]\nmatch = \"rcpt\"\npattern = \"a@b.example\"\naction = \"tempfail\"\n",
              "t.conf")
              ->may_refuse_before_data());
    CHECK_FALSE(
        load_config_string("[[checks.access.rule]]\nmatch = \"sender\"\npattern = \"@b.example\"\naction = "
                           "\"score\"\nscore = 3.0\n",
                           "t.conf")
            ->may_refuse_before_data());
    CHECK(load_config_string("[checks.spf]\nenabled = true\nreject_on_fail = true\n", "t.conf")
              ->may_refuse_before_data());
    CHECK(load_config_string("[checks.spf]\nenabled = true\ntempfail_on_temperror = true\n", "t.conf")
              ->may_refuse_before_data());
    CHECK_FALSE(
        load_config_string("[checks.dnsbl]\nenabled = true\n[[checks.dnsbl.list]]\nname = \"bl\"\nzone = "
                           "\"bl.example\"\n",
                           "t.conf")
            ->may_refuse_before_data());
    CHECK(load_config_string("[checks.dnsbl]\nenabled = true\n[[checks.dnsbl.list]]\nname = \"bl\"\nzone = "
                             "\"bl.example\"\nreject_codes = [\"127.0.0.2\"]\n",
                             "t.conf")
              ->may_refuse_before_data());
    // A disabled check does not count, and neither does anything when forced actions are ignored.
    CHECK_FALSE(load_config_string("[checks.spf]\nenabled = false\nreject_on_fail = true\n", "t.conf")
                    ->may_refuse_before_data());
    CHECK_FALSE(load_config_string("[actions]\nhonour_forced_actions = false\n" + deny_ip, "t.conf")
                    ->may_refuse_before_data());
}
