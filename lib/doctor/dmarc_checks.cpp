// DMARC of each of our domains: the record, its reports' destinations, and whether the keys that
// sign our mail align with the From domain.
#include <algorithm>

#include <fmt/format.h>

#include "auth/dmarc/alignment.hpp"
#include "auth/dmarc/org_domain.hpp"
#include "auth/dmarc/record.hpp"
#include "core/printable.hpp"
#include "dns/resolver.hpp"
#include "doctor/checks.hpp"
#include "doctor/zone_text.hpp"

namespace vigil::doctor {

namespace dm = auth::dmarc;

namespace {

const char* retry = "Check that this host's resolver works, then run again.";

bool failed(dns::Status s) {
    return s == dns::Status::timeout || s == dns::Status::servfail || s == dns::Status::malformed;
}

// Without a Public Suffix List every name is its own organizational domain: alignment is then
// judged strictly, which can only over-report.
std::string org_of(const dm::PublicSuffixList* psl, std::string_view name) {
    if (psl != nullptr) {
        auto org = dm::organizational_domain(*psl, name);
        if (!org.empty()) return org;
    }
    return core::to_lower(name);
}

std::vector<std::string> dmarc_records(const dns::Answer& a) {
    std::vector<std::string> out;
    std::size_t seen = 0;
    for (const auto& r : a.records) {
        if (r.type != dns::RrType::txt || ++seen > limits::max_txt_records) continue;
        auto joined = r.txt_joined();
        if (dm::is_dmarc_record(joined)) out.push_back(std::move(joined));
    }
    return out;
}

// The domain of a mailto: report URI ("mailto:dmarc@example.com!10m"); "" for other schemes.
std::string mailto_domain(std::string_view uri) {
    if (uri.size() < 7 || !core::iequals(uri.substr(0, 7), "mailto:")) return {};
    auto addr = uri.substr(7);
    addr = addr.substr(0, addr.find('!'));
    addr = addr.substr(0, addr.find('?'));
    auto at = addr.rfind('@');
    if (at == std::string_view::npos) return {};
    return core::to_lower(addr.substr(at + 1));
}

// The record with "p=none" as its second tag (where RFC 7489 §6.3 wants p=), the rest kept.
std::string with_policy(std::string_view text) {
    auto semi = text.find(';');
    auto rest = semi == std::string_view::npos ? std::string_view() : core::trim(text.substr(semi + 1));
    return rest.empty() ? "v=DMARC1; p=none" : fmt::format("v=DMARC1; p=none; {}", rest);
}

}  // namespace

std::vector<Finding> check_dmarc(Probe& probe, std::string_view domain_in,
                                 const std::vector<std::string>& signing_domains) {
    std::vector<Finding> out;
    const std::string domain(domain_in);
    auto f = [&](Level level, std::string reason, std::string fix = {}) {
        out.push_back(Finding{"dmarc", domain, level, std::move(reason), std::move(fix)});
    };
    auto psl_holder = dm::PublicSuffixList::system();
    const dm::PublicSuffixList* psl = psl_holder.get();
    const auto org = org_of(psl, domain);
    const auto starter =
        txt_record("_dmarc." + domain, fmt::format("v=DMARC1; p=none; rua=mailto:dmarc-reports@{}", domain));

    // RFC 7489 §6.6.3: the From domain's record, else its organizational domain's.
    std::string found_at = domain;
    auto answer = probe.resolver.lookup("_dmarc." + domain, dns::RrType::txt).wait_until(probe.deadline());
    if (failed(answer.status)) {
        f(Level::unknown,
          fmt::format("cannot tell: the lookup of _dmarc.{} ended in {}", domain,
                      dns::to_string(answer.status)),
          retry);
        return out;
    }
    auto records = dmarc_records(answer);
    if (records.empty() && org != domain) {
        found_at = org;
        answer = probe.resolver.lookup("_dmarc." + org, dns::RrType::txt).wait_until(probe.deadline());
        if (failed(answer.status)) {
            f(Level::unknown,
              fmt::format("cannot tell: the lookup of _dmarc.{} ended in {}", org,
                          dns::to_string(answer.status)),
              retry);
            return out;
        }
        records = dmarc_records(answer);
    }
    if (records.empty()) {
        f(Level::fail,
          fmt::format(
              "no DMARC record at _dmarc.{}: receivers (Gmail and Yahoo for bulk senders) expect one, and "
              "nobody reports forgeries of {} to you",
              domain, domain),
          fmt::format(
              "Publish, and move to p=quarantine or p=reject once the reports show only your own mail: {}",
              starter));
        return out;
    }
    if (records.size() > 1) {
        f(Level::fail,
          fmt::format("{} DMARC records at _dmarc.{}: receivers ignore them all (RFC 7489 §6.6.3)",
                      records.size(), found_at),
          fmt::format("Keep exactly one, e.g. {}", txt_record("_dmarc." + found_at, records.front())));
        return out;
    }
    const auto& text = records.front();
    auto parsed = dm::parse_record(text);
    if (!parsed.ok()) {
        f(Level::fail,
          fmt::format("the DMARC record at _dmarc.{} is invalid: {} (\"{}\")", found_at, parsed.error,
                      core::printable(text, limits::max_quoted)),
          fmt::format("Replace it with: {}", starter));
        return out;
    }
    const auto& rec = *parsed.record;
    const auto where =
        found_at == domain ? std::string() : fmt::format(" (from the organizational domain {})", found_at);
    if (rec.p_defaulted) {
        f(Level::warn, fmt::format("the record has no valid p= and counts as p=none{}", where),
          fmt::format("Add a policy after v=DMARC1: {}",
                      txt_record("_dmarc." + found_at, with_policy(text))));
    } else if (rec.p == dm::Policy::none && rec.rua.empty()) {
        f(Level::warn,
          fmt::format("p=none without rua{}: no policy and no reports, so DMARC does nothing for {}", where,
                      domain),
          fmt::format(
              "Ask for aggregate reports, then tighten the policy once they show only your own mail: {}",
              txt_record("_dmarc." + found_at,
                         fmt::format("{}; rua=mailto:dmarc-reports@{}", core::trim(text), found_at))));
    } else if (rec.p == dm::Policy::none) {
        f(Level::ok,
          fmt::format(
              "p=none (monitoring only){}: tighten to quarantine or reject once the reports show only "
              "your own mail",
              where));
    } else {
        f(Level::ok, fmt::format("p={}{}", dm::to_string(rec.p), where));
    }
    if (rec.pct < 100) {
        f(Level::warn,
          fmt::format("pct={}: the policy applies to only {}% of failing mail", rec.pct, rec.pct),
          "Remove pct= (100 is the default) once you trust the policy");
    }
    if (!rec.ignored.empty()) {
        std::string tags;
        for (const auto& t : rec.ignored) tags += (tags.empty() ? "" : ", ") + core::printable(t, 32);
        f(Level::warn, fmt::format("invalid values fell back to their defaults: {}", tags),
          "Fix those tags (RFC 7489 §6.3 lists their values)");
    }

    // Reports to another organization's domain need its consent (RFC 7489 §7.1).
    struct Dest {
        std::string uri, host;
        dns::Pending pending;
    };
    std::vector<Dest> dests;
    for (const auto* list : {&rec.rua, &rec.ruf}) {
        for (const auto& u : *list) {
            if (dests.size() == limits::max_report_destinations) break;
            auto host = mailto_domain(u.uri);
            if (host.empty() || org_of(psl, host) == org_of(psl, found_at)) continue;
            auto name = fmt::format("{}._report._dmarc.{}", found_at, host);
            dests.push_back({u.uri, host, probe.resolver.lookup(name, dns::RrType::txt)});
        }
    }
    auto deadline = probe.deadline();
    for (auto& d : dests) {
        auto a = d.pending.wait_until(deadline);
        auto name = fmt::format("{}._report._dmarc.{}", found_at, d.host);
        if (failed(a.status)) {
            f(Level::unknown,
              fmt::format("cannot tell whether {} accepts reports: {} ended in {}",
                          core::printable(d.uri, 80), name, dns::to_string(a.status)),
              retry);
        } else if (dmarc_records(a).empty()) {
            f(Level::warn,
              fmt::format(
                  "report destination {} is another organization's and has not agreed to take reports for {} "
                  "(no v=DMARC1 at {}): receivers drop them",
                  core::printable(d.uri, 80), found_at, name),
              fmt::format("Have the operator of {} publish: {}", d.host, txt_record(name, "v=DMARC1")));
        } else {
            f(Level::ok, fmt::format("report destination {} accepts reports for {}",
                                     core::printable(d.uri, 80), found_at));
        }
    }

    // DKIM alignment of the keys that sign this domain's mail.
    if (signing_domains.empty()) {
        f(Level::warn,
          fmt::format(
              "no DKIM key signs mail from {}: DMARC can pass only through SPF, which forwarding breaks",
              domain),
          fmt::format("Sign it with a key of {} ([[checks.dkim.key]] domain = \"{}\"; see the dkim findings)",
                      domain, domain));
    }
    for (const auto& d : signing_domains) {
        // The DMARC check's own alignment rule; without a suffix list only the same name aligns.
        bool aligned = psl != nullptr ? dm::aligned(domain, d, rec.adkim, *psl) : d == domain;
        if (aligned) {
            f(Level::ok,
              fmt::format("DKIM d={} aligns with From {} (adkim={})", d, domain, dm::to_string(rec.adkim)));
        } else {
            f(Level::fail,
              fmt::format("DKIM d={} does not align with From {} (adkim={}): DMARC fails unless SPF aligns",
                          d, domain, dm::to_string(rec.adkim)),
              fmt::format(
                  "Sign mail from {} with a key of {} itself: [[checks.dkim.key]] domain = \"{}\" (and no "
                  "[[checks.dkim.signing]] rule sending it to {})",
                  domain, domain, domain, d));
        }
    }
    return out;
}

}  // namespace vigil::doctor
