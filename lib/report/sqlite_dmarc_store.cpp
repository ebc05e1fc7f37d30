#include "report/sqlite_dmarc_store.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "core/printable.hpp"

namespace vigil::report {

namespace {

// Schema version 2. Each distinct published policy record is stored once (senders control it: a
// record with 30 rua= URIs once made every row 6.6 KB); rows refer to it. Lists (rua, reasons, dkim,
// spf) in encode_list() form. SQLite does not enforce the REFERENCES without PRAGMA foreign_keys; the
// writer and prune() keep them true.
constexpr const char* kCreatePolicy = R"(
CREATE TABLE IF NOT EXISTS policy (
  id             INTEGER PRIMARY KEY,
  policy_domain  TEXT NOT NULL,
  adkim          TEXT NOT NULL,
  aspf           TEXT NOT NULL,
  p              TEXT NOT NULL,
  sp             TEXT NOT NULL,
  np             TEXT NOT NULL,
  pct            INTEGER NOT NULL,
  fo             TEXT NOT NULL,
  rua            TEXT NOT NULL,
  UNIQUE (policy_domain, adkim, aspf, p, sp, np, pct, fo, rua)
);
)";

// The evaluation table under a given name (the migration builds it beside the old one).
std::string create_evaluation(std::string_view table) {
    return fmt::format(R"(
CREATE TABLE IF NOT EXISTS {} (
  id             INTEGER PRIMARY KEY,
  time           INTEGER NOT NULL,
  policy_id      INTEGER NOT NULL REFERENCES policy (id),
  source_ip      TEXT NOT NULL,
  disposition    TEXT NOT NULL,
  dkim_aligned   TEXT NOT NULL,
  spf_aligned    TEXT NOT NULL,
  reasons        TEXT NOT NULL,
  reason_comment TEXT NOT NULL,
  header_from    TEXT NOT NULL,
  envelope_from  TEXT NOT NULL,
  envelope_to    TEXT NOT NULL,
  dkim           TEXT NOT NULL,
  spf            TEXT NOT NULL
);
)",
                       table);
}

// (policy_id, time): a domain's rows in a period, and whether a policy record is still referred to.
// (time): a period's domains, its oldest rows, pruning.
constexpr const char* kCreateIndexes = R"(
CREATE INDEX IF NOT EXISTS evaluation_policy_time ON evaluation (policy_id, time);
CREATE INDEX IF NOT EXISTS evaluation_time ON evaluation (time);
)";

constexpr const char* kPolicyColumns = "policy_domain, adkim, aspf, p, sp, np, pct, fo, rua";
constexpr const char* kFindPolicy =
    "SELECT id FROM policy WHERE policy_domain = ?1 AND adkim = ?2 AND aspf = ?3 AND p = ?4 AND sp = ?5 AND "
    "np = ?6 AND pct = ?7 AND fo = ?8 AND rua = ?9";
constexpr const char* kInsertPolicy =
    "INSERT INTO policy (policy_domain, adkim, aspf, p, sp, np, pct, fo, rua) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
constexpr const char* kInsert =
    "INSERT INTO evaluation (time, policy_id, source_ip, disposition, dkim_aligned, spf_aligned, reasons, "
    "reason_comment, header_from, envelope_from, envelope_to, dkim, spf) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

// Everything read_evaluation() reads, in its order, from `evaluation AS e JOIN policy AS p`.
constexpr const char* kSelect =
    "e.time, p.policy_domain, p.adkim, p.aspf, p.p, p.sp, p.np, p.pct, p.fo, p.rua, e.source_ip, "
    "e.disposition, e.dkim_aligned, e.spf_aligned, e.reasons, e.reason_comment, e.header_from, "
    "e.envelope_from, e.envelope_to, e.dkim, e.spf";
// What makes two evaluations "identical" in a report: everything of a <record> but the count.
constexpr const char* kRowColumns =
    "source_ip, disposition, dkim_aligned, spf_aligned, reasons, reason_comment, header_from, envelope_from, "
    "envelope_to, dkim, spf";

std::int64_t day_of(std::int64_t time) {
    const auto p = limits::period_seconds;
    return time >= 0 ? time / p : (time - p + 1) / p;
}

