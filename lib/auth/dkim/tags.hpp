#pragma once
// RFC 6376 §3.2 tag=value lists (DKIM-Signature values and key records). Pure, bounded parser.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::auth::dkim {

struct Tag {
    std::string_view name;
    std::string_view value;     // surrounding white space removed; inner FWS kept as sent
    std::size_t raw_begin = 0;  // offset just after '=' in the parsed text
    std::size_t raw_end = 0;    // offset of the ';' ending the value (or the text's end)
};

struct TagList {
    std::vector<Tag> tags;
    std::string error;  // empty when the list is well formed
    bool ok() const { return error.empty(); }
    const Tag* find(std::string_view name) const;
};

// Grammar: tag-spec *(";" tag-spec) [";"], tag-name = ALPHA *(ALPHA/DIGIT/"_"), values of
// VALCHAR (%x21-3A / %x3C-7E) separated by FWS. Duplicate names, empty specs in the middle, bad
// bytes and lists over the caps in dkim_limits.hpp are errors. Views point into `text`.
TagList parse_tag_list(std::string_view text);

// The value with every FWS byte (SP, HTAB, CR, LF) removed, as b=, bh= and p= are read.
std::string strip_fws(std::string_view value);

bool is_wsp(char c);
bool is_fws(char c);

}  // namespace vigil::auth::dkim
