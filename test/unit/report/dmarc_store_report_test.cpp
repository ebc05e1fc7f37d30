// The reports `vigil dmarc report` builds from the store: the same evaluations must give the same XML
// whatever the store's layout. The golden file was written by the store of schema version 1 (one
// row per evaluation with the published policy in every row); later layouts must reproduce it byte
// for byte, whether they recorded the evaluations themselves or migrated a file of version 1. To
// rewrite it on purpose: VIGIL_WRITE_GOLDEN=1 build/test/vigil-unit-tests "[golden]".
#include <sqlite3.h>

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

// A store file of schema version 1 as that version wrote it (one table, every row with its policy
// record; lists in encode_list() form).
void write_schema_1(const std::string& path, const std::vector<DmarcEvaluation>& evaluations) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    const char* create = R"(
PRAGMA journal_mode=WAL;
BEGIN;
CREATE TABLE evaluation (
  id INTEGER PRIMARY KEY, time INTEGER NOT NULL, policy_domain TEXT NOT NULL, adkim TEXT NOT NULL,
  aspf TEXT NOT NULL, p TEXT NOT NULL, sp TEXT NOT NULL, np TEXT NOT NULL, pct INTEGER NOT NULL,
  fo TEXT NOT NULL, rua TEXT NOT NULL, source_ip TEXT NOT NULL, disposition TEXT NOT NULL,
  dkim_aligned TEXT NOT NULL, spf_aligned TEXT NOT NULL, reasons TEXT NOT NULL, reason_comment TEXT NOT NULL,
  header_from TEXT NOT NULL, envelope_from TEXT NOT NULL, envelope_to TEXT NOT NULL, dkim TEXT NOT NULL,
  spf TEXT NOT NULL);
CREATE INDEX evaluation_domain_time ON evaluation (policy_domain, time);
CREATE INDEX evaluation_time ON evaluation (time);
PRAGMA user_version = 1;
)";
    REQUIRE(sqlite3_exec(db, create, nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(
                db,
                "INSERT INTO evaluation (time, policy_domain, adkim, aspf, p, sp, np, pct, fo, rua, "
                "source_ip, disposition, dkim_aligned, spf_aligned, reasons, reason_comment, "
                "header_from, envelope_from, envelope_to, dkim, spf) VALUES (?1, ?2, ?3, ?4, ?5, "
                "?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
                -1, &st, nullptr) == SQLITE_OK);
    for (const auto& e : evaluations) {
        std::vector<std::vector<std::string>> rua, reasons, dkim, spf;
        for (const auto& u : e.rua) rua.push_back({u});
        for (const auto& r : e.reasons) reasons.push_back({r});
        for (const auto& d : e.dkim) dkim.push_back({d.domain, d.selector, d.result});
        for (const auto& x : e.spf) spf.push_back({x.domain, x.scope, x.result});
        const std::string texts[] = {e.policy_domain,
                                     e.adkim,
                                     e.aspf,
                                     e.p,
                                     e.sp,
                                     e.np,
                                     "",
                                     e.fo,
                                     report::encode_list(rua),
                                     e.source_ip,
                                     e.disposition,
                                     e.dkim_aligned,
                                     e.spf_aligned,
                                     report::encode_list(reasons),
                                     e.reason_comment,
                                     e.header_from,
                                     e.envelope_from,
                                     e.envelope_to,
                                     report::encode_list(dkim),
                                     report::encode_list(spf)};
        sqlite3_bind_int64(st, 1, e.time);
        for (int i = 0; i < 20; ++i) {
            if (i == 6) {
                sqlite3_bind_int64(st, 8, e.pct);
                continue;
            }
            sqlite3_bind_text(st, i + 2, texts[i].data(), static_cast<int>(texts[i].size()),
                              SQLITE_TRANSIENT);
        }
        REQUIRE(sqlite3_step(st) == SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    REQUIRE(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
}

std::string golden() {
    std::ifstream in(golden_path, std::ios::binary);
    REQUIRE(in);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
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
    CHECK(xml == golden());
}

TEST_CASE("dmarc store: a schema-1 file is migrated: same reports, records once, rua= cut, merged",
          "[report][dmarc][golden]") {
    TempDir dir;
    auto path = (dir.path / "dmarc.sqlite").string();
    auto all = evaluations();
    // Outside the golden period: two records that differ only past the URIs kept become one.
    auto six = all.front();
    six.time = 1'600'000'000;
    six.policy_domain = "merge.example";
    six.rua.clear();
    for (int i = 0; i < 6; ++i) six.rua.push_back("mailto:m" + std::to_string(i) + "@merge.example");
    auto seven = six;
    seven.time += 1;
    seven.rua.push_back("mailto:m6@merge.example");
    all.push_back(six);
    all.push_back(seven);
    write_schema_1(path, all);

    // Read-only, it cannot be migrated: a clear error, not a wrong answer.
    CHECK_THROWS_WITH(report::DmarcStoreReader(path), Catch::Contains("schema version 1 is older"));

    std::vector<std::string> notes;
    {
        report::DmarcStoreOptions o;
        o.path = path;
        report::SqliteDmarcStore store(o, [&notes](const std::string& line) { notes.push_back(line); });
    }
    REQUIRE(notes.size() == 1);
    CHECK(notes[0].find("migrated from schema version 1 to 2") != std::string::npos);
    CHECK(notes[0].find(std::to_string(all.size()) + " evaluations now refer to") != std::string::npos);
    CHECK(notes[0].find("1 records merged") != std::string::npos);

    const std::int64_t since = 1'700'006'400, until = since + 86'400;
    CHECK(reports_from(path, since, until) == golden());

    report::DmarcStoreReader reader(path);
    CHECK(reader.count() == all.size());
    // example.com (2 records: the policy changed), example.org, example.net (30 URIs), merge.example.
    CHECK(reader.policies() == 5);
    auto net = reader.latest("example.net", since, until);
    REQUIRE(net);
    CHECK(net->rua.size() == report::limits::max_rua_uris);
    CHECK(net->rua.front() == "mailto:r0@example.net");
    auto merged = reader.rows("merge.example", 0, since);
    REQUIRE(merged.size() == 1);
    CHECK(merged[0].count == 2);
    CHECK(merged[0].evaluation.rua.size() == report::limits::max_rua_uris);

    // Once migrated, a read-only reader is fine, and opening again migrates nothing.
    notes.clear();
    {
        report::DmarcStoreOptions o;
        o.path = path;
        report::SqliteDmarcStore store(o, [&notes](const std::string& line) { notes.push_back(line); });
    }
    CHECK(notes.empty());
}
