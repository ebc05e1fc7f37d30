#pragma once
// The Bayes store in one LMDB file (default /var/lib/vigil/bayes.lmdb, next to its -lock file).
//
// The daemon classifies with read transactions while `vigil learn` writes from another process:
// LMDB gives every new read transaction the latest committed state, so a learn is seen by the
// running daemon at its next message, without a restart or a reload. Readers never wait for the
// writer; writers (the command line, autolearn) take turns.
//
// Layout (three named databases):
//   tokens    8-byte token hash (native integer key) -> spam u32, ham u32, last-learned day u32 (LE)
//   messages  16-byte message id -> label u8, day u32
//   meta      "format" -> store format; "tokenizer" -> Tokenizer::id(); "totals" -> spam u64, ham u64
// A store learned with another tokenizer id is refused (its tokens would mean nothing).
//
// Full: the map size bounds the file. A learn that does not fit fails with StoreStatus::full and
// changes nothing; `vigil learn --expire` removes rare old tokens (and, past max_tokens, the least
// recently learned) to make room, SpamAssassin's bayes_expiry in one command.
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "state/bayes/store.hpp"
#include "state/lmdb.hpp"

namespace vigil::state::bayes {

inline constexpr std::string_view store_format = "vigil-bayes-store-1";

struct LmdbStoreOptions {
    std::string path;
    std::size_t map_size = std::size_t{512} << 20;  // ~4 million tokens (docs/content-bayes.md)
    unsigned max_readers = 512;
    mode_t mode = 0600;
    bool read_only = false;
    bool durable = true;
    // Recorded in a new store, checked against an existing one.
    std::string tokenizer_id;
};

struct ExpirePolicy {
    // Tokens seen in a single message and not learned again for this many days go first.
    std::uint32_t rare_age_days = 30;
    // Then, while more tokens than this remain, the least recently learned (the rarest first within
    // a day) go until 75 % of it
    // is left (SpamAssassin's bayes_expiry_max_db_size is 150,000; a site store is bigger).
    std::uint64_t max_tokens = 2'000'000;
};

struct ExpireResult {
    std::uint64_t before = 0;
    std::uint64_t removed_rare = 0;
    std::uint64_t removed_old = 0;
    std::uint64_t after = 0;
};

struct LmdbStoreStats {
    Totals totals;
    std::uint64_t tokens = 0;
    std::uint64_t messages = 0;
    std::string tokenizer_id;
    EnvInfo env;
};

class LmdbStore final : public Store {
  public:
    // Opens or creates the store. Errors: Code::permission / missing (the file or directory),
    // Code::incompatible (another format or tokenizer), Code::corrupt, ...
    static Status open(const LmdbStoreOptions& options, std::unique_ptr<LmdbStore>& out);

    StoreResult read(std::span<const std::uint64_t> tokens, std::span<TokenCounts> counts,
                     Totals& totals) override;
    StoreResult update(std::span<const Update> updates, std::span<Label> previous,
                       std::uint32_t day) override;
    StoreResult seen(const MessageId& id, Label& label) override;

    Status expire(const ExpirePolicy& policy, std::uint32_t today, ExpireResult& result);
    Status stats(LmdbStoreStats& out);
    const std::string& path() const { return env_->path(); }

  private:
    explicit LmdbStore(std::unique_ptr<Env> env) : env_(std::move(env)) {}
    std::unique_ptr<Env> env_;
    MDB_dbi tokens_ = 0, messages_ = 0, meta_ = 0;
};

// A Status as the Bayes store's result value.
StoreResult to_store_result(const Status& s);

}  // namespace vigil::state::bayes
