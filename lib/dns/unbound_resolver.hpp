#pragma once
// The real Resolver: libunbound, asynchronous and (unless told otherwise) DNSSEC-validating.
//
// One UnboundResolver owns one ub_ctx and one I/O thread. Create exactly one per process (the daemon
// owns it and hands `Resolver&`/shared_ptr down, normally behind a CachingResolver); never one per
// message or per query — creating a resolver context per message is where OpenDKIM spends 74 % of its
// instructions (DESIGN.md). libunbound headers stay inside the .cpp.
//
// How results map:
//   NOERROR with data -> answer; NOERROR without -> nodata; NXDOMAIN -> nxdomain;
//   SERVFAIL, REFUSED, FORMERR, any other rcode, or a libunbound error -> servfail (detail names it);
//   no result within query_timeout -> timeout; undecodable rdata or TXT over limits::max_txt_bytes ->
//   malformed; more than limits::max_records_per_answer records -> the first ones, detail says so.
// DNSSEC: secure -> Dnssec::secure; bogus -> Dnssec::bogus with the status and records the rcode gives
// and unbound's reason in `detail`. The answer is not turned into servfail here because what a bogus
// answer means is a policy question (a DKIM key under a broken signature is not the same as a missing
// one); callers that need authenticity must check `dnssec`. CachingResolver keeps bogus answers at
// most limits::bogus_ttl. Validation off (dnssec = false, or single_server mode) -> Dnssec::unchecked.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dns/dns_limits.hpp"
#include "dns/resolver.hpp"

struct ub_result;  // libunbound's result; only the .cpp (and tests) see its definition

namespace vigil::dns {

struct UnboundOptions {
    // Scoped, because the enumerator single_server would otherwise clash with the member below.
    enum class Mode {
        recursive,      // full recursion from the root hints, validating with the trust anchor
        forward,        // send everything to `forwarders` (recursive resolvers); validate if `dnssec`
        single_server,  // the `--dns HOST:PORT` contract: one server, answers as they come, no validation
    };
    Mode mode = Mode::recursive;
    // "IP" or "IP@PORT" (IPv6 too; "[::1]:53" and "127.0.0.1:53" are accepted as well). Empty in
    // forward mode means the nameservers of /etc/resolv.conf.
    std::vector<std::string> forwarders;
    // "HOST:PORT", e.g. "127.0.0.1:5353" or "[::1]:5353"; HOST must be an IP address literal.
    std::string single_server;
    bool dnssec = true;
    // Read-only DNSKEY/DS file (Debian dns-root-data). Loaded with ub_ctx_add_ta_file, not the RFC 5011
    // auto-update variant, which would need to write to it.
    std::string trust_anchor_file = "/usr/share/dns/root.key";
    // Root hints for recursive mode; empty uses the copy compiled into libunbound.
    std::string root_hints_file;
    // A lookup still unanswered after this completes with Status::timeout and is cancelled.
    // 1 ms .. limits::max_query_timeout.
    std::chrono::milliseconds query_timeout = limits::default_query_timeout;
};

class UnboundResolver final : public Resolver {
  public:
    using Options = UnboundOptions;

    struct Stats {
        std::uint64_t queries = 0;   // sent to libunbound
        std::uint64_t answered = 0;  // completed by libunbound (any status)
        std::uint64_t timeouts = 0;  // completed by query_timeout
        std::uint64_t errors = 0;    // libunbound refused the query or reported an error
        std::size_t in_flight = 0;
    };

    // Builds and configures the context and starts the I/O thread. Throws std::runtime_error on a bad
    // option (an unparsable address, an unreadable trust anchor); start-up is the only place it throws.
    explicit UnboundResolver(const Options& options);
    // Stops the I/O thread; lookups still in flight complete with servfail ("resolver shut down").
    ~UnboundResolver() override;
    UnboundResolver(const UnboundResolver&) = delete;
    UnboundResolver& operator=(const UnboundResolver&) = delete;

    Pending lookup(std::string_view name, RrType type) override;
    Stats stats() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

namespace detail {
// How one libunbound result becomes an Answer, as documented at the top of this file. Exposed so that
// the mapping (secure/bogus, rcodes, TTL clamping, caps) can be unit-tested without a DNS server.
Answer answer_from_unbound(int err, const ub_result* result, RrType type, bool validating);
}  // namespace detail

// "127.0.0.1:5353", "127.0.0.1@5353", "[::1]:5353", "::1", "192.0.2.1" -> libunbound's "IP@PORT" form
// ("IP" when no port is given). nullopt if the host is not an IP literal or the port is not 1..65535.
std::optional<std::string> unbound_server_address(std::string_view text);

}  // namespace vigil::dns
