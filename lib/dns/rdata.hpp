#pragma once
// Decoders for the record data a server sends: pure functions over bytes (house rule 5), so they can
// be tested and fuzzed without a resolver. Every length inside the data is checked against what is
// actually there before it is used.
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dns/resolver.hpp"

namespace vigil::dns {

// Decodes an uncompressed wire-format name starting at `pos` (advanced past it on success) into text:
// lowercase, no trailing dot, "" for the root. Bytes that text cannot carry unambiguously are escaped
// as in zone files ("\." for a dot inside a label, "\DDD" otherwise), so such a name never passes
// normalize_query_name and cannot be confused with a different name. Compression pointers are refused
// (libunbound hands us decompressed rdata). Returns false and sets `error` on malformed input.
bool decode_wire_name(std::string_view wire, std::size_t& pos, std::string& out, std::string& error);

// Fills the type-specific fields of `out` (address, target, preference or txt) from `rdata` of `type`.
// The rdata must be consumed exactly: trailing bytes are malformed too. Returns false and sets `error`
// (printable) if the data is malformed or the type is not one of RrType's values.
bool decode_rdata(RrType type, std::string_view rdata, Record& out, std::string& error);

// The records of one answer, owned by `owner`, from each record's rdata. Beyond
// limits::max_records_per_answer the first ones are kept and `detail` says so. Any undecodable rdata,
// or TXT character-strings totalling more than limits::max_txt_bytes, makes the whole answer
// malformed: false, with `detail` saying why.
bool decode_answer_records(RrType type, std::string_view owner, std::span<const std::string_view> rdatas,
                           std::vector<Record>& records, std::string& detail);

// The RRSIGs covering `covered` in the answer section of a whole DNS message (libunbound's
// answer_packet), at most limits::max_records_per_answer. Names may be compressed here; they are
// skipped, not followed, so the signatures' owners are not compared with the answer's. Returns false
// and sets `error` (with `out` empty) if the message is cut short or malformed.
bool find_signatures(std::string_view message, RrType covered, std::vector<Signature>& out,
                     std::string& error);

}  // namespace vigil::dns
