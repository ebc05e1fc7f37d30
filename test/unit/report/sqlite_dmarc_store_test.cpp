#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "report/sqlite_dmarc_store.hpp"

using namespace vigil;
using report::DmarcEvaluation;

namespace {

// A fresh directory under $TMPDIR, removed with everything in it.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "vigil-store-XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string file(const char* name) const { return (path / name).string(); }
};

// Collects the store's warnings (the writer thread calls the logger).
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

DmarcEvaluation sample(std::int64_t time = 1'700'000'000, std::string ip = "192.0.2.1") {
    DmarcEvaluation e;
    e.time = time;
    e.policy_domain = "example.com";
    e.adkim = "s";
    e.aspf = "r";
    e.p = "reject";
    e.sp = "quarantine";
    e.np = "reject";
    e.pct = 50;
    e.fo = "1:d";
    e.rua = {"mailto:dmarc@example.com!10m", "mailto:agg@reports.example.net"};
    e.source_ip = std::move(ip);
    e.disposition = "reject";
    e.dkim_aligned = "fail";
    e.spf_aligned = "pass";
    e.reasons = {"local_policy"};
    e.reason_comment = "forwarder, scored only";
    e.header_from = "example.com";
    e.envelope_from = "bounce.example.com";
    e.envelope_to = "example.org";
    e.dkim = {{"example.com", "sel1", "fail"}, {"mailer.example.net", "s2024", "pass"}};
    e.spf = {{"bounce.example.com", "mfrom", "pass"}};
    return e;
}

void require_same(const DmarcEvaluation& a, const DmarcEvaluation& b) {
    CHECK(a.time == b.time);
    CHECK(a.policy_domain == b.policy_domain);
    CHECK(a.adkim == b.adkim);
    CHECK(a.aspf == b.aspf);
    CHECK(a.p == b.p);
    CHECK(a.sp == b.sp);
    CHECK(a.np == b.np);
    CHECK(a.pct == b.pct);
    CHECK(a.fo == b.fo);
    CHECK(a.rua == b.rua);
    CHECK(a.source_ip == b.source_ip);
    CHECK(a.disposition == b.disposition);
    CHECK(a.dkim_aligned == b.dkim_aligned);
    CHECK(a.spf_aligned == b.spf_aligned);
    CHECK(a.reasons == b.reasons);
    CHECK(a.reason_comment == b.reason_comment);
    CHECK(a.header_from == b.header_from);
    CHECK(a.envelope_from == b.envelope_from);
    CHECK(a.envelope_to == b.envelope_to);
    REQUIRE(a.dkim.size() == b.dkim.size());
    for (std::size_t i = 0; i < a.dkim.size(); ++i) {
        CHECK(a.dkim[i].domain == b.dkim[i].domain);
        CHECK(a.dkim[i].selector == b.dkim[i].selector);
        CHECK(a.dkim[i].result == b.dkim[i].result);
    }
    REQUIRE(a.spf.size() == b.spf.size());
    for (std::size_t i = 0; i < a.spf.size(); ++i) {
        CHECK(a.spf[i].domain == b.spf[i].domain);
        CHECK(a.spf[i].scope == b.spf[i].scope);
        CHECK(a.spf[i].result == b.spf[i].result);
    }
}

report::DmarcStoreOptions options(const std::string& path) {
    report::DmarcStoreOptions o;
    o.path = path;
    return o;
}

}  // namespace

TEST_CASE("dmarc store: list columns round-trip any bytes, and equal lists encode equally",
          "[report][dmarc]") {
    std::vector<std::vector<std::string>> lists[] = {
        {},
        {{}},
        {{""}},
        {{"a", "", "c"}, {"d"}},
        {{"x,y;z %41", std::string("nul\0byte", 8), "\xff\xfe", "sp ace"}},
    };
    for (const auto& l : lists) {
        auto text = report::encode_list(l);
        CHECK(report::decode_list(text) == l);
    }
    CHECK(report::encode_list({{"a", "b"}}) != report::encode_list({{"a"}, {"b"}}));
    CHECK(report::encode_list({{""}}) != report::encode_list({{}}));
}

