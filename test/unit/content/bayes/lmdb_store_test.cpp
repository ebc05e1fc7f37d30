// The LMDB wrapper (lib/state/lmdb) and the Bayes store on it, in a temporary directory; the
// two-process cases fork a writer while this process holds the store open.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "bayes_test_support.hpp"
#include "content/bayes/bayes.hpp"
#include "fakes.hpp"
#include "state/bayes/lmdb_store.hpp"
#include "state/lmdb.hpp"

using namespace vigil;
using namespace vigil::content::bayes;
using vigil::test::FakeClock;
using vigil::test::bayes::message;
using vigil::test::bayes::TempDir;

namespace {

std::shared_ptr<const Tokenizer> tokenizer() {
    static auto t = std::make_shared<const Tokenizer>();
    return t;
}

std::unique_ptr<state::bayes::LmdbStore> open_store(const std::string& path, std::size_t map_size = 8 << 20,
                                                    bool read_only = false) {
    state::bayes::LmdbStoreOptions o;
    o.path = path;
    o.map_size = map_size;
    o.durable = false;
    o.read_only = read_only;
    o.tokenizer_id = tokenizer()->id();
    std::unique_ptr<state::bayes::LmdbStore> s;
    auto st = state::bayes::LmdbStore::open(o, s);
    INFO(st.message());
    REQUIRE(st.ok());
    return s;
}

mime::ParsedMessage msg(int i, const std::string& words = "cheap pills offer unsubscribe") {
    return message(
        {{"Message-ID", "<" + std::to_string(i) + "@x>"}, {"Subject", "hello " + std::to_string(i)}},
        words + " unique" + std::to_string(i));
}

TokenCounts counts_of(Store& s, std::uint64_t token, Totals* totals = nullptr) {
    std::vector<std::uint64_t> t{token};
    std::vector<TokenCounts> c(1);
    Totals tt;
    REQUIRE(s.read(t, c, tt).ok());
    if (totals) *totals = tt;
    return c[0];
}

// Runs fn in a child process (which must not touch this process's LMDB handles) and returns its
// exit status.
template <typename Fn>
int in_child(Fn fn) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int rc = 1;
        try {
            rc = fn();
        } catch (...) {
            rc = 3;
        }
        _exit(rc);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
}

}  // namespace

TEST_CASE("LMDB wrapper: values, distinct not-found, abort and commit", "[bayes][state]") {
    TempDir dir;
    std::unique_ptr<state::Env> env;
    state::EnvOptions o;
    o.map_size = 1 << 20;
    o.durable = false;
    REQUIRE(state::Env::open(dir.file("t.lmdb"), o, env).ok());
    MDB_dbi db;
    REQUIRE(env->open_db("kv", 0, db).ok());
    {
        state::Txn w;
        REQUIRE(env->begin(false, w).ok());
        REQUIRE(w.put(db, "a", "1").ok());
        REQUIRE(w.commit().ok());
    }
    {
        state::Txn w;  // aborted by its destructor
        REQUIRE(env->begin(false, w).ok());
        REQUIRE(w.put(db, "b", "2").ok());
    }
    state::Txn r;
    REQUIRE(env->begin(true, r).ok());
    std::string_view v;
    REQUIRE(r.get(db, "a", v).ok());
    CHECK(v == "1");
    auto st = r.get(db, "b", v);
    CHECK(st.code == state::Code::not_found);
    CHECK_FALSE(st.ok());
    r.abort();
    // Writes outside a write transaction are refused as values.
    CHECK(r.put(db, "c", "3").code == state::Code::invalid);
    // Keys longer than LMDB's limit are an error value, not a crash.
    state::Txn w;
    REQUIRE(env->begin(false, w).ok());
    CHECK(w.put(db, std::string(1000, 'k'), "x").code == state::Code::invalid);
    // The files are private to the owner.
    struct stat sb {};
    REQUIRE(stat(dir.file("t.lmdb").c_str(), &sb) == 0);
    CHECK((sb.st_mode & 0777) == 0600);
    REQUIRE(stat(dir.file("t.lmdb-lock").c_str(), &sb) == 0);
    CHECK((sb.st_mode & 0777) == 0600);
}

TEST_CASE("LMDB wrapper: a missing directory is an error value", "[bayes][state]") {
    TempDir dir;
    std::unique_ptr<state::Env> env;
    auto st = state::Env::open(dir.file("no/such/dir/t.lmdb"), {}, env);
    CHECK(st.code == state::Code::missing);
    CHECK(st.message().find("no/such/dir") != std::string::npos);
    state::EnvOptions ro;
    ro.read_only = true;
    CHECK(state::Env::open(dir.file("absent.lmdb"), ro, env).code == state::Code::missing);
}

