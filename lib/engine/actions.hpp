#pragma once
// What the verdict means for the message's header: our Authentication-Results on top, forged ones
// (and the sender's X-Spam-*) removed, and the junk headers and subject tag for add_header.
#include <optional>
#include <string>
#include <vector>

#include "core/envelope.hpp"
#include "core/message.hpp"
#include "core/verdict.hpp"
#include "engine/config.hpp"
#include "engine/incoming_fields.hpp"

namespace vigil::engine {

// `prepend`: fields checks asked to add on top (Received-SPF, DKIM-Signature), in the order they were
// added; they end up directly below our Authentication-Results. `incoming`: the fields to remove,
// as counted while the header streamed in (null: found in `msg`, which only holds the fields within
// the caps). No edits at all for a message with more fields to remove than the cap: it is refused
// (refuse_excess).
std::vector<core::HeaderEdit> header_edits(
    const Config& config, const core::Envelope& env, const core::Message& msg, const core::Verdict& verdict,
    const std::vector<std::string>& auth_results,
    const std::vector<std::pair<std::string, std::string>>& prepend = {},
    const IncomingFields* incoming = nullptr);

// "Yes, score=7.20 required=6.00 tests=A,B" — SpamAssassin's shape, which mail clients and sieve
// scripts already understand.
std::string spam_status_value(const Config& config, const core::Verdict& verdict, bool is_spam);

}  // namespace vigil::engine