std::string utc_date(std::int64_t day) {
    std::time_t t = static_cast<std::time_t>(day * limits::period_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return buf;
}

std::string sqlite_message(sqlite3* db, int rc) {
    const char* msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    return core::printable(msg ? msg : sqlite3_errstr(rc), 200);
}

// RAII for one prepared statement.
class Statement {
  public:
    Statement(sqlite3* db, const std::string& sql) : db_(db) {
        int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr);
        if (rc != SQLITE_OK)
            throw StoreError(fmt::format("cannot prepare a query: {}", sqlite_message(db, rc)));
    }
    ~Statement() { sqlite3_finalize(stmt_); }
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;
    sqlite3_stmt* get() const { return stmt_; }
    void bind(int i, std::string_view text) {
        sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    }
    void bind(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
    // SQLITE_ROW: true; SQLITE_DONE: false; anything else throws.
    bool step() {
        int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        throw StoreError(sqlite_message(db_, rc));
    }
    std::string text(int col) const {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
        return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
    }
    std::int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }

  private:
    sqlite3* db_;
    sqlite3_stmt* stmt_ = nullptr;
};

// Runs SQL without results; returns the error text, empty on success.
std::string exec(sqlite3* db, const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
    if (rc == SQLITE_OK) return {};
    std::string msg = err ? core::printable(err, 200) : sqlite_message(db, rc);
    sqlite3_free(err);
    return msg;
}

int user_version(sqlite3* db) {
    Statement st(db, "PRAGMA user_version");
    return st.step() ? static_cast<int>(st.int64(0)) : 0;
}

// Who mails whom is in the store: it is never readable by others, whatever the umask. SQLite would
// create the file 0644 less the umask; the -wal and -shm files it makes later take the database
// file's mode (and it sets that mode exactly, umask or not). So the file is made here, 0600, before
// SQLite opens it; an existing one (and its companions) loses any permission for others, keeping
// the group's (0640 for a reporting group is the administrator's choice). Only `create` makes a
// file. Returns what it could not do, for the log; SQLite reports a path it cannot open itself.
std::string restrict_permissions(const std::string& path, bool create) {
    if (create) {
        int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0) {
            ::fchmod(fd, 0600);  // the umask may have taken the owner's write bit
            ::close(fd);
            return {};
        }
    }
    std::string problems;
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
        std::string file = path + suffix;
        struct stat st {};
        if (::lstat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0007) == 0) continue;
        if (::chmod(file.c_str(), st.st_mode & 0770) != 0) {
            problems +=
                fmt::format("{}cannot take away the permissions of others from {}: {}",
                            problems.empty() ? "" : "; ", core::printable(file, 200), std::strerror(errno));
        }
    }
    return problems;
}

std::string rua_text(const std::vector<std::string>& rua) {
    std::vector<std::vector<std::string>> items;
    for (const auto& u : rua) items.push_back({u});
    return encode_list(items);
}

std::vector<std::string> rua_of(std::string_view text) {
    std::vector<std::string> out;
    for (auto& item : decode_list(text)) out.push_back(item.empty() ? "" : std::move(item[0]));
    return out;
}

// The policy columns (?1..?9 of kFindPolicy and kInsertPolicy).
void bind_policy(Statement& st, const DmarcEvaluation& e, const std::string& rua) {
    st.bind(1, e.policy_domain);
    st.bind(2, e.adkim);
    st.bind(3, e.aspf);
    st.bind(4, e.p);
    st.bind(5, e.sp);
    st.bind(6, e.np);
    st.bind(7, static_cast<std::int64_t>(e.pct));
    st.bind(8, e.fo);
    st.bind(9, rua);
}

void bind_row(Statement& st, const DmarcEvaluation& e, std::int64_t policy_id) {
    std::vector<std::vector<std::string>> reasons, dkim, spf;
    for (const auto& r : e.reasons) reasons.push_back({r});
    for (const auto& d : e.dkim) dkim.push_back({d.domain, d.selector, d.result});
    for (const auto& s : e.spf) spf.push_back({s.domain, s.scope, s.result});
    st.bind(1, e.time);
    st.bind(2, policy_id);
    st.bind(3, e.source_ip);
    st.bind(4, e.disposition);
    st.bind(5, e.dkim_aligned);
    st.bind(6, e.spf_aligned);
    st.bind(7, encode_list(reasons));
    st.bind(8, e.reason_comment);
    st.bind(9, e.header_from);
    st.bind(10, e.envelope_from);
    st.bind(11, e.envelope_to);
    st.bind(12, encode_list(dkim));
    st.bind(13, encode_list(spf));
}

