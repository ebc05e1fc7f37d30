// The reports `vigil dmarc report` builds from the store: the same evaluations must give the same XML
// whatever the store's layout. The golden file was written by the store of schema version 1 (one
// row per evaluation with the published policy in every row); later layouts must reproduce it byte
// for byte. To rewrite it on purpose: VIGIL_WRITE_GOLDEN=1 build/test/vigil-unit-tests "[golden]".
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "report/dmarc_aggregate.hpp"
#include "report/sqlite_dmarc_store.hpp"

using namespace vigil;
using report::DmarcEvaluation;

namespace {

const char* const golden_path = VIGIL_SOURCE_DIR "/test/data/dmarc/store_reports.golden.xml";

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "vigil-golden-XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

DmarcEvaluation base(std::int64_t time, std::string ip) {
    DmarcEvaluation e;
    e.time = time;
    e.policy_domain = "example.com";
    e.adkim = "s";
    e.aspf = "r";
    e.p = "reject";
    e.sp = "quarantine";
    e.pct = 100;
    e.fo = "1";
    e.rua = {"mailto:dmarc@example.com", "mailto:agg@reports.example.net!10m"};
    e.source_ip = std::move(ip);
    e.disposition = "reject";
    e.dkim_aligned = "fail";
    e.spf_aligned = "fail";
    e.header_from = "example.com";
    e.envelope_from = "example.com";
    e.envelope_to = "receiver.example";
    e.dkim = {{"example.com", "sel1", "fail"}};
    e.spf = {{"example.com", "mfrom", "fail"}};
    return e;
}

// Evaluations of three domains within one day: mergeable repeats, a policy that changes during
// the day (the report states the latest), IPv6, several DKIM results, reasons, odd bytes.
std::vector<DmarcEvaluation> evaluations() {
    std::vector<DmarcEvaluation> out;
    const std::int64_t day = 1'700'006'400;  // 2023-11-15 00:00:00 UTC
    for (int i = 0; i < 5; ++i) out.push_back(base(day + 10 + i, "192.0.2.1"));
    auto pass = base(day + 100, "198.51.100.25");
    pass.disposition = "none";
    pass.dkim_aligned = "pass";
    pass.spf_aligned = "pass";
    pass.dkim = {{"example.com", "sel1", "pass"}, {"esp.example.net", "s2023", "pass"}};
    pass.spf = {{"example.com", "mfrom", "pass"}};
    out.push_back(pass);
    out.push_back(pass);
    auto v6 = base(day + 200, "2001:db8::25");
    v6.disposition = "none";
    v6.reasons = {"local_policy"};
    v6.reason_comment = "scored only <forwarder> & \"friends\"";
    v6.dkim.clear();
    out.push_back(v6);
    auto changed = base(day + 300, "192.0.2.1");
    changed.p = "quarantine";  // the latest evaluation's policy is the one published in the report
    changed.pct = 50;
    changed.rua = {"mailto:new@example.com"};
    out.push_back(changed);

    auto other = base(day + 50, "203.0.113.9");
    other.policy_domain = "example.org";
    other.header_from = "news.example.org";
    other.adkim = "r";
    other.p = "none";
    other.sp = "";
    other.np = "reject";
    other.fo = "0:d";
    other.disposition = "none";
    other.envelope_from = "";
    other.spf = {{"client.example.net", "helo", "softfail"}};
    other.header_from = "odd\xc3\xa9<&>.example.org";
    out.push_back(other);
    auto forwarded = other;
    forwarded.time = day + 60;
    forwarded.reasons = {"forwarded", "mailing_list"};
    forwarded.source_ip = "203.0.113.10";
    out.push_back(forwarded);

    auto third = base(day + 70, "192.0.2.77");
    third.policy_domain = "example.net";
    third.header_from = "example.net";
    third.rua.clear();
    for (int i = 0; i < 30; ++i) third.rua.push_back("mailto:r" + std::to_string(i) + "@example.net");
    out.push_back(third);
    out.push_back(base(day + 86'400 + 5, "192.0.2.1"));  // the next day: outside the period
    return out;
}

// Every domain's report of the day, in domain order, as `vigil dmarc report` builds them.
std::string reports_from(const std::string& path, std::int64_t since, std::int64_t until) {
    report::DmarcStoreReader reader(path);
    std::string all;
    for (const auto& domain : reader.domains(since, until)) {
        auto latest = reader.latest(domain, since, until);
        REQUIRE(latest);
        std::vector<report::AggregateRow> rows;
        for (auto& r : reader.rows(domain, since, until)) rows.push_back({std::move(r.evaluation), r.count});
        report::ReportMetadata meta;
        meta.org_name = "Receiver Org";
        meta.email = "postmaster@receiver.example";
        meta.extra_contact_info = "https://receiver.example/dmarc";
        meta.begin = since;
        meta.end = until - 1;
        meta.report_id = "golden." + domain + "@receiver.example";
        all += report::build_report_xml(meta, *latest, rows);
        all += "\n<!-- end of report -->\n";
    }
    return all;
}

}  // namespace

TEST_CASE("dmarc store: the same evaluations give the same report XML as schema version 1 did",
          "[report][dmarc][golden]") {
    TempDir dir;
    auto path = (dir.path / "dmarc.sqlite").string();
    {
        report::DmarcStoreOptions o;
        o.path = path;
        report::SqliteDmarcStore store(o, {});
        for (const auto& e : evaluations()) store.record(e);
        store.flush();
        REQUIRE(store.stats().written == evaluations().size());
    }
    const std::int64_t since = 1'700'006'400, until = since + 86'400;
    auto xml = reports_from(path, since, until);
    REQUIRE(!xml.empty());
    if (const char* w = std::getenv("VIGIL_WRITE_GOLDEN"); w != nullptr && std::string(w) == "1") {
        std::ofstream(golden_path, std::ios::binary | std::ios::trunc) << xml;
        WARN("wrote " << golden_path);
    }
    std::ifstream in(golden_path, std::ios::binary);
    REQUIRE(in);
    std::stringstream golden;
    golden << in.rdbuf();
    CHECK(xml == golden.str());
}
