#pragma once
// [dns]: where lookups go and how long a stage may wait for them.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "check/config_reader.hpp"
#include "dns/dns_limits.hpp"
#include "engine/overrides.hpp"

namespace vigil::engine {

struct DnsSettings {
    std::string server;  // HOST:PORT: every query to that one server, no validation
    std::chrono::milliseconds stage_budget{3000};
    std::size_t cache_bytes = dns::limits::default_cache_bytes;  // the shared cache's budget ([dns] cache_mb)

    static DnsSettings read(check::Section& s, const Overrides& overrides);
};

// Validates HOST:PORT (or [v6]:PORT) for the DNS override.
std::optional<std::string> dns_server_error(std::string_view spec);

}  // namespace vigil::engine