TEST_CASE("dmarc store: what is recorded reads back field for field", "[report][dmarc]") {
    TempDir dir;
    auto path = dir.file("dmarc.sqlite");
    Warnings warnings;
    auto e = sample();
    e.header_from = "odd<&>\"'\x01\xc3\xa9.example";  // stored as given; escaping is the XML writer's job
    {
        report::SqliteDmarcStore store(options(path), warnings.logger());
        store.record(e);
        store.flush();
        auto s = store.stats();
        CHECK(s.recorded == 1);
        CHECK(s.written == 1);
        CHECK(s.dropped_full == 0);
        CHECK(s.dropped_error == 0);
    }
    report::DmarcStoreReader reader(path);
    CHECK(reader.count() == 1);
    CHECK(reader.domains(0, 2'000'000'000) == std::vector<std::string>{"example.com"});
    auto rows = reader.rows("example.com", 0, 2'000'000'000);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].count == 1);
    require_same(rows[0].evaluation, e);
    auto latest = reader.latest("example.com", 0, 2'000'000'000);
    REQUIRE(latest);
    require_same(*latest, e);
    CHECK(warnings.get().empty());

    SECTION("the schema version is in the file") {
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
        sqlite3_stmt* st = nullptr;
        REQUIRE(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr) == SQLITE_OK);
        REQUIRE(sqlite3_step(st) == SQLITE_ROW);
        CHECK(sqlite3_column_int(st, 0) == report::dmarc_store_schema_version);
        sqlite3_finalize(st);
        sqlite3_close(db);
    }
}

TEST_CASE("dmarc store: identical rows are merged with counts, per domain and period", "[report][dmarc]") {
    TempDir dir;
    auto path = dir.file("dmarc.sqlite");
    {
        report::SqliteDmarcStore store(options(path), {});
        store.record(sample(1000));
        store.record(sample(1500));
        auto changed_policy = sample(1700);
        changed_policy.p = "none";  // the published policy is not part of a row
        store.record(changed_policy);
        store.record(sample(1200, "198.51.100.7"));
        auto other_selector = sample(1300);
        other_selector.dkim[0].selector = "sel2";
        store.record(other_selector);
        auto other_domain = sample(1100);
        other_domain.policy_domain = "example.org";
        store.record(other_domain);
        store.record(sample(5000));  // outside the period
        store.flush();
        CHECK(store.stats().written == 7);
    }
    report::DmarcStoreReader reader(path, true);
    CHECK(reader.domains(0, 2000) == std::vector<std::string>{"example.com", "example.org"});
    CHECK(reader.domains(4000, 6000) == std::vector<std::string>{"example.com"});
    auto rows = reader.rows("example.com", 0, 2000);
    REQUIRE(rows.size() == 3);
    // Ordered by source IP, then by first appearance.
    CHECK(rows[0].evaluation.source_ip == "192.0.2.1");
    CHECK(rows[0].count == 3);
    CHECK(rows[0].evaluation.time == 1700);
    CHECK(rows[0].evaluation.p == "none");  // from the latest of the merged evaluations
    CHECK(rows[1].evaluation.source_ip == "192.0.2.1");
    CHECK(rows[1].evaluation.dkim[0].selector == "sel2");
    CHECK(rows[1].count == 1);
    CHECK(rows[2].evaluation.source_ip == "198.51.100.7");
    CHECK(rows[2].count == 1);
    auto latest = reader.latest("example.com", 0, 2000);
    REQUIRE(latest);
    CHECK(latest->time == 1700);
    CHECK_FALSE(reader.latest("example.net", 0, 2000));

    CHECK(reader.prune(1250) == 3);  // 1000, 1100, 1200
    CHECK(reader.count() == 4);
}

TEST_CASE("dmarc store: a full queue drops with one warning and never blocks the caller", "[report][dmarc]") {
    TempDir dir;
    auto path = dir.file("dmarc.sqlite");
    Warnings warnings;
    auto o = options(path);
    o.queue_size = 4;
    o.busy_timeout = std::chrono::seconds(20);
    report::SqliteDmarcStore store(o, warnings.logger());

    // Another writer (the report command pruning, say) holds the write lock: the store's writer
    // takes the first evaluation and then waits for the lock.
    sqlite3* other = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &other) == SQLITE_OK);
    REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
    store.record(sample(1));
    for (int i = 0; i < 500 && store.stats().queued != 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(store.stats().queued == 0);

    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 4; ++i) store.record(sample(2 + i));
    for (int i = 0; i < 3; ++i) store.record(sample(10 + i));
    auto took = std::chrono::steady_clock::now() - start;
    CHECK(took < std::chrono::milliseconds(500));  // the writer is stuck; record() is not

    auto s = store.stats();
    CHECK(s.recorded == 5);
    CHECK(s.dropped_full == 3);
    CHECK(s.queued == 4);
    auto lines = warnings.get();
    REQUIRE(lines.size() == 1);  // rate-limited: one line for the three drops
    CHECK(lines[0].find("queue is full") != std::string::npos);
    CHECK(lines[0].find(path) != std::string::npos);
    CHECK(lines[0].find("mail is not affected") != std::string::npos);

    REQUIRE(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(other);
    store.flush();
    s = store.stats();
    CHECK(s.written == 5);
    CHECK(s.dropped_error == 0);
    report::DmarcStoreReader reader(path);
    CHECK(reader.count() == 5);
}

TEST_CASE("dmarc store: a lock held past the busy timeout drops the batch with a warning",
          "[report][dmarc]") {
    TempDir dir;
    auto path = dir.file("dmarc.sqlite");
    Warnings warnings;
    auto o = options(path);
    o.busy_timeout = std::chrono::milliseconds(100);
    report::SqliteDmarcStore store(o, warnings.logger());
    sqlite3* other = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &other) == SQLITE_OK);
    REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
    store.record(sample(1));
    store.flush();
    CHECK(store.stats().dropped_error == 1);
    auto lines = warnings.get();
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find("writing failed: database is locked") != std::string::npos);
    REQUIRE(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(other);
    // The store keeps working once the lock is gone.
    store.record(sample(2));
    store.flush();
    CHECK(store.stats().written == 1);
}

