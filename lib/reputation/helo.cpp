#include "reputation/helo.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/printable.hpp"
#include "dns/resolver.hpp"

namespace vigil::reputation {

namespace {

bool is_ldh(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

// "mx.example.com" matches itself; ".example.com" matches every name below example.com.
bool name_matches(std::string_view pattern, std::string_view name) {
    if (!pattern.empty() && pattern.front() == '.') {
        return name.size() > pattern.size() && name.substr(name.size() - pattern.size()) == pattern;
    }
    return pattern == name;
}

struct HeloState final : check::CheckState {
    HeloAnalysis analysis;
    std::optional<dns::Pending> a, aaaa;
};

std::string reported(std::string_view helo) {
    return core::printable(helo, max_reported_helo);
}

}  // namespace

bool valid_hostname(std::string_view name) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    if (name.empty() || name.size() > 253) return false;
    std::size_t start = 0;
    std::string_view last;
    while (start <= name.size()) {
        auto dot = name.find('.', start);
        if (dot == std::string_view::npos) dot = name.size();
        auto label = name.substr(start, dot - start);
        if (label.empty() || label.size() > 63) return false;
        if (label.front() == '-' || label.back() == '-') return false;
        if (!std::all_of(label.begin(), label.end(), is_ldh)) return false;
        last = label;
        start = dot + 1;
    }
    // An all-numeric last label would make the name look like (part of) an address: "1.2.3".
    return !std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; });
}

HeloAnalysis analyze_helo(std::string_view helo, const std::optional<core::IpAddress>& client,
                          const HeloOptions& options) {
    HeloAnalysis out;
    // No HELO at all (`vigil check` without --helo); the MTA itself refuses an empty HELO argument.
    if (helo.empty()) return out;
    auto ours = [&](const core::IpAddress& ip) {
        return std::any_of(options.our_ips.begin(), options.our_ips.end(),
                           [&](const core::Cidr& c) { return c.contains(ip); });
    };
    auto judge_ip = [&](const core::IpAddress& claimed) {
        auto ip = claimed.unmapped();
        if (ours(ip)) {
            out.symbols.push_back("HELO_CLAIMS_OURS");
        } else if (client && client->unmapped() != ip) {
            out.symbols.push_back("HELO_IP_LITERAL_MISMATCH");
        }
    };
    bool bracketed = helo.front() == '[';
    if (auto ip = core::IpAddress::parse(helo)) {
        // RFC 5321 wants an address as a literal in brackets; a bare one is a sign of ratware.
        if (!bracketed) out.symbols.push_back("HELO_BARE_IP");
        judge_ip(*ip);
        return out;
    }
    if (bracketed || !valid_hostname(helo)) {
        out.symbols.push_back("HELO_SYNTAX");
        return out;
    }
    auto name = core::to_lower(helo);
    if (name.back() == '.') name.pop_back();
    if (std::any_of(options.our_names.begin(), options.our_names.end(),
                    [&](const std::string& p) { return name_matches(p, name); })) {
        out.symbols.push_back("HELO_CLAIMS_OURS");
        return out;
    }
    if (name.find('.') == std::string::npos) {
        out.symbols.push_back("HELO_NOT_FQDN");
        return out;
    }
    if (options.resolve) out.lookup_name = name;
    return out;
}

std::unique_ptr<check::Check> HeloCheck::make(check::Section& s) {
    std::vector<std::string> names;
    for (const auto& n : s.get_strings("our_names", {})) {
        std::string_view body = n;
        if (!body.empty() && body.front() == '.') body.remove_prefix(1);
        if (!valid_hostname(body)) {
            s.error("our_names", fmt::format("'{}' is not a host name (or .domain for every name below it)",
                                             core::printable(n)));
            continue;
        }
        auto lower = core::to_lower(n);
        if (lower.back() == '.') lower.pop_back();
        names.push_back(std::move(lower));
    }
    auto ips = s.get_cidrs("our_ips", {});
    bool resolve = s.get_bool("resolve", true);
    return std::make_unique<HeloCheck>(std::move(names), std::move(ips), resolve);
}

