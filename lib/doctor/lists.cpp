#include "doctor/lists.hpp"

#include <algorithm>
#include <mutex>

#include <fmt/format.h>

#include "core/printable.hpp"
#include "dns/resolver.hpp"
#include "policy/config.hpp"

namespace vigil::doctor {

namespace {

// The public lists in the [checks.dnsbl] format. Codes as each list documents them; refusal codes
// are the parser's defaults (Spamhaus 127.255.255.252-255, DNSWL 127.0.0.255). Only lists that are
// free for a small mail server and still run are here (SORBS closed in 2024).
constexpr std::string_view public_toml = R"(
[checks.dnsbl]
enabled = true

[[checks.dnsbl.list]]
name = "spamhaus-zen"
zone = "zen.spamhaus.org"
ipv6 = true
[checks.dnsbl.list.codes]
"127.0.0.2" = "SPAMHAUS_SBL"
"127.0.0.3" = "SPAMHAUS_CSS"
"127.0.0.4-7" = "SPAMHAUS_XBL"
"127.0.0.9" = "SPAMHAUS_DROP"
"127.0.0.10" = "SPAMHAUS_PBL_ISP"
"127.0.0.11" = "SPAMHAUS_PBL"

[[checks.dnsbl.list]]
name = "spamcop"
zone = "bl.spamcop.net"
[checks.dnsbl.list.codes]
"127.0.0.2" = "SPAMCOP"

[[checks.dnsbl.list]]
name = "barracuda"
zone = "b.barracudacentral.org"
[checks.dnsbl.list.codes]
"127.0.0.2" = "BARRACUDA"

[[checks.dnsbl.list]]
name = "psbl"
zone = "psbl.surriel.com"
[checks.dnsbl.list.codes]
"127.0.0.2" = "PSBL"

[[checks.dnsbl.list]]
name = "mailspike"
zone = "bl.mailspike.net"
[checks.dnsbl.list.codes]
"127.0.0.2" = "MAILSPIKE"
"127.0.0.10-14" = "MAILSPIKE_POOR"

[[checks.dnsbl.list]]
name = "uceprotect-1"
zone = "dnsbl-1.uceprotect.net"
[checks.dnsbl.list.codes]
"127.0.0.2" = "UCEPROTECT_1"

[[checks.dnsbl.list]]
name = "dnswl"
zone = "list.dnswl.org"
type = "allow"
ipv6 = true
)";

struct Extra {
    std::string_view name, title, removal;
    std::vector<std::pair<std::string_view, std::string_view>> meanings;
};

// Kept next to public_toml: the same names in the same order.
const std::vector<Extra>& extras() {
    static const std::vector<Extra> list = {
        {"spamhaus-zen",
         "Spamhaus ZEN",
         "https://check.spamhaus.org/",
         {{"SPAMHAUS_SBL", "SBL, a verified spam source or spam operation"},
          {"SPAMHAUS_CSS", "SBL CSS, low-reputation (snowshoe) mail was seen from it"},
          {"SPAMHAUS_XBL", "XBL, an exploited host (malware, botnet, open proxy) was seen at it"},
          {"SPAMHAUS_DROP", "DROP, a hijacked or criminal network"},
          {"SPAMHAUS_PBL_ISP",
           "PBL, its network's owner says it is an end-user range that should not send mail directly"},
          {"SPAMHAUS_PBL", "PBL, Spamhaus says it is an end-user range that should not send mail directly"}}},
        {"spamcop",
         "SpamCop",
         "https://www.spamcop.net/bl.shtml",
         {{"SPAMCOP",
           "users reported spam from it in the last days (listings expire 24 h after the last report)"}}},
        {"barracuda",
         "Barracuda",
         "https://www.barracudacentral.org/rbl/removal-request",
         {{"BARRACUDA", "Barracuda's sensors saw spam from it"}}},
        {"psbl", "PSBL", "https://psbl.org/", {{"PSBL", "it sent mail to PSBL's spam traps"}}},
        {"mailspike",
         "Mailspike",
         "https://mailspike.org/",
         {{"MAILSPIKE", "it is on Mailspike's block list"},
          {"MAILSPIKE_POOR", "Mailspike rates its sending reputation poor"}}},
        {"uceprotect-1",
         "UCEPROTECT level 1",
         "https://www.uceprotect.net/en/rblcheck.php",
         {{"UCEPROTECT_1",
           "it sent mail to UCEPROTECT's spam traps (listings expire after 7 days without new hits)"}}},
        {"dnswl", "DNSWL allow list", "https://www.dnswl.org/", {}},
    };
    return list;
}

bool is_block(const reputation::DnsblList& l) {
    return l.type == reputation::DnsblList::Type::block;
}

// A Spamhaus PBL listing alone says "end-user range", not "spam seen": its fix is different. Judged
// by the public list's codes, whatever the operator's own entry for the zone calls them.
bool policy_listing_only(const WatchedList& w, const dns::Answer& answer) {
    if (!w.known || w.known->list.name != "spamhaus-zen") return false;
    auto r = reputation::classify_answer(w.known->list, answer);
    return !r.hits.empty() && std::all_of(r.hits.begin(), r.hits.end(), [](const auto& h) {
        return h.symbol == "SPAMHAUS_PBL" || h.symbol == "SPAMHAUS_PBL_ISP";
    });
}

std::string list_label(const WatchedList& w) {
    if (w.known) return fmt::format("{} ({})", w.list.zone, w.known->title);
    return fmt::format("{} ({})", w.list.zone, w.list.name);
}

}  // namespace

