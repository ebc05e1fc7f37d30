#include "state/lmdb.hpp"

#include <cerrno>
#include <cstring>
#include <mutex>

namespace vigil::state {

std::string_view to_string(Code c) {
    switch (c) {
        case Code::ok:
            return "ok";
        case Code::not_found:
            return "not found";
        case Code::map_full:
            return "store full";
        case Code::readers_full:
            return "too many readers";
        case Code::txn_full:
            return "transaction too large";
        case Code::corrupt:
            return "corrupt";
        case Code::version_mismatch:
            return "LMDB version mismatch";
        case Code::incompatible:
            return "incompatible format";
        case Code::permission:
            return "permission denied";
        case Code::missing:
            return "missing";
        case Code::invalid:
            return "invalid argument";
        case Code::io:
            return "I/O error";
    }
    return "unknown";
}

std::string Status::message() const {
    if (ok()) return "ok";
    std::string m = context.empty() ? std::string(to_string(code)) : context;
    if (rc != 0) {
        m += ": ";
        m += mdb_strerror(rc);  // covers LMDB's own codes and errno values
    } else if (!context.empty()) {
        m += ": ";
        m += to_string(code);
    }
    return m;
}

Status status_from(int rc, std::string_view context) {
    Status s;
    s.rc = rc;
    s.context = std::string(context);
    switch (rc) {
        case MDB_SUCCESS:
            s.code = Code::ok;
            s.rc = 0;
            s.context.clear();
            break;
        case MDB_NOTFOUND:
            s.code = Code::not_found;
            break;
        case MDB_MAP_FULL:
            s.code = Code::map_full;
            break;
        case MDB_READERS_FULL:
            s.code = Code::readers_full;
            break;
        case MDB_TXN_FULL:
        case MDB_CURSOR_FULL:
        case MDB_PAGE_FULL:
            s.code = Code::txn_full;
            break;
        case MDB_CORRUPTED:
        case MDB_PAGE_NOTFOUND:
        case MDB_INVALID:
        case MDB_BAD_TXN:
        case MDB_BAD_DBI:
        case MDB_INCOMPATIBLE:
            s.code = Code::corrupt;
            break;
        case MDB_VERSION_MISMATCH:
            s.code = Code::version_mismatch;
            break;
        case EACCES:
        case EPERM:
        case EROFS:
            s.code = Code::permission;
            break;
        case ENOENT:
        case ENOTDIR:
            s.code = Code::missing;
            break;
        case EINVAL:
        case MDB_BAD_VALSIZE:
        case MDB_DBS_FULL:
            s.code = Code::invalid;
            break;
        default:
            s.code = Code::io;
            break;
    }
    return s;
}

// ---- Txn

Txn::Txn(Txn&& o) noexcept
    : txn_(o.txn_), resize_guard_(std::move(o.resize_guard_)), path_(std::move(o.path_)) {
    o.txn_ = nullptr;
}

Txn& Txn::operator=(Txn&& o) noexcept {
    if (this != &o) {
        abort();
        txn_ = o.txn_;
        o.txn_ = nullptr;
        resize_guard_ = std::move(o.resize_guard_);
        path_ = std::move(o.path_);
    }
    return *this;
}

Txn::~Txn() {
    abort();
}

void Txn::abort() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
    txn_ = nullptr;
    if (resize_guard_.owns_lock()) resize_guard_.unlock();
}

Status Txn::get(MDB_dbi dbi, std::string_view key, std::string_view& value) const {
    if (txn_ == nullptr) return status_from(EINVAL, "get outside a transaction");
    MDB_val k = to_val(key), v{};
    int rc = mdb_get(txn_, dbi, &k, &v);
    if (rc != MDB_SUCCESS) return status_from(rc, "read " + path_);
    value = from_val(v);
    return {};
}

Status Txn::put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags) {
    if (txn_ == nullptr) return status_from(EINVAL, "put outside a transaction");
    MDB_val k = to_val(key), v = to_val(value);
    int rc = mdb_put(txn_, dbi, &k, &v, flags);
    if (rc != MDB_SUCCESS) return status_from(rc, "write " + path_);
    return {};
}

Status Txn::del(MDB_dbi dbi, std::string_view key) {
    if (txn_ == nullptr) return status_from(EINVAL, "delete outside a transaction");
    MDB_val k = to_val(key);
    int rc = mdb_del(txn_, dbi, &k, nullptr);
    if (rc != MDB_SUCCESS) return status_from(rc, "delete in " + path_);
    return {};
}

Status Txn::commit() {
    if (txn_ == nullptr) return status_from(EINVAL, "commit outside a transaction");
    int rc = mdb_txn_commit(txn_);  // frees the transaction whatever the outcome
    txn_ = nullptr;
    if (resize_guard_.owns_lock()) resize_guard_.unlock();
    if (rc != MDB_SUCCESS) return status_from(rc, "commit to " + path_);
    return {};
}

// ---- Cursor

Cursor::~Cursor() {
    close();
}

void Cursor::close() {
    if (cur_ != nullptr) mdb_cursor_close(cur_);
    cur_ = nullptr;
}

