#pragma once
// The MIME layer's entry point: one pass over a message builds the ParsedMessage every content check
// reads. A pure function of its inputs (no global mutable state; safe to call from several threads at
// once: libxml2 is initialised once, ICU converters and libxml2 parser contexts are per call, libidn2
// and libpsl are used read-only). Caps: mime/mime_limits.hpp.
#include <string_view>
#include <vector>

#include "core/message.hpp"
#include "mime/parsed_message.hpp"

namespace vigil::mime {

// headers: the fields as the MTA handed them (name, raw value after the colon). body: the raw body
// as received (CRLF line endings; LF alone is accepted too), possibly cut by the engine at its scan
// cap, in which case body_truncated is true (Anomaly::message_truncated, and a part cut short at the
// end is not counted as malformed).
ParsedMessage parse(const std::vector<core::HeaderField>& headers, std::string_view body,
                    bool body_truncated = false);

// A whole message as stored in a file (`vigil learn`, the evaluations): an mbox "From " first line is
// skipped, the header is split from the body the way the MTA would (core::parse_message), then parse().
ParsedMessage parse_raw(std::string_view raw);

}  // namespace vigil::mime