const std::vector<std::string_view>& public_list_names() {
    static const std::vector<std::string_view> names = [] {
        std::vector<std::string_view> n;
        for (const auto& e : extras()) n.push_back(e.name);
        return n;
    }();
    return names;
}

const std::vector<PublicList>& public_lists() {
    static const std::vector<PublicList> lists = [] {
        // Parsed by the config loader so that the lists get exactly the dnsbl check's semantics.
        auto cfg = policy::load_config_string(public_toml, "<built-in public lists>");
        std::vector<PublicList> out;
        for (const auto& c : cfg->checks) {
            const auto* d = dynamic_cast<const reputation::DnsblCheck*>(c.get());
            if (d == nullptr) continue;
            for (const auto& l : d->lists()) {
                PublicList p;
                p.list = l;
                for (const auto& e : extras()) {
                    if (e.name != l.name) continue;
                    p.title = e.title;
                    p.removal = e.removal;
                    for (const auto& [sym, text] : e.meanings) p.meanings.emplace(sym, text);
                }
                out.push_back(std::move(p));
            }
        }
        return out;
    }();
    return lists;
}

std::optional<std::string> list_selector_error(std::string_view selector) {
    if (selector == "configured" || selector == "public") return std::nullopt;
    const auto& names = public_list_names();
    if (std::find(names.begin(), names.end(), selector) != names.end()) return std::nullopt;
    std::string known;
    for (auto n : names) known += fmt::format(", \"{}\"", n);
    return fmt::format("'{}' is not a list: use \"configured\", \"public\"{}", core::printable(selector, 64),
                       known);
}

std::vector<WatchedList> select_lists(const policy::Config& config,
                                      const std::vector<std::string>& selectors) {
    std::vector<WatchedList> out;
    auto known_for = [](std::string_view zone) -> const PublicList* {
        for (const auto& p : public_lists()) {
            if (p.list.zone == zone) return &p;
        }
        return nullptr;
    };
    auto add = [&](const reputation::DnsblList& l) {
        bool dup =
            std::any_of(out.begin(), out.end(), [&](const WatchedList& w) { return w.list.zone == l.zone; });
        if (!dup) out.push_back({l, known_for(l.zone)});
    };
    bool configured = std::find(selectors.begin(), selectors.end(), "configured") != selectors.end();
    if (configured) {
        for (const auto& c : config.checks) {
            if (const auto* d = dynamic_cast<const reputation::DnsblCheck*>(c.get())) {
                for (const auto& l : d->lists()) add(l);
            }
        }
    }
    bool all_public = std::find(selectors.begin(), selectors.end(), "public") != selectors.end();
    for (const auto& p : public_lists()) {
        if (all_public || std::find(selectors.begin(), selectors.end(), p.list.name) != selectors.end())
            add(p.list);
    }
    return out;
}

