#include "content/message_structure.hpp"

#include <fmt/format.h>

#include "core/limits.hpp"

namespace vigil::content {

std::unique_ptr<check::Check> MessageStructureCheck::make(check::Section&) {
    return std::make_unique<MessageStructureCheck>();
}

std::vector<core::SymbolDef> MessageStructureCheck::symbols() const {
    return {
        {"MSG_HEADER_LIMIT",
         "More header fields or header bytes than Vigil keeps; the excess was not examined", 3.0},
        {"MSG_NO_HEADERS", "The message has no header fields at all", 3.0},
        {"MSG_NO_FROM",
         "The message has no From field (RFC 5322 requires one; counted over every field the MTA sent)", 2.0},
        {"MSG_MULTIPLE_FROM",
         "The message has more than one From field (counted over every field the MTA sent)", 3.0}};
}

void MessageStructureCheck::run(check::Context& ctx) const {
    const auto& msg = ctx.message();
    if (msg.headers_truncated()) {
        ctx.add_symbol(*this, "MSG_HEADER_LIMIT", 1.0, {fmt::format("{} fields", msg.header_fields_seen())});
    }
    if (msg.header_fields_seen() == 0) {
        ctx.add_symbol(*this, "MSG_NO_HEADERS");
        return;
    }
    // Every From field the MTA sent counts, also those past the caps on kept fields.
    auto from = msg.from_fields_seen();
    if (from == 0) ctx.add_symbol(*this, "MSG_NO_FROM");
    if (from > 1) {
        std::vector<std::string> opts{fmt::format("{} fields", from)};
        if (from > core::limits::max_from_fields)
            opts.push_back(fmt::format("only the first {} examined", core::limits::max_from_fields));
        ctx.add_symbol(*this, "MSG_MULTIPLE_FROM", 1.0, std::move(opts));
    }
}

}  // namespace vigil::content
