#pragma once
// The message as it streams through: header fields kept (bounded), the body only counted, never held.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/limits.hpp"

namespace vigil::core {

struct HeaderField {
    std::string name;
    // Exact bytes after the colon, leading white space included (libmilter SMFIP_HDR_LEADSPC);
    // folded lines are joined with CRLF, whatever line ending the source used.
    std::string value;
};

class Message {
  public:
    // Returns false when the field was not kept because a cap in core/limits.hpp was reached.
    bool add_header(std::string_view name, std::string_view value);
    void add_body(std::size_t bytes) { body_size_ += bytes; }

    const std::vector<HeaderField>& headers() const { return headers_; }
    std::size_t header_fields_seen() const { return fields_seen_; }
    bool headers_truncated() const { return fields_seen_ != headers_.size(); }
    std::size_t body_size() const { return body_size_; }

    // First field with this name (case-insensitive), or nullptr. Only the kept fields: a From
    // past the caps is not there (see from_value()).
    const HeaderField* find(std::string_view name) const;
    std::size_t count(std::string_view name) const;

    // Every From field the MTA sent, kept or not in headers(): how many there were, and the values
    // of the first limits::max_from_fields of them (i < from_kept()), each cut at
    // limits::max_from_bytes (then from_value_cut()).
    std::size_t from_fields_seen() const { return from_seen_; }
    std::size_t from_kept() const { return from_seen_ < from_.size() ? from_seen_ : from_.size(); }
    std::string_view from_value(std::size_t i) const;
    bool from_value_cut() const { return from_cut_; }

  private:
    // A From field kept in headers_ is referred to by its index (no copy: the usual case); one
    // dropped by the caps has its own (bounded) copy in from_copies_. Trivial fixed slots, so a
    // message without dropped From fields costs no allocation and resets for free.
    struct FromSlot {
        std::uint32_t index = 0;  // into headers_, or into from_copies_ when `copy`
        bool copy = false;
    };

    std::vector<HeaderField> headers_;
    std::array<FromSlot, limits::max_from_fields> from_{};
    std::vector<std::string> from_copies_;
    std::size_t from_seen_ = 0;
    bool from_cut_ = false;
    std::size_t header_bytes_ = 0;
    std::size_t fields_seen_ = 0;
    std::size_t body_size_ = 0;
};

// Splits a whole message (as read from a file) into header fields and body, the way an MTA hands
// them to a milter. LF-only input is converted to CRLF. A line in the header block that is not a
// field and not a continuation ends the header block (that line starts the body), as Postfix does.
// Like Postfix, "Name :" (white space before the colon) is a field named "Name".
struct ParsedMessage {
    std::vector<HeaderField> headers;
    std::string body;  // CRLF line endings
};
ParsedMessage parse_message(std::string_view raw);

// Header value with folding removed and surrounding white space trimmed, for display and matching.
std::string unfold(std::string_view value);

}  // namespace vigil::core