std::string refusal_meaning(std::string_view code) {
    if (code == "127.255.255.254") return "the query came through a public or shared resolver";
    if (code == "127.255.255.255") return "too many queries: over the list's free quota";
    if (code == "127.255.255.252") return "the list's zone name is mistyped or not served for free";
    if (code == "127.0.0.255") return "the query came through a public resolver, or over the quota";
    auto ip = core::IpAddress::parse(code);
    if (ip && ip->is_v4() && ip->bytes()[0] != 127) {
        return "an address outside 127.0.0.0/8: something between us and the list rewrites its answers";
    }
    return "the list says it will not answer this resolver";
}

std::string listing_meaning(const WatchedList& w, const dns::Answer& answer) {
    std::vector<std::string> parts;
    if (w.known) {
        auto r = reputation::classify_answer(w.known->list, answer);
        for (const auto& hit : r.hits) {
            std::string codes;
            for (const auto& c : hit.codes) codes += (codes.empty() ? "" : ", ") + c;
            auto it = w.known->meanings.find(hit.symbol);
            parts.push_back(
                fmt::format("{}: {}", codes, it != w.known->meanings.end() ? it->second : hit.symbol));
        }
    }
    if (parts.empty()) {
        auto r = reputation::classify_answer(w.list, answer);
        for (const auto& hit : r.hits) {
            std::string codes;
            for (const auto& c : hit.codes) codes += (codes.empty() ? "" : ", ") + c;
            parts.push_back(fmt::format("{}: {}", codes, hit.symbol));
        }
    }
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
    return out;
}

Finding list_finding(const WatchedList& w, const core::IpAddress& ip, const dns::Answer& answer) {
    Finding f;
    f.area = "lists";
    f.subject = ip.to_string();
    auto r = reputation::classify_answer(w.list, answer);
    const auto label = list_label(w);
    const bool block = is_block(w.list);
    switch (r.kind) {
        case reputation::ListResult::Kind::not_listed:
            f.level = Level::ok;
            f.reason = block ? fmt::format("not listed on {}", label)
                             : fmt::format("not on the allow list {} (optional)", label);
            return f;
        case reputation::ListResult::Kind::listed:
            if (!block) {
                f.level = Level::ok;
                f.reason = fmt::format("on the allow list {}: {}", label, listing_meaning(w, answer));
                return f;
            }
            f.level = Level::fail;
            f.reason = fmt::format("LISTED on {} with {}", label, listing_meaning(w, answer));
            if (policy_listing_only(w, answer)) {
                // PBL: a policy listing, not a spam finding; a real mail server simply gets out of it.
                f.fix = fmt::format(
                    "If {} is a mail server with a fixed address, remove it from the PBL at {} (or ask your "
                    "provider to); otherwise send through your provider's relay.",
                    f.subject, w.known->removal);
            } else {
                f.fix = fmt::format(
                    "Find and stop the cause (an open relay, a compromised account or web form, malware on a "
                    "host "
                    "behind {}), then ask for removal at {}.",
                    f.subject, w.known ? w.known->removal : "the operator of " + w.list.zone);
            }
            return f;
        case reputation::ListResult::Kind::refused:
            f.level = Level::unknown;
            f.reason = fmt::format("cannot tell: {} refused our query ({}: {})", label, r.refused_code,
                                   refusal_meaning(r.refused_code));
            f.fix =
                "Query DNS lists through a resolver of your own, not a public or forwarding one: run a local "
                "recursive resolver (e.g. unbound) and leave [dns] server empty or point --dns at it; a "
                "list's "
                "free quota may also need its free registration.";
            return f;
        case reputation::ListResult::Kind::tempfail:
            f.level = Level::unknown;
            f.reason = fmt::format("cannot tell: the query to {} ended in {}", label, r.status);
            f.fix = fmt::format(
                "Check that this host can reach the name servers of {} (firewall, resolver), then run again.",
                w.list.zone);
            return f;
    }
    return f;
}

}  // namespace vigil::doctor
