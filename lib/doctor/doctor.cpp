#include "doctor/doctor.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "auth/dkim/dkim_check.hpp"
#include "core/printable.hpp"
#include "dns/resolver.hpp"
#include "engine/config.hpp"

namespace vigil::doctor {

namespace {

template <class T>
void add_unique(std::vector<T>& v, const T& x) {
    if (std::find(v.begin(), v.end(), x) == v.end()) v.push_back(x);
}

// The domain whose section reports a signing domain's keys: itself when it is one of ours, else the
// first of our domains it signs for (a d= shared by several From domains is checked once).
std::string dkim_owner(const Target& t, const std::string& signer) {
    if (std::find(t.domains.begin(), t.domains.end(), signer) != t.domains.end()) return signer;
    for (const auto& d : t.domains) {
        auto it = t.signing_domains.find(d);
        if (it != t.signing_domains.end() &&
            std::find(it->second.begin(), it->second.end(), signer) != it->second.end())
            return d;
    }
    return {};
}

}  // namespace

const std::vector<std::string_view>& areas() {
    static const std::vector<std::string_view> list = {"lists", "rdns",  "host",   "mx",    "spf",
                                                       "dkim",  "dmarc", "dnssec", "port25"};
    return list;
}

Target make_target(const engine::Config& config, const TargetOverrides& ov) {
    Target t;
    t.hostname = core::to_lower(ov.hostname.value_or(config.server.hostname));
    t.ips = ov.ips.empty() ? config.server.sending_ips : ov.ips;
    const auth::dkim::DkimCheck* dkim = nullptr;
    for (const auto& c : config.checks) {
        if (const auto* d = dynamic_cast<const auth::dkim::DkimCheck*>(c.get())) dkim = d;
    }
    if (!ov.domains.empty()) {
        for (const auto& d : ov.domains) add_unique(t.domains, core::to_lower(d));
    } else if (!config.server.domains.empty()) {
        t.domains = config.server.domains;
    } else if (dkim != nullptr) {
        for (const auto& k : dkim->options().keys) add_unique(t.domains, k->domain);
    }
    auto selectors_of = [&](const std::string& d) -> std::vector<Selector>& {
        for (auto& [name, sels] : t.dkim) {
            if (name == d) return sels;
        }
        return t.dkim.emplace_back(d, std::vector<Selector>{}).second;
    };
    for (const auto& from : t.domains) {
        if (!ov.selectors.empty()) {
            auto& sels = selectors_of(from);
            for (const auto& s : ov.selectors) {
                Selector sel{core::to_lower(s), nullptr};
                if (dkim != nullptr) {
                    for (const auto& k : dkim->options().keys) {
                        if (k->domain == from && k->selector == sel.name) sel.key = k;
                    }
                }
                sels.push_back(std::move(sel));
            }
            t.signing_domains[from].push_back(from);
            continue;
        }
        auto keys = dkim != nullptr ? dkim->keys_for(from)
                                    : std::vector<std::shared_ptr<const auth::dkim::SigningKey>>{};
        auto& signers = t.signing_domains[from];
        if (keys.empty()) selectors_of(from);  // reported: nothing signs this domain's mail
        for (const auto& k : keys) {
            add_unique(signers, k->domain);
            auto& sels = selectors_of(k->domain);
            bool seen = std::any_of(sels.begin(), sels.end(),
                                    [&](const Selector& s) { return s.name == k->selector; });
            if (!seen) sels.push_back({k->selector, k});
        }
    }
    return t;
}

std::vector<Finding> run(dns::Resolver& resolver, const Target& t, const RunOptions& options) {
    std::vector<Finding> out;
    auto want = [&](std::string_view area) { return options.skip.count(area) == 0; };
    auto append = [&](std::vector<Finding> more) {
        for (auto& f : more) out.push_back(std::move(f));
    };
    Probe probe{resolver, options.timeout};
    if (t.ips.empty() && (want("lists") || want("rdns") || want("spf"))) {
        out.push_back({"config", "config", Level::warn, "no sending IPs to check",
                       "Set [server] sending_ips = [\"<this server's public addresses>\"] or give --ip"});
    }
    if (t.domains.empty()) {
        out.push_back({"config", "config", Level::warn, "no domains to check",
                       "Set [server] domains = [\"example.com\"] or give --domain"});
    }
    if (want("lists")) append(check_lists(probe, t.ips, options.lists));
    if (want("rdns")) {
        for (const auto& ip : t.ips) append(check_reverse_dns(probe, ip, t.hostname));
    }
    if (want("host")) append(check_host(probe, t.hostname, t.ips));
    for (const auto& d : t.domains) {
        if (want("mx")) append(check_mx(probe, d, t.hostname));
        if (want("spf")) append(check_spf(probe, d, t.ips, t.hostname));
        if (want("dkim")) {
            for (const auto& [signer, sels] : t.dkim) {
                if (dkim_owner(t, signer) == d) append(check_dkim(probe, signer, sels));
            }
        }
        if (want("dmarc")) {
            auto it = t.signing_domains.find(d);
            append(check_dmarc(probe, d,
                               it == t.signing_domains.end() ? std::vector<std::string>{} : it->second));
        }
        if (want("dnssec")) append(check_dnssec(probe, d));
    }
    if (want("port25")) out.push_back(port25_note());
    return out;
}

}  // namespace vigil::doctor
