#include "state/bayes/memory_store.hpp"

namespace vigil::state::bayes {

StoreResult MemoryStore::read(std::span<const std::uint64_t> tokens, std::span<TokenCounts> counts,
                              Totals& totals) {
    if (counts.size() != tokens.size()) return {StoreStatus::error, "counts and tokens differ in size"};
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        auto it = tokens_.find(tokens[i]);
        counts[i] = it == tokens_.end() ? TokenCounts{} : it->second;
    }
    totals = totals_;
    return {};
}

StoreResult MemoryStore::update(std::span<const Update> updates, std::span<Label> previous, std::uint32_t) {
    if (previous.size() != updates.size()) return {StoreStatus::error, "previous and updates differ in size"};
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < updates.size(); ++i) {
        const auto& u = updates[i];
        auto it = messages_.find(u.id.bytes);
        Label cur = it == messages_.end() ? Label::none : it->second;
        previous[i] = cur;
        if (cur == u.to || (u.only_if_unseen && cur != Label::none)) continue;
        for (auto t : u.tokens) {
            auto& c = tokens_[t];
            if (cur == Label::spam && c.spam > 0) --c.spam;
            if (cur == Label::ham && c.ham > 0) --c.ham;
            if (u.to == Label::spam) ++c.spam;
            if (u.to == Label::ham) ++c.ham;
            if (c.spam == 0 && c.ham == 0) tokens_.erase(t);
        }
        if (cur == Label::spam && totals_.spam > 0) --totals_.spam;
        if (cur == Label::ham && totals_.ham > 0) --totals_.ham;
        if (u.to == Label::spam) ++totals_.spam;
        if (u.to == Label::ham) ++totals_.ham;
        if (u.to == Label::none)
            messages_.erase(u.id.bytes);
        else
            messages_[u.id.bytes] = u.to;
    }
    return {};
}

StoreResult MemoryStore::seen(const MessageId& id, Label& label) {
    std::lock_guard lock(mutex_);
    auto it = messages_.find(id.bytes);
    label = it == messages_.end() ? Label::none : it->second;
    return {};
}

std::size_t MemoryStore::token_count() const {
    std::lock_guard lock(mutex_);
    return tokens_.size();
}

TokenCounts MemoryStore::counts(std::uint64_t token) const {
    std::lock_guard lock(mutex_);
    auto it = tokens_.find(token);
    return it == tokens_.end() ? TokenCounts{} : it->second;
}

}  // namespace vigil::state::bayes