// The full-disk case, for real: RLIMIT_FSIZE = 0 in a child process makes every write that would
// grow a file fail (EFBIG, SIGXFSZ ignored), as a full disk does; the store must drop, warn once,
// not throw, and recover when writes work again. A child because the limit is per process.
TEST_CASE("dmarc store: a failing disk drops evaluations with one warning, no exception, and recovers",
          "[report][dmarc]") {
    TempDir dir;
    auto path = dir.file("dmarc.sqlite");
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        int code = 0;
        std::string out;
        try {
            signal(SIGXFSZ, SIG_IGN);
            Warnings warnings;
            report::SqliteDmarcStore store(options(path), warnings.logger());
            rlimit old{};
            getrlimit(RLIMIT_FSIZE, &old);
            rlimit zero = old;
            zero.rlim_cur = 0;
            setrlimit(RLIMIT_FSIZE, &zero);
            auto big = sample(1);
            big.reason_comment.assign(2000, 'x');
            for (int i = 0; i < 2000; ++i) store.record(big);
            store.flush();
            auto failed = store.stats();
            setrlimit(RLIMIT_FSIZE, &old);
            store.record(sample(2));
            store.flush();
            auto after = store.stats();
            auto lines = warnings.get();
            out = std::to_string(failed.dropped_error) + " " + std::to_string(failed.written) + " " +
                  std::to_string(after.written - failed.written) + " " + std::to_string(lines.size()) + "\n" +
                  (lines.empty() ? std::string() : lines[0]);
        } catch (const std::exception& e) {
            out = std::string("exception: ") + e.what();
            code = 3;
        }
        (void)!write(fds[1], out.data(), out.size());
        close(fds[1]);
        _exit(code);
    }
    close(fds[1]);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    close(fds[0]);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    INFO(out);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    unsigned long long dropped = 0, written = 0, recovered = 0, warnings = 0;
    REQUIRE(std::sscanf(out.c_str(), "%llu %llu %llu %llu", &dropped, &written, &recovered, &warnings) == 4);
    CHECK(dropped > 0);
    CHECK(dropped + written == 2000);
    CHECK(recovered == 1);
    CHECK(warnings == 1);
    CHECK(out.find("writing failed") != std::string::npos);
    CHECK(out.find("mail is not affected") != std::string::npos);
}

TEST_CASE("dmarc store: a store that cannot be opened is a clear start-up error", "[report][dmarc]") {
    TempDir dir;
    {
        std::ofstream f(dir.file("plain-file"));
        f << "x";
    }
    // The parent "directory" is a file: works as root too, unlike a permission test.
    auto bad = dir.file("plain-file") + "/dmarc.sqlite";
    try {
        report::SqliteDmarcStore store(options(bad), {});
        FAIL("opened a store under a regular file");
    } catch (const report::StoreError& e) {
        std::string what = e.what();
        CHECK(what.find(bad) != std::string::npos);
        CHECK(what.find("unable to open database file") != std::string::npos);
    }
    CHECK_THROWS_AS(report::DmarcStoreReader(dir.file("missing.sqlite")), report::StoreError);

    auto garbage = dir.file("garbage.sqlite");
    {
        std::ofstream f(garbage);
        f << std::string(4096, 'g');
    }
    CHECK_THROWS_WITH(report::SqliteDmarcStore(options(garbage), {}), Catch::Contains("not a database"));

    auto newer = dir.file("newer.sqlite");
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(newer.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
    CHECK_THROWS_WITH(report::SqliteDmarcStore(options(newer), {}),
                      Catch::Contains("schema version 99 is newer"));

    // An empty SQLite file without our schema is not a store for the reader.
    auto empty = dir.file("empty.sqlite");
    REQUIRE(sqlite3_open(empty.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "CREATE TABLE t (x)", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
    CHECK_THROWS_WITH(report::DmarcStoreReader(empty), Catch::Contains("not a Vigil DMARC report store"));
}
