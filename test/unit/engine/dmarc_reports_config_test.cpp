#include <catch2/catch.hpp>
#include <string>

#include "engine/config.hpp"
#include "engine/runtime.hpp"

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

TEST_CASE("[dmarc_reports]: off by default, defaults from [server]", "[config][dmarc]") {
    auto cfg = load_config_string("[server]\nhostname = \"mx.example.org\"\n");
    const auto& r = cfg->dmarc_reports;
    CHECK_FALSE(r.enabled);
    CHECK(r.store == "/var/lib/vigil/dmarc-reports.sqlite");
    CHECK(r.org_name == "mx.example.org");
    CHECK(r.email == "postmaster@mx.example.org");
    CHECK(r.from == "postmaster@mx.example.org");
    CHECK(r.submitter == "mx.example.org");
    CHECK(r.report_id == "{begin}.{random}@{receiver}");
    CHECK(r.sendmail == "/usr/sbin/sendmail");
    CHECK(r.queue_size == 10000);
    CHECK(r.keep_days == 31);
}

TEST_CASE("[dmarc_reports]: every option is read", "[config][dmarc]") {
    auto cfg = load_config_string(R"(
[dmarc_reports]
enabled = true
store = "/srv/vigil/dmarc.sqlite"
queue_size = 50
keep_days = 0
org_name = "Example & Co"
email = "dmarc@example.org"
extra_contact_info = "https://example.org/dmarc"
submitter = "Example.ORG"
report_id = "{domain}.{begin}"
sendmail = "/usr/local/sbin/sendmail"
from = "noreply@example.org"
)");
    const auto& r = cfg->dmarc_reports;
    CHECK(r.enabled);
    CHECK(r.store == "/srv/vigil/dmarc.sqlite");
    CHECK(r.queue_size == 50);
    CHECK(r.keep_days == 0);
    CHECK(r.org_name == "Example & Co");
    CHECK(r.email == "dmarc@example.org");
    CHECK(r.extra_contact_info == "https://example.org/dmarc");
    CHECK(r.submitter == "example.org");
    CHECK(r.report_id == "{domain}.{begin}");
    CHECK(r.sendmail == "/usr/local/sbin/sendmail");
    CHECK(r.from == "noreply@example.org");
}

TEST_CASE("[dmarc_reports]: mistakes are configuration errors", "[config][dmarc]") {
    CHECK_THAT(error_of("[dmarc_reports]\nstore = \"dmarc.sqlite\"\n"),
               Contains("store") && Contains("absolute path"));
    CHECK_THAT(error_of("[dmarc_reports]\nqueue_size = 0\n"), Contains("queue_size"));
    CHECK_THAT(error_of("[dmarc_reports]\nreport_id = \"{nope}\"\n"), Contains("unknown placeholder {nope}"));
    CHECK_THAT(error_of("[dmarc_reports]\nreport_id = \"a b\"\n"), Contains("report_id"));
    CHECK_THAT(error_of("[dmarc_reports]\nemail = \"no-at-sign\"\n"),
               Contains("email") && Contains("local@domain"));
    // A header injection through the From address.
    CHECK_THAT(error_of("[dmarc_reports]\nfrom = \"a@b.example\\nBcc: x@y.example\"\n"), Contains("from"));
    CHECK_THAT(error_of("[dmarc_reports]\nfrom = \"-oQ@b.example\"\n"), Contains("from"));
    CHECK_THAT(error_of("[dmarc_reports]\norg_name = \"two\\nlines\"\n"), Contains("org_name"));
    CHECK_THAT(error_of("[dmarc_reports]\nsubmitter = \"a/b\"\n"), Contains("submitter"));
    CHECK_THAT(error_of("[dmarc_reports]\nsendmail = \"sendmail\"\n"), Contains("sendmail"));
    CHECK_THAT(error_of("[dmarc_reports]\nunknown_key = 1\n"), Contains("unknown_key"));
}

// `vigil check` builds its services from Runtime alone: reporting stays off whatever the config says.
TEST_CASE("[dmarc_reports]: a Runtime without a store gives checks none", "[config][dmarc]") {
    auto cfg = load_config_string("[dns]\nserver = \"127.0.0.1:53\"\n[dmarc_reports]\nenabled = true\n");
    Runtime runtime(cfg->dns);
    CHECK(runtime.services().dmarc_store == nullptr);
}

TEST_CASE("[dmarc_reports]: defaults from an odd host name only matter when reporting is on",
          "[config][dmarc]") {
    CHECK(error_of("[server]\nhostname = \"my_host\"\n").empty());
    CHECK_THAT(error_of("[server]\nhostname = \"my_host\"\n[dmarc_reports]\nenabled = true\n"),
               Contains("submitter") && Contains("domain name"));
    CHECK(error_of("[server]\nhostname = \"my_host\"\n[dmarc_reports]\nenabled = true\nsubmitter = "
                   "\"mx.example.org\"\n")
              .empty());
}
