#pragma once
// iprev / forward-confirmed reverse DNS (RFC 8601 §3): the PTR names of the client IP, each looked
// up forward (A for IPv4, AAAA for IPv6), must lead back to the IP. The result goes into
// Authentication-Results as "iprev=<result> policy.iprev=<ip>" and into one IPREV_* symbol.
//
//   pass       a PTR name resolves back to the IP
//   fail       PTR names exist, but none resolves back (their lookups answered, NXDOMAIN or NODATA)
//   temperror  the PTR lookup or, with no name confirming, a forward lookup timed out or SERVFAILed
//   permerror  no PTR data (NXDOMAIN/NODATA: IPREV_NO_PTR), or PTR/forward data that cannot be used
//              (malformed answers, names that are not valid DNS names: IPREV_PERMERROR)
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "check/check.hpp"
#include "check/check_factory.hpp"
#include "core/ip_address.hpp"
#include "dns/resolver.hpp"

namespace vigil::reputation {

// PTR names looked up forward (the rest are ignored), as RFC 7208 §4.6.4 caps SPF's PTR processing:
// an attacker controls its own reverse zone and could otherwise make us issue hundreds of lookups.
inline constexpr std::size_t max_ptr_names = 10;
// Host names in symbol options are cut to this length (they come from a zone the peer may control).
inline constexpr std::size_t max_reported_name = 80;

// True if a PTR name looks like one an ISP generates for a pool of dynamic addresses: it embeds the
// IPv4 address (dashes, dots, underscores or nothing as separators, in either order, zero-padded,
// hexadecimal, or as one decimal number), or has a label word such as "dynamic", "dhcp", "pool",
// "dsl", "cable" or "ppp" left of the last two labels. Pure, for tests.
bool looks_generic(std::string_view ptr_name, const core::IpAddress& ip);

// One iprev evaluation: what the check reports, and what `vigil doctor` judges an operator's own
// address by (the same FCrDNS logic, so the two can never disagree).
struct IprevEvaluation {
    std::string result;                    // pass, fail, temperror, permerror
    std::string symbol;                    // the IPREV_* result symbol
    std::vector<std::string> options;      // the symbol's options (printable, bounded)
    std::string ptr_status;                // dns::to_string of the PTR answer's status
    std::vector<std::string> names;        // valid PTR names, answer order, no duplicates
    std::optional<std::string> confirmed;  // the first name that resolves back to the IP
    bool generic = false;                  // the judged name (confirmed, else the first) looks dynamic
};
// `ptr` is the PTR lookup of dns::reverse_name(ip) (started early by the caller); the forward lookups
// are issued together and waited for until `deadline`.
IprevEvaluation evaluate_iprev(dns::Resolver& resolver, const core::IpAddress& ip, const dns::Pending& ptr,
                               std::chrono::steady_clock::time_point deadline);

class IprevCheck final : public check::Check {
  public:
    static std::unique_ptr<check::Check> make(check::Section& options);

    std::string_view name() const override { return "iprev"; }
    std::vector<check::Stage> stages() const override { return {check::Stage::connect}; }
    bool may_refuse_before_data() const override { return false; }  // it only scores
    std::vector<core::SymbolDef> symbols() const override;
    void start(check::Context& ctx) const override;
    void run(check::Context& ctx) const override;
};

}  // namespace vigil::reputation