void reset(Statement& st) {
    sqlite3_reset(st.get());
    sqlite3_clear_bindings(st.get());
}

// Schema 1 -> 2, in one transaction: the distinct policy records into their own table, the rows
// rebuilt to refer to them, then each record's rua= cut to what is kept now (records that become
// identical are merged). Returns a line for the log. Throws StoreError (rolled back).
std::string migrate_from_1(sqlite3* db) {
    const auto started = std::chrono::steady_clock::now();
    if (auto e = exec(db, "BEGIN IMMEDIATE"); !e.empty()) throw StoreError(e);
    try {
        auto run = [db](const std::string& sql) {
            if (auto e = exec(db, sql.c_str()); !e.empty()) throw StoreError(e);
        };
        run(kCreatePolicy);
        run(fmt::format("INSERT INTO policy ({0}) SELECT DISTINCT {0} FROM evaluation", kPolicyColumns));
        run(create_evaluation("evaluation_v2"));
        run(fmt::format(
            "INSERT INTO evaluation_v2 (id, time, policy_id, {0}) SELECT e.id, e.time, p.id, {1} FROM "
            "evaluation AS "
            "e JOIN policy AS p ON p.policy_domain = e.policy_domain AND p.adkim = e.adkim AND p.aspf = "
            "e.aspf "
            "AND p.p = e.p AND p.sp = e.sp AND p.np = e.np AND p.pct = e.pct AND p.fo = e.fo AND p.rua = "
            "e.rua",
            kRowColumns,
            "e.source_ip, e.disposition, e.dkim_aligned, e.spf_aligned, e.reasons, e.reason_comment, "
            "e.header_from, e.envelope_from, e.envelope_to, e.dkim, e.spf"));
        run("DROP TABLE evaluation");
        run("ALTER TABLE evaluation_v2 RENAME TO evaluation");
        run(kCreateIndexes);

        struct Policy {
            std::int64_t id;
            DmarcEvaluation e;  // the policy fields only
            std::string rua;
        };
        std::vector<Policy> cut;
        {
            Statement all(db, fmt::format("SELECT id, {} FROM policy ORDER BY id", kPolicyColumns));
            while (all.step()) {
                Policy p;
                p.id = all.int64(0);
                p.e.policy_domain = all.text(1);
                p.e.adkim = all.text(2);
                p.e.aspf = all.text(3);
                p.e.p = all.text(4);
                p.e.sp = all.text(5);
                p.e.np = all.text(6);
                p.e.pct = static_cast<int>(all.int64(7));
                p.e.fo = all.text(8);
                auto kept = rua_text(kept_rua(rua_of(all.text(9))));
                if (kept != all.text(9)) {
                    p.rua = std::move(kept);
                    cut.push_back(std::move(p));
                }
            }
        }
        std::uint64_t merged = 0;
        Statement find(db, kFindPolicy);
        Statement move_rows(db, "UPDATE evaluation SET policy_id = ?1 WHERE policy_id = ?2");
        Statement drop(db, "DELETE FROM policy WHERE id = ?1");
        Statement set_rua(db, "UPDATE policy SET rua = ?1 WHERE id = ?2");
        for (const auto& p : cut) {
            bind_policy(find, p.e, p.rua);
            std::optional<std::int64_t> same;
            if (find.step()) same = find.int64(0);
            reset(find);
            if (same) {
                move_rows.bind(1, *same);
                move_rows.bind(2, p.id);
                move_rows.step();
                reset(move_rows);
                drop.bind(1, p.id);
                drop.step();
                reset(drop);
                ++merged;
            } else {
                set_rua.bind(1, p.rua);
                set_rua.bind(2, p.id);
                set_rua.step();
                reset(set_rua);
            }
        }
        run(fmt::format("PRAGMA user_version = {}", dmarc_store_schema_version));
        std::uint64_t rows = 0, policies = 0;
        {
            Statement n(db, "SELECT (SELECT COUNT(*) FROM evaluation), (SELECT COUNT(*) FROM policy)");
            if (n.step()) {
                rows = static_cast<std::uint64_t>(n.int64(0));
                policies = static_cast<std::uint64_t>(n.int64(1));
            }
        }
        run("COMMIT");
        auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
        return fmt::format(
            "migrated from schema version 1 to {}: {} evaluations now refer to {} distinct policy records "
            "({} "
            "rua= lists cut to at most {} URIs, {} records merged) in {} ms; the file keeps its size, its "
            "free "
            "pages take new rows",
            dmarc_store_schema_version, rows, policies, cut.size(), limits::max_rua_uris, merged, ms.count());
    } catch (...) {
        exec(db, "ROLLBACK");
        throw;
    }
}

