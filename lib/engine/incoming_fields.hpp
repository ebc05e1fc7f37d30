#pragma once
// Incoming header fields Vigil removes before delivery: Authentication-Results fields that claim our
// authserv-id (RFC 8601 §5: otherwise a sender forges our verdict), and, with [headers]
// remove_incoming, the sender's own fields of the names our junk headers use (flag, status, score),
// which a reader taking the first field would believe over ours.
//
// Each removal costs the MTA: Postfix's cleanup finds the field by walking the header from the top,
// so thousands of removals on one message take it seconds to minutes and about 20,000 make it panic.
// Anyone can send such a message, so at most core::limits::max_removed_fields_per_name fields of one
// name are removed, and a message that would need more is refused (refuse_excess): never delivered
// with the forgeries left in place.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/message.hpp"
#include "core/verdict.hpp"
#include "engine/config.hpp"

namespace vigil::engine {

class IncomingFields {
  public:
    explicit IncomingFields(const Config& config);
    // Every field of a message held whole (only the fields within the caps of core::Message).
    static IncomingFields of(const Config& config, const core::Message& msg);

    // One field as the MTA hands it, in order; counted past every cap of core::Message, so a forgery
    // never survives because it came after 5,000 filler fields.
    void add(std::string_view name, std::string_view value);

    // The removals, each name's from its last occurrence backwards, so that every index still refers
    // to the field the MTA received whatever the MTA does with removed fields. Empty when excess().
    std::vector<core::HeaderEdit> removals() const;

    struct Excess {
        std::string reason;     // for the log: how many of what, and the cap
        core::SmtpReply reply;  // 554 5.7.1 naming the field
    };
    // The first name with more fields to remove than the cap, if any.
    std::optional<Excess> excess() const;

  private:
    struct Tracked {
        std::string name;
        bool authentication_results = false;  // only those claiming our authserv-id count
        int seen = 0;                         // fields of this name so far
        std::size_t matched = 0;              // of them, to be removed
        std::vector<int> occurrences;         // 1-based, the first max_removed_fields_per_name + 1
    };
    std::string authserv_id_;
    std::vector<Tracked> tracked_;
};

// A verdict for a message with excess(): anything but a reject becomes a reject with the excess's
// reply and reason (also with honour_forced_actions = false: the only other outcomes are delivering
// the forgeries or stalling the MTA), its edits dropped, and a warning says why. Returns whether it
// changed the verdict.
bool refuse_excess(const IncomingFields& incoming, core::Verdict& verdict);

}  // namespace vigil::engine
