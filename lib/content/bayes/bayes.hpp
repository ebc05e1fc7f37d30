#pragma once
// The Bayes filter as the engine and `vigil learn` use it: tokenizer + store + classifier.
//
//   auto tok = std::make_shared<const bayes::Tokenizer>();
//   bayes::Filter filter(tok, store, clock, options);
//   auto c = filter.classify(parsed);            // probability, or why there is none
//   for (auto s : bayes::symbols_for(c)) ...     // BAYES_00 .. BAYES_99, BAYES_999
//   filter.learn(parsed, bayes::Label::spam);    // or ham; Label::none forgets
//
// A Filter is safe to use from many threads at once if its Store is (both stores here are).
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "content/bayes/classifier.hpp"
#include "content/bayes/store.hpp"
#include "content/bayes/tokenizer.hpp"
#include "core/clock.hpp"
#include "core/verdict.hpp"
#include "mime/parsed_message.hpp"

namespace vigil::content::bayes {

struct FilterOptions {
    ClassifierOptions classifier;
    // No opinion until this many messages of each class were learned (SpamAssassin's
    // bayes_min_spam_num / bayes_min_ham_num): a young store's probabilities are noise.
    std::uint64_t min_spam_learned = 200;
    std::uint64_t min_ham_learned = 200;
};

struct Classification {
    enum class Status {
        scored,           // probability is meaningful
        too_few_learned,  // below min_spam_learned / min_ham_learned: no symbol
        store_error,      // the store could not be read: no symbol, `store` says why
    };
    Status status = Status::too_few_learned;
    double probability = 0.5;
    std::size_t tokens = 0;  // distinct tokens of the message
    std::size_t used = 0;    // tokens that decided
    bool truncated = false;  // the message had more tokens than limits::max_tokens_per_message
    Totals learned;
    StoreResult store;
    bool scored() const { return status == Status::scored; }
};

enum class LearnOutcome {
    learned,          // new message, counted as the class asked for
    relearned,        // was learned as the other class, moved
    already_learned,  // was already learned as this class: nothing changed
    forgotten,        // was learned, now removed
    not_learned,      // forget of a message never learned: nothing changed
    skipped,          // autolearn of a message that already has a record: left as it was
    store_error,
};
std::string_view to_string(LearnOutcome o);

// Autolearn: learn from the verdict of the other checks (SpamAssassin's bayes_auto_learn). The
// score given must leave out Bayes's own symbols, or the filter would confirm itself.
struct AutolearnPolicy {
    bool enabled = false;
    double spam_at_or_above = 12.0;  // SpamAssassin: bayes_auto_learn_threshold_spam
    double ham_at_or_below = 0.1;    // SpamAssassin: bayes_auto_learn_threshold_nonspam
};
// The class to learn a message as, or Label::none to leave it.
Label autolearn_label(double score_without_bayes, const AutolearnPolicy& policy);

// The message's identity for the "already learned" records: SHA-256 over the Message-ID and the
// parts (types, decoded text, file names, sizes), not over header fields that transport adds, so a
// copy saved from a mailbox is the same message as the one the daemon saw.
MessageId message_id(const mime::ParsedMessage& msg);

class Filter {
  public:
    Filter(std::shared_ptr<const Tokenizer> tokenizer, Store& store, const core::Clock& clock,
           FilterOptions options = {});

    Classification classify(const mime::ParsedMessage& msg) const;
    // The same from tokens already made (the evaluation tokenizes each message once).
    Classification classify_tokens(const TokenList& tokens) const;

    // Learn as spam or ham, or forget (Label::none).
    LearnOutcome learn(const mime::ParsedMessage& msg, Label to, StoreResult* error = nullptr);
    // Several messages in one store transaction (the command line learns directories this way).
    // On a store error no message was changed, every outcome is store_error and `error` says why.
    std::vector<LearnOutcome> learn_batch(std::span<const mime::ParsedMessage* const> msgs, Label to,
                                          StoreResult& error);
    // Learns tokens directly (the evaluation); id identifies the message.
    LearnOutcome learn_tokens(const MessageId& id, const TokenList& tokens, Label to,
                              StoreResult* error = nullptr);

    // Autolearn from a verdict; LearnOutcome::skipped when the policy says no or the message is
    // already known.
    LearnOutcome autolearn(const mime::ParsedMessage& msg, double score_without_bayes,
                           const AutolearnPolicy& policy, StoreResult* error = nullptr);

    const Tokenizer& tokenizer() const { return *tokenizer_; }
    const FilterOptions& options() const { return options_; }

  private:
    std::uint32_t today() const;
    std::vector<LearnOutcome> apply(std::vector<Update>& updates, StoreResult& error);
    std::shared_ptr<const Tokenizer> tokenizer_;
    Store* store_;
    const core::Clock* clock_;
    FilterOptions options_;
};

// Probability bands, as SpamAssassin's BAYES_* rules: each scored message gets exactly one of
// BAYES_00 .. BAYES_99, and BAYES_999 on top of BAYES_99 from 0.999.
struct Band {
    std::string_view name;
    double low;   // inclusive
    double high;  // exclusive (BAYES_99 and BAYES_999 include 1.0)
    double default_weight;
    std::string_view description;
};
std::span<const Band> bands();
std::vector<core::SymbolDef> symbol_defs();
// The symbols for a classification: none unless scored.
std::vector<std::string_view> symbols_for(const Classification& c);
std::vector<std::string_view> symbols_for_probability(double p);

}  // namespace vigil::content::bayes