// Opens the file; with `create`, makes the directory entry and the schema. An older schema is
// migrated when `writable`. `note` hears what the log should (a migration, permissions it could not
// fix). Throws StoreError with the path and the reason.
sqlite3* open_db(const std::string& path, bool writable, bool create, std::chrono::milliseconds busy,
                 const std::function<void(const std::string&)>& note = {}) {
    if (path.empty()) throw StoreError("no store path configured");
    auto tell = [&](const std::string& what) {
        if (note && !what.empty())
            note(fmt::format("DMARC report store {}: {}", core::printable(path, 200), what));
    };
    if (writable) tell(restrict_permissions(path, create));
    sqlite3* db = nullptr;
    int flags = (writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) |
                (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_FULLMUTEX;
    int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    auto fail = [&](const std::string& why) -> StoreError {
        std::string msg = fmt::format("DMARC report store {}: {}", core::printable(path, 200), why);
        sqlite3_close(db);
        db = nullptr;
        return StoreError(msg);
    };
    if (rc != SQLITE_OK) {
        int err = db ? sqlite3_system_errno(db) : 0;
        std::string why = sqlite_message(db, rc);
        if (err != 0) why += fmt::format(" ({})", std::strerror(err));
        throw fail(why + (create ? " (does the directory exist, and may this user write to it?)" : ""));
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, static_cast<int>(busy.count()));
    try {
        int version = user_version(db);  // also the first read: "file is not a database" shows here
        if (version > dmarc_store_schema_version) {
            throw fail(fmt::format("schema version {} is newer than this Vigil's ({})", version,
                                   dmarc_store_schema_version));
        }
        if (!create && version == 0) throw fail("not a Vigil DMARC report store (no schema)");
        if (!writable) {
            if (version < dmarc_store_schema_version) {
                throw fail(
                    fmt::format("schema version {} is older than this Vigil's ({}); opening it for writing "
                                "(the milter, or `vigil dmarc report` as a user who may write it) "
                                "migrates it",
                                version, dmarc_store_schema_version));
            }
            return db;
        }
        if (create) {
            // WAL: the report command reads while the milter writes; NORMAL sync is durable enough for
            // statistics and keeps a commit cheap.
            if (auto e = exec(db, "PRAGMA journal_mode=WAL"); !e.empty()) throw fail(e);
            if (auto e = exec(db, "PRAGMA synchronous=NORMAL"); !e.empty()) throw fail(e);
        }
        if (version == 0) {
            std::string sql =
                fmt::format("BEGIN IMMEDIATE; {} {} {} PRAGMA user_version = {}; COMMIT;", kCreatePolicy,
                            create_evaluation("evaluation"), kCreateIndexes, dmarc_store_schema_version);
            if (auto e = exec(db, sql.c_str()); !e.empty()) {
                exec(db, "ROLLBACK");
                throw fail(e + " (may this user write to the file and its directory?)");
            }
        } else if (version == 1) {
            try {
                tell(migrate_from_1(db));
            } catch (const StoreError& e) {
                throw fail(std::string("migrating from schema version 1 failed: ") + e.what());
            }
        } else {
            // An existing store: prove now, not at the first message, that we may write to it.
            if (auto e = exec(db, "BEGIN IMMEDIATE; COMMIT;"); !e.empty()) {
                exec(db, "ROLLBACK");
                throw fail(e + " (may this user write to the file and its directory?)");
            }
        }
        return db;
    } catch (const StoreError&) {
        sqlite3_close(db);  // a Statement that failed (a file that is not a database) threw past fail()
        throw;
    } catch (const std::exception& e) {
        throw fail(e.what());
    }
}

// Reads the kSelect columns starting at column `c`.
DmarcEvaluation read_evaluation(const Statement& st, int c) {
    DmarcEvaluation e;
    e.time = st.int64(c++);
    e.policy_domain = st.text(c++);
    e.adkim = st.text(c++);
    e.aspf = st.text(c++);
    e.p = st.text(c++);
    e.sp = st.text(c++);
    e.np = st.text(c++);
    e.pct = static_cast<int>(st.int64(c++));
    e.fo = st.text(c++);
    e.rua = rua_of(st.text(c++));
    e.source_ip = st.text(c++);
    e.disposition = st.text(c++);
    e.dkim_aligned = st.text(c++);
    e.spf_aligned = st.text(c++);
    for (auto& item : decode_list(st.text(c++))) e.reasons.push_back(item.empty() ? "" : item[0]);
    e.reason_comment = st.text(c++);
    e.header_from = st.text(c++);
    e.envelope_from = st.text(c++);
    e.envelope_to = st.text(c++);
    for (auto& item : decode_list(st.text(c++))) {
        item.resize(3);
        e.dkim.push_back({item[0], item[1], item[2]});
    }
    for (auto& item : decode_list(st.text(c++))) {
        item.resize(3);
        e.spf.push_back({item[0], item[1], item[2]});
    }
    return e;
}

}  // namespace

