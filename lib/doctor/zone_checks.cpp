// MX and DNSSEC of each of our domains.
#include <algorithm>

#include <fmt/format.h>

#include "core/printable.hpp"
#include "dns/resolver.hpp"
#include "doctor/checks.hpp"

namespace vigil::doctor {

namespace {

// MX hosts whose addresses are looked up (RFC 7208 uses the same bound for its mx mechanism).
constexpr std::size_t max_mx_hosts = 10;

bool failed(dns::Status s) {
    return s == dns::Status::timeout || s == dns::Status::servfail || s == dns::Status::malformed;
}

const char* retry = "Check that this host's resolver works, then run again.";

}  // namespace

std::vector<Finding> check_mx(Probe& probe, std::string_view domain_in, std::string_view hostname) {
    std::vector<Finding> out;
    const std::string domain(domain_in);
    auto f = [&](Level level, std::string reason, std::string fix = {}) {
        out.push_back(Finding{"mx", domain, level, std::move(reason), std::move(fix)});
    };
    auto mx = probe.resolver.lookup(domain, dns::RrType::mx).wait_until(probe.deadline());
    if (failed(mx.status)) {
        f(Level::unknown, fmt::format("cannot tell: the MX lookup ended in {}", dns::to_string(mx.status)),
          retry);
        return out;
    }
    const auto publish_mx = fmt::format("Publish: {}. IN MX 10 {}.", domain, core::to_lower(hostname));
    if (mx.status == dns::Status::nxdomain) {
        f(Level::fail, fmt::format("{} does not exist in the DNS (NXDOMAIN)", domain),
          "Register the domain or fix its name in [server] domains");
        return out;
    }
    if (mx.status == dns::Status::nodata) {
        f(Level::warn,
          "no MX record: mail to the domain falls back to its address record (RFC 5321 §5.1), and receivers "
          "distrust senders whose domain takes no mail",
          publish_mx);
        return out;
    }
    std::vector<std::pair<std::uint16_t, std::string>> hosts;
    for (const auto& r : mx.records) hosts.emplace_back(r.preference, r.target);
    std::sort(hosts.begin(), hosts.end());
    if (hosts.size() == 1 && hosts.front().second.empty()) {
        f(Level::warn,
          "null MX (RFC 7505): the domain takes no mail, so replies and bounces to our mail are lost",
          fmt::format("If mail to {} should arrive: {}", domain, publish_mx));
        return out;
    }
    if (hosts.size() > max_mx_hosts) hosts.resize(max_mx_hosts);
    struct Lookup {
        std::string host;
        dns::Pending a, aaaa;
    };
    std::vector<Lookup> lookups;
    for (const auto& [pref, host] : hosts) {
        if (host.empty()) continue;
        lookups.push_back({host, probe.resolver.lookup(host, dns::RrType::a),
                           probe.resolver.lookup(host, dns::RrType::aaaa)});
    }
    auto deadline = probe.deadline();
    std::string list;
    for (const auto& [pref, host] : hosts)
        list += fmt::format("{}{} {}", list.empty() ? "" : ", ", pref, core::printable(host, 80));
    bool all_good = true;
    for (auto& l : lookups) {
        auto a = l.a.wait_until(deadline), aaaa = l.aaaa.wait_until(deadline);
        if (a.ok() || aaaa.ok()) continue;
        all_good = false;
        if (failed(a.status) || failed(aaaa.status)) {
            f(Level::unknown,
              fmt::format("cannot tell whether MX host {} resolves ({} / {})", core::printable(l.host, 80),
                          dns::to_string(a.status), dns::to_string(aaaa.status)),
              retry);
        } else {
            f(Level::fail,
              fmt::format("MX host {} has no A or AAAA record: mail to {} cannot be delivered there",
                          core::printable(l.host, 80), domain),
              fmt::format("Publish: {}. IN A <its address>, or point the MX at a host that has one",
                          core::printable(l.host, 80)));
        }
    }
    if (all_good) f(Level::ok, fmt::format("MX {}", list));
    return out;
}

std::vector<Finding> check_dnssec(Probe& probe, std::string_view domain_in) {
    const std::string domain(domain_in);
    auto soa = probe.resolver.lookup(domain, dns::RrType::soa).wait_until(probe.deadline());
    Finding f{"dnssec", domain, Level::unknown, {}, {}};
    switch (soa.dnssec) {
        case dns::Dnssec::secure:
            f.level = Level::ok;
            f.reason = "the zone is signed and its answers validate (DNSSEC secure)";
            break;
        case dns::Dnssec::insecure:
            f.level = Level::warn;
            f.reason =
                "the zone is not signed (DNSSEC insecure): its answers, SPF, DKIM and DMARC records "
                "included, "
                "can be forged on the way";
            f.fix = "Sign the zone at your DNS host and publish its DS record at your registrar";
            break;
        case dns::Dnssec::bogus:
            f.level = Level::fail;
            f.reason = fmt::format(
                "the zone's signatures do not validate (DNSSEC bogus: {}): validating resolvers "
                "answer SERVFAIL for it",
                core::printable(soa.detail, limits::max_quoted));
            f.fix =
                "Re-sign the zone (expired signatures?) or make the DS at the registrar match its current "
                "key";
            break;
        case dns::Dnssec::unchecked:
            f.level = Level::unknown;
            f.reason =
                failed(soa.status)
                    ? fmt::format("cannot tell: the SOA lookup ended in {}", dns::to_string(soa.status))
                    : "cannot tell: this resolver does not validate (with --dns or [dns] server every query "
                      "goes "
                      "to one server without DNSSEC validation), so signed or not cannot be seen";
            f.fix = failed(soa.status)
                        ? retry
                        : "Run vigil doctor without --dns and with [dns] server empty, so that "
                          "answers are validated";
            break;
    }
    return {f};
}

}  // namespace vigil::doctor
