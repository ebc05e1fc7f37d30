#pragma once
// The DMARC aggregate-report store on SQLite (one file, WAL mode, no server). The milter's record()
// only copies the evaluation into a bounded queue; one writer thread drains it in batches, one
// transaction per batch. A full queue or a failed write (full disk, read-only file, a lock held too
// long) drops the evaluations with one rate-limited warning: mail never waits for or fails over a
// report. `vigil dmarc report` reads the same file through DmarcStoreReader.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "report/dmarc_store.hpp"

struct sqlite3;

namespace vigil::report {

// Bumped whenever the table layout changes; kept in the file as PRAGMA user_version.
inline constexpr int dmarc_store_schema_version = 1;

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
};

// Receives operator warnings (the daemon passes syslog at LOG_WARNING). Lines are printable.
using StoreLogger = std::function<void(const std::string& line)>;

class SqliteDmarcStore final : public DmarcStore {
  public:
    // Opens or creates the file and its schema and starts the writer. Throws StoreError saying what
    // is wrong (missing directory, no permission, not a database, a newer schema).
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
        std::size_t queued = 0;           // waiting now (not yet taken by the writer)
    };
    Stats stats() const;
    const std::string& path() const { return options_.path; }

  private:
    void writer_loop();
    bool write_batch(std::vector<DmarcEvaluation>& batch, std::string& error);
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
    // Throws StoreError if the file is missing, not a store, or of a newer schema.
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
    // Deletes evaluations older than `before`; returns how many. Needs `writable`.
    std::uint64_t prune(std::int64_t before);
    std::uint64_t count() const;  // every evaluation in the file

  private:
    sqlite3* db_ = nullptr;
    std::string path_;
};

// The text form a list of DKIM/SPF results, reasons or URIs takes in one column, and back. Lossless
// for any bytes; two equal lists give equal text, so SQL can merge identical rows. (Exposed for tests.)
std::string encode_list(const std::vector<std::vector<std::string>>& items);
std::vector<std::vector<std::string>> decode_list(std::string_view text);

}  // namespace vigil::report
