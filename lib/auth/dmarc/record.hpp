#pragma once
// The DMARC policy record (RFC 7489 §6.3, §6.4; np= from RFC 9091): a pure parser over
// std::string_view. Only v=DMARC1 as the first tag makes a DMARC record. A missing or invalid p=
// (or an invalid sp=) leaves a valid record only when rua= holds a usable URI, and then as p=none
// (§6.6.3); any other syntax error in a tag falls back to that tag's default (§6.3). Unknown tags
// are ignored.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::auth::dmarc {

enum class Policy { none, quarantine, reject };
enum class AlignMode { relaxed, strict };

std::string_view to_string(Policy policy);   // "none" "quarantine" "reject"
std::string_view to_string(AlignMode mode);  // "r" "s"

struct ReportUri {
    std::string uri;                         // as published, e.g. "mailto:dmarc@example.com"
    std::optional<std::uint64_t> max_bytes;  // the "!10m" size limit, in bytes
};

struct Record {
    Policy p = Policy::none;
    std::optional<Policy> sp;  // subdomains; unset: p applies
    std::optional<Policy> np;  // non-existent subdomains (RFC 9091); unset: sp, else p
    AlignMode adkim = AlignMode::relaxed;
    AlignMode aspf = AlignMode::relaxed;
    int pct = 100;               // 0..100
    std::vector<ReportUri> rua;  // syntactically valid URIs only, at most limits::max_report_uris
    std::vector<ReportUri> ruf;
    std::string fo = "0";              // the valid options, colon-separated as published ("0", "1:d", ...)
    std::uint32_t ri = 86400;          // seconds
    bool p_defaulted = false;          // p= was missing or invalid and rua= made it p=none (§6.6.3)
    std::vector<std::string> ignored;  // tags whose value was invalid and fell back to the default

    Policy subdomain_policy() const { return sp.value_or(p); }
    Policy nonexistent_policy() const { return np ? *np : subdomain_policy(); }
};

enum class RecordStatus {
    ok,         // record is set
    not_dmarc,  // does not start with v=DMARC1: not a DMARC record at all (§6.6.3 discards it)
    invalid,    // starts with v=DMARC1 but unusable (no valid p= and no valid rua=, over a limit)
};

struct RecordParse {
    std::optional<Record> record;
    std::string error;  // printable, bounded; empty when record is set
    RecordStatus status = RecordStatus::ok;
    bool ok() const { return record.has_value(); }
};

// True if `txt` starts with the tag v=DMARC1 (tag name in any case, value exactly "DMARC1").
bool is_dmarc_record(std::string_view txt);

RecordParse parse_record(std::string_view txt);

}  // namespace vigil::auth::dmarc
