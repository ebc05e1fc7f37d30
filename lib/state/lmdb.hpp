#pragma once
// A small RAII layer over LMDB for the daemon's embedded state (Bayes tokens today; rate limits and
// greylisting later). One file per store (MDB_NOSUBDIR: `name.lmdb` plus LMDB's `name.lmdb-lock`),
// any number of reader processes and threads next to one writer at a time, readers never blocked.
//
// Every LMDB failure comes back as a Status value naming a distinct Code (house rule 4): a full map
// is not a missing key is not a corrupt file. Nothing here throws.
//
// Threads: the environment is opened with MDB_NOTLS, so a read transaction is not tied to the thread
// that began it (libmilter moves a connection between worker threads). A Txn must still be used by
// one thread at a time.
#include <lmdb.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>

namespace vigil::state {

enum class Code {
    ok,
    not_found,         // no such key (or no such named database in a read-only open)
    map_full,          // the map size is reached: the store is full
    readers_full,      // more concurrent readers than max_readers
    txn_full,          // one transaction changed more pages than LMDB allows
    corrupt,           // the file is damaged or not an LMDB file
    version_mismatch,  // written by an incompatible LMDB version
    incompatible,      // the data is not what the caller's format expects (checked by the caller)
    permission,        // the file or its lock file cannot be opened for what was asked
    missing,           // the file or its directory does not exist (read-only open)
    invalid,           // a wrong argument (a key too long, a bad flag)
    io,                // any other system error
};

std::string_view to_string(Code c);

struct Status {
    Code code = Code::ok;
    int rc = 0;           // the LMDB or errno value behind it, 0 for ok
    std::string context;  // what was being done, e.g. "open /var/lib/vigil/bayes.lmdb"
    bool ok() const { return code == Code::ok; }
    // "context: LMDB's message" (for logs and the command line).
    std::string message() const;
};

// Maps an LMDB/errno return code to a Status.
Status status_from(int rc, std::string_view context);

struct EnvOptions {
    // Upper bound of the file (the memory map); the file itself grows only as pages are written.
    // A larger value than the file was created with grows it; a smaller one is ignored by LMDB
    // (the file keeps its size).
    std::size_t map_size = std::size_t{256} << 20;
    unsigned max_dbs = 8;
    // Concurrent read transactions over all processes (one per daemon thread reading at a time).
    unsigned max_readers = 512;
    mode_t mode = 0600;  // for both the data and the lock file, filtered by the umask
    bool read_only = false;
    // fsync on every commit (the default). Off only for throwaway stores (tests, evaluations).
    bool durable = true;
};

class Env;

// A transaction. Aborted on destruction unless committed. Holds the environment's resize lock
// shared, so the map size is never changed under it.
class Txn {
  public:
    Txn() = default;
    Txn(Txn&& o) noexcept;
    Txn& operator=(Txn&& o) noexcept;
    Txn(const Txn&) = delete;
    Txn& operator=(const Txn&) = delete;
    ~Txn();

    bool active() const { return txn_ != nullptr; }
    MDB_txn* raw() const { return txn_; }

    // Code::not_found when the key is absent. The view stays valid until the transaction ends
    // or (in a write transaction) the key is changed.
    Status get(MDB_dbi dbi, std::string_view key, std::string_view& value) const;
    Status put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0);
    // Code::not_found when the key was absent.
    Status del(MDB_dbi dbi, std::string_view key);
    Status commit();
    void abort();

  private:
    friend class Env;
    MDB_txn* txn_ = nullptr;
    std::shared_lock<std::shared_mutex> resize_guard_;
    std::string path_;  // for messages
};

// A cursor over one database inside a transaction. LMDB frees a write transaction's cursors when
// the transaction ends: close() (or destroy) a cursor before committing or aborting its transaction.
class Cursor {
  public:
    Cursor() = default;
    Cursor(Cursor&& o) noexcept : cur_(o.cur_) { o.cur_ = nullptr; }
    Cursor& operator=(Cursor&&) = delete;
    Cursor(const Cursor&) = delete;
    ~Cursor();
    static Status open(const Txn& txn, MDB_dbi dbi, Cursor& out);
    // MDB_FIRST, MDB_NEXT, MDB_SET_RANGE...; Code::not_found at the end.
    Status get(std::string_view& key, std::string_view& value, MDB_cursor_op op);
    // Deletes the entry under the cursor (write transactions only).
    Status del();
    void close();

  private:
    MDB_cursor* cur_ = nullptr;
};

struct EnvInfo {
    std::size_t map_size = 0;    // current map size in bytes
    std::size_t used_bytes = 0;  // pages up to the highest one used (freed pages are reused first)
    std::size_t page_size = 0;
    unsigned max_readers = 0;
    unsigned readers_used = 0;
};

class Env {
  public:
    // Opens (creating unless read_only) the store file at `path`. The directory must exist.
    static Status open(const std::string& path, const EnvOptions& options, std::unique_ptr<Env>& out);
    ~Env();
    Env(const Env&) = delete;
    Env& operator=(const Env&) = delete;

    // Begins a transaction. When another process has grown the map since this one mapped it
    // (MDB_MAP_RESIZED), adopts the new size and retries. One thread holds at most one transaction
    // at a time (adopting a new size waits for every open transaction of this process to end).
    Status begin(bool read_only, Txn& out);
    // Opens (with MDB_CREATE unless read-only) a named database. Call once, at open time; the
    // handle stays valid for the environment's life.
    Status open_db(const char* name, unsigned flags, MDB_dbi& out);

    Status info(EnvInfo& out) const;
    const std::string& path() const { return path_; }
    bool read_only() const { return options_.read_only; }
    MDB_env* raw() const { return env_; }

  private:
    Env(MDB_env* env, std::string path, EnvOptions options)
        : env_(env), path_(std::move(path)), options_(options) {}
    MDB_env* env_;
    std::string path_;
    EnvOptions options_;
    // mdb_env_set_mapsize() needs every transaction of this process ended: transactions hold this
    // shared, adopting a grown map takes it exclusively.
    mutable std::shared_mutex resize_mutex_;
};

// Keys and values as bytes.
inline MDB_val to_val(std::string_view s) {
    return MDB_val{s.size(), const_cast<char*>(s.data())};
}
inline std::string_view from_val(const MDB_val& v) {
    return {static_cast<const char*>(v.mv_data), v.mv_size};
}

}  // namespace vigil::state
