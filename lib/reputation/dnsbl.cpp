#include "reputation/dnsbl.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "core/printable.hpp"
#include "dns/resolver.hpp"

namespace vigil::reputation {

namespace {

constexpr std::string_view sym_refused = "RBL_QUERY_REFUSED";
constexpr std::string_view sym_tempfail = "RBL_TEMPFAIL";

constexpr std::uint32_t loopback_net = 0x7f000000;  // 127.0.0.0/8, where every meaningful code lives
constexpr std::uint32_t low24 = 0x00ffffff;

// Spamhaus answers these to a public resolver, an unregistered user over the free quota, or a typo
// in the zone; DNSWL answers 127.0.0.255 to an over-quota user. No list uses them as listings.
const std::vector<std::string> default_refused = {"127.0.0.255", "127.255.255.252-127.255.255.255"};

// Trust levels of DNSWL-style allow lists (the last octet of 127.0.x.y) with SpamAssassin's weights
// (RCVD_IN_DNSWL_*): an allow list lowers the score, more for higher trust.
constexpr std::array<std::string_view, 4> level_suffix = {"_NONE", "_LOW", "_MED", "_HI"};
constexpr std::array<std::string_view, 4> level_words = {"none", "low", "medium", "high"};
constexpr std::array<double, 4> level_weights = {0.0, -0.7, -2.3, -5.0};

// Block lists: a listing on a list nobody gave a weight for is worth a warning, not a rejection.
constexpr double default_block_weight = 2.0;
// Allow lists: a code outside the known levels grants no trust.
constexpr double default_allow_weight = 0.0;

std::uint32_t to_u32(const core::IpAddress& ip) {
    const auto& b = ip.bytes();
    return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | b[3];
}

std::string code_text(std::uint32_t c) {
    return fmt::format("{}.{}.{}.{}", c >> 24, (c >> 16) & 0xff, (c >> 8) & 0xff, c & 0xff);
}

std::string range_text(const CodeRange& r) {
    return r.first == r.last ? code_text(r.first) : code_text(r.first) + "-" + code_text(r.last);
}

std::optional<std::uint32_t> parse_code(std::string_view text) {
    // IpAddress::parse also takes "[...]"; a code is a bare dotted quad.
    if (text.empty() || text.front() == '[' || text.find(':') != std::string_view::npos) return std::nullopt;
    auto ip = core::IpAddress::parse(text);
    if (!ip || !ip->is_v4()) return std::nullopt;
    return to_u32(*ip);
}

// "127.0.0.2", "127.0.0.4-127.0.0.7" or "127.0.0.4-7" (the last octet only).
std::optional<CodeRange> parse_range(std::string_view text) {
    auto dash = text.find('-');
    if (dash == std::string_view::npos) {
        auto c = parse_code(text);
        if (!c) return std::nullopt;
        return CodeRange{*c, *c};
    }
    auto first = parse_code(text.substr(0, dash));
    auto rest = text.substr(dash + 1);
    if (!first) return std::nullopt;
    std::optional<std::uint32_t> last;
    if (rest.find('.') == std::string_view::npos) {
        unsigned octet = 0;
        auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), octet);
        if (rest.empty() || ec != std::errc() || p != rest.data() + rest.size() || octet > 255)
            return std::nullopt;
        last = (*first & 0xffffff00u) | octet;
    } else {
        last = parse_code(rest);
    }
    if (!last || *last < *first) return std::nullopt;
    return CodeRange{*first, *last};
}

// A bit value of a bitmask list: "8" or "127.0.0.8"; any non-zero value within the low 24 bits.
std::optional<std::uint32_t> parse_mask(std::string_view text) {
    std::uint32_t v = 0;
    if (text.find('.') != std::string_view::npos) {
        auto c = parse_code(text);
        if (!c || (*c & ~low24) != loopback_net) return std::nullopt;
        v = *c & low24;
    } else {
        auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (text.empty() || ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
    }
    if (v == 0 || v > low24) return std::nullopt;
    return v;
}

bool valid_symbol(std::string_view s) {
    if (s.empty() || s.size() > max_symbol_name || s.front() < 'A' || s.front() > 'Z') return false;
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; });
}

