#pragma once
// The message as it streams through: header fields kept (bounded), the body only counted, never held.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

    // First field with this name (case-insensitive), or nullptr.
    const HeaderField* find(std::string_view name) const;
    std::size_t count(std::string_view name) const;

  private:
    std::vector<HeaderField> headers_;
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
