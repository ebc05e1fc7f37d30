#pragma once
// DMARC aggregate reports (RFC 7489 §7.2, Appendix C): the XML of one report per policy domain and
// period, gzip-compressed, named as §7.2.1.1 asks. Pure functions over the stored rows; the store,
// DNS and mail are the caller's business.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "report/dmarc_store.hpp"

namespace vigil::report {

struct ReportMetadata {
    std::string org_name;
    std::string email;               // contact for the report's recipient
    std::string extra_contact_info;  // omitted when empty
    std::string report_id;
    std::int64_t begin = 0;  // date_range, seconds since the epoch, both inclusive
    std::int64_t end = 0;
};

// One <record>: evaluations identical in row, identifiers and auth_results, and how many.
struct AggregateRow {
    DmarcEvaluation evaluation;
    std::uint64_t count = 0;
};

// Merges rows whose <record> content is identical (everything but time and the published policy),
// adding their counts; keeps the order of first appearance.
std::vector<AggregateRow> merge_rows(std::vector<AggregateRow> rows);

// The report document. `policy` gives <policy_published> (the latest evaluation of the period);
// rows are merged first. Every value is escaped; values outside the schema's enumerations are
// mapped to a valid one (an unknown disposition to "none", an unknown reason to "other" with the
// value as comment, an unknown DKIM/SPF result to "temperror"). IPv6 sources are written as eight
// groups, the only IPv6 form the RFC's IPAddress pattern accepts.
std::string build_report_xml(const ReportMetadata& meta, const DmarcEvaluation& policy,
                             const std::vector<AggregateRow>& rows);

// &, <, >, " and ' as entities; bytes that XML 1.0 forbids (controls other than tab, LF, CR) and
// bytes that are not valid UTF-8 become '?'.
std::string xml_escape(std::string_view text);

// The source IP as the report writes it (IPv4 dotted quad; IPv6 as eight groups); the text
// unchanged if it is not an address.
std::string report_ip(std::string_view text);

// receiver "!" policy-domain "!" begin "!" end [ "!" unique-id ] ".xml.gz" (§7.2.1.1). Empty when
// receiver or domain is not a plain host name, or unique_id not alphanumeric (never a path).
std::string report_file_name(std::string_view receiver, std::string_view policy_domain, std::int64_t begin,
                             std::int64_t end, std::string_view unique_id = {});

// gzip (RFC 1952) of `data`. Throws std::runtime_error only if zlib fails (out of memory).
std::string gzip_compress(std::string_view data);

// Report-ID templates: literal text with {domain}, {begin}, {end}, {receiver} and {random}
// (16 hex digits). The result must stay a valid msg-id: dot-atom text, at most one '@'.
std::optional<std::string> report_id_template_error(std::string_view tmpl);
std::string expand_report_id(std::string_view tmpl, std::string_view domain, std::int64_t begin,
                             std::int64_t end, std::string_view receiver, std::string_view random_hex);
// 16 random hex digits.
std::string random_hex();

// "Report Domain: D Submitter: S Report-ID: <id>" (§7.2.1.1); an id without '@' gets "@submitter".
std::string report_subject(std::string_view policy_domain, std::string_view submitter,
                           std::string_view report_id);

}  // namespace vigil::report
