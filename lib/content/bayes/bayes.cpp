#include "content/bayes/bayes.hpp"

#include <openssl/evp.h>
#include <strings.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <string>

namespace vigil::content::bayes {

std::string_view to_string(LearnOutcome o) {
    switch (o) {
        case LearnOutcome::learned:
            return "learned";
        case LearnOutcome::relearned:
            return "relearned";
        case LearnOutcome::already_learned:
            return "already learned";
        case LearnOutcome::forgotten:
            return "forgotten";
        case LearnOutcome::not_learned:
            return "not learned";
        case LearnOutcome::skipped:
            return "skipped";
        case LearnOutcome::store_error:
            return "store error";
    }
    return "store error";
}

Label autolearn_label(double score, const AutolearnPolicy& p) {
    if (!p.enabled) return Label::none;
    if (score >= p.spam_at_or_above) return Label::spam;
    if (score <= p.ham_at_or_below) return Label::ham;
    return Label::none;
}

MessageId message_id(const mime::ParsedMessage& msg) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
    auto feed = [&](std::string_view s) {
        // Length-prefixed, so no two different field lists digest the same.
        std::uint64_t n = s.size();
        EVP_DigestUpdate(ctx, &n, sizeof n);
        EVP_DigestUpdate(ctx, s.data(), s.size());
    };
    std::string_view mid;
    for (const auto& h : msg.headers) {
        if (h.name.size() == 10 && strncasecmp(h.name.c_str(), "message-id", 10) == 0) {
            mid = h.value;
            break;
        }
    }
    while (!mid.empty() && (mid.front() == ' ' || mid.front() == '\t')) mid.remove_prefix(1);
    while (!mid.empty() &&
           (mid.back() == ' ' || mid.back() == '\t' || mid.back() == '\r' || mid.back() == '\n'))
        mid.remove_suffix(1);
    feed("vigil-bayes-msgid-1");
    feed(mid);
    for (const auto& p : msg.parts) {
        feed(p.content_type);
        feed(p.filename);
        feed(p.is_text ? std::string_view(p.decoded) : std::string_view());
        feed(std::to_string(p.decoded_size));
    }
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx, md.data(), &len);
    EVP_MD_CTX_free(ctx);
    MessageId id;
    std::copy_n(md.begin(), id.bytes.size(), id.bytes.begin());
    return id;
}

Filter::Filter(std::shared_ptr<const Tokenizer> tokenizer, Store& store, const core::Clock& clock,
               FilterOptions options)
    : tokenizer_(std::move(tokenizer)), store_(&store), clock_(&clock), options_(options) {}

std::uint32_t Filter::today() const {
    auto s = std::chrono::duration_cast<std::chrono::seconds>(clock_->now().time_since_epoch()).count();
    return s < 0 ? 0 : static_cast<std::uint32_t>(s / 86400);
}

Classification Filter::classify(const mime::ParsedMessage& msg) const {
    return classify_tokens(tokenizer_->tokenize(msg));
}

Classification Filter::classify_tokens(const TokenList& list) const {
    Classification c;
    c.tokens = list.tokens.size();
    c.truncated = list.truncated;
    std::vector<std::uint64_t> hashes(list.tokens.size());
    for (std::size_t i = 0; i < hashes.size(); ++i) hashes[i] = list.tokens[i].hash;
    std::vector<TokenCounts> counts(hashes.size());
    c.store = store_->read(hashes, counts, c.learned);
    if (!c.store.ok()) {
        c.status = Classification::Status::store_error;
        return c;
    }
    if (c.learned.spam < options_.min_spam_learned || c.learned.ham < options_.min_ham_learned ||
        c.learned.spam == 0 || c.learned.ham == 0) {
        c.status = Classification::Status::too_few_learned;
        return c;
    }
    auto score = bayes::classify(list.tokens, counts, c.learned, options_.classifier);
    c.status = Classification::Status::scored;
    c.probability = score.probability;
    c.used = score.used;
    return c;
}

namespace {

LearnOutcome outcome(Label previous, Label to, bool only_if_unseen) {
    if (only_if_unseen && previous != Label::none) return LearnOutcome::skipped;
    if (previous == to) return to == Label::none ? LearnOutcome::not_learned : LearnOutcome::already_learned;
    if (to == Label::none) return LearnOutcome::forgotten;
    return previous == Label::none ? LearnOutcome::learned : LearnOutcome::relearned;
}

std::vector<std::uint64_t> hashes_of(const TokenList& list) {
    std::vector<std::uint64_t> h(list.tokens.size());
    for (std::size_t i = 0; i < h.size(); ++i) h[i] = list.tokens[i].hash;
    return h;
}

}  // namespace

