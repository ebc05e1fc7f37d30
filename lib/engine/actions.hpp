#pragma once
// What the verdict means for the message's header: our Authentication-Results on top, forged ones
// removed, and the junk headers and subject tag for add_header.
#include <optional>
#include <string>
#include <vector>

#include "core/envelope.hpp"
#include "core/message.hpp"
#include "core/verdict.hpp"
#include "engine/config.hpp"

namespace vigil::engine {

// `prepend`: fields checks asked to add on top (Received-SPF, DKIM-Signature), in the order they were
// added; they end up directly below our Authentication-Results. `forged`: 1-based occurrences of
// Authentication-Results fields claiming our authserv-id, as counted while the header streamed in
// (nullopt: find them in `msg`, which only holds the fields within the caps).
std::vector<core::HeaderEdit> header_edits(
    const Config& config, const core::Envelope& env, const core::Message& msg, const core::Verdict& verdict,
    const std::vector<std::string>& auth_results,
    const std::vector<std::pair<std::string, std::string>>& prepend = {},
    std::optional<std::vector<int>> forged = std::nullopt);

// "Yes, score=7.20 required=6.00 tests=A,B" — SpamAssassin's shape, which mail clients and sieve
// scripts already understand.
std::string spam_status_value(const Config& config, const core::Verdict& verdict, bool is_spam);

}  // namespace vigil::engine
