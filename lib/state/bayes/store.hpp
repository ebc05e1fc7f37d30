#pragma once
// Where the Bayes filter keeps what it has learned: per-token spam and ham counts, the number of
// messages learned as each, and which messages were learned as what.
//
// Implementations: MemoryStore (memory_store.hpp), LmdbStore (lmdb_store.hpp); the classifier that
// uses them is content/bayes. The interface is deliberately narrow so that a shared backend (Redis, for
// several MX hosts) is a second implementation of the same four calls: a batched read of token counts with
// the totals in one consistent view, a batched atomic update for learn/relearn/forget, and a look-up of one
// message id. Maintenance (expiry, statistics) belongs to each backend.
//
// Failures are values (StoreStatus), never exceptions: a store that cannot answer makes the filter
// give no opinion for that message, never crash or stall mail.
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::state::bayes {

enum class Label : std::uint8_t { none = 0, spam = 1, ham = 2 };

struct TokenCounts {
    std::uint32_t spam = 0;  // spam messages learned that had the token
    std::uint32_t ham = 0;
};

// Messages learned as each class (not affected by token expiry).
struct Totals {
    std::uint64_t spam = 0;
    std::uint64_t ham = 0;
};

// A message's identity: the first 16 bytes of a SHA-256 digest (content::bayes::message_id()).
struct MessageId {
    std::array<std::uint8_t, 16> bytes{};
    bool operator==(const MessageId&) const = default;
    std::string hex() const;
};

enum class StoreStatus {
    ok,
    full,         // no room for the update (LMDB map size reached); nothing was changed
    unavailable,  // cannot be reached or opened (Redis down, file permissions)
    corrupt,      // the data is damaged or from an incompatible tokenizer/version
    error,        // anything else (I/O)
};
std::string_view to_string(StoreStatus s);

struct StoreResult {
    StoreStatus status = StoreStatus::ok;
    std::string detail;  // printable, for logs and the command line
    bool ok() const { return status == StoreStatus::ok; }
};

// One message's change. The store applies it atomically against the message's current record:
//   current == to        nothing changes (learning the same message twice is a no-op);
//   current != none      the message's tokens are taken off the current class (relearn, forget);
//   to != none           and added to `to`, and the record now says `to`;
//   to == none           the record is removed (forget).
// With only_if_unseen, a message that already has a record is left alone (autolearn never
// overrides what a person taught). Counts never go below zero (expiry may have removed a token).
struct Update {
    MessageId id;
    Label to = Label::none;
    std::vector<std::uint64_t> tokens;  // distinct
    bool only_if_unseen = false;
};

class Store {
  public:
    virtual ~Store() = default;

    // counts[i] for tokens[i] (zero when unknown), and the totals, from one consistent snapshot.
    virtual StoreResult read(std::span<const std::uint64_t> tokens, std::span<TokenCounts> counts,
                             Totals& totals) = 0;

    // Applies the updates in order, all or none (one transaction). previous[i] receives the class
    // update i found (so the caller can tell learned, relearned, already learned, forgotten).
    // `day` (days since 1970) marks the tokens touched, for expiry.
    virtual StoreResult update(std::span<const Update> updates, std::span<Label> previous,
                               std::uint32_t day) = 0;

    // The class a message was learned as (Label::none when never, or forgotten).
    virtual StoreResult seen(const MessageId& id, Label& label) = 0;
};

}  // namespace vigil::state::bayes