TEST_CASE("LMDB wrapper: a reader's snapshot stays; the next one sees another process's commit",
          "[bayes][state]") {
    TempDir dir;
    std::unique_ptr<state::Env> env;
    state::EnvOptions o;
    o.map_size = 1 << 20;
    REQUIRE(state::Env::open(dir.file("t.lmdb"), o, env).ok());
    MDB_dbi db;
    REQUIRE(env->open_db("kv", 0, db).ok());
    state::Txn before;
    REQUIRE(env->begin(true, before).ok());
    int rc = in_child([&] {
        std::unique_ptr<state::Env> e;
        state::EnvOptions big;
        big.map_size = 16 << 20;  // grows the map: the parent must adopt it
        if (!state::Env::open(dir.file("t.lmdb"), big, e).ok()) return 10;
        MDB_dbi d;
        if (!e->open_db("kv", 0, d).ok()) return 11;
        state::Txn w;
        if (!e->begin(false, w).ok()) return 12;
        // More than the parent's 1 MiB map.
        for (int i = 0; i < 3000; ++i)
            if (!w.put(d, "key" + std::to_string(i), std::string(1000, 'v')).ok()) return 13;
        if (!w.put(d, "k", "from child").ok()) return 14;
        return w.commit().ok() ? 0 : 15;
    });
    REQUIRE(rc == 0);
    std::string_view v;
    CHECK(before.get(db, "k", v).code == state::Code::not_found);  // its snapshot predates the write
    before.abort();
    state::Txn after;
    auto st = env->begin(true, after);
    INFO(st.message());
    REQUIRE(st.ok());
    REQUIRE(after.get(db, "k", v).ok());
    CHECK(v == "from child");
    REQUIRE(after.get(db, "key2999", v).ok());
    CHECK(v.size() == 1000);
}

TEST_CASE("Bayes LMDB store: learn, relearn, forget, and a reopen keeps it", "[bayes]") {
    TempDir dir;
    FakeClock clock;
    auto path = dir.file("bayes.lmdb");
    auto m = msg(1);
    auto first = tokenizer()->tokenize(m).tokens.front().hash;
    {
        auto store = open_store(path);
        Filter f(tokenizer(), *store, clock, {});
        CHECK(f.learn(m, Label::spam) == LearnOutcome::learned);
        CHECK(f.learn(m, Label::spam) == LearnOutcome::already_learned);
        Totals t;
        CHECK(counts_of(*store, first, &t).spam == 1);
        CHECK(t.spam == 1);
        CHECK(f.learn(m, Label::ham) == LearnOutcome::relearned);
        CHECK(counts_of(*store, first, &t).ham == 1);
        CHECK(counts_of(*store, first).spam == 0);
        CHECK(t.spam == 0);
        CHECK(t.ham == 1);
    }
    {
        auto store = open_store(path);  // a restart
        Label seen;
        REQUIRE(store->seen(message_id(m), seen).ok());
        CHECK(seen == Label::ham);
        CHECK(counts_of(*store, first).ham == 1);
        Filter f(tokenizer(), *store, clock, {});
        CHECK(f.learn(m, Label::none) == LearnOutcome::forgotten);
        Totals t;
        CHECK(counts_of(*store, first, &t).ham == 0);
        CHECK(t.ham == 0);
        state::bayes::LmdbStoreStats s;
        REQUIRE(store->stats(s).ok());
        CHECK(s.tokens == 0);
        CHECK(s.messages == 0);
        CHECK(s.tokenizer_id == tokenizer()->id());
    }
}

TEST_CASE("Bayes LMDB store: a store from another tokenizer is refused", "[bayes]") {
    TempDir dir;
    auto path = dir.file("bayes.lmdb");
    open_store(path);
    state::bayes::LmdbStoreOptions o;
    o.path = path;
    o.tokenizer_id = "vigil-bayes-tok0:something-else";
    std::unique_ptr<state::bayes::LmdbStore> s;
    auto st = state::bayes::LmdbStore::open(o, s);
    CHECK(st.code == state::Code::incompatible);
    CHECK(st.message().find("learn again") != std::string::npos);
    CHECK(state::bayes::to_store_result(st).status == StoreStatus::corrupt);
    // A read-only open of a file that does not exist yet.
    state::bayes::LmdbStoreOptions ro;
    ro.path = dir.file("none.lmdb");
    ro.read_only = true;
    CHECK(state::bayes::LmdbStore::open(ro, s).code == state::Code::missing);
}

