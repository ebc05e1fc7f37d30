#pragma once
// The checks of `vigil doctor`, one function per area, each returning findings. They ask DNS only
// through the Resolver they are given (the milter's resolver and cache, or a test fake) and reuse the
// milter's own logic: DNS lists (reputation/dnsbl), FCrDNS (reputation/iprev), SPF check_host
// (auth/spf), DKIM key records (auth/dkim/keys), DMARC records (auth/dmarc).
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/ip_address.hpp"
#include "doctor/doctor_limits.hpp"
#include "doctor/finding.hpp"
#include "doctor/lists.hpp"

namespace vigil::dns {
class Resolver;
}
namespace vigil::auth::dkim {
struct SigningKey;
}

namespace vigil::doctor {

struct Probe {
    dns::Resolver& resolver;
    // How long one group of lookups (one area of one subject) may wait.
    std::chrono::milliseconds timeout = limits::default_timeout;
    // Wall-clock time, for RRSIG expiry.
    const core::Clock* clock = &core::SystemClock::instance();
    std::chrono::steady_clock::time_point deadline() const {
        return std::chrono::steady_clock::now() + timeout;
    }
};

// One DKIM selector of a domain, with the private key that signs with it when there is one on disk.
struct Selector {
    std::string name;
    std::shared_ptr<const auth::dkim::SigningKey> key;  // null: only the published record is checked
};

// Every IP on every list (all lookups issued before any is waited for). Lists without IPv6 support
// are skipped for IPv6 addresses.
std::vector<Finding> check_lists(Probe& probe, const std::vector<core::IpAddress>& ips,
                                 const std::vector<WatchedList>& lists);
// PTR exists, forward-confirms (FCrDNS), names the host name we say in HELO, and is not generic.
std::vector<Finding> check_reverse_dns(Probe& probe, const core::IpAddress& ip, std::string_view hostname);
// The host name has A/AAAA records, and they include each sending IP.
std::vector<Finding> check_host(Probe& probe, std::string_view hostname,
                                const std::vector<core::IpAddress>& ips);
// The domain has MX records, and its MX hosts resolve (`hostname` is what the fix suggests).
std::vector<Finding> check_mx(Probe& probe, std::string_view domain, std::string_view hostname);
// One SPF record, valid, within the 10-term and 2-void-lookup limits, authorising each sending IP,
// ending in -all or ~all.
std::vector<Finding> check_spf(Probe& probe, std::string_view domain, const std::vector<core::IpAddress>& ips,
                               std::string_view hostname);
// Each selector's key is published, parses, matches the private key, is strong enough; and more than
// one algorithm is published.
std::vector<Finding> check_dkim(Probe& probe, std::string_view domain,
                                const std::vector<Selector>& selectors);
// The record: present, valid, policy strength, rua destinations authorised (RFC 7489 §7.1), and the
// DKIM signing domains of mail from `domain` aligned with it.
std::vector<Finding> check_dmarc(Probe& probe, std::string_view domain,
                                 const std::vector<std::string>& signing_domains);
// Whether the domain's answers validate (DNSSEC), read from the resolver's status of its SOA answer.
// A resolver that does not validate (--dns) leaves that unchecked; then the zone apex's DNSKEY and the
// RRSIGs over it say whether the zone is signed and whether its signatures are current.
std::vector<Finding> check_dnssec(Probe& probe, std::string_view domain);
// A note on port 25 for hosts that should not send mail (the contrib/nftables snippet).
Finding port25_note();

// The SPF record a domain should publish for these IPs: "v=spf1 ip4:... ip6:... -all"; `existing`
// (a record's text, may be empty) keeps its other terms and gets the missing IPs before its all.
std::string suggested_spf(std::string_view existing, const std::vector<core::IpAddress>& ips);

}  // namespace vigil::doctor
