#pragma once
// check_host() of RFC 7208 §4 on our asynchronous resolver. Expected failures are values: every
// outcome, temperror and permerror kept apart, is an Outcome; nothing here throws on bad data.
//
// Lookups that do not depend on each other run in parallel (the A/AAAA of all MX hosts, the
// A/AAAA of all PTR names); each waits at most until the caller's deadline, after which it counts
// as a timeout (temperror).
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/ip_address.hpp"
#include "dns/resolver.hpp"

namespace vigil::dns {
class CachingResolver;
}

namespace vigil::auth::spf {

enum class Result { none, neutral, pass, fail, softfail, temperror, permerror };
std::string_view to_string(Result r);

// The identity checked: <local-part>@<domain> (RFC 7208 §2.4: the null sender and a MAIL FROM
// without local-part use "postmaster").
struct Identity {
    std::string local_part;
    std::string domain;
};
// MAIL FROM (without angle brackets; "" is the null sender, which checks postmaster@HELO).
Identity mailfrom_identity(std::string_view mail_from, std::string_view helo);
Identity helo_identity(std::string_view helo);

struct Options {
    // exp= explanations are fetched only for a fail and only when this is set.
    bool fetch_explanation = false;
    std::string receiver = "unknown";  // %{r}
    std::int64_t timestamp = 0;        // %{t}
    // When set, parsed records are kept there next to their TXT answer (same TTL), so a warm cache
    // costs no parsing. A cached record is used only when its text equals the record just fetched.
    dns::CachingResolver* parsed_cache = nullptr;
};

struct Outcome {
    Result result = Result::none;
    std::string domain;       // the identity's domain (printable)
    std::string mechanism;    // the term that decided ("-all", "include:x", "default"); may be empty
    std::string explanation;  // the exp= text, only when fetched; printable and bounded
    std::string problem;      // why permerror/temperror/none (printable, bounded)
    std::size_t dns_terms = 0;
    std::size_t void_lookups = 0;
    std::size_t queries = 0;  // DNS lookups issued
    // The checked domain's SPF record (TXT) answer only: secure says that answer validated, not
    // that every include/redirect did.
    dns::Dnssec dnssec = dns::Dnssec::unchecked;
};

// True if `domain` may be checked at all (§4.3): a multi-label name of LDH/underscore labels of
// 1..63 characters, at most 253 in all (one trailing dot allowed). Otherwise the result is none.
bool checkable_domain(std::string_view domain);

// The TXT lookup check_host() starts with, so a caller can issue it early (e.g. in a stage's
// start()) and pass it to evaluate(); nullopt when the domain is not checkable.
std::optional<dns::Pending> start_lookup(dns::Resolver& resolver, std::string_view domain);

Outcome evaluate(dns::Resolver& resolver, std::chrono::steady_clock::time_point deadline,
                 const core::IpAddress& ip, const Identity& identity, std::string_view helo,
                 const Options& options, std::optional<dns::Pending> prefetched = std::nullopt);

// The Outcome as one JSON object: result, domain, mechanism, explanation (when there is one), problem.
std::string to_json(const Outcome& o, std::string_view identity_kind);

}  // namespace vigil::auth::spf
