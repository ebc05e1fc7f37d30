#include "state/bayes/lmdb_store.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

namespace vigil::state::bayes {

namespace {

void put_le32(char* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}
void put_le64(char* p, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}
std::uint32_t get_le32(const char* p) {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}
std::uint64_t get_le64(const char* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}

struct TokenRecord {
    std::uint32_t spam = 0, ham = 0, day = 0;
};
constexpr std::size_t token_record_size = 12;

bool decode(std::string_view v, TokenRecord& r) {
    if (v.size() != token_record_size) return false;
    r.spam = get_le32(v.data());
    r.ham = get_le32(v.data() + 4);
    r.day = get_le32(v.data() + 8);
    return true;
}

std::string_view key_of(const std::uint64_t& token) {
    // MDB_INTEGERKEY: the key is the native unsigned integer (size_t on 64-bit systems).
    static_assert(sizeof(std::uint64_t) == sizeof(std::size_t), "token keys need a 64-bit size_t");
    return {reinterpret_cast<const char*>(&token), sizeof token};
}

Status read_totals(const Txn& txn, MDB_dbi meta, Totals& t) {
    std::string_view v;
    auto st = txn.get(meta, "totals", v);
    if (st.code == Code::not_found) {
        t = {};
        return {};
    }
    if (!st.ok()) return st;
    if (v.size() != 16) return {Code::corrupt, 0, "totals record has the wrong size"};
    t.spam = get_le64(v.data());
    t.ham = get_le64(v.data() + 8);
    return {};
}

}  // namespace

StoreResult to_store_result(const Status& s) {
    StoreResult r;
    r.detail = s.ok() ? std::string() : s.message();
    switch (s.code) {
        case Code::ok:
            r.status = StoreStatus::ok;
            break;
        case Code::map_full:
        case Code::txn_full:
            r.status = StoreStatus::full;
            r.detail += " (run `vigil learn --expire`, or raise the store's map size)";
            break;
        case Code::permission:
        case Code::missing:
        case Code::readers_full:
            r.status = StoreStatus::unavailable;
            break;
        case Code::corrupt:
        case Code::version_mismatch:
        case Code::incompatible:
            r.status = StoreStatus::corrupt;
            break;
        default:
            r.status = StoreStatus::error;
            break;
    }
    return r;
}

Status LmdbStore::open(const LmdbStoreOptions& options, std::unique_ptr<LmdbStore>& out) {
    EnvOptions eo;
    eo.map_size = options.map_size;
    eo.max_dbs = 4;
    eo.max_readers = options.max_readers;
    eo.mode = options.mode;
    eo.read_only = options.read_only;
    eo.durable = options.durable;
    std::unique_ptr<Env> env;
    auto st = Env::open(options.path, eo, env);
    if (!st.ok()) return st;
    std::unique_ptr<LmdbStore> store(new LmdbStore(std::move(env)));
    auto& e = *store->env_;
    if (!(st = e.open_db("meta", 0, store->meta_)).ok()) return st;
    if (!(st = e.open_db("tokens", MDB_INTEGERKEY, store->tokens_)).ok()) return st;
    if (!(st = e.open_db("messages", 0, store->messages_)).ok()) return st;

    // The format and tokenizer records: written by the first writer, checked by everyone.
    Txn txn;
    if (!(st = e.begin(options.read_only, txn)).ok()) return st;
    std::string_view format, tokenizer;
    auto fs = txn.get(store->meta_, "format", format);
    auto ts = txn.get(store->meta_, "tokenizer", tokenizer);
    if (fs.code == Code::not_found) {
        if (options.read_only) return {Code::missing, 0, "no Bayes store in " + options.path + " yet"};
        if (!(st = txn.put(store->meta_, "format", store_format)).ok()) return st;
        if (!(st = txn.put(store->meta_, "tokenizer", options.tokenizer_id)).ok()) return st;
        if (!(st = txn.commit()).ok()) return st;
    } else if (!fs.ok()) {
        return fs;
    } else {
        if (format != store_format)
            return {Code::incompatible, 0,
                    options.path + " has store format '" + std::string(format) + "', this Vigil reads '" +
                        std::string(store_format) + "'"};
        if (!ts.ok() || tokenizer != options.tokenizer_id)
            return {Code::incompatible, 0,
                    options.path + " was learned with tokenizer '" + std::string(ts.ok() ? tokenizer : "?") +
                        "', this Vigil uses '" + options.tokenizer_id +
                        "': its tokens cannot be read; move it aside and learn again"};
    }
    out = std::move(store);
    return {};
}

StoreResult LmdbStore::read(std::span<const std::uint64_t> tokens, std::span<TokenCounts> counts,
                            Totals& totals) {
    if (counts.size() != tokens.size()) return {StoreStatus::error, "counts and tokens differ in size"};
    Txn txn;
    auto st = env_->begin(true, txn);
    if (!st.ok()) return to_store_result(st);
    if (!(st = read_totals(txn, meta_, totals)).ok()) return to_store_result(st);
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        std::string_view v;
        st = txn.get(tokens_, key_of(tokens[i]), v);
        TokenRecord r;
        if (st.code == Code::not_found) {
            counts[i] = {};
        } else if (!st.ok()) {
            return to_store_result(st);
        } else if (!decode(v, r)) {
            return to_store_result({Code::corrupt, 0, "token record has the wrong size in " + env_->path()});
        } else {
            counts[i] = {r.spam, r.ham};
        }
    }
    return {};
}

