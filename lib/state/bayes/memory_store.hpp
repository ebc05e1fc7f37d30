#pragma once
// A Store in memory: for the evaluation (vigil-eval-bayes) and tests. Thread-safe; holds nothing
// across restarts.
#include <map>
#include <mutex>
#include <unordered_map>

#include "state/bayes/store.hpp"

namespace vigil::state::bayes {

class MemoryStore final : public Store {
  public:
    StoreResult read(std::span<const std::uint64_t> tokens, std::span<TokenCounts> counts,
                     Totals& totals) override;
    StoreResult update(std::span<const Update> updates, std::span<Label> previous,
                       std::uint32_t day) override;
    StoreResult seen(const MessageId& id, Label& label) override;

    std::size_t token_count() const;
    // A token's counts (zero when unknown).
    TokenCounts counts(std::uint64_t token) const;

  private:
    mutable std::mutex mutex_;
    std::unordered_map<std::uint64_t, TokenCounts> tokens_;
    std::map<std::array<std::uint8_t, 16>, Label> messages_;
    Totals totals_;
};

}  // namespace vigil::state::bayes