// Every field is percent-encoded (each byte outside a safe set) and ends with ';', every item ends
// with ',': lossless, and canonical, so equal lists give equal text and SQL can group on it.
std::string encode_list(const std::vector<std::vector<std::string>>& items) {
    auto safe = [](unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '-' || c == '_' || c == ':' || c == '@' || c == '/' || c == '!' || c == '+' || c == '=';
    };
    std::string out;
    for (const auto& item : items) {
        for (const auto& field : item) {
            for (unsigned char c : field) {
                if (safe(c)) {
                    out += static_cast<char>(c);
                } else {
                    out += fmt::format("%{:02X}", c);
                }
            }
            out += ';';
        }
        out += ',';
    }
    return out;
}

std::vector<std::vector<std::string>> decode_list(std::string_view text) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::vector<std::vector<std::string>> out;
    std::vector<std::string> item;
    std::string field;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == ';') {
            item.push_back(std::move(field));
            field.clear();
        } else if (c == ',') {
            out.push_back(std::move(item));
            item.clear();
        } else if (c == '%' && i + 2 < text.size() && hex(text[i + 1]) >= 0 && hex(text[i + 2]) >= 0) {
            field += static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2]));
            i += 2;
        } else {
            field += c;
        }
    }
    return out;
}

SqliteDmarcStore::SqliteDmarcStore(DmarcStoreOptions options, StoreLogger warn)
    : options_(std::move(options)), warn_(std::move(warn)) {
    if (options_.queue_size == 0) options_.queue_size = 1;
    if (options_.batch_size == 0) options_.batch_size = 1;
    if (options_.max_rows_per_day == 0) options_.max_rows_per_day = 1;
    db_ = open_db(options_.path, true, true, options_.busy_timeout, [this](const std::string& line) {
        if (warn_) warn_(line);
    });
    // The writer starts with every signal blocked: a SIGTERM meant for libmilter's signal thread
    // must never land here and kill the process with its default action.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    try {
        writer_ = std::thread([this] { writer_loop(); });
    } catch (...) {
        pthread_sigmask(SIG_SETMASK, &previous, nullptr);
        sqlite3_close(db_);
        throw;
    }
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

SqliteDmarcStore::~SqliteDmarcStore() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    if (writer_.joinable()) writer_.join();
    sqlite3_close(db_);
}

std::vector<std::string> kept_rua(const std::vector<std::string>& rua) {
    std::vector<std::string> out;
    for (const auto& u : rua) {
        if (out.size() == limits::max_rua_uris) break;
        if (u.size() <= limits::max_rua_uri_bytes) out.push_back(u);
    }
    return out;
}

