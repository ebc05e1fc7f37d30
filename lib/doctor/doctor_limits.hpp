#pragma once
// Caps on what `vigil doctor` and the reputation monitor look at. The records they read come from
// zones the operator controls, but a typo or a hostile third-party zone (an rua destination, an
// include) must still not make a run unbounded.
#include <chrono>
#include <cstddef>

#include "engine/server_settings.hpp"
#include "reputation/monitor_settings.hpp"

namespace vigil::doctor::limits {

// Sending IPs, domains and DKIM selectors of one run (config or command line); more is an error.
inline constexpr std::size_t max_ips = engine::max_sending_ips;
inline constexpr std::size_t max_domains = engine::max_domains;
inline constexpr std::size_t max_selectors = 16;  // per domain
// DMARC rua/ruf destinations whose external authorisation (RFC 7489 §7.1) is looked up.
inline constexpr std::size_t max_report_destinations = 8;
// TXT records of one name looked at when counting SPF or DMARC records.
inline constexpr std::size_t max_txt_records = 100;
// Parent names tried when looking for a domain's zone apex (DNSSEC without a validating resolver).
inline constexpr std::size_t max_parent_zones = 8;
// Record text quoted in a finding's reason is cut to this many printable bytes.
inline constexpr std::size_t max_quoted = 200;
// Each group of lookups (one area of one subject) waits at most this long by default.
inline constexpr std::chrono::milliseconds default_timeout{5000};
// The monitor's interval: [monitor] interval is bounded by these.
inline constexpr std::chrono::seconds min_interval = reputation::min_monitor_interval;
inline constexpr std::chrono::seconds max_interval = reputation::max_monitor_interval;
inline constexpr std::chrono::seconds default_interval{3600};
// How often a monitor round waiting on DNS looks at its stop flag, so SIGTERM is never delayed long.
inline constexpr std::chrono::milliseconds stop_poll{100};

}  // namespace vigil::doctor::limits
