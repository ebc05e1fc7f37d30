// MX and DNSSEC of each of our domains.
#include <algorithm>
#include <cstdint>
#include <ctime>

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

namespace {

const char* sign_fix = "Sign the zone at your DNS host and publish its DS record at your registrar";
const char* validate_fix =
    "Run vigil doctor without --dns and with [dns] server empty (or with a validating resolver), so that "
    "answers are validated";
// Signers re-sign days before expiry; a signature this close to it means re-signing has stopped.
constexpr std::int64_t expiry_warning_seconds = 3 * 24 * 3600;

std::string utc(std::int64_t seconds) {
    std::time_t t = static_cast<std::time_t>(seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    return fmt::format("{:04}-{:02}-{:02} {:02}:{:02} UTC", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                       tm.tm_hour, tm.tm_min);
}

// RFC 8624 §3.1: MUST NOT (1, 3, 6, 12) or NOT RECOMMENDED (5, 7) for signing; validators such as
// RHEL 9's treat SHA-1 zones as unsigned.
bool outdated_algorithm(std::uint8_t a) {
    return a == 1 || a == 3 || a == 5 || a == 6 || a == 7 || a == 12;
}

// The zone a domain's records live in: the domain itself, or the closest parent with an SOA (a From
// domain such as news.example.com is often a name inside example.com's zone). Top-level domains are
// not tried. Empty with `why` set when no apex could be found.
std::string zone_apex(Probe& probe, const std::string& domain, const dns::Answer& first, std::string& why) {
    std::string name = domain;
    dns::Answer soa = first;
    for (std::size_t up = 0;; ++up) {
        if (soa.ok()) return name;
        if (soa.status != dns::Status::nodata) {
            why = fmt::format("the SOA lookup of {} ended in {}", name, dns::to_string(soa.status));
            return {};
        }
        auto dot = name.find('.');
        if (up == limits::max_parent_zones || dot == std::string::npos ||
            name.find('.', dot + 1) == std::string::npos) {
            why = fmt::format("no zone apex (SOA) found at or above {}", domain);
            return {};
        }
        name.erase(0, dot + 1);
        soa = probe.resolver.lookup(name, dns::RrType::soa).wait_until(probe.deadline());
    }
}

// Without a validating resolver we ask the zone itself: DNSKEY at the apex, with the RRSIGs that come
// with the DO bit. Levels, as a mail admin weighs them:
//  - no DNSKEY: warn, as "insecure" from a validator. Most mail domains are unsigned and their mail
//    flows, so it is not a failure, but their SPF/DKIM/DMARC answers can be forged and DANE (RFC 7672)
//    is impossible for them.
//  - signed, a current signature: ok, with the caveat in the reason. What could be seen is right; what
//    could not (the DS at the registrar, the signature maths) needs a validator. A warning nobody can act
//    on from here would make every --dns run exit 1 and teach cron to ignore the doctor.
//  - signatures expired: fail. Expiry is how signed zones break in practice: validating resolvers then
//    answer SERVFAIL for every name in the zone, MX and DKIM keys included, and mail to and from the
//    domain stops for their users. Expiring within days, not yet valid (or our clock is off), or an
//    algorithm validators are dropping: warn.
//  - DNSKEY without RRSIG, or a failed lookup: unknown ("cannot tell"); a forwarder may strip RRSIGs.
Finding unvalidated(Probe& probe, const std::string& domain, const dns::Answer& soa) {
    Finding f{"dnssec", domain, Level::unknown, {}, {}};
    std::string why;
    const std::string apex = zone_apex(probe, domain, soa, why);
    if (apex.empty()) {
        f.reason = "cannot tell: " + why;
        f.fix = retry;
        return f;
    }
    auto keys = probe.resolver.lookup(apex, dns::RrType::dnskey).wait_until(probe.deadline());
    const std::string zone = apex == domain ? "the zone" : fmt::format("its zone {}", apex);
    if (keys.status == dns::Status::nodata || keys.status == dns::Status::nxdomain) {
        f.level = Level::warn;
        f.reason = fmt::format(
            "{} is not signed (no DNSKEY): its answers, SPF, DKIM and DMARC records included, can be forged "
            "on the way",
            zone);
        f.fix = sign_fix;
        return f;
    }
    if (!keys.ok()) {
        f.reason = fmt::format("cannot tell: the DNSKEY lookup of {} ended in {}", apex,
                               dns::to_string(keys.status));
        f.fix = retry;
        return f;
    }
    if (keys.signatures.empty()) {
        f.reason = fmt::format(
            "cannot tell: {} publishes DNSKEY records but no RRSIG came with them (this resolver may strip "
            "DNSSEC records)",
            zone);
        f.fix = validate_fix;
        return f;
    }
    // RFC 4034 §3.1.5: serial-number arithmetic on 32-bit seconds, so this stays right past 2106.
    const std::int64_t now_s =
        std::chrono::duration_cast<std::chrono::seconds>(probe.clock->now().time_since_epoch()).count();
    const auto now = static_cast<std::uint32_t>(now_s);
    const dns::Signature* current = nullptr;  // the valid one that lasts longest
    const dns::Signature* latest = nullptr;   // otherwise the one that expired last
    bool future = false;
    auto left = [&](const dns::Signature& s) {
        return std::int64_t{static_cast<std::int32_t>(s.expiration - now)};
    };
    for (const auto& s : keys.signatures) {
        const bool started = static_cast<std::int32_t>(now - s.inception) >= 0;
        future = future || !started;
        if (started && left(s) >= 0 && (current == nullptr || left(s) > left(*current))) current = &s;
        if (latest == nullptr || left(s) > left(*latest)) latest = &s;
    }
    if (current == nullptr && !future) {
        f.level = Level::fail;
        f.reason = fmt::format(
            "{} is signed but its DNSKEY signatures expired on {}: validating resolvers answer SERVFAIL for "
            "every name in it, MX and DKIM keys included",
            zone, utc(now_s + left(*latest)));
        f.fix =
            "Re-sign the zone now, then find out why automatic re-signing stopped (signer's timer, DNS host)";
        return f;
    }
    if (current == nullptr) {
        f.level = Level::warn;
        f.reason = fmt::format(
            "{} is signed but its DNSKEY signatures are not valid yet (is this host's clock right?)", zone);
        f.fix = "Check this host's clock (timedatectl), then the signer's";
        return f;
    }
    const std::string signed_text =
        fmt::format("{} is signed (algorithm {}, key tag {}, signatures valid until {})", zone,
                    current->algorithm, current->key_tag, utc(now_s + left(*current)));
    const std::string caveat =
        "validation not checked: this resolver does not validate; run without --dns or with a validating "
        "resolver to confirm";
    if (left(*current) < expiry_warning_seconds) {
        f.level = Level::warn;
        f.reason =
            fmt::format("{}: they expire in under {} days; then validating resolvers answer SERVFAIL for it",
                        signed_text, expiry_warning_seconds / (24 * 3600));
        f.fix =
            "Check that the zone is re-signed automatically (signer's timer, DNS host) and re-sign it now";
    } else if (outdated_algorithm(current->algorithm)) {
        f.level = Level::warn;
        f.reason = fmt::format(
            "{}, but with an algorithm validators are dropping (RFC 8624): some already treat the "
            "zone as unsigned",
            signed_text);
        f.fix =
            "Roll the zone to algorithm 13 (ECDSAP256SHA256) or 15 (Ed25519) and update the DS at your "
            "registrar";
    } else {
        f.level = Level::ok;
        f.reason = fmt::format("{}; {}", signed_text, caveat);
    }
    return f;
}

}  // namespace

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
                "included, can be forged on the way";
            f.fix = sign_fix;
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
            if (!failed(soa.status)) return {unvalidated(probe, domain, soa)};
            f.level = Level::unknown;
            f.reason = fmt::format("cannot tell: the SOA lookup ended in {}", dns::to_string(soa.status));
            f.fix = retry;
            break;
    }
    return {f};
}

}  // namespace vigil::doctor
