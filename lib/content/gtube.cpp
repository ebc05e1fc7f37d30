#include "content/gtube.hpp"

#include <string>

#include "core/limits.hpp"

namespace vigil::content {

namespace {

// Keeps the tail of the previous chunk so a string split across chunks is still found.
struct GtubeState final : check::CheckState {
    std::string carry;
    std::size_t scanned = 0;
    bool found = false;
};

}  // namespace

std::unique_ptr<check::Check> GtubeCheck::make(check::Section& s) {
    auto action =
        s.get_choice("action", "reject", {"reject", "tempfail", "quarantine", "add_header", "score"});
    return std::make_unique<GtubeCheck>(action == "score" ? core::Action::accept
                                                          : *core::parse_action(action));
}

std::vector<core::SymbolDef> GtubeCheck::symbols() const {
    return {{"GTUBE", "The body contains the GTUBE test string", 20.0}};
}

void GtubeCheck::body_chunk(check::Context& ctx, std::string_view chunk) const {
    auto* st = static_cast<GtubeState*>(ctx.state(*this));
    if (st == nullptr) {
        auto fresh = std::make_unique<GtubeState>();
        st = fresh.get();
        ctx.set_state(*this, std::move(fresh));
    }
    if (st->found || st->scanned >= core::limits::gtube_scan_bytes) return;
    auto take = std::min(chunk.size(), core::limits::gtube_scan_bytes - st->scanned);
    st->scanned += take;
    std::string window = st->carry;
    window.append(chunk.substr(0, take));
    if (window.find(gtube_string) != std::string::npos) {
        st->found = true;
        return;
    }
    auto keep = std::min(window.size(), gtube_string.size() - 1);
    st->carry = window.substr(window.size() - keep);
}

void GtubeCheck::run(check::Context& ctx) const {
    auto* st = static_cast<GtubeState*>(ctx.state(*this));
    if (st == nullptr || !st->found) return;
    ctx.add_symbol(*this, "GTUBE");
    if (action_ != core::Action::accept) {
        ctx.force(
            *this, action_, "GTUBE test string",
            action_ == core::Action::reject
                ? std::optional(core::SmtpReply{"554", "5.7.1", "GTUBE test string found, message rejected"})
                : std::nullopt);
    }
}

}  // namespace vigil::content