TEST_CASE("Bayes LMDB store: a full store is an error value and changes nothing", "[bayes]") {
    TempDir dir;
    FakeClock clock;
    auto path = dir.file("bayes.lmdb");
    auto store = open_store(path, 256 << 10);  // 256 KiB
    Filter f(tokenizer(), *store, clock, {});
    std::string many;
    for (int i = 0; i < 1500; ++i) many += "w" + std::to_string(i) + "x ";
    StoreResult err;
    LearnOutcome o = LearnOutcome::learned;
    int learned = 0;
    for (int i = 0; i < 50 && o != LearnOutcome::store_error; ++i) {
        o = f.learn(msg(i, many + " batch" + std::to_string(i)), Label::spam, &err);
        if (o == LearnOutcome::learned) ++learned;
    }
    REQUIRE(o == LearnOutcome::store_error);
    REQUIRE(learned >= 1);
    CHECK(err.status == StoreStatus::full);
    CHECK(err.detail.find("--expire") != std::string::npos);
    // The failed learn left no trace: the totals count only the learns that succeeded.
    Totals t;
    counts_of(*store, 1, &t);
    CHECK(t.spam == static_cast<std::uint64_t>(learned));
    // Reads still work on a full store.
    auto c = f.classify(msg(1000));
    CHECK(c.status != Classification::Status::store_error);
    // Expiry makes room (every token is from today: the least recently learned rule applies).
    state::bayes::ExpireResult r;
    auto st = store->expire(state::bayes::ExpirePolicy{.rare_age_days = 30, .max_tokens = 1000},
                            1'700'000'000 / 86400, r);
    INFO(st.message());
    REQUIRE(st.ok());
    CHECK(r.removed_old > 0);
    CHECK(r.after == 750);
    CHECK(f.learn(msg(2000), Label::ham, &err) == LearnOutcome::learned);
}

TEST_CASE("Bayes LMDB store: expiry removes rare old tokens first", "[bayes]") {
    TempDir dir;
    FakeClock clock;
    auto store = open_store(dir.file("bayes.lmdb"));
    Filter f(tokenizer(), *store, clock, {});
    // Day 0: two messages sharing "common"; each has a unique word.
    REQUIRE(f.learn(msg(1, "common words here"), Label::spam) == LearnOutcome::learned);
    REQUIRE(f.learn(msg(2, "common words here"), Label::spam) == LearnOutcome::learned);
    auto common = siphash13(default_hash_key, "common");
    auto unique1 = siphash13(default_hash_key, "unique1");
    std::uint32_t today = 1'700'000'000 / 86400;
    state::bayes::ExpireResult r;
    REQUIRE(store->expire({}, today + 10, r).ok());  // too young
    CHECK(r.removed_rare == 0);
    REQUIRE(store->expire({}, today + 31, r).ok());
    CHECK(r.removed_rare > 0);
    CHECK(r.removed_old == 0);
    CHECK(counts_of(*store, unique1).spam == 0);
    CHECK(counts_of(*store, common).spam == 2);
    CHECK(r.after == r.before - r.removed_rare);
}

TEST_CASE("Bayes LMDB store: a learn in another process is seen by the open store", "[bayes]") {
    TempDir dir;
    FakeClock clock;
    auto path = dir.file("bayes.lmdb");
    auto daemon = open_store(path, 1 << 20);  // as the daemon: opened before, kept open
    Filter reader(tokenizer(), *daemon, clock, {});
    auto m = msg(42);
    auto token = tokenizer()->tokenize(m).tokens.front().hash;
    CHECK(counts_of(*daemon, token).spam == 0);
    int rc = in_child([&] {
        // As `vigil learn`: its own open, a bigger map, more than the daemon's map holds.
        state::bayes::LmdbStoreOptions o;
        o.path = path;
        o.map_size = 32 << 20;
        o.tokenizer_id = tokenizer()->id();
        std::unique_ptr<state::bayes::LmdbStore> s;
        if (!state::bayes::LmdbStore::open(o, s).ok()) return 10;
        Filter w(tokenizer(), *s, clock, {});
        if (w.learn(m, Label::spam) != LearnOutcome::learned) return 11;
        // 10 x 4,000 distinct words: several MiB, more than the daemon's 1 MiB map.
        for (int i = 0; i < 10; ++i) {
            std::string big;
            for (int k = 0; k < 4000; ++k)
                big += "filler" + std::to_string(i) + "x" + std::to_string(k) + " ";
            if (w.learn(msg(100 + i, big), Label::ham) != LearnOutcome::learned) return 12;
        }
        return 0;
    });
    REQUIRE(rc == 0);
    Totals t;
    CHECK(counts_of(*daemon, token, &t).spam == 1);
    CHECK(t.spam == 1);
    CHECK(t.ham == 10);
    Label seen;
    REQUIRE(daemon->seen(message_id(m), seen).ok());
    CHECK(seen == Label::spam);
}