void SqliteDmarcStore::record(const DmarcEvaluation& evaluation) noexcept {
    try {
        bool full = false;
        // Cut before it is queued: the queue holds what the file will, not what the sender published.
        DmarcEvaluation kept = evaluation;
        kept.rua = kept_rua(evaluation.rua);
        {
            std::lock_guard lock(mutex_);
            if (stop_) return;
            if (queue_.size() >= options_.queue_size) {
                full = true;
                ++stats_.dropped_full;
            } else {
                queue_.push_back(std::move(kept));
                ++accepted_;
                ++stats_.recorded;
            }
        }
        if (full) {
            maybe_warn(full_warning_, 1,
                       fmt::format("the queue is full ({} evaluations waiting for the writer)",
                                   options_.queue_size));
        } else {
            wake_.notify_one();
        }
    } catch (...) {
        // Out of memory copying the evaluation: the report loses one row, the message nothing.
    }
}

void SqliteDmarcStore::maybe_warn(Limiter& limiter, std::uint64_t count, const std::string& what) {
    std::string line;
    {
        std::lock_guard lock(warn_mutex_);
        limiter.unreported += count;
        auto now = std::chrono::steady_clock::now();
        if (limiter.last && now - *limiter.last < options_.warning_interval) return;
        bool first = !limiter.last;
        limiter.last = now;
        auto seconds = std::chrono::duration_cast<std::chrono::seconds>(options_.warning_interval).count();
        line = fmt::format(
            "DMARC report store {}: {}; dropped {} evaluation{}{} (mail is not affected; this "
            "warning repeats at most every {} s while it lasts)",
            core::printable(options_.path, 200), what, limiter.unreported, limiter.unreported == 1 ? "" : "s",
            first ? "" : " since the last warning", seconds);
        limiter.unreported = 0;
    }
    if (warn_) {
        try {
            warn_(line);
        } catch (...) {
        }
    }
}

void SqliteDmarcStore::flush() {
    std::unique_lock lock(mutex_);
    auto target = accepted_;
    wake_.notify_one();
    drained_.wait(lock, [&] { return taken_ >= target; });
}

SqliteDmarcStore::Stats SqliteDmarcStore::stats() const {
    std::lock_guard lock(mutex_);
    Stats s = stats_;
    s.queued = queue_.size();
    return s;
}

void SqliteDmarcStore::writer_loop() {
    std::vector<DmarcEvaluation> batch;
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stop_ and nothing left
            std::size_t n = std::min(queue_.size(), options_.batch_size);
            batch.clear();
            batch.reserve(n);
            for (std::size_t i = 0; i < n; ++i) {
                batch.push_back(std::move(queue_.front()));
                queue_.pop_front();
            }
        }
        std::string error;
        std::uint64_t capped = 0;
        std::vector<std::int64_t> full_days;
        bool ok = write_batch(batch, error, capped, full_days);
        // Before the batch counts as taken: flush() returning means its outcome, warning included,
        // is visible.
        if (!ok) maybe_warn(error_warning_, batch.size(), fmt::format("writing failed: {}", error));
        warn_full_days(full_days);
        {
            std::lock_guard lock(mutex_);
            if (ok) {
                stats_.written += batch.size();
                stats_.dropped_cap += capped;
            } else {
                stats_.dropped_error += batch.size();
            }
            taken_ += batch.size();
        }
        drained_.notify_all();
    }
}

