// The per-IP areas (block/allow lists, reverse DNS), the host name's addresses, and the port 25 note.
#include <algorithm>

#include <fmt/format.h>

#include "core/printable.hpp"
#include "dns/resolver.hpp"
#include "doctor/checks.hpp"
#include "reputation/iprev.hpp"

namespace vigil::doctor {

namespace {

Finding make(std::string_view area, std::string subject, Level level, std::string reason,
             std::string fix = {}) {
    return Finding{std::string(area), std::move(subject), level, std::move(reason), std::move(fix)};
}

std::string address_record(std::string_view host, const core::IpAddress& ip) {
    return fmt::format("{}. IN {} {}", host, ip.is_v4() ? "A" : "AAAA", ip.to_string());
}

std::string ptr_record(const core::IpAddress& ip, std::string_view host) {
    return fmt::format("{}. IN PTR {}.", dns::reverse_name(ip), host);
}

bool failed(dns::Status s) {
    return s == dns::Status::timeout || s == dns::Status::servfail;
}

}  // namespace

std::vector<Finding> check_lists(Probe& probe, const std::vector<core::IpAddress>& ips,
                                 const std::vector<WatchedList>& lists) {
    struct Lookup {
        const core::IpAddress* ip;
        const WatchedList* list;
        dns::Pending pending;
    };
    std::vector<Lookup> lookups;
    for (const auto& ip : ips) {
        for (const auto& l : lists) {
            if (!ip.is_v4() && !l.list.ipv6) continue;
            lookups.push_back(
                {&ip, &l,
                 probe.resolver.lookup(reputation::dnsbl_query_name(ip, l.list.zone), dns::RrType::a)});
        }
    }
    auto deadline = probe.deadline();
    std::vector<Finding> out;
    for (auto& l : lookups) out.push_back(list_finding(*l.list, *l.ip, l.pending.wait_until(deadline)));
    return out;
}

std::vector<Finding> check_reverse_dns(Probe& probe, const core::IpAddress& ip, std::string_view hostname) {
    std::vector<Finding> out;
    const auto subject = ip.to_string();
    const auto host = core::to_lower(hostname);
    auto ptr = probe.resolver.lookup(dns::reverse_name(ip), dns::RrType::ptr);
    auto ev = reputation::evaluate_iprev(probe.resolver, ip, ptr, probe.deadline());
    auto options = [&] {
        std::string s;
        for (const auto& o : ev.options) s += (s.empty() ? "" : ", ") + o;
        return s;
    };
    std::string names;
    for (const auto& n : ev.names) names += (names.empty() ? "" : ", ") + core::printable(n, 80);
    const bool names_host = std::find(ev.names.begin(), ev.names.end(), host) != ev.names.end();

    if (ev.result == "temperror") {
        out.push_back(make("rdns", subject, Level::unknown,
                           fmt::format("cannot tell: the reverse DNS lookups ended in {}", options()),
                           "Check that this host's resolver works, then run again."));
        return out;
    }
    if (ev.symbol == "IPREV_NO_PTR") {
        out.push_back(make(
            "rdns", subject, Level::fail,
            fmt::format("no PTR record for {} ({}): many receivers refuse such mail", subject, ev.ptr_status),
            fmt::format("Ask whoever holds {} (your hosting provider or ISP: the reverse zone is theirs) to "
                        "publish: {}",
                        subject, ptr_record(ip, host))));
        return out;
    }
    if (ev.symbol == "IPREV_PERMERROR") {
        out.push_back(make("rdns", subject, Level::fail,
                           fmt::format("reverse DNS is unusable: {}", options()),
                           fmt::format("Ask whoever holds {} to replace its PTR data with: {}", subject,
                                       ptr_record(ip, host))));
        return out;
    }
    if (ev.result == "fail") {
        std::string fix;
        if (names_host) {
            fix = fmt::format("Publish: {}", address_record(host, ip));
        } else {
            fix = fmt::format("Have the PTR of {} set to {} ({}) and publish: {}", subject, host,
                              ptr_record(ip, host), address_record(host, ip));
        }
        out.push_back(make("rdns", subject, Level::fail,
                           fmt::format("PTR {} does not resolve back to {} (FCrDNS fails)", names, subject),
                           fix));
    } else {
        out.push_back(make(
            "rdns", subject, Level::ok,
            fmt::format("PTR {} resolves back to {} (FCrDNS)", core::printable(*ev.confirmed, 80), subject)));
    }
    if (names_host) {
        out.push_back(make("rdns", subject, Level::ok,
                           fmt::format("PTR names {}, the host name we say in HELO", host)));
    } else {
        const auto& other = ev.confirmed ? *ev.confirmed : ev.names.front();
        out.push_back(make(
            "rdns", subject, Level::warn,
            fmt::format("PTR {} does not name {}, the host name we say in HELO", names, host),
            fmt::format("Have the PTR of {} set to {} ({}), or make the server say {}: [server] hostname "
                        "= \"{}\" and Postfix smtp_helo_name = {}",
                        subject, host, ptr_record(ip, host), core::printable(other, 80),
                        core::printable(other, 80), core::printable(other, 80))));
    }
    if (ev.generic) {
        const auto& judged = ev.confirmed ? *ev.confirmed : ev.names.front();
        out.push_back(
            make("rdns", subject, Level::warn,
                 fmt::format("PTR {} looks generic (dynamic/end-user): receivers score such names as spam",
                             core::printable(judged, 80)),
                 fmt::format("Ask for a PTR that names your mail server: {}", ptr_record(ip, host))));
    }
    return out;
}

std::vector<Finding> check_host(Probe& probe, std::string_view hostname,
                                const std::vector<core::IpAddress>& ips) {
    std::vector<Finding> out;
    const auto host = core::to_lower(hostname);
    const auto q = dns::normalize_query_name(host);
    if (!q.ok() || host.find('.') == std::string::npos) {
        out.push_back(
            make("host", core::printable(host, 80), Level::fail,
                 "the host name is not a fully qualified domain name; receivers distrust such a HELO",
                 "Set [server] hostname (and Postfix myhostname) to the mail server's name, e.g. "
                 "\"mail.example.com\""));
        return out;
    }
    auto a = probe.resolver.lookup(host, dns::RrType::a);
    auto aaaa = probe.resolver.lookup(host, dns::RrType::aaaa);
    auto deadline = probe.deadline();
    auto ra = a.wait_until(deadline), raaaa = aaaa.wait_until(deadline);
    std::vector<core::IpAddress> addrs;
    for (const auto* ans : {&ra, &raaaa}) {
        for (const auto& r : ans->records) {
            if (r.address) addrs.push_back(r.address->unmapped());
        }
    }
    std::string fix_all;
    for (const auto& ip : ips) fix_all += (fix_all.empty() ? "Publish: " : "; ") + address_record(host, ip);
    if (addrs.empty()) {
        if (failed(ra.status) || failed(raaaa.status)) {
            out.push_back(make("host", host, Level::unknown,
                               fmt::format("cannot tell: the address lookups ended in {} / {}",
                                           dns::to_string(ra.status), dns::to_string(raaaa.status)),
                               "Check that this host's resolver works, then run again."));
        } else {
            out.push_back(make(
                "host", host, Level::fail,
                fmt::format("{} has no A or AAAA record ({}): the name we say in HELO does not exist", host,
                            dns::to_string(ra.status)),
                fix_all.empty() ? fmt::format("Publish: {}. IN A <the server's address>", host) : fix_all));
        }
        return out;
    }
    std::string list;
    for (const auto& ip : addrs) list += (list.empty() ? "" : ", ") + ip.to_string();
    out.push_back(make("host", host, Level::ok, fmt::format("{} resolves to {}", host, list)));
    for (const auto& ip : ips) {
        if (std::find(addrs.begin(), addrs.end(), ip) != addrs.end()) continue;
        out.push_back(make("host", host, Level::warn,
                           fmt::format("{} does not resolve to the sending IP {}", host, ip.to_string()),
                           fmt::format("Publish: {} (or send from {} only from an address it resolves to)",
                                       address_record(host, ip), host)));
    }
    return out;
}

Finding port25_note() {
    return make(
        "port25", "this host", Level::ok,
        "note: hosts that should not send mail themselves (web, database, desktop) should not reach port 25 "
        "at all; a compromised one then cannot get this server's network listed",
        "On those hosts: nft -f contrib/nftables/block-outbound-smtp.nft (see contrib/nftables/README)");
}

}  // namespace vigil::doctor