bool valid_list_name(std::string_view s) {
    if (s.empty() || s.size() > max_dnsbl_name) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

// A zone is operator input, but it ends up in every query name: letters, digits, '-' and '_' per
// label (underscore: some private lists use it), 1..63 per label, and room left for the address.
std::optional<std::string> zone_error(std::string_view zone, std::size_t room) {
    if (!zone.empty() && zone.back() == '.') zone.remove_suffix(1);
    if (zone.empty()) return "is required";
    if (zone.size() + 1 + room > 253) {
        return fmt::format("is too long: with the reversed address a query name would exceed 253 characters");
    }
    std::size_t label = 0;
    for (char c : zone) {
        if (c == '.') {
            if (label == 0) return "has an empty label";
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_';
        if (!ok)
            return fmt::format("'{}' is not a DNS name (letters, digits, '-', '_' and dots only)",
                               core::printable(zone));
        if (++label > 63) return "has a label longer than 63 characters";
    }
    if (label == 0) return "has an empty label";
    return std::nullopt;
}

std::optional<core::SmtpReply> parse_reply(std::string_view raw) {
    std::istringstream in{std::string(raw)};
    core::SmtpReply r;
    in >> r.code >> r.xcode;
    std::getline(in, r.text);
    r.text = std::string(core::trim(r.text));
    bool ok = r.code.size() == 3 && r.code[0] == '5' &&
              std::all_of(r.code.begin(), r.code.end(), ::isdigit) && r.xcode.size() >= 5 &&
              r.xcode[0] == '5' && r.xcode[1] == '.' && !r.text.empty();
    // '%' would be read by libmilter's smfi_setreply as a format directive.
    for (char c : raw) ok = ok && c >= 0x20 && c < 0x7f && c != '%';
    if (!ok) return std::nullopt;
    return r;
}

std::string upper_symbol(std::string_view name) {
    std::string out = "RBL_";
    for (char c : name)
        out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

bool rule_matches(const DnsblList& list, const CodeRule& rule, std::uint32_t code) {
    return list.bitmask ? (code & low24 & rule.mask) != 0 : rule.range.contains(code);
}

// The symbols one listing code adds.
std::vector<std::string> symbols_for(const DnsblList& list, std::uint32_t code) {
    std::vector<std::string> out;
    for (const auto& rule : list.codes) {
        if (!rule_matches(list, rule, code)) continue;
        if (std::find(out.begin(), out.end(), rule.symbol) == out.end()) out.push_back(rule.symbol);
        // A plain list's ranges are alternatives; a bitmask code may carry several bits.
        if (!list.bitmask) break;
    }
    if (!out.empty()) return out;
    if (list.levels && (code & 0xffff0000u) == loopback_net && (code & 0xff) < level_suffix.size()) {
        return {list.level_symbols[code & 0xff]};
    }
    return {list.default_symbol};
}

std::string json_strings(const std::vector<std::string>& v) {
    std::string out = "[";
    for (const auto& s : v) out += fmt::format("{}\"{}\"", out.size() > 1 ? "," : "", core::json_escape(s));
    return out + "]";
}

struct DnsblState final : check::CheckState {
    struct Lookup {
        std::size_t list;
        std::string query;
        dns::Pending pending;
        bool done = false;
    };
    std::vector<Lookup> connect;
    // RCPT stage (reject_at = "rcpt"): see run_rcpt for why these are separate lookups.
    bool rcpt_started = false;
    std::vector<Lookup> rcpt;
    std::optional<std::pair<std::size_t, std::string>> reject;  // list index, code
};

DnsblState& state_of(check::Context& ctx, const check::Check& check) {
    if (auto* st = ctx.state(check)) return static_cast<DnsblState&>(*st);
    auto fresh = std::make_unique<DnsblState>();
    auto& ref = *fresh;
    ctx.set_state(check, std::move(fresh));
    return ref;
}

// Lookups are only worth making for a remote client that is not one of ours.
std::optional<core::IpAddress> queried_ip(const check::Context& ctx) {
    const auto& env = ctx.envelope();
    if (env.trusted_network || !env.client_ip) return std::nullopt;
    return env.client_ip->unmapped();
}

}  // namespace

std::string dnsbl_query_name(const core::IpAddress& ip, std::string_view zone) {
    return ip.unmapped().reverse_labels() + "." + std::string(zone);
}

ListResult classify_answer(const DnsblList& list, const dns::Answer& answer) {
    ListResult r;
    r.status = std::string(dns::to_string(answer.status));
    switch (answer.status) {
        case dns::Status::nxdomain:
        case dns::Status::nodata:
            return r;
        case dns::Status::servfail:
        case dns::Status::timeout:
        case dns::Status::malformed:
            r.kind = ListResult::Kind::tempfail;
            return r;
        case dns::Status::answer:
            break;
    }
    std::vector<std::uint32_t> codes;
    for (const auto& rec : answer.records) {
        if (rec.type != dns::RrType::a || !rec.address || !rec.address->is_v4()) continue;
        auto c = to_u32(*rec.address);
        if (std::find(codes.begin(), codes.end(), c) == codes.end()) codes.push_back(c);
        if (codes.size() == max_dnsbl_codes) break;
    }
    if (codes.empty()) {
        // NOERROR with records, none of them an IPv4 address: not something a list means.
        r.kind = ListResult::Kind::tempfail;
        r.status = "malformed";
        return r;
    }
    std::sort(codes.begin(), codes.end());
    for (auto c : codes) r.codes.push_back(code_text(c));
    // One refusal code makes the whole answer untrustworthy: never score any part of it.
    for (auto c : codes) {
        bool refused =
            (c & ~low24) != loopback_net || std::any_of(list.refused.begin(), list.refused.end(),
                                                        [&](const CodeRange& x) { return x.contains(c); });
        if (refused) {
            r.kind = ListResult::Kind::refused;
            r.refused_code = code_text(c);
            return r;
        }
    }
    r.kind = ListResult::Kind::listed;
    for (auto c : codes) {
        for (auto& sym : symbols_for(list, c)) {
            auto it = std::find_if(r.hits.begin(), r.hits.end(),
                                   [&](const ListResult::Hit& h) { return h.symbol == sym; });
            if (it == r.hits.end()) {
                r.hits.push_back({sym, {code_text(c)}});
            } else {
                it->codes.push_back(code_text(c));
            }
        }
        if (!r.reject_code &&
            std::any_of(list.reject_codes.begin(), list.reject_codes.end(),
                        [&](const CodeRule& rule) { return rule_matches(list, rule, c); })) {
            r.reject_code = code_text(c);
        }
    }
    return r;
}

std::string refused_warning(const DnsblList& list, std::string_view query, std::string_view code) {
    return fmt::format(
        "dnsbl list {} ({}) refused query {} with {}: public resolver or over quota? Its answers are "
        "ignored until DNS is fixed",
        list.name, list.zone, core::printable(query, 100), core::printable(code, 16));
}

core::SmtpReply reject_reply(const DnsblList& list, const core::IpAddress& ip, std::string_view code) {
    core::SmtpReply r = list.reply;
    auto replace_all = [&](std::string_view what, const std::string& with) {
        for (auto pos = r.text.find(what); pos != std::string::npos;
             pos = r.text.find(what, pos + with.size())) {
            r.text.replace(pos, what.size(), with);
        }
    };
    replace_all("{ip}", ip.to_string());
    replace_all("{list}", list.name);
    replace_all("{zone}", list.zone);
    replace_all("{code}", std::string(code));
    return r;
}

std::unique_ptr<check::Check> DnsblCheck::make(check::Section& s) {
    auto sections = s.sub_array("list");
    if (sections.size() > max_dnsbl_lists) {
        s.error("list",
                fmt::format("at most {} lists (each costs a DNS lookup per connection)", max_dnsbl_lists));
    }
    // Every symbol any list defines, with one weight: two lists may share a symbol, not disagree on it.
    struct Def {
        double weight;
        std::string description;
        std::string list;
    };
    std::map<std::string, Def, std::less<>> defs;
    std::vector<std::string> order;
    std::vector<DnsblList> lists;

    for (auto& l : sections) {
        DnsblList list;
        list.name = l.get_string("name", "");
        if (!valid_list_name(list.name)) {
            l.error("name",
                    fmt::format("is required: 1 to {} characters of a-z, 0-9, '-' and '_'", max_dnsbl_name));
        }
        for (const auto& other : lists) {
            if (!list.name.empty() && other.name == list.name)
                l.error("name", fmt::format("'{}' is used by another list", list.name));
        }
        auto type = l.get_choice("type", "block", {"block", "allow"});
        list.type = type == "allow" ? DnsblList::Type::allow : DnsblList::Type::block;
        bool allow = list.type == DnsblList::Type::allow;
        list.ipv6 = l.get_bool("ipv6", false);
        list.bitmask = l.get_bool("bitmask", false);
        list.zone = l.get_string("zone", "");
        if (auto e = zone_error(list.zone, list.ipv6 ? max_reversed_ipv6 : max_reversed_ipv4)) {
            l.error("zone", *e);
        } else {
            list.zone = core::to_lower(list.zone);
            if (list.zone.back() == '.') list.zone.pop_back();
        }
        list.levels = l.get_bool("levels", allow);
        if (list.levels && !allow) l.error("levels", "only allow lists have trust levels");
        if (list.levels && list.bitmask) l.error("levels", "a bitmask list has no trust levels");
        list.default_symbol = l.get_string("symbol", allow ? "DNSWL" : upper_symbol(list.name));
        if (!valid_symbol(list.default_symbol)) {
            l.error(
                "symbol",
                fmt::format("'{}' is not a symbol name (A-Z, 0-9, '_', starting with a letter, at most {})",
                            core::printable(list.default_symbol), max_symbol_name));
        }
        double weight = l.get_double("weight", allow ? default_allow_weight : default_block_weight);

        // Symbols of this list -> (weight, description parts), before [weights] may change the weights.
        std::map<std::string, std::pair<double, std::vector<std::string>>, std::less<>> mine;
        auto want = [&](const std::string& sym, double w, std::string what) {
            auto [it, fresh] = mine.try_emplace(sym, w, std::vector<std::string>{});
            it->second.second.push_back(std::move(what));
        };
        {
            auto codes = l.sub("codes");
            for (const auto& key : codes.keys()) {
                auto sym = codes.get_string(key, "");
                CodeRule rule;
                if (list.bitmask) {
                    auto m = parse_mask(key);
                    if (!m) {
                        codes.error(key,
                                    "a bitmask list's code is a bit value within the low 24 bits: \"8\" or "
                                    "\"127.0.0.8\"");
                        continue;
                    }
                    rule.mask = *m;
                } else {
                    auto r = parse_range(key);
                    if (!r || (r->first & ~low24) != loopback_net || (r->last & ~low24) != loopback_net) {
                        codes.error(key,
                                    "a code is an address in 127.0.0.0/8 or a range: \"127.0.0.2\", "
                                    "\"127.0.0.4-127.0.0.7\", \"127.0.0.4-7\"");
                        continue;
                    }
                    rule.range = *r;
                }
                if (!valid_symbol(sym)) {
                    codes.error(
                        key, fmt::format("'{}' is not a symbol name (A-Z, 0-9, '_', starting with a letter)",
                                         core::printable(sym)));
                    continue;
                }
                rule.symbol = sym;
                want(sym, weight, list.bitmask ? fmt::format("bit {}", rule.mask) : range_text(rule.range));
                list.codes.push_back(std::move(rule));
            }
            codes.finish();
        }
        if (list.levels) {
            for (std::size_t i = 0; i < level_suffix.size(); ++i) {
                list.level_symbols[i] = list.default_symbol + std::string(level_suffix[i]);
                want(list.level_symbols[i], level_weights[i], fmt::format("trust level {}", level_words[i]));
            }
        }
        want(list.default_symbol, weight, "any other 127.0.0.0/8 code");

        for (const auto& text : l.get_strings("refused_codes", default_refused)) {
            auto r = parse_range(text);
            if (!r) {
                l.error("refused_codes",
                        fmt::format("'{}' is not a code or range of IPv4 codes", core::printable(text)));
                continue;
            }
            list.refused.push_back(*r);
        }
        for (const auto& text : l.get_strings("reject_codes", {})) {
            CodeRule rule;
            if (list.bitmask) {
                auto m = parse_mask(text);
                if (!m) {
                    l.error("reject_codes", fmt::format("'{}' is not a bit value", core::printable(text)));
                    continue;
                }
                rule.mask = *m;
            } else {
                auto r = parse_range(text);
                if (!r || (r->first & ~low24) != loopback_net || (r->last & ~low24) != loopback_net) {
                    l.error("reject_codes",
                            fmt::format("'{}' is not a code in 127.0.0.0/8", core::printable(text)));
                    continue;
                }
                rule.range = *r;
            }
            list.reject_codes.push_back(rule);
        }
        if (allow && !list.reject_codes.empty()) l.error("reject_codes", "an allow list cannot reject");
        list.reject_at = l.get_choice("reject_at", "rcpt", {"rcpt", "connect"}) == "connect"
                             ? DnsblList::RejectAt::connect
                             : DnsblList::RejectAt::rcpt;
        auto reply =
            l.get_string("reply", "554 5.7.1 Service unavailable; client [{ip}] blocked using {zone}");
        if (auto r = parse_reply(reply)) {
            list.reply = *r;
        } else {
            l.error(
                "reply",
                "expected \"5xx 5.x.y text\" in printable ASCII without '%' ({ip}, {list}, {zone} and {code} "
                "are filled in)");
        }
        {
            auto w = l.sub("weights");
            for (const auto& key : w.keys()) {
                auto it = mine.find(key);
                if (it == mine.end()) {
                    w.error(key, "is not a symbol of this list (its codes, levels or default symbol)");
                    w.mark_used(key);
                    continue;
                }
                it->second.first = w.get_double(key, it->second.first);
            }
            w.finish();
        }
        for (const auto& [sym, wd] : mine) {
            if (sym == sym_refused || sym == sym_tempfail) {
                l.error(fmt::format("symbol {} is reserved for the check itself", sym));
                continue;
            }
            std::string what;
            for (const auto& p : wd.second) what += (what.empty() ? "" : ", ") + p;
            auto desc = fmt::format("Client IP on {} list {} ({}): {}", allow ? "allow" : "block", list.name,
                                    list.zone, what);
            auto [it, fresh] = defs.try_emplace(sym, Def{wd.first, desc, list.name});
            if (fresh) {
                order.push_back(sym);
            } else if (it->second.weight != wd.first) {
                l.error(fmt::format("symbol {} has weight {} here but {} in list {}", sym, wd.first,
                                    it->second.weight, it->second.list));
            }
        }
        l.finish();
        lists.push_back(std::move(list));
    }
    std::vector<core::SymbolDef> list_symbols;
    for (const auto& sym : order) list_symbols.push_back({sym, defs[sym].description, defs[sym].weight});
    return std::make_unique<DnsblCheck>(std::move(lists), std::move(list_symbols));
}

bool DnsblCheck::any_reject_at_rcpt() const {
    return std::any_of(lists_.begin(), lists_.end(), [](const DnsblList& l) {
        return !l.reject_codes.empty() && l.reject_at == DnsblList::RejectAt::rcpt;
    });
}

bool DnsblCheck::may_refuse_before_data() const {
    return std::any_of(lists_.begin(), lists_.end(),
                       [](const DnsblList& l) { return !l.reject_codes.empty(); });
}

std::vector<check::Stage> DnsblCheck::stages() const {
    if (any_reject_at_rcpt()) return {check::Stage::connect, check::Stage::rcpt};
    return {check::Stage::connect};
}

std::vector<core::SymbolDef> DnsblCheck::symbols() const {
    std::vector<core::SymbolDef> out = {
        {std::string(sym_refused),
         "A DNS list refused our query (public resolver, over quota: 127.255.255.252-255, 127.0.0.255, or a "
         "code "
         "outside 127.0.0.0/8); never a listing. Fix the resolver set-up",
         0.0},
        {std::string(sym_tempfail),
         "A DNS list did not answer in time, answered SERVFAIL or garbage; never a listing", 0.0},
    };
    out.insert(out.end(), list_symbols_.begin(), list_symbols_.end());
    return out;
}

void DnsblCheck::start(check::Context& ctx) const {
    if (ctx.stage() == check::Stage::connect) start_connect(ctx);
    if (ctx.stage() == check::Stage::rcpt) start_rcpt(ctx);
}

void DnsblCheck::run(check::Context& ctx) const {
    if (ctx.stage() == check::Stage::connect) run_connect(ctx);
    if (ctx.stage() == check::Stage::rcpt) run_rcpt(ctx);
}

void DnsblCheck::start_connect(check::Context& ctx) const {
    auto ip = queried_ip(ctx);
    if (!ip || lists_.empty()) return;
    auto st = std::make_unique<DnsblState>();
    for (std::size_t i = 0; i < lists_.size(); ++i) {
        if (!ip->is_v4() && !lists_[i].ipv6) continue;
        auto q = dnsbl_query_name(*ip, lists_[i].zone);
        auto pending = ctx.resolver().lookup(q, dns::RrType::a);
        st->connect.push_back({i, std::move(q), std::move(pending)});
    }
    ctx.set_state(*this, std::move(st));
}

void DnsblCheck::run_connect(check::Context& ctx) const {
    auto* st = static_cast<DnsblState*>(ctx.state(*this));
    auto ip = queried_ip(ctx);
    if (st == nullptr || !ip) return;
    // One object per list for `vigil check --json` ("dnsbl": [...]): what each list answered.
    std::string report;
    const bool reports = ctx.wants_reports();  // only `vigil check` shows them
    for (auto& lookup : st->connect) {
        const auto& list = lists_[lookup.list];
        auto answer = lookup.pending.wait_until(ctx.deadline());
        auto r = classify_answer(list, answer);
        std::string_view result = "not_listed";
        std::vector<std::string> symbols;
        switch (r.kind) {
            case ListResult::Kind::not_listed:
                break;
            case ListResult::Kind::tempfail:
                result = "tempfail";
                symbols.emplace_back(sym_tempfail);
                ctx.add_symbol(*this, sym_tempfail, 1.0, {list.name + ":" + r.status});
                break;
            case ListResult::Kind::refused:
                result = "refused";
                symbols.emplace_back(sym_refused);
                ctx.add_symbol(*this, sym_refused, 1.0, {list.name + ":" + r.refused_code});
                ctx.warn(refused_warning(list, lookup.query, r.refused_code));
                break;
            case ListResult::Kind::listed:
                result = "listed";
                for (const auto& hit : r.hits) {
                    std::vector<std::string> options;
                    for (const auto& c : hit.codes) options.push_back(list.name + ":" + c);
                    symbols.push_back(hit.symbol);
                    ctx.add_symbol(*this, hit.symbol, 1.0, std::move(options));
                }
                if (r.reject_code && list.reject_at == DnsblList::RejectAt::connect) {
                    ctx.force(*this, core::Action::reject,
                              fmt::format("dnsbl {}: {} listed with {}", list.name, ip->to_string(),
                                          *r.reject_code),
                              reject_reply(list, *ip, *r.reject_code));
                }
                break;
        }
        if (!reports) continue;
        report += fmt::format(
            "{}{{\"list\":\"{}\",\"type\":\"{}\",\"query\":\"{}\",\"status\":\"{}\",\"codes\":{},\"result\":"
            "\"{}\","
            "\"symbols\":{}{}}}",
            report.empty() ? "" : ",", list.name, list.type == DnsblList::Type::allow ? "allow" : "block",
            core::json_escape(lookup.query), r.status, json_strings(r.codes), result, json_strings(symbols),
            r.reject_code ? fmt::format(",\"reject_code\":\"{}\"", *r.reject_code) : std::string());
    }
    if (reports && !st->connect.empty()) ctx.add_report("dnsbl", "[" + report + "]");
}

// reject_at = "rcpt": refuse each recipient of an inbound message from a client that a list names
// with one of its reject_codes (the engine skips this stage for outbound mail, so an authenticated
// user on a listed dial-up address can still submit). The connect-stage answers are gone by now: the
// engine keeps per-message state only, and clears it at MAIL. So the lookup is made again; behind the
// shared cache it is a memory hit. It is never waited for: an answer not there yet (a list that timed
// out at connect) must not hold up RCPT; such a client is judged by the connect-stage score instead.
void DnsblCheck::start_rcpt(check::Context& ctx) const {
    auto ip = queried_ip(ctx);
    if (!ip) return;
    auto& st = state_of(ctx, *this);
    if (st.rcpt_started) return;
    st.rcpt_started = true;
    for (std::size_t i = 0; i < lists_.size(); ++i) {
        const auto& list = lists_[i];
        if (list.reject_codes.empty() || list.reject_at != DnsblList::RejectAt::rcpt) continue;
        if (!ip->is_v4() && !list.ipv6) continue;
        auto q = dnsbl_query_name(*ip, list.zone);
        auto pending = ctx.resolver().lookup(q, dns::RrType::a);
        st.rcpt.push_back({i, std::move(q), std::move(pending)});
    }
}

void DnsblCheck::run_rcpt(check::Context& ctx) const {
    auto* st = static_cast<DnsblState*>(ctx.state(*this));
    auto ip = queried_ip(ctx);
    if (st == nullptr || !ip) return;
    for (auto& lookup : st->rcpt) {
        if (st->reject) break;
        if (lookup.done || !lookup.pending.ready()) continue;
        lookup.done = true;
        const auto& list = lists_[lookup.list];
        // Ready, so this returns at once.
        auto r = classify_answer(list, lookup.pending.wait_until(ctx.deadline()));
        if (r.kind == ListResult::Kind::listed && r.reject_code) st->reject = {lookup.list, *r.reject_code};
    }
    if (!st->reject) return;
    const auto& list = lists_[st->reject->first];
    ctx.force(*this, core::Action::reject,
              fmt::format("dnsbl {}: {} listed with {}", list.name, ip->to_string(), st->reject->second),
              reject_reply(list, *ip, st->reject->second));
}

}  // namespace vigil::reputation
