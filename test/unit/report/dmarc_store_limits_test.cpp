// What the DMARC report store bounds of what senders control: each distinct policy record stored
// once, rua= URIs per record, rows per UTC day (oldest dropped, one warning a day), and the files'
// permissions whatever the umask.
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "report/sqlite_dmarc_store.hpp"

using namespace vigil;
using report::DmarcEvaluation;

namespace {

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "vigil-limits-XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string file(const char* name) const { return (path / name).string(); }
};

struct Warnings {
    std::mutex mutex;
    std::vector<std::string> lines;
    report::StoreLogger logger() {
        return [this](const std::string& line) {
            std::lock_guard lock(mutex);
            lines.push_back(line);
        };
    }
    std::vector<std::string> get() {
        std::lock_guard lock(mutex);
        return lines;
    }
};

// The record of the report that made the store grow: 30 rua= URIs (6.6 KB a row when every row
// carried them).
std::vector<std::string> thirty_uris() {
    std::vector<std::string> rua;
    for (int i = 0; i < 30; ++i)
        rua.push_back("mailto:dmarc-aggregate-reports-" + std::to_string(i) +
                      "@a-rather-long-report-processor-domain.example.net!10m");
    return rua;
}

DmarcEvaluation evaluation(std::int64_t time, int n = 0) {
    DmarcEvaluation e;
    e.time = time;
    e.policy_domain = "sender.example";
    e.p = "reject";
    e.rua = thirty_uris();
    e.source_ip = "192.0.2." + std::to_string(1 + n % 250);
    e.disposition = "reject";
    e.dkim_aligned = "fail";
    e.spf_aligned = "fail";
    e.header_from = "sender.example";
    e.envelope_from = "sender.example";
    e.envelope_to = "receiver.example";
    e.dkim = {{"sender.example", "s1", "fail"}};
    e.spf = {{"sender.example", "mfrom", "fail"}};
    return e;
}

report::DmarcStoreOptions options(const std::string& path) {
    report::DmarcStoreOptions o;
    o.path = path;
    return o;
}

std::int64_t query_int(const std::string& path, const char* sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    auto v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

// The bytes the database takes once the write-ahead log is folded in.
std::int64_t database_bytes(const std::string& path) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
    return static_cast<std::int64_t>(std::filesystem::file_size(path));
}

