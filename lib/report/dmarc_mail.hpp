#pragma once
// Sending a DMARC aggregate report by mail (RFC 7489 §7.1, §7.2.1.1): which rua= URIs are mail
// destinations and how big a report each accepts, whether an external destination agreed to receive
// reports (checked on our resolver), and the MIME message that carries the gzip file.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "dns/resolver.hpp"

namespace vigil::report {

// Caps on what a published rua= URI may make us do.
namespace limits {
inline constexpr std::size_t max_rua_uri = 512;      // longer URIs are ignored
inline constexpr std::size_t max_rua_address = 254;  // RFC 5321 path limit
}  // namespace limits

struct MailtoUri {
    std::string address;                     // local@domain, percent-decoded
    std::string domain;                      // lowercase
    std::optional<std::uint64_t> max_bytes;  // "!10m": 10 MiB (k/m/g/t are powers of 2, §6.4)
};

// "mailto:dmarc@example.com!10m" -> address and limit. nullopt for another scheme, a URI with
// hfields or several addresses, an address that is not local@domain with printable ASCII, or a
// malformed size.
std::optional<MailtoUri> parse_mailto(std::string_view uri);

enum class Authorization {
    same_organization,  // no check needed: the rua domain's organizational domain is the policy's
    authorized,         // <policy>._report._dmarc.<rua domain> has a v=DMARC1 record
    refused,            // it has none (NXDOMAIN, NODATA, no v=DMARC1 record)
    temperror,          // the lookup failed (SERVFAIL, timeout): try again at the next run
};
std::string_view to_string(Authorization a);

struct DestinationCheck {
    Authorization result = Authorization::refused;
    std::string query;   // the name looked up, empty when none was
    std::string detail;  // why, for the operator (printable)
};

// RFC 7489 §7.1. `org_domain` maps a domain to its organizational domain.
DestinationCheck check_external_destination(dns::Resolver& resolver,
                                            std::chrono::steady_clock::time_point deadline,
                                            std::string_view policy_domain, std::string_view rua_domain,
                                            const std::function<std::string(std::string_view)>& org_domain);

// True if the TXT text starts with the tag v=DMARC1 (what §7.1 asks the authorizing record for).
bool starts_with_dmarc1(std::string_view txt);

struct ReportMessage {
    std::string from;       // From: and the envelope sender
    std::string to;         // one rua address
    std::string subject;    // report_subject()
    std::string submitter;  // domain for Message-ID
    std::string file_name;  // the attachment's name
    std::string gzip;       // the attachment
    std::string text;       // a short human-readable part
    std::int64_t date = 0;  // Date:, seconds since the epoch
};

// A multipart/mixed message with LF line ends (for `sendmail -i`): a text/plain part and the report
// as application/gzip, base64 in 76-column lines.
std::string build_report_message(const ReportMessage& m);

std::string base64_encode(std::string_view data, std::size_t line_length = 76);

}  // namespace vigil::report
