#pragma once
// The DMARC aggregate-report store on SQLite (one file, WAL mode, no server). The milter's record()
// only copies the evaluation into a bounded queue; one writer thread drains it in batches, one
// transaction per batch. A full queue or a failed write (full disk, read-only file, a lock held too
// long) drops the evaluations with one rate-limited warning: mail never waits for or fails over a
// report. `vigil dmarc report` reads the same file through DmarcStoreReader.
//
// What senders control is bounded (report_limits.hpp): each distinct published policy record is
// stored once and rows refer to it; a record keeps at most limits::max_rua_uris rua= URIs; a UTC day
// keeps at most max_rows_per_day rows (then its oldest go, with one warning per day). The file and
// SQLite's -wal and -shm files next to it are created 0600 whatever the umask, and an existing file
// loses any permission for others (who mails whom is in it).
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "report/dmarc_store.hpp"
#include "report/report_limits.hpp"

struct sqlite3;

namespace vigil::report {

// Bumped whenever the table layout changes; kept in the file as PRAGMA user_version. A store of an
// older version is migrated when opened for writing. 1: one table, the policy record in every row.
// 2: policy records in their own table, rows refer to them.
inline constexpr int dmarc_store_schema_version = 2;

// Opening or reading the store failed (a start-up or command-line error, never a mail-path one).
class StoreError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct DmarcStoreOptions {
    std::string path;
    std::size_t queue_size = 10000;  // evaluations waiting for the writer; more are dropped
    std::size_t batch_size = 512;    // evaluations per transaction
    // How long the writer waits for a lock another process (the report command) holds.
    std::chrono::milliseconds busy_timeout{5000};
    // At most one warning line per kind (queue full, write failed) per interval.
    std::chrono::milliseconds warning_interval{60000};
    // Rows kept per UTC day; past it the day's oldest rows are dropped, with one warning per day.
    std::uint64_t max_rows_per_day = limits::default_max_rows_per_day;
};

// Receives operator warnings (the daemon passes syslog at LOG_WARNING), and the one line that says an
// older store was migrated. Lines are printable.
using StoreLogger = std::function<void(const std::string& line)>;

class SqliteDmarcStore final : public DmarcStore {
  public:
    // Opens or creates the file and its schema (migrating an older one) and starts the writer. Throws
    // StoreError saying what is wrong (missing directory, no permission, not a database, a newer
    // schema).
    SqliteDmarcStore(DmarcStoreOptions options, StoreLogger warn);
    // Writes what is still queued (or drops it on error) and stops the writer.
    ~SqliteDmarcStore() override;
    SqliteDmarcStore(const SqliteDmarcStore&) = delete;
    SqliteDmarcStore& operator=(const SqliteDmarcStore&) = delete;

    void record(const DmarcEvaluation& evaluation) noexcept override;

    // Blocks until everything recorded before the call is written or dropped.
    void flush();

    struct Stats {
        std::uint64_t recorded = 0;       // accepted into the queue
        std::uint64_t written = 0;        // committed to the file
        std::uint64_t dropped_full = 0;   // refused: queue full
        std::uint64_t dropped_error = 0;  // lost: the write failed
        std::uint64_t dropped_cap = 0;    // written, then dropped as the oldest of a full day
        std::size_t queued = 0;           // waiting now (not yet taken by the writer)
    };
    Stats stats() const;
    const std::string& path() const { return options_.path; }

  private:
    void writer_loop();
    // Writes the batch and trims the days it touched; adds to `capped` the rows trimmed, and to
    // `full_days` the days that were trimmed.
    bool write_batch(std::vector<DmarcEvaluation>& batch, std::string& error, std::uint64_t& capped,
                     std::vector<std::int64_t>& full_days);
    // The day's rows after `added` more were inserted, from rows_per_day_ or counted.
    std::uint64_t day_rows(std::int64_t day, std::uint64_t added);
    // Deletes the `excess` oldest rows of the day and the policy records left without rows.
    std::uint64_t trim_day(std::int64_t day, std::uint64_t excess);
    void warn_full_days(const std::vector<std::int64_t>& days);
    // Emits the warning of one kind if its interval has passed; `count` is added to what it reports.
    struct Limiter {
        std::optional<std::chrono::steady_clock::time_point> last;
        std::uint64_t unreported = 0;
    };
    void maybe_warn(Limiter& limiter, std::uint64_t count, const std::string& what);

    DmarcStoreOptions options_;
    StoreLogger warn_;
    sqlite3* db_ = nullptr;

    mutable std::mutex mutex_;
    std::condition_variable wake_;     // writer: work or stop
    std::condition_variable drained_;  // flush(): a batch finished
    std::deque<DmarcEvaluation> queue_;
    std::uint64_t taken_ = 0;     // evaluations the writer has finished with (written or dropped)
    std::uint64_t accepted_ = 0;  // evaluations accepted into the queue, ever
    bool stop_ = false;
    Stats stats_;
    std::mutex warn_mutex_;
    Limiter full_warning_, error_warning_;
    // The writer thread's alone: rows per UTC day for the last few days (counted once, then kept up
    // to date), and the days already warned about.
    std::map<std::int64_t, std::uint64_t> rows_per_day_;
    std::set<std::int64_t> warned_days_;
    std::thread writer_;
};

// One merged report row: evaluations identical in everything but their time, and how many.
struct StoredRow {
    DmarcEvaluation evaluation;  // time = the latest of the merged evaluations
    std::uint64_t count = 0;
};

// Read access for `vigil dmarc report`. Works while the milter writes (WAL).
class DmarcStoreReader {
  public:
    // Throws StoreError if the file is missing, not a store, or of a newer schema; or of an older one
    // and not `writable` (opened writable, it is migrated).
    explicit DmarcStoreReader(const std::string& path, bool writable = false);
    ~DmarcStoreReader();
    DmarcStoreReader(const DmarcStoreReader&) = delete;
    DmarcStoreReader& operator=(const DmarcStoreReader&) = delete;

    // Policy domains with evaluations in [since, until), sorted.
    std::vector<std::string> domains(std::int64_t since, std::int64_t until) const;
    // The domain's evaluations in [since, until), identical ones merged with a count, in a stable
    // order (by source IP, then first appearance).
    std::vector<StoredRow> rows(std::string_view policy_domain, std::int64_t since, std::int64_t until) const;
    // The latest evaluation of the domain in [since, until): its policy_published and rua= are what
    // the report states. Empty when there is none.
    std::optional<DmarcEvaluation> latest(std::string_view policy_domain, std::int64_t since,
                                          std::int64_t until) const;
    // Deletes evaluations older than `before`, and the policy records no row refers to any more;
    // returns how many evaluations. Needs `writable`.
    std::uint64_t prune(std::int64_t before);
    std::uint64_t count() const;     // every evaluation in the file
    std::uint64_t policies() const;  // every distinct policy record in the file

  private:
    sqlite3* db_ = nullptr;
    std::string path_;
};

// The text form a list of DKIM/SPF results, reasons or URIs takes in one column, and back. Lossless
// for any bytes; two equal lists give equal text, so SQL can merge identical rows. (Exposed for tests.)
std::string encode_list(const std::vector<std::vector<std::string>>& items);
std::vector<std::vector<std::string>> decode_list(std::string_view text);

// The rua= URIs a record keeps: at most limits::max_rua_uris, in order, none longer than
// limits::max_rua_uri_bytes.
std::vector<std::string> kept_rua(const std::vector<std::string>& rua);

}  // namespace vigil::report
