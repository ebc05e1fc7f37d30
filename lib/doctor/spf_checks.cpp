// SPF for each of our domains, judged with the milter's own evaluator (RFC 7208 check_host).
#include <algorithm>
#include <sstream>

#include <fmt/format.h>

#include "auth/spf/evaluator.hpp"
#include "auth/spf/record.hpp"
#include "auth/spf/spf_limits.hpp"
#include "core/printable.hpp"
#include "dns/resolver.hpp"
#include "doctor/checks.hpp"
#include "doctor/zone_text.hpp"

namespace vigil::doctor {

namespace spf = auth::spf;

namespace {

// An address no record names: evaluating it walks the whole record, so its counts are the record's
// worst case (an IP matched early stops counting early).
constexpr std::string_view probe_ip = "0.0.0.1";

Finding make(std::string subject, Level level, std::string reason, std::string fix = {}) {
    return Finding{"spf", std::move(subject), level, std::move(reason), std::move(fix)};
}

std::vector<std::string> split_terms(std::string_view record) {
    std::vector<std::string> out;
    std::istringstream in{std::string(record)};
    for (std::string t; in >> t;) out.push_back(t);
    return out;
}

bool is_all(std::string_view term) {
    if (!term.empty() && (term[0] == '+' || term[0] == '-' || term[0] == '~' || term[0] == '?'))
        term.remove_prefix(1);
    return core::iequals(term, "all");
}

bool names_ip(const std::vector<std::string>& terms, const core::IpAddress& ip) {
    auto want = fmt::format("{}:{}", ip.is_v4() ? "ip4" : "ip6", ip.to_string());
    return std::any_of(terms.begin(), terms.end(), [&](const std::string& t) {
        std::string_view v = t;
        if (!v.empty() && v[0] == '+') v.remove_prefix(1);
        return core::iequals(v, want) || core::iequals(v, want + (ip.is_v4() ? "/32" : "/128"));
    });
}

}  // namespace

std::string suggested_spf(std::string_view existing, const std::vector<core::IpAddress>& ips) {
    auto terms = split_terms(existing);
    if (terms.empty() || !spf::is_spf_record(existing)) terms = {"v=spf1"};
    // New terms go before the first all (or a redirect, which only applies without one).
    auto end = std::find_if(terms.begin() + 1, terms.end(), [](const std::string& t) {
        return is_all(t) || core::to_lower(t).rfind("redirect=", 0) == 0;
    });
    std::vector<std::string> added;
    for (const auto& ip : ips) {
        if (!names_ip(terms, ip))
            added.push_back(fmt::format("{}:{}", ip.is_v4() ? "ip4" : "ip6", ip.to_string()));
    }
    auto pos = terms.insert(end, added.begin(), added.end()) + static_cast<std::ptrdiff_t>(added.size());
    if (pos == terms.end()) {
        terms.emplace_back("-all");
    } else if (is_all(*pos) && ((*pos)[0] == '+' || (*pos)[0] == '?' || core::iequals(*pos, "all"))) {
        *pos = "-all";  // +all/?all authorise (or shrug at) everyone: what the fix is meant to end
    }
    std::string out;
    for (const auto& t : terms) out += (out.empty() ? "" : " ") + t;
    return out;
}

std::vector<Finding> check_spf(Probe& probe, std::string_view domain_in,
                               const std::vector<core::IpAddress>& ips, std::string_view hostname) {
    std::vector<Finding> out;
    const std::string domain(domain_in);
    auto txt = probe.resolver.lookup(domain, dns::RrType::txt).wait_until(probe.deadline());
    const auto fresh_fix = fmt::format("Publish: {}", txt_record(domain, suggested_spf("", ips)));
    if (txt.status == dns::Status::timeout || txt.status == dns::Status::servfail ||
        txt.status == dns::Status::malformed) {
        out.push_back(make(
            domain, Level::unknown,
            fmt::format("cannot tell: the TXT lookup of {} ended in {}", domain, dns::to_string(txt.status)),
            "Check that this host's resolver works, then run again."));
        return out;
    }
    std::vector<std::string> records;
    std::size_t seen = 0;
    for (const auto& r : txt.records) {
        if (r.type != dns::RrType::txt || ++seen > limits::max_txt_records) continue;
        auto joined = r.txt_joined();
        if (spf::is_spf_record(joined)) records.push_back(std::move(joined));
    }
    if (records.empty()) {
        out.push_back(make(domain, Level::fail,
                           fmt::format("no SPF record ({}): receivers cannot tell forged mail from ours",
                                       txt.ok() ? "no TXT record starts with v=spf1"
                                                : std::string(dns::to_string(txt.status))),
                           fresh_fix));
        return out;
    }
    if (records.size() > 1) {
        out.push_back(
            make(domain, Level::fail,
                 fmt::format("{} SPF records: receivers must treat that as a permanent error (RFC 7208 §4.5)",
                             records.size()),
                 fmt::format("Merge them into one and remove the others: {}",
                             txt_record(domain, suggested_spf(records.front(), ips)))));
        return out;
    }
    const auto& text = records.front();
    auto parsed = spf::parse_record(text);
    if (!parsed.ok()) {
        out.push_back(make(domain, Level::fail,
                           fmt::format("the SPF record does not parse: {} (\"{}\")", parsed.error,
                                       core::printable(text, limits::max_quoted)),
                           fmt::format("Replace it with: {}", txt_record(domain, suggested_spf("", ips)))));
        return out;
    }

    // The limits, over the whole tree of includes and redirects.
    spf::Options opt;
    const auto probe_addr = *core::IpAddress::parse(probe_ip);
    auto whole =
        spf::evaluate(probe.resolver, probe.deadline(), probe_addr, {"postmaster", domain}, hostname, opt);
    auto counts = fmt::format("{} of {} DNS-querying terms, {} of {} void lookups", whole.dns_terms,
                              spf::limits::max_dns_terms, whole.void_lookups, spf::limits::max_void_lookups);
    if (whole.result == spf::Result::temperror) {
        out.push_back(make(domain, Level::unknown,
                           fmt::format("cannot tell: evaluating the record ended in {}", whole.problem),
                           "Check that this host's resolver works, then run again."));
    } else if (whole.result == spf::Result::permerror) {
        out.push_back(make(
            domain, Level::fail,
            fmt::format(
                "the SPF record is a permanent error: {} ({}); receivers ignore it or reject our mail",
                whole.problem, counts),
            fmt::format(
                "Stay within {} terms that query DNS (include, a, mx, ptr, exists, redirect) and {} lookups "
                "that "
                "find nothing: replace a, mx and includes of your own with the ip4:/ip6: ranges they stand "
                "for, drop includes of services you no longer use, e.g. {}",
                spf::limits::max_dns_terms, spf::limits::max_void_lookups,
                txt_record(domain, suggested_spf("", ips)))));
    } else {
        out.push_back(make(domain, Level::ok, fmt::format("one valid SPF record: {}", counts)));
    }

    // How it ends.
    const auto& rec = *parsed.record;
    auto all = std::find_if(rec.mechanisms.begin(), rec.mechanisms.end(),
                            [](const spf::Mechanism& m) { return m.kind == spf::MechanismKind::all; });
    const auto ending_fix = fmt::format("Replace it with: {}", txt_record(domain, suggested_spf(text, {})));
    if (all == rec.mechanisms.end()) {
        if (rec.redirect) {
            out.push_back(make(
                domain, Level::ok,
                fmt::format("ends in redirect={} (its record decides)", core::printable(*rec.redirect, 80))));
        } else {
            out.push_back(
                make(domain, Level::warn,
                     "the SPF record has no all term: any host it does not name gets neutral, as if "
                     "there were no record",
                     ending_fix));
        }
    } else if (all->qualifier == spf::Qualifier::fail || all->qualifier == spf::Qualifier::softfail) {
        out.push_back(make(domain, Level::ok, fmt::format("ends in {}", all->text)));
    } else if (all->qualifier == spf::Qualifier::pass) {
        out.push_back(
            make(domain, Level::warn,
                 fmt::format("ends in {}: every host on the internet may send as {}, SPF protects nothing",
                             all->text, domain),
                 ending_fix));
    } else {
        out.push_back(
            make(domain, Level::warn,
                 fmt::format("ends in {}: hosts it does not name get neutral, as if there were no record",
                             all->text),
                 ending_fix));
    }

    // Each sending IP, evaluated as a receiver would.
    for (const auto& ip : ips) {
        auto o = spf::evaluate(probe.resolver, probe.deadline(), ip, {"postmaster", domain}, hostname, opt);
        auto subject = domain;
        switch (o.result) {
            case spf::Result::pass:
                out.push_back(
                    make(subject, Level::ok,
                         fmt::format("{} is authorised (spf=pass by {})", ip.to_string(), o.mechanism)));
                break;
            case spf::Result::temperror:
                out.push_back(
                    make(subject, Level::unknown,
                         fmt::format("cannot tell whether {} is authorised: {}", ip.to_string(), o.problem),
                         "Check that this host's resolver works, then run again."));
                break;
            case spf::Result::permerror:
                out.push_back(
                    make(subject, Level::fail,
                         fmt::format("{} cannot be authorised: the record is a permanent error ({})",
                                     ip.to_string(), o.problem),
                         fmt::format("Publish: {}", txt_record(domain, suggested_spf("", ips)))));
                break;
            default:
                out.push_back(make(
                    subject, Level::fail,
                    fmt::format("{} is not authorised: spf={}{}", ip.to_string(), spf::to_string(o.result),
                                o.mechanism.empty() ? "" : " by " + o.mechanism),
                    fmt::format("Publish: {}", txt_record(domain, suggested_spf(text, ips)))));
                break;
        }
    }
    return out;
}

}  // namespace vigil::doctor