std::vector<core::SymbolDef> HeloCheck::symbols() const {
    // Magnitudes after rspamd's hfilter (HELO_NOT_FQDN 2, HELO_BAREIP 3, HELO_NORES_A_OR_MX 0.3 .. 1)
    // and SpamAssassin: a bad HELO is common among bots and rare among real servers.
    return {
        {"HELO_NOT_FQDN", "The HELO name has no dot (not a fully qualified domain name)", 2.0},
        {"HELO_SYNTAX", "The HELO name is neither a valid host name nor an address literal", 2.5},
        {"HELO_BARE_IP", "The HELO is an IP address without the brackets of an address literal", 3.0},
        {"HELO_IP_LITERAL_MISMATCH", "The HELO is an IP address (literal or bare) that is not the client's",
         3.0},
        {"HELO_CLAIMS_OURS",
         "A client outside our networks claims our host name or one of our addresses in HELO", 5.0},
        {"HELO_NO_RESOLVE", "The HELO host name does not exist in the DNS, or has no A/AAAA record", 1.0},
        {"HELO_TEMPERROR", "The HELO name's A/AAAA lookups failed (timeout, SERVFAIL); never a finding", 0.0},
    };
}

HeloOptions HeloCheck::options_for(const check::Context& ctx) const {
    HeloOptions o;
    o.our_names = our_names_;
    auto host = core::to_lower(ctx.server().hostname);
    if (!host.empty() && host.back() == '.') host.pop_back();
    if (!host.empty()) o.our_names.push_back(std::move(host));
    o.our_ips = our_ips_;
    o.resolve = resolve_;
    return o;
}

void HeloCheck::start(check::Context& ctx) const {
    const auto& env = ctx.envelope();
    // Our own clients may call themselves anything (and may be us). An empty HELO is no HELO.
    if (env.trusted_network || env.helo.empty()) {
        ctx.set_state(*this, nullptr);
        return;
    }
    auto st = std::make_unique<HeloState>();
    st->analysis = analyze_helo(env.helo, env.client_ip, options_for(ctx));
    if (!st->analysis.lookup_name.empty()) {
        st->a = ctx.resolver().lookup(st->analysis.lookup_name, dns::RrType::a);
        st->aaaa = ctx.resolver().lookup(st->analysis.lookup_name, dns::RrType::aaaa);
    }
    ctx.set_state(*this, std::move(st));
}

void HeloCheck::run(check::Context& ctx) const {
    auto* st = static_cast<HeloState*>(ctx.state(*this));
    if (st == nullptr) return;
    const auto helo = reported(ctx.envelope().helo);
    std::vector<std::string> found = st->analysis.symbols;
    std::string a_status, aaaa_status;
    if (st->a && st->aaaa) {
        auto a = st->a->wait_until(ctx.deadline());
        auto aaaa = st->aaaa->wait_until(ctx.deadline());
        a_status = dns::to_string(a.status);
        aaaa_status = dns::to_string(aaaa.status);
        using dns::Status;
        if (a.ok() || aaaa.ok()) {
            // The name resolves: nothing to say.
        } else if (a.status == Status::nxdomain || aaaa.status == Status::nxdomain) {
            // NXDOMAIN from either lookup settles it: the name does not exist, whatever the other one did.
            found.emplace_back("HELO_NO_RESOLVE");
        } else if (a.status == Status::nodata && aaaa.status == Status::nodata) {
            found.emplace_back("HELO_NO_RESOLVE");
        } else {
            found.emplace_back("HELO_TEMPERROR");
        }
    }
    for (const auto& sym : found) {
        std::vector<std::string> options{helo};
        if (sym == "HELO_NO_RESOLVE" || sym == "HELO_TEMPERROR") {
            options.push_back("A:" + a_status);
            options.push_back("AAAA:" + aaaa_status);
        }
        ctx.add_symbol(*this, sym, 1.0, std::move(options));
    }
    if (!ctx.wants_reports()) return;  // only `vigil check` shows the report
    std::string syms;
    for (const auto& sym : found) syms += fmt::format("{}\"{}\"", syms.empty() ? "" : ",", sym);
    auto status = [](const std::string& s) { return s.empty() ? std::string("null") : "\"" + s + "\""; };
    ctx.add_report("helo", fmt::format("{{\"helo\":\"{}\",\"symbols\":[{}],\"a\":{},\"aaaa\":{}}}",
                                       core::json_escape(helo), syms, status(a_status), status(aaaa_status)));
}

}  // namespace vigil::reputation
