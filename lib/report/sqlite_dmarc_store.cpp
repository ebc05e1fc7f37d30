#include "report/sqlite_dmarc_store.hpp"

#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "core/printable.hpp"

namespace vigil::report {

namespace {

// One row per evaluation; lists (rua, reasons, dkim, spf) in encode_list() form.
constexpr const char* kCreate = R"(
CREATE TABLE IF NOT EXISTS evaluation (
  id             INTEGER PRIMARY KEY,
  time           INTEGER NOT NULL,
  policy_domain  TEXT NOT NULL,
  adkim          TEXT NOT NULL,
  aspf           TEXT NOT NULL,
  p              TEXT NOT NULL,
  sp             TEXT NOT NULL,
  np             TEXT NOT NULL,
  pct            INTEGER NOT NULL,
  fo             TEXT NOT NULL,
  rua            TEXT NOT NULL,
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
CREATE INDEX IF NOT EXISTS evaluation_domain_time ON evaluation (policy_domain, time);
CREATE INDEX IF NOT EXISTS evaluation_time ON evaluation (time);
)";

constexpr const char* kInsert =
    "INSERT INTO evaluation (time, policy_domain, adkim, aspf, p, sp, np, pct, fo, rua, source_ip, "
    "disposition, "
    "dkim_aligned, spf_aligned, reasons, reason_comment, header_from, envelope_from, envelope_to, dkim, spf) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)";

// Every column after id, in kInsert order; the reader selects them in this order too.
constexpr const char* kColumns =
    "time, policy_domain, adkim, aspf, p, sp, np, pct, fo, rua, source_ip, disposition, dkim_aligned, "
    "spf_aligned, "
    "reasons, reason_comment, header_from, envelope_from, envelope_to, dkim, spf";
// What makes two evaluations "identical" in a report: everything of a <record> but the count.
constexpr const char* kRowColumns =
    "source_ip, disposition, dkim_aligned, spf_aligned, reasons, reason_comment, header_from, envelope_from, "
    "envelope_to, dkim, spf";

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

// Opens the file; with `create`, makes the directory entry and the schema. Throws StoreError with
// the path and the reason.
sqlite3* open_db(const std::string& path, bool writable, bool create, std::chrono::milliseconds busy) {
    if (path.empty()) throw StoreError("no store path configured");
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
        if (!create) {
            if (version == 0) throw fail("not a Vigil DMARC report store (no schema)");
            return db;
        }
        // WAL: the report command reads while the milter writes; NORMAL sync is durable enough for
        // statistics and keeps a commit cheap.
        if (auto e = exec(db, "PRAGMA journal_mode=WAL"); !e.empty()) throw fail(e);
        if (auto e = exec(db, "PRAGMA synchronous=NORMAL"); !e.empty()) throw fail(e);
        if (version == 0) {
            std::string sql = fmt::format("BEGIN IMMEDIATE; {} PRAGMA user_version = {}; COMMIT;", kCreate,
                                          dmarc_store_schema_version);
            if (auto e = exec(db, sql.c_str()); !e.empty()) {
                exec(db, "ROLLBACK");
                throw fail(e + " (may this user write to the file and its directory?)");
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

void bind_evaluation(Statement& st, const DmarcEvaluation& e) {
    std::vector<std::vector<std::string>> rua, reasons, dkim, spf;
    for (const auto& u : e.rua) rua.push_back({u});
    for (const auto& r : e.reasons) reasons.push_back({r});
    for (const auto& d : e.dkim) dkim.push_back({d.domain, d.selector, d.result});
    for (const auto& s : e.spf) spf.push_back({s.domain, s.scope, s.result});
    st.bind(1, e.time);
    st.bind(2, e.policy_domain);
    st.bind(3, e.adkim);
    st.bind(4, e.aspf);
    st.bind(5, e.p);
    st.bind(6, e.sp);
    st.bind(7, e.np);
    st.bind(8, static_cast<std::int64_t>(e.pct));
    st.bind(9, e.fo);
    st.bind(10, encode_list(rua));
    st.bind(11, e.source_ip);
    st.bind(12, e.disposition);
    st.bind(13, e.dkim_aligned);
    st.bind(14, e.spf_aligned);
    st.bind(15, encode_list(reasons));
    st.bind(16, e.reason_comment);
    st.bind(17, e.header_from);
    st.bind(18, e.envelope_from);
    st.bind(19, e.envelope_to);
    st.bind(20, encode_list(dkim));
    st.bind(21, encode_list(spf));
}

// Reads the kColumns starting at column `c`.
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
    for (auto& item : decode_list(st.text(c++))) e.rua.push_back(item.empty() ? "" : item[0]);
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
    db_ = open_db(options_.path, true, true, options_.busy_timeout);
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

void SqliteDmarcStore::record(const DmarcEvaluation& evaluation) noexcept {
    try {
        bool full = false;
        {
            std::lock_guard lock(mutex_);
            if (stop_) return;
            if (queue_.size() >= options_.queue_size) {
                full = true;
                ++stats_.dropped_full;
            } else {
                queue_.push_back(evaluation);
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
        bool ok = write_batch(batch, error);
        // Before the batch counts as taken: flush() returning means its outcome, warning included,
        // is visible.
        if (!ok) maybe_warn(error_warning_, batch.size(), fmt::format("writing failed: {}", error));
        {
            std::lock_guard lock(mutex_);
            if (ok) {
                stats_.written += batch.size();
            } else {
                stats_.dropped_error += batch.size();
            }
            taken_ += batch.size();
        }
        drained_.notify_all();
    }
}

bool SqliteDmarcStore::write_batch(std::vector<DmarcEvaluation>& batch, std::string& error) {
    try {
        if (auto e = exec(db_, "BEGIN IMMEDIATE"); !e.empty()) {
            error = e;
            return false;
        }
        Statement st(db_, kInsert);
        for (const auto& e : batch) {
            bind_evaluation(st, e);
            st.step();
            sqlite3_reset(st.get());
            sqlite3_clear_bindings(st.get());
        }
        if (auto e = exec(db_, "COMMIT"); !e.empty()) {
            error = e;
            exec(db_, "ROLLBACK");
            return false;
        }
        return true;
    } catch (const std::exception& e) {
        error = e.what();
        exec(db_, "ROLLBACK");
        return false;
    }
}

DmarcStoreReader::DmarcStoreReader(const std::string& path, bool writable) : path_(path) {
    db_ = open_db(path, writable, false, std::chrono::milliseconds(5000));
}

DmarcStoreReader::~DmarcStoreReader() {
    sqlite3_close(db_);
}

std::vector<std::string> DmarcStoreReader::domains(std::int64_t since, std::int64_t until) const {
    Statement st(db_,
                 "SELECT DISTINCT policy_domain FROM evaluation WHERE time >= ?1 AND time < ?2 "
                 "ORDER BY policy_domain");
    st.bind(1, since);
    st.bind(2, until);
    std::vector<std::string> out;
    while (st.step()) out.push_back(st.text(0));
    return out;
}

std::vector<StoredRow> DmarcStoreReader::rows(std::string_view policy_domain, std::int64_t since,
                                              std::int64_t until) const {
    // Grouped first, then joined back to the most recently recorded row of each group for the
    // columns outside the group (the published policy).
    std::string prefixed;
    for (std::string_view cols = kColumns; !cols.empty();) {
        auto comma = cols.find(',');
        auto name = core::trim(cols.substr(0, comma));
        prefixed += fmt::format("{}e.{}", prefixed.empty() ? "" : ", ", name);
        cols = comma == std::string_view::npos ? std::string_view() : cols.substr(comma + 1);
    }
    Statement st(
        db_,
        fmt::format("SELECT g.n, g.t, {} FROM (SELECT COUNT(*) AS n, MAX(time) AS t, MAX(id) AS last_id, "
                    "MIN(id) AS first_id FROM evaluation WHERE policy_domain = ?1 AND time >= ?2 AND "
                    "time < ?3 GROUP BY {}) AS g JOIN evaluation AS e ON e.id = g.last_id "
                    "ORDER BY e.source_ip, g.first_id",
                    prefixed, kRowColumns));
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
    Statement st(
        db_, fmt::format("SELECT {} FROM evaluation WHERE policy_domain = ?1 AND time >= ?2 AND time < ?3 "
                         "ORDER BY time DESC, id DESC LIMIT 1",
                         kColumns));
    st.bind(1, policy_domain);
    st.bind(2, since);
    st.bind(3, until);
    if (!st.step()) return std::nullopt;
    return read_evaluation(st, 0);
}

std::uint64_t DmarcStoreReader::prune(std::int64_t before) {
    Statement st(db_, "DELETE FROM evaluation WHERE time < ?1");
    st.bind(1, before);
    st.step();
    return static_cast<std::uint64_t>(sqlite3_changes(db_));
}

std::uint64_t DmarcStoreReader::count() const {
    Statement st(db_, "SELECT COUNT(*) FROM evaluation");
    return st.step() ? static_cast<std::uint64_t>(st.int64(0)) : 0;
}

}  // namespace vigil::report