bool SqliteDmarcStore::write_batch(std::vector<DmarcEvaluation>& batch, std::string& error,
                                   std::uint64_t& capped, std::vector<std::int64_t>& full_days) {
    std::map<std::int64_t, std::uint64_t> counted;  // rows_per_day_ as it will be if this commits
    try {
        if (auto e = exec(db_, "BEGIN IMMEDIATE"); !e.empty()) {
            error = e;
            return false;
        }
        Statement find(db_, kFindPolicy);
        Statement add(db_, kInsertPolicy);
        Statement insert(db_, kInsert);
        // Policy ids by record, for this transaction only: prune() may delete records between batches.
        std::unordered_map<std::string, std::int64_t> ids;
        std::map<std::int64_t, std::uint64_t> added;
        for (const auto& e : batch) {
            const std::string rua = rua_text(e.rua);
            auto [it, fresh] = ids.try_emplace(encode_list({{e.policy_domain, e.adkim, e.aspf, e.p, e.sp,
                                                             e.np, std::to_string(e.pct), e.fo, rua}}),
                                               0);
            if (fresh) {
                bind_policy(find, e, rua);
                if (find.step()) {
                    it->second = find.int64(0);
                } else {
                    bind_policy(add, e, rua);
                    add.step();
                    it->second = sqlite3_last_insert_rowid(db_);
                    reset(add);
                }
                reset(find);
            }
            bind_row(insert, e, it->second);
            insert.step();
            reset(insert);
            ++added[day_of(e.time)];
        }
        for (const auto& [day, n] : added) {
            std::uint64_t rows = day_rows(day, n);
            if (rows > options_.max_rows_per_day) {
                auto gone = trim_day(day, rows - options_.max_rows_per_day);
                rows -= gone;
                capped += gone;
                full_days.push_back(day);
            }
            counted[day] = rows;
        }
        if (auto e = exec(db_, "COMMIT"); !e.empty()) {
            error = e;
            exec(db_, "ROLLBACK");
            rows_per_day_.clear();  // counted again next time
            capped = 0;
            full_days.clear();
            return false;
        }
    } catch (const std::exception& e) {
        error = e.what();
        exec(db_, "ROLLBACK");
        rows_per_day_.clear();
        capped = 0;
        full_days.clear();
        return false;
    }
    for (const auto& [day, rows] : counted) rows_per_day_[day] = rows;
    // Rows arrive for today (and yesterday, around midnight): older counts are not needed again.
    if (!rows_per_day_.empty()) {
        const auto newest = rows_per_day_.rbegin()->first;
        rows_per_day_.erase(rows_per_day_.begin(), rows_per_day_.lower_bound(newest - 2));
    }
    return true;
}

std::uint64_t SqliteDmarcStore::day_rows(std::int64_t day, std::uint64_t added) {
    if (auto it = rows_per_day_.find(day); it != rows_per_day_.end()) return it->second + added;
    // Counted once per day the writer meets (the inserts of this batch included): an index range.
    Statement st(db_, "SELECT COUNT(*) FROM evaluation WHERE time >= ?1 AND time < ?2");
    st.bind(1, day * limits::period_seconds);
    st.bind(2, (day + 1) * limits::period_seconds);
    return st.step() ? static_cast<std::uint64_t>(st.int64(0)) : added;
}

std::uint64_t SqliteDmarcStore::trim_day(std::int64_t day, std::uint64_t excess) {
    const std::string oldest =
        "SELECT id FROM evaluation WHERE time >= ?1 AND time < ?2 ORDER BY time, id LIMIT ?3";
    std::vector<std::int64_t> policies;
    {
        Statement st(db_, fmt::format("SELECT DISTINCT policy_id FROM evaluation WHERE id IN ({})", oldest));
        st.bind(1, day * limits::period_seconds);
        st.bind(2, (day + 1) * limits::period_seconds);
        st.bind(3, static_cast<std::int64_t>(excess));
        while (st.step()) policies.push_back(st.int64(0));
    }
    Statement del(db_, fmt::format("DELETE FROM evaluation WHERE id IN ({})", oldest));
    del.bind(1, day * limits::period_seconds);
    del.bind(2, (day + 1) * limits::period_seconds);
    del.bind(3, static_cast<std::int64_t>(excess));
    del.step();
    const auto gone = static_cast<std::uint64_t>(sqlite3_changes(db_));
    // A record only the dropped rows referred to goes too, or distinct records would pile up.
    Statement orphan(db_,
                     "DELETE FROM policy WHERE id = ?1 AND NOT EXISTS "
                     "(SELECT 1 FROM evaluation WHERE policy_id = ?1)");
    for (auto id : policies) {
        orphan.bind(1, id);
        orphan.step();
        reset(orphan);
    }
    return gone;
}

void SqliteDmarcStore::warn_full_days(const std::vector<std::int64_t>& days) {
    for (auto day : days) {
        if (!warned_days_.insert(day).second) continue;
        if (warned_days_.size() > 8) warned_days_.erase(warned_days_.begin());
        if (!warn_) continue;
        try {
            warn_(fmt::format(
                "DMARC report store {}: {} (UTC) has reached {} evaluations ([dmarc_reports] "
                "max_rows_per_day); its oldest are dropped to make room for new ones (mail is not "
                "affected; said once a day)",
                core::printable(options_.path, 200), utc_date(day), options_.max_rows_per_day));
        } catch (...) {
        }
    }
}

