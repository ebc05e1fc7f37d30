#include "engine/incoming_fields.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "auth/authentication_results.hpp"
#include "core/limits.hpp"
#include "core/printable.hpp"

namespace vigil::engine {

namespace {

constexpr std::string_view authentication_results = "Authentication-Results";

}  // namespace

IncomingFields::IncomingFields(const Config& config)
    : authserv_id_(core::to_lower(config.server.authserv_id)) {
    tracked_.emplace_back().name = authentication_results;
    tracked_.back().authentication_results = true;
    if (!config.headers.remove_incoming) return;
    for (const auto* name : {&config.headers.flag, &config.headers.status, &config.headers.score}) {
        // One name configured twice is one set of fields to remove, not two.
        if (std::none_of(tracked_.begin(), tracked_.end(),
                         [&](const Tracked& t) { return core::iequals(t.name, *name); }))
            tracked_.emplace_back().name = *name;
    }
}

IncomingFields IncomingFields::of(const Config& config, const core::Message& msg) {
    IncomingFields out(config);
    for (const auto& h : msg.headers()) out.add(h.name, h.value);
    return out;
}

void IncomingFields::add(std::string_view name, std::string_view value) {
    for (auto& t : tracked_) {
        if (!core::iequals(name, t.name)) continue;
        ++t.seen;
        if (t.authentication_results) {
            auto claimed = auth::claimed_authserv_id(value);
            if (!claimed || *claimed != authserv_id_) return;
        }
        ++t.matched;
        // One more than the cap is enough to know the message is refused; the rest is only counted.
        if (t.occurrences.size() <= core::limits::max_removed_fields_per_name)
            t.occurrences.push_back(t.seen);
        return;
    }
}

std::vector<core::HeaderEdit> IncomingFields::removals() const {
    std::vector<core::HeaderEdit> edits;
    if (excess()) return edits;
    for (const auto& t : tracked_) {
        for (auto it = t.occurrences.rbegin(); it != t.occurrences.rend(); ++it)
            edits.push_back({core::HeaderEdit::Kind::remove, t.name, "", *it});
    }
    return edits;
}

std::optional<IncomingFields::Excess> IncomingFields::excess() const {
    constexpr auto cap = core::limits::max_removed_fields_per_name;
    for (const auto& t : tracked_) {
        if (t.matched <= cap) continue;
        Excess e;
        if (t.authentication_results) {
            e.reason = fmt::format("{} {} fields claim our authserv-id {} (at most {} are removed)",
                                   t.matched, t.name, authserv_id_, cap);
            e.reply = {"554", "5.7.1", fmt::format("too many forged {} fields", t.name)};
        } else {
            e.reason = fmt::format("{} incoming {} fields (at most {} are removed)", t.matched, t.name, cap);
            // Configured names are printable ASCII; '%' would be a format directive to libmilter.
            auto shown = t.name;
            std::replace(shown.begin(), shown.end(), '%', '?');
            e.reply = {"554", "5.7.1", fmt::format("too many incoming {} fields", shown)};
        }
        return e;
    }
    return std::nullopt;
}

bool refuse_excess(const IncomingFields& incoming, core::Verdict& v) {
    auto excess = incoming.excess();
    if (!excess || v.action == core::Action::reject) return false;
    v.action = core::Action::reject;
    v.forced = core::ForcedAction{core::Action::reject, excess->reason, "header_edits", excess->reply};
    v.reply = excess->reply;
    v.quarantine_reason.clear();
    v.edits.clear();
    v.warnings.push_back("refused: " + excess->reason);
    return true;
}

}  // namespace vigil::engine
