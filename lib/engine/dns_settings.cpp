#include "engine/dns_settings.hpp"

#include <charconv>

#include <fmt/format.h>

#include "core/ip_address.hpp"

namespace vigil::engine {

std::optional<std::string> dns_server_error(std::string_view spec) {
    std::string_view host, port;
    if (!spec.empty() && spec.front() == '[') {
        auto close = spec.find(']');
        if (close == std::string_view::npos || close + 1 >= spec.size() || spec[close + 1] != ':') {
            return "expected [IPv6]:PORT";
        }
        host = spec.substr(1, close - 1);
        port = spec.substr(close + 2);
    } else {
        auto colon = spec.rfind(':');
        if (colon == std::string_view::npos) return "expected HOST:PORT, e.g. 127.0.0.1:53";
        host = spec.substr(0, colon);
        port = spec.substr(colon + 1);
    }
    if (!core::IpAddress::parse(host)) return fmt::format("'{}' is not an IP address", host);
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535) {
        return "port must be 1 to 65535";
    }
    return std::nullopt;
}

DnsSettings DnsSettings::read(check::Section& s, const Overrides& ov) {
    DnsSettings d;
    d.server = ov.dns_server.value_or(s.get_string("server", ""));
    if (!d.server.empty()) {
        if (auto e = dns_server_error(d.server)) {
            if (ov.dns_server) {
                s.errors().add_plain(fmt::format("--dns {}: {}", d.server, *e));
            } else {
                s.error("server", *e);
            }
        }
    }
    d.stage_budget = std::chrono::milliseconds(s.get_int("stage_budget_ms", 3000, 10, 60000));
    d.cache_bytes = static_cast<std::size_t>(s.get_int(
                        "cache_mb", static_cast<std::int64_t>(dns::limits::default_cache_bytes >> 20), 1,
                        static_cast<std::int64_t>(dns::limits::max_cache_mb)))
                    << 20;
    s.finish();
    return d;
}

}  // namespace vigil::engine