StoreResult LmdbStore::update(std::span<const Update> updates, std::span<Label> previous, std::uint32_t day) {
    if (previous.size() != updates.size()) return {StoreStatus::error, "previous and updates differ in size"};
    Txn txn;
    auto st = env_->begin(false, txn);
    if (!st.ok()) return to_store_result(st);
    Totals totals;
    if (!(st = read_totals(txn, meta_, totals)).ok()) return to_store_result(st);
    for (std::size_t i = 0; i < updates.size(); ++i) {
        const auto& u = updates[i];
        std::string_view id(reinterpret_cast<const char*>(u.id.bytes.data()), u.id.bytes.size());
        std::string_view rec;
        Label cur = Label::none;
        st = txn.get(messages_, id, rec);
        if (st.ok()) {
            if (rec.empty() || rec[0] < 1 || rec[0] > 2)
                return to_store_result({Code::corrupt, 0, "message record is damaged in " + env_->path()});
            cur = static_cast<Label>(rec[0]);
        } else if (st.code != Code::not_found) {
            return to_store_result(st);
        }
        previous[i] = cur;
        if (cur == u.to || (u.only_if_unseen && cur != Label::none)) continue;
        char buf[token_record_size];
        for (auto token : u.tokens) {
            std::string_view v;
            TokenRecord r;
            st = txn.get(tokens_, key_of(token), v);
            if (st.ok()) {
                if (!decode(v, r))
                    return to_store_result(
                        {Code::corrupt, 0, "token record has the wrong size in " + env_->path()});
            } else if (st.code != Code::not_found) {
                return to_store_result(st);
            }
            if (cur == Label::spam && r.spam > 0) --r.spam;
            if (cur == Label::ham && r.ham > 0) --r.ham;
            if (u.to == Label::spam) ++r.spam;
            if (u.to == Label::ham) ++r.ham;
            if (u.to != Label::none) r.day = day;
            if (r.spam == 0 && r.ham == 0) {
                st = txn.del(tokens_, key_of(token));
                if (!st.ok() && st.code != Code::not_found) return to_store_result(st);
                continue;
            }
            put_le32(buf, r.spam);
            put_le32(buf + 4, r.ham);
            put_le32(buf + 8, r.day);
            if (!(st = txn.put(tokens_, key_of(token), std::string_view(buf, sizeof buf))).ok())
                return to_store_result(st);
        }
        if (cur == Label::spam && totals.spam > 0) --totals.spam;
        if (cur == Label::ham && totals.ham > 0) --totals.ham;
        if (u.to == Label::spam) ++totals.spam;
        if (u.to == Label::ham) ++totals.ham;
        if (u.to == Label::none) {
            st = txn.del(messages_, id);
        } else {
            char m[5];
            m[0] = static_cast<char>(u.to);
            put_le32(m + 1, day);
            st = txn.put(messages_, id, std::string_view(m, sizeof m));
        }
        if (!st.ok()) return to_store_result(st);
    }
    char t[16];
    put_le64(t, totals.spam);
    put_le64(t + 8, totals.ham);
    if (!(st = txn.put(meta_, "totals", std::string_view(t, sizeof t))).ok()) return to_store_result(st);
    return to_store_result(txn.commit());
}

