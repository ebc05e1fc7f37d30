#include "engine/actions.hpp"

#include <fmt/format.h>

#include "auth/authentication_results.hpp"
#include "core/printable.hpp"

namespace vigil::engine {

std::string spam_status_value(const Config& config, const core::Verdict& v, bool is_spam) {
    std::string tests;
    for (const auto& s : v.symbols) {
        if (!tests.empty()) tests += ',';
        tests += s.name;
    }
    return fmt::format(" {}, score={:.2f} required={:.2f} tests={}", is_spam ? "Yes" : "No", v.score,
                       config.actions.thresholds.add_header.value_or(v.reject_threshold),
                       tests.empty() ? "none" : tests);
}

std::vector<core::HeaderEdit> header_edits(const Config& config, const core::Envelope& env,
                                           const core::Message& msg, const core::Verdict& v,
                                           const std::vector<std::string>& auth_results,
                                           const std::vector<std::pair<std::string, std::string>>& prepend,
                                           const IncomingFields* incoming) {
    using Kind = core::HeaderEdit::Kind;
    std::vector<core::HeaderEdit> edits;
    if (v.action == core::Action::reject || v.action == core::Action::tempfail) return edits;

    // Removals first (each name's from its last occurrence backwards), before anything is added.
    std::optional<IncomingFields> scanned;
    if (incoming == nullptr) incoming = &scanned.emplace(IncomingFields::of(config, msg));
    if (incoming->excess()) return edits;
    edits = incoming->removals();

    // insert_top puts each field above the previous ones: insert the checks' fields last-first so
    // they keep their order, then ours on top of them.
    for (auto it = prepend.rbegin(); it != prepend.rend(); ++it) {
        edits.push_back({Kind::insert_top, it->first, it->second, 0});
    }
    bool inbound = env.direction == core::Direction::inbound;
    if (inbound) {
        edits.push_back({Kind::insert_top, "Authentication-Results",
                         auth::format_authentication_results(config.server.authserv_id, auth_results), 0});
    }
    bool is_spam = v.action == core::Action::add_header;
    if (is_spam || (inbound && config.headers.always_add_score)) {
        if (is_spam) edits.push_back({Kind::append, config.headers.flag, " YES", 0});
        edits.push_back({Kind::append, config.headers.score, fmt::format(" {:.2f}", v.score), 0});
        edits.push_back({Kind::append, config.headers.status, spam_status_value(config, v, is_spam), 0});
    }
    if (is_spam && !config.headers.subject_tag.empty()) {
        if (const auto* subject = msg.find("Subject")) {
            auto value = subject->value;
            std::size_t lead = value.find_first_not_of(" \t");
            if (lead == std::string::npos) lead = value.size();
            // Never tag twice (a message that bounced back and forth).
            if (value.compare(lead, config.headers.subject_tag.size(), config.headers.subject_tag) != 0) {
                edits.push_back({Kind::change, "Subject",
                                 " " + config.headers.subject_tag + " " + value.substr(lead), 1});
            }
        } else {
            edits.push_back({Kind::append, "Subject", " " + config.headers.subject_tag, 0});
        }
    }
    return edits;
}

}  // namespace vigil::engine