Status Cursor::open(const Txn& txn, MDB_dbi dbi, Cursor& out) {
    if (out.cur_ != nullptr) mdb_cursor_close(out.cur_);
    out.cur_ = nullptr;
    int rc = mdb_cursor_open(txn.raw(), dbi, &out.cur_);
    if (rc != MDB_SUCCESS) return status_from(rc, "open cursor");
    return {};
}

Status Cursor::get(std::string_view& key, std::string_view& value, MDB_cursor_op op) {
    MDB_val k = to_val(key), v = to_val(value);
    int rc = mdb_cursor_get(cur_, &k, &v, op);
    if (rc != MDB_SUCCESS) return status_from(rc, "cursor");
    key = from_val(k);
    value = from_val(v);
    return {};
}

Status Cursor::del() {
    int rc = mdb_cursor_del(cur_, 0);
    if (rc != MDB_SUCCESS) return status_from(rc, "cursor delete");
    return {};
}

// ---- Env

Env::~Env() {
    if (env_ != nullptr) mdb_env_close(env_);
}

Status Env::open(const std::string& path, const EnvOptions& options, std::unique_ptr<Env>& out) {
    MDB_env* env = nullptr;
    int rc = mdb_env_create(&env);
    if (rc != MDB_SUCCESS) return status_from(rc, "create LMDB environment");
    auto fail = [&](int code, const char* what) {
        mdb_env_close(env);
        return status_from(code, std::string(what) + " " + path);
    };
    if ((rc = mdb_env_set_maxdbs(env, options.max_dbs)) != MDB_SUCCESS) return fail(rc, "set max dbs for");
    if ((rc = mdb_env_set_maxreaders(env, options.max_readers)) != MDB_SUCCESS)
        return fail(rc, "set max readers for");
    if ((rc = mdb_env_set_mapsize(env, options.map_size)) != MDB_SUCCESS) return fail(rc, "set map size for");
    // NOSUBDIR: one named file (plus its -lock file), not a directory. NOTLS: read transactions may
    // move between threads and a thread may hold more than one. NORDAHEAD: tokens are looked up at
    // random, read-ahead only evicts useful pages.
    unsigned flags = MDB_NOSUBDIR | MDB_NOTLS | MDB_NORDAHEAD;
    if (options.read_only) flags |= MDB_RDONLY;
    if (!options.durable) flags |= MDB_NOSYNC;
    rc = mdb_env_open(env, path.c_str(), flags, options.mode);
    if (rc != MDB_SUCCESS) return fail(rc, "open");
    // Reader slots left by a process that died inside a read transaction would pin old pages (the
    // file only grows) until cleared.
    int dead = 0;
    if (!options.read_only) mdb_reader_check(env, &dead);
    out.reset(new Env(env, path, options));
    return {};
}

Status Env::begin(bool read_only, Txn& out) {
    out.abort();
    if (!read_only && options_.read_only) return status_from(EACCES, "write to read-only " + path_);
    for (int attempt = 0; attempt < 2; ++attempt) {
        std::shared_lock<std::shared_mutex> guard(resize_mutex_);
        MDB_txn* txn = nullptr;
        int rc = mdb_txn_begin(env_, nullptr, read_only ? MDB_RDONLY : 0, &txn);
        if (rc == MDB_SUCCESS) {
            out.txn_ = txn;
            out.resize_guard_ = std::move(guard);
            out.path_ = path_;
            return {};
        }
        if (rc != MDB_MAP_RESIZED || attempt > 0) return status_from(rc, "begin transaction on " + path_);
        // Another process grew the map: adopt its size once no transaction of ours is open.
        guard.unlock();
        std::unique_lock<std::shared_mutex> exclusive(resize_mutex_);
        rc = mdb_env_set_mapsize(env_, 0);
        if (rc != MDB_SUCCESS) return status_from(rc, "adopt the new map size of " + path_);
    }
    return status_from(MDB_MAP_RESIZED, "begin transaction on " + path_);
}

Status Env::open_db(const char* name, unsigned flags, MDB_dbi& out) {
    Txn txn;
    auto st = begin(options_.read_only, txn);
    if (!st.ok()) return st;
    if (!options_.read_only) flags |= MDB_CREATE;
    int rc = mdb_dbi_open(txn.raw(), name, flags, &out);
    if (rc != MDB_SUCCESS) return status_from(rc, std::string("open database '") + name + "' in " + path_);
    return txn.commit();
}

Status Env::info(EnvInfo& out) const {
    MDB_envinfo ei{};
    MDB_stat st{};
    int rc = mdb_env_info(env_, &ei);
    if (rc == MDB_SUCCESS) rc = mdb_env_stat(env_, &st);
    if (rc != MDB_SUCCESS) return status_from(rc, "stat " + path_);
    out.map_size = ei.me_mapsize;
    out.page_size = st.ms_psize;
    out.used_bytes = (ei.me_last_pgno + 1) * static_cast<std::size_t>(st.ms_psize);
    out.max_readers = ei.me_maxreaders;
    out.readers_used = ei.me_numreaders;
    return {};
}

}  // namespace vigil::state