DmarcStoreReader::DmarcStoreReader(const std::string& path, bool writable) : path_(path) {
    db_ = open_db(path, writable, false, std::chrono::milliseconds(5000));
}

DmarcStoreReader::~DmarcStoreReader() {
    sqlite3_close(db_);
}

std::vector<std::string> DmarcStoreReader::domains(std::int64_t since, std::int64_t until) const {
    Statement st(
        db_,
        "SELECT DISTINCT p.policy_domain FROM evaluation AS e JOIN policy AS p ON p.id = e.policy_id "
        "WHERE e.time >= ?1 AND e.time < ?2 ORDER BY p.policy_domain");
    st.bind(1, since);
    st.bind(2, until);
    std::vector<std::string> out;
    while (st.step()) out.push_back(st.text(0));
    return out;
}

std::vector<StoredRow> DmarcStoreReader::rows(std::string_view policy_domain, std::int64_t since,
                                              std::int64_t until) const {
    // Grouped first, then joined back to the most recently recorded row of each group and its policy
    // record (the published policy is not part of a row).
    Statement st(db_,
                 fmt::format("SELECT g.n, g.t, {} FROM (SELECT COUNT(*) AS n, MAX(time) AS t, MAX(id) AS "
                             "last_id, MIN(id) AS first_id FROM evaluation WHERE policy_id IN (SELECT id "
                             "FROM policy WHERE policy_domain = ?1) AND time >= ?2 AND time < ?3 GROUP BY "
                             "{}) AS g JOIN evaluation AS e ON e.id = g.last_id JOIN policy AS p ON p.id = "
                             "e.policy_id ORDER BY e.source_ip, g.first_id",
                             kSelect, kRowColumns));
    st.bind(1, policy_domain);
    st.bind(2, since);
    st.bind(3, until);
    std::vector<StoredRow> out;
    while (st.step()) {
        StoredRow row;
        row.count = static_cast<std::uint64_t>(st.int64(0));
        row.evaluation = read_evaluation(st, 2);
        row.evaluation.time = st.int64(1);
        out.push_back(std::move(row));
    }
    return out;
}

std::optional<DmarcEvaluation> DmarcStoreReader::latest(std::string_view policy_domain, std::int64_t since,
                                                        std::int64_t until) const {
    Statement st(db_,
                 fmt::format("SELECT {} FROM evaluation AS e JOIN policy AS p ON p.id = e.policy_id WHERE "
                             "p.policy_domain = ?1 AND e.time >= ?2 AND e.time < ?3 ORDER BY e.time DESC, "
                             "e.id DESC LIMIT 1",
                             kSelect));
    st.bind(1, policy_domain);
    st.bind(2, since);
    st.bind(3, until);
    if (!st.step()) return std::nullopt;
    return read_evaluation(st, 0);
}

std::uint64_t DmarcStoreReader::prune(std::int64_t before) {
    if (auto e = exec(db_, "BEGIN IMMEDIATE"); !e.empty()) throw StoreError(e);
    try {
        std::uint64_t n = 0;
        {
            Statement st(db_, "DELETE FROM evaluation WHERE time < ?1");
            st.bind(1, before);
            st.step();
            n = static_cast<std::uint64_t>(sqlite3_changes(db_));
        }
        if (auto e = exec(db_,
                          "DELETE FROM policy WHERE NOT EXISTS (SELECT 1 FROM evaluation WHERE "
                          "evaluation.policy_id = policy.id)");
            !e.empty())
            throw StoreError(e);
        if (auto e = exec(db_, "COMMIT"); !e.empty()) throw StoreError(e);
        return n;
    } catch (...) {
        exec(db_, "ROLLBACK");
        throw;
    }
}

std::uint64_t DmarcStoreReader::count() const {
    Statement st(db_, "SELECT COUNT(*) FROM evaluation");
    return st.step() ? static_cast<std::uint64_t>(st.int64(0)) : 0;
}

std::uint64_t DmarcStoreReader::policies() const {
    Statement st(db_, "SELECT COUNT(*) FROM policy");
    return st.step() ? static_cast<std::uint64_t>(st.int64(0)) : 0;
}

}  // namespace vigil::report
