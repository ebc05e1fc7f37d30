#pragma once
// The long-lived services one process shares among all sessions: the DNS resolver and its cache.
// Built once at start (never per message: DESIGN.md, OpenDKIM's resolver-per-message cost).
#include <memory>

#include "core/clock.hpp"
#include "engine/dns_settings.hpp"
#include "engine/session.hpp"

namespace vigil::dns {
class CachingResolver;
}

namespace vigil::engine {

class Runtime {
  public:
    // Uses config.dns.server when set (one server, no validation), else full recursion with DNSSEC
    // validation. Throws std::runtime_error when the resolver cannot be set up.
    explicit Runtime(const DnsSettings& dns, const core::Clock& clock = core::SystemClock::instance());
    ~Runtime();

    Services services() const;
    dns::CachingResolver& cache() const { return *cache_; }
    // What the resolver was built for; a reload that changes it needs a restart.
    const std::string& dns_server() const { return dns_server_; }
    // The DMARC aggregate-report store handed to checks; null (the default) keeps reporting off.
    void set_dmarc_store(std::shared_ptr<report::DmarcStore> store) { dmarc_store_ = std::move(store); }

  private:
    const core::Clock* clock_;
    std::shared_ptr<dns::CachingResolver> cache_;
    std::string dns_server_;
    std::shared_ptr<report::DmarcStore> dmarc_store_;
};

}  // namespace vigil::engine
