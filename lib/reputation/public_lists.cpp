#include "reputation/public_lists.hpp"

#include <algorithm>

#include <toml++/toml.h>

#include <fmt/format.h>

#include "check/config_reader.hpp"
#include "core/ip_address.hpp"
#include "core/printable.hpp"

namespace vigil::reputation {

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
        // Parsed by the dnsbl check's own reader so that the lists get exactly its semantics.
        auto root = toml::parse(public_toml, std::string_view("<built-in public lists>"));
        check::ConfigErrors errors("<built-in public lists>");
        check::Section top(&root, "", errors);
        auto checks = top.sub("checks");
        auto section = checks.sub("dnsbl");
        auto made = DnsblCheck::make(section);
        errors.raise_if_any();
        std::vector<PublicList> out;
        if (const auto* d = dynamic_cast<const DnsblCheck*>(made.get())) {
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

}  // namespace vigil::reputation