std::vector<LearnOutcome> Filter::apply(std::vector<Update>& updates, StoreResult& error) {
    std::vector<Label> previous(updates.size(), Label::none);
    error = store_->update(updates, previous, today());
    std::vector<LearnOutcome> out(updates.size(), LearnOutcome::store_error);
    if (!error.ok()) return out;
    for (std::size_t i = 0; i < updates.size(); ++i)
        out[i] = outcome(previous[i], updates[i].to, updates[i].only_if_unseen);
    return out;
}

LearnOutcome Filter::learn_tokens(const MessageId& id, const TokenList& tokens, Label to,
                                  StoreResult* error) {
    std::vector<Update> u(1);
    u[0].id = id;
    u[0].to = to;
    u[0].tokens = hashes_of(tokens);
    StoreResult err;
    auto out = apply(u, err);
    if (error) *error = err;
    return out[0];
}

LearnOutcome Filter::learn(const mime::ParsedMessage& msg, Label to, StoreResult* error) {
    return learn_tokens(message_id(msg), tokenizer_->tokenize(msg), to, error);
}

std::vector<LearnOutcome> Filter::learn_batch(std::span<const mime::ParsedMessage* const> msgs, Label to,
                                              StoreResult& error) {
    std::vector<Update> updates(msgs.size());
    for (std::size_t i = 0; i < msgs.size(); ++i) {
        updates[i].id = message_id(*msgs[i]);
        updates[i].to = to;
        updates[i].tokens = hashes_of(tokenizer_->tokenize(*msgs[i]));
    }
    return apply(updates, error);
}

LearnOutcome Filter::autolearn(const mime::ParsedMessage& msg, double score, const AutolearnPolicy& policy,
                               StoreResult* error) {
    Label to = autolearn_label(score, policy);
    if (to == Label::none) return LearnOutcome::skipped;
    std::vector<Update> u(1);
    u[0].id = message_id(msg);
    u[0].to = to;
    u[0].only_if_unseen = true;
    u[0].tokens = hashes_of(tokenizer_->tokenize(msg));
    StoreResult err;
    auto out = apply(u, err);
    if (error) *error = err;
    return out[0];
}

namespace {

// SpamAssassin's bands. Weights are scaled to Vigil's thresholds (add_header 6, reject 15, where
// SpamAssassin's one threshold is 5): Bayes alone never junks a message, BAYES_99 + BAYES_999
// (4.5) needs 1.5 points from other checks; confident ham takes 2 points off.
constexpr Band band_table[] = {
    {"BAYES_00", 0.00, 0.01, -2.0, "Bayes spam probability is 0 to 1%"},
    {"BAYES_05", 0.01, 0.05, -1.0, "Bayes spam probability is 1 to 5%"},
    {"BAYES_20", 0.05, 0.20, -0.3, "Bayes spam probability is 5 to 20%"},
    {"BAYES_40", 0.20, 0.40, -0.1, "Bayes spam probability is 20 to 40%"},
    {"BAYES_50", 0.40, 0.60, 0.0, "Bayes spam probability is 40 to 60%"},
    {"BAYES_60", 0.60, 0.80, 1.0, "Bayes spam probability is 60 to 80%"},
    {"BAYES_80", 0.80, 0.95, 2.0, "Bayes spam probability is 80 to 95%"},
    {"BAYES_95", 0.95, 0.99, 3.0, "Bayes spam probability is 95 to 99%"},
    {"BAYES_99", 0.99, 1.00, 4.0, "Bayes spam probability is 99 to 100%"},
    {"BAYES_999", 0.999, 1.00, 0.5, "Bayes spam probability is 99.9 to 100% (added to BAYES_99)"},
};

}  // namespace

std::span<const Band> bands() {
    return band_table;
}

std::vector<core::SymbolDef> symbol_defs() {
    std::vector<core::SymbolDef> out;
    for (const auto& b : band_table)
        out.push_back({std::string(b.name), std::string(b.description), b.default_weight});
    return out;
}

std::vector<std::string_view> symbols_for_probability(double p) {
    std::vector<std::string_view> out;
    if (!(p >= 0.0 && p <= 1.0)) return out;  // NaN too
    // The nine exclusive bands, then BAYES_999 on top.
    for (std::size_t i = 0; i + 1 < std::size(band_table); ++i) {
        const auto& b = band_table[i];
        bool last = i + 2 == std::size(band_table);
        if (p >= b.low && (p < b.high || (last && p <= b.high))) {
            out.push_back(b.name);
            break;
        }
    }
    const auto& top = band_table[std::size(band_table) - 1];
    if (p >= top.low) out.push_back(top.name);
    return out;
}

std::vector<std::string_view> symbols_for(const Classification& c) {
    if (!c.scored()) return {};
    return symbols_for_probability(c.probability);
}

}  // namespace vigil::content::bayes
