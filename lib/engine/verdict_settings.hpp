#pragma once
// How symbols become a verdict and how the verdict shows: [actions], [replies] and [headers].
#include <optional>
#include <string>

#include "check/config_reader.hpp"
#include "core/verdict.hpp"

namespace vigil::engine {

struct Thresholds {
    // Score at or above which each action applies; the action with the highest threshold that the
    // score reaches wins (rspamd semantics). Unset = the action is never chosen by score.
    std::optional<double> reject;
    std::optional<double> tempfail;
    std::optional<double> quarantine;
    std::optional<double> add_header;
};

// [actions]
struct ActionSettings {
    Thresholds thresholds;
    bool honour_forced = true;  // false: forced actions count only as their symbols' scores

    static ActionSettings read(check::Section& s);
};

// [replies]
struct ReplySettings {
    core::SmtpReply reject{"550", "5.7.1", "Message rejected by policy"};
    core::SmtpReply tempfail{"451", "4.7.1", "Message deferred by policy, try again later"};

    static ReplySettings read(check::Section& s);
};

// [headers]
struct HeaderSettings {
    std::string flag = "X-Spam-Flag";
    std::string score = "X-Spam-Score";
    std::string status = "X-Spam-Status";
    std::string subject_tag;
    bool always_add_score = false;
    // Remove incoming fields named flag/status/score (the sender's own), at most
    // core::limits::max_removed_fields_per_name of each; more and the message is refused.
    bool remove_incoming = true;

    static HeaderSettings read(check::Section& s);
};

}  // namespace vigil::engine