unsigned mode_of(const std::string& path) {
    struct stat st {};
    REQUIRE(stat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("dmarc store: rua= keeps at most a few URIs, in order, none over the length cap",
          "[report][dmarc]") {
    CHECK(report::kept_rua({}).empty());
    CHECK(report::kept_rua({"mailto:a@example.com"}) == std::vector<std::string>{"mailto:a@example.com"});
    auto all = thirty_uris();
    auto kept = report::kept_rua(all);
    REQUIRE(kept.size() == report::limits::max_rua_uris);
    CHECK(std::equal(kept.begin(), kept.end(), all.begin()));
    // A URI over the cap is dropped, not cut; the ones after it move up.
    std::string huge = "mailto:" + std::string(report::limits::max_rua_uri_bytes, 'x') + "@example.com";
    kept = report::kept_rua({"mailto:a@example.com", huge, "mailto:b@example.com"});
    CHECK(kept == std::vector<std::string>{"mailto:a@example.com", "mailto:b@example.com"});
    CHECK(report::limits::max_rua_uris >= 2);  // RFC 7489 §6.2: receivers send to at least two

    TempDir dir;
    auto path = dir.file("dmarc.sqlite");
    {
        report::SqliteDmarcStore store(options(path), {});
        auto e = evaluation(1'700'000'000);
        e.rua.insert(e.rua.begin() + 1, huge);
        store.record(e);
        store.flush();
    }
    report::DmarcStoreReader reader(path);
    auto latest = reader.latest("sender.example", 0, 2'000'000'000);
    REQUIRE(latest);
    CHECK(latest->rua == report::kept_rua(thirty_uris()));
}

TEST_CASE("dmarc store: each distinct policy record is stored once; rows refer to it", "[report][dmarc]") {
    TempDir dir;
    auto path = dir.file("dmarc.sqlite");
    const std::int64_t day = 1'700'006'400;
    {
        report::SqliteDmarcStore store(options(path), {});
        for (int i = 0; i < 1000; ++i) store.record(evaluation(day + i, i));
        // Two more records: another p=, another domain.
        auto other_p = evaluation(day + 2000);
        other_p.p = "none";
        store.record(other_p);
        auto other_domain = evaluation(day + 2001);
        other_domain.policy_domain = "other.example";
        store.record(other_domain);
        store.flush();
        CHECK(store.stats().written == 1002);
    }
    report::DmarcStoreReader reader(path);
    CHECK(reader.count() == 1002);
    CHECK(reader.policies() == 3);
    CHECK(query_int(path, "SELECT COUNT(*) FROM policy WHERE policy_domain = 'sender.example'") == 2);
    CHECK(reader.latest("sender.example", day, day + 86'400)->p == "none");

    // 1,000 such rows took 7.4 MB when each carried its record; measured here, the whole file.
    auto bytes = database_bytes(path);
    INFO("1,002 evaluations take " << bytes << " bytes (" << bytes / 1002 << " a row)");
    CHECK(bytes < 400 * 1024);
}

TEST_CASE("dmarc store: a full day drops its oldest rows, with one warning that day", "[report][dmarc]") {
    TempDir dir;
    auto path = dir.file("dmarc.sqlite");
    Warnings warnings;
    auto o = options(path);
    o.max_rows_per_day = 10;
    o.batch_size = 4;                        // the cap works across batches
    const std::int64_t day = 1'700'006'400;  // 2023-11-15 00:00:00 UTC
    {
        report::SqliteDmarcStore store(o, warnings.logger());
        for (int i = 0; i < 25; ++i) {
            auto e = evaluation(day + 100 + i, i);
            e.rua = {"mailto:r" + std::to_string(i) + "@example.net"};  // a record of its own each
            store.record(e);
            if (i % 7 == 0) store.flush();
        }
        store.flush();
        auto s = store.stats();
        CHECK(s.written == 25);
        CHECK(s.dropped_cap == 15);
        auto lines = warnings.get();
        REQUIRE(lines.size() == 1);
        CHECK(lines[0].find("2023-11-15 (UTC) has reached 10 evaluations") != std::string::npos);
        CHECK(lines[0].find("max_rows_per_day") != std::string::npos);
        CHECK(lines[0].find(path) != std::string::npos);

        // The next day has a cap of its own, and one warning of its own.
        for (int i = 0; i < 12; ++i) store.record(evaluation(day + 86'400 + i, i));
        // More for the first day: dropped again, but not said again.
        for (int i = 0; i < 3; ++i) store.record(evaluation(day + 50'000 + i, i));
        store.flush();
        s = store.stats();
        CHECK(s.dropped_cap == 15 + 2 + 3);
        lines = warnings.get();
        REQUIRE(lines.size() == 2);
        CHECK(lines[1].find("2023-11-16 (UTC)") != std::string::npos);
    }
    report::DmarcStoreReader reader(path);
    CHECK(reader.count() == 20);
    // The newest ten of the first day remain: the three late ones and seven of the first batch.
    CHECK(query_int(path, "SELECT MIN(time) FROM evaluation WHERE time < 1700092800") == day + 100 + 18);
    CHECK(query_int(path, "SELECT COUNT(*) FROM evaluation WHERE time >= 1700056400 AND time < 1700092800") ==
          3);
    // Records only dropped rows referred to went with them: no record without a row.
    CHECK(query_int(path,
                    "SELECT COUNT(*) FROM policy WHERE NOT EXISTS (SELECT 1 FROM evaluation WHERE "
                    "evaluation.policy_id = policy.id)") == 0);
    CHECK(reader.policies() == 8);  // seven of their own (rows 18..24) and the thirty-URI one

    // After a restart the day is counted again, not assumed empty.
    {
        report::SqliteDmarcStore store(o, warnings.logger());
        store.record(evaluation(day + 60'000));
        store.flush();
        CHECK(store.stats().dropped_cap == 1);
    }
    CHECK(report::DmarcStoreReader(path).count() == 20);
}

TEST_CASE("dmarc store: the reader, writable or not, never creates a store", "[report][dmarc]") {
    TempDir dir;
    auto path = dir.file("missing.sqlite");
    CHECK_THROWS_AS(report::DmarcStoreReader(path, true), report::StoreError);
    CHECK_THROWS_AS(report::DmarcStoreReader(path, false), report::StoreError);
    CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("dmarc store: prune drops the records no row refers to any more", "[report][dmarc]") {
    TempDir dir;
    auto path = dir.file("dmarc.sqlite");
    {
        report::SqliteDmarcStore store(options(path), {});
        auto old = evaluation(1000);
        old.p = "quarantine";
        store.record(old);
        store.record(evaluation(5000));
        store.flush();
    }
    report::DmarcStoreReader reader(path, true);
    CHECK(reader.policies() == 2);
    CHECK(reader.prune(2000) == 1);
    CHECK(reader.count() == 1);
    CHECK(reader.policies() == 1);
    CHECK(reader.latest("sender.example", 0, 10'000)->p == "reject");
}

TEST_CASE("dmarc store: the file and its -wal and -shm are 0600 whatever the umask", "[report][dmarc]") {
    for (mode_t mask : {mode_t{0}, mode_t{022}, mode_t{0277}}) {
        INFO("umask " << std::oct << mask);
        TempDir dir;
        auto path = dir.file("dmarc.sqlite");
        mode_t old = umask(mask);
        {
            report::SqliteDmarcStore store(options(path), {});
            store.record(evaluation(1'700'000'000));
            store.flush();
            // While the writer holds the file open, SQLite's companions exist.
            CHECK(mode_of(path) == 0600);
            CHECK(mode_of(path + "-wal") == 0600);
            CHECK(mode_of(path + "-shm") == 0600);
            // The report command opening it meanwhile changes nothing.
            report::DmarcStoreReader reader(path, true);
            CHECK(reader.count() == 1);
            CHECK(mode_of(path) == 0600);
        }
        umask(old);
    }

    SECTION("an existing file loses what others may do, the group keeps its own") {
        TempDir dir;
        auto path = dir.file("dmarc.sqlite");
        { report::SqliteDmarcStore store(options(path), {}); }
        REQUIRE(chmod(path.c_str(), 0664) == 0);
        Warnings warnings;
        report::SqliteDmarcStore store(options(path), warnings.logger());
        store.record(evaluation(1'700'000'000));
        store.flush();
        CHECK(mode_of(path) == 0660);
        CHECK(mode_of(path + "-wal") == 0660);
        CHECK(warnings.get().empty());
    }
}