StoreResult LmdbStore::seen(const MessageId& id, Label& label) {
    Txn txn;
    auto st = env_->begin(true, txn);
    if (!st.ok()) return to_store_result(st);
    std::string_view rec;
    st = txn.get(messages_, std::string_view(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size()),
                 rec);
    label = Label::none;
    if (st.code == Code::not_found) return {};
    if (!st.ok()) return to_store_result(st);
    if (rec.empty() || rec[0] < 1 || rec[0] > 2)
        return to_store_result({Code::corrupt, 0, "message record is damaged in " + env_->path()});
    label = static_cast<Label>(rec[0]);
    return {};
}

Status LmdbStore::expire(const ExpirePolicy& policy, std::uint32_t today, ExpireResult& result) {
    result = {};
    Txn txn;
    auto st = env_->begin(false, txn);
    if (!st.ok()) return st;
    Cursor cur;
    if (!(st = Cursor::open(txn, tokens_, cur)).ok()) return st;
    // Pass 1: rare old tokens; meanwhile count what stays by (last-learned day, message count).
    using Bucket = std::pair<std::uint32_t, std::uint32_t>;
    auto bucket_of = [](const TokenRecord& r) {
        std::uint64_t n = static_cast<std::uint64_t>(r.spam) + r.ham;
        return Bucket{r.day, static_cast<std::uint32_t>(std::min<std::uint64_t>(n, 16))};
    };
    std::map<Bucket, std::uint64_t> buckets;
    std::string_view k, v;
    st = cur.get(k, v, MDB_FIRST);
    while (st.ok()) {
        ++result.before;
        TokenRecord r;
        if (!decode(v, r)) return {Code::corrupt, 0, "token record has the wrong size in " + env_->path()};
        bool rare = static_cast<std::uint64_t>(r.spam) + r.ham <= 1;
        bool old = r.day + static_cast<std::uint64_t>(policy.rare_age_days) < today;
        if (rare && old) {
            if (!(st = cur.del()).ok()) return st;
            ++result.removed_rare;
        } else {
            ++buckets[bucket_of(r)];
        }
        // After a delete, MDB_NEXT gives the entry that followed the deleted one.
        st = cur.get(k, v, MDB_NEXT);
    }
    if (st.code != Code::not_found) return st;
    std::uint64_t remaining = result.before - result.removed_rare;
    if (remaining > policy.max_tokens) {
        // Least recently learned first, the rarest first within a day, until 75 % of max_tokens
        // remain: every bucket before `cut` goes, and `partial` tokens of the bucket `cut` (token
        // hashes are random, so which ones is a fair sample).
        std::uint64_t to_remove = remaining - policy.max_tokens / 4 * 3;
        Bucket cut{};
        std::uint64_t partial = 0;
        for (const auto& [b, n] : buckets) {
            cut = b;
            if (n >= to_remove) {
                partial = to_remove;
                break;
            }
            to_remove -= n;
        }
        if (!(st = Cursor::open(txn, tokens_, cur)).ok()) return st;
        st = cur.get(k, v, MDB_FIRST);
        while (st.ok()) {
            TokenRecord r;
            if (!decode(v, r))
                return {Code::corrupt, 0, "token record has the wrong size in " + env_->path()};
            auto b = bucket_of(r);
            if (b < cut || (b == cut && partial > 0)) {
                if (b == cut) --partial;
                if (!(st = cur.del()).ok()) return st;
                ++result.removed_old;
            }
            st = cur.get(k, v, MDB_NEXT);
        }
        if (st.code != Code::not_found) return st;
    }
    result.after = remaining - result.removed_old;
    cur.close();  // before the commit, which would free it under us
    return txn.commit();
}

Status LmdbStore::stats(LmdbStoreStats& out) {
    Txn txn;
    auto st = env_->begin(true, txn);
    if (!st.ok()) return st;
    if (!(st = read_totals(txn, meta_, out.totals)).ok()) return st;
    MDB_stat ms{};
    int rc = mdb_stat(txn.raw(), tokens_, &ms);
    if (rc != MDB_SUCCESS) return status_from(rc, "stat tokens");
    out.tokens = ms.ms_entries;
    rc = mdb_stat(txn.raw(), messages_, &ms);
    if (rc != MDB_SUCCESS) return status_from(rc, "stat messages");
    out.messages = ms.ms_entries;
    std::string_view tid;
    if (txn.get(meta_, "tokenizer", tid).ok()) out.tokenizer_id = std::string(tid);
    return env_->info(out.env);
}

}  // namespace vigil::state::bayes
