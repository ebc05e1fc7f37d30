#include "engine/runtime.hpp"

#include <algorithm>

#include "dns/cache.hpp"
#include "dns/dns_limits.hpp"
#include "dns/unbound_resolver.hpp"

namespace vigil::engine {

Runtime::Runtime(const DnsSettings& dns, const core::Clock& clock) : clock_(&clock), dns_server_(dns.server) {
    dns::UnboundOptions opts;
    if (!dns.server.empty()) {
        opts.mode = dns::UnboundOptions::Mode::single_server;
        opts.single_server = dns.server;
        opts.dnssec = false;
    }
    // A lookup never needs to outlive the stage that asked for it by much.
    opts.query_timeout = std::min<std::chrono::milliseconds>(
        dns.stage_budget + std::chrono::milliseconds(1000), dns::limits::max_query_timeout);
    auto upstream = std::make_shared<dns::UnboundResolver>(opts);
    dns::CacheOptions cache_options;
    cache_options.max_bytes = dns.cache_bytes;
    cache_ = std::make_shared<dns::CachingResolver>(std::move(upstream), clock, cache_options);
}

Runtime::~Runtime() = default;

Services Runtime::services() const {
    return Services{clock_, cache_.get(), cache_.get(), dmarc_store_.get()};
}

}  // namespace vigil::engine
