#pragma once
// Peer data never reaches a log line raw (house rule 8).
#include <cstddef>
#include <string>
#include <string_view>

#include "core/limits.hpp"

namespace vigil::core {

// Bytes outside printable ASCII become \xNN, backslash becomes \\, and the result is cut at
// `max` bytes with a trailing "..." so one line can never be split or flooded by a peer.
std::string printable(std::string_view raw, std::size_t max = limits::max_log_field);

// Escape for a JSON string body (no quotes added). The output is ASCII whatever the input was:
// well-formed UTF-8 characters become their \uNNNN escapes (surrogate pairs above U+FFFF), any
// other non-ASCII byte \u00NN (as if Latin-1), control characters \uNNNN or \n \r \t.
std::string json_escape(std::string_view raw);

std::string to_lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
std::string_view trim(std::string_view s);

}  // namespace vigil::core
