#include "reputation/iprev.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "core/printable.hpp"
#include "dns/resolver.hpp"

namespace vigil::reputation {

namespace {

// Label words ISPs put into the names of dynamically assigned (end-user) addresses.
constexpr std::array<std::string_view, 16> generic_words = {
    "dynamic", "dyn", "dhcp",  "pool",   "dsl",  "adsl", "vdsl", "xdsl",
    "cable",   "ppp", "pppoe", "dialup", "dial", "cpe",  "dip",  "broadband",
};

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_hex(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f');
}

// `needle` occurs in `hay` with no character of `inside` class directly before or after it, so
// "1-2-3-4" is not found in "11-2-3-45".
bool contains_bounded(std::string_view hay, std::string_view needle, bool (*inside)(char)) {
    for (auto pos = hay.find(needle); pos != std::string_view::npos; pos = hay.find(needle, pos + 1)) {
        bool left = pos == 0 || !inside(hay[pos - 1]);
        auto end = pos + needle.size();
        bool right = end == hay.size() || !inside(hay[end]);
        if (left && right) return true;
    }
    return false;
}

// A pattern of at most 40 characters, built without allocating: embeds_ipv4 runs on every connection.
class Pattern {
  public:
    Pattern& num(unsigned v, int width = 0, int base = 10) {
        char digits[16];
        auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v, base);
        for (auto len = end - digits; len < width; ++len) buf_[n_++] = '0';
        for (const char* d = digits; d != end; ++d) buf_[n_++] = *d;
        return *this;
    }
    Pattern& ch(char c) {
        buf_[n_++] = c;
        return *this;
    }
    std::string_view view() const { return {buf_.data(), n_}; }

  private:
    std::array<char, 48> buf_{};
    std::size_t n_ = 0;
};

bool embeds_ipv4(std::string_view name, const core::IpAddress& ip) {
    const auto& b = ip.bytes();
    std::array<unsigned, 4> o = {b[0], b[1], b[2], b[3]};
    std::array<unsigned, 4> r = {b[3], b[2], b[1], b[0]};
    for (const auto& q : {o, r}) {
        for (char sep : {'-', '.', '_'}) {
            Pattern dotted;
            dotted.num(q[0]).ch(sep).num(q[1]).ch(sep).num(q[2]).ch(sep).num(q[3]);
            if (contains_bounded(name, dotted.view(), is_digit)) return true;
        }
        Pattern padded;  // 203000113009
        padded.num(q[0], 3).num(q[1], 3).num(q[2], 3).num(q[3], 3);
        if (contains_bounded(name, padded.view(), is_digit)) return true;
    }
    Pattern hex;  // cb007109
    hex.num(o[0], 2, 16).num(o[1], 2, 16).num(o[2], 2, 16).num(o[3], 2, 16);
    if (contains_bounded(name, hex.view(), is_hex)) return true;
    Pattern whole;  // the address as one 32-bit number
    whole.num((o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3]);
    return contains_bounded(name, whole.view(), is_digit);
}

bool has_generic_word(std::string_view name) {
    // The last two labels are (about) the registered domain: "cable.example" is a company, not a pool.
    std::vector<std::string_view> labels;
    for (std::size_t start = 0; start <= name.size();) {
        auto dot = name.find('.', start);
        if (dot == std::string_view::npos) dot = name.size();
        labels.push_back(name.substr(start, dot - start));
        start = dot + 1;
    }
    if (labels.size() <= 2) return false;
    for (std::size_t i = 0; i + 2 < labels.size(); ++i) {
        auto label = labels[i];
        // Words are the runs of letters: "adsl123", "pool-4-3-2-1" and "dyn_ip" all count.
        for (std::size_t p = 0; p < label.size();) {
            while (p < label.size() && !(label[p] >= 'a' && label[p] <= 'z')) ++p;
            auto q = p;
            while (q < label.size() && label[q] >= 'a' && label[q] <= 'z') ++q;
            auto word = label.substr(p, q - p);
            if (!word.empty() &&
                std::find(generic_words.begin(), generic_words.end(), word) != generic_words.end()) {
                return true;
            }
            p = q;
        }
    }
    return false;
}

struct IprevState final : check::CheckState {
    core::IpAddress ip;
    dns::Pending ptr;
    explicit IprevState(core::IpAddress a, dns::Pending p) : ip(a), ptr(std::move(p)) {}
};

std::string reported(std::string_view name) {
    return core::printable(name, max_reported_name);
}

}  // namespace

bool looks_generic(std::string_view ptr_name, const core::IpAddress& ip) {
    auto name = core::to_lower(ptr_name);
    auto plain = ip.unmapped();
    if (plain.is_v4() && embeds_ipv4(name, plain)) return true;
    return has_generic_word(name);
}

std::unique_ptr<check::Check> IprevCheck::make(check::Section&) {
    return std::make_unique<IprevCheck>();
}

std::vector<core::SymbolDef> IprevCheck::symbols() const {
    // Magnitudes as rspamd/SpamAssassin give missing or unconfirmed reverse DNS (RDNS_NONE ~1.3,
    // RDNS_DYNAMIC ~1): a hint, never a verdict on its own. A pass is worth nothing by itself; any
    // spammer on a rented server has one.
    return {
        {"IPREV_PASS", "The client IP's reverse DNS name resolves back to it (iprev=pass)", 0.0},
        {"IPREV_FAIL", "The client IP has PTR names, but none resolves back to it (iprev=fail)", 1.5},
        {"IPREV_NO_PTR", "The client IP has no reverse DNS (PTR NXDOMAIN or NODATA; iprev=permerror)", 1.5},
        {"IPREV_TEMPERROR",
         "Reverse DNS could not be checked: timeout or SERVFAIL (iprev=temperror); never a finding", 0.0},
        {"IPREV_PERMERROR",
         "Reverse DNS data is unusable: malformed answer or invalid PTR names (iprev=permerror)", 1.0},
        {"IPREV_GENERIC",
         "The PTR name looks generic/dynamic (embeds the IP, or dynamic/dhcp/pool/dsl/cable/ppp...)", 1.0},
    };
}

void IprevCheck::start(check::Context& ctx) const {
    const auto& env = ctx.envelope();
    if (env.trusted_network || !env.client_ip) return;
    auto ip = env.client_ip->unmapped();
    ctx.set_state(*this, std::make_unique<IprevState>(
                             ip, ctx.resolver().lookup(dns::reverse_name(ip), dns::RrType::ptr)));
}

IprevEvaluation evaluate_iprev(dns::Resolver& resolver, const core::IpAddress& ip,
                               const dns::Pending& ptr_lookup,
                               std::chrono::steady_clock::time_point deadline) {
    IprevEvaluation ev;
    auto result = [&](std::string_view res, std::string_view symbol, std::vector<std::string> options) {
        ev.result = std::string(res);
        ev.symbol = std::string(symbol);
        ev.options = std::move(options);
        return ev;
    };

    auto ptr = ptr_lookup.wait_until(deadline);
    ev.ptr_status = dns::to_string(ptr.status);
    switch (ptr.status) {
        case dns::Status::nxdomain:
        case dns::Status::nodata:
            return result("permerror", "IPREV_NO_PTR", {"ptr:" + std::string(dns::to_string(ptr.status))});
        case dns::Status::timeout:
        case dns::Status::servfail:
            return result("temperror", "IPREV_TEMPERROR", {"ptr:" + std::string(dns::to_string(ptr.status))});
        case dns::Status::malformed:
            return result("permerror", "IPREV_PERMERROR", {"ptr:malformed"});
        case dns::Status::answer:
            break;
    }
    auto& names = ev.names;
    auto& confirmed = ev.confirmed;

    // Names a forward lookup can be made for, in answer order, without duplicates. A name that is
    // not a valid query name (over 253 characters, a label over 63, bytes outside printable ASCII,
    // escaped non-ASCII from the wire) cannot lead anywhere and is skipped rather than looked up.
    std::size_t invalid = 0;
    bool capped = false;
    for (const auto& rec : ptr.records) {
        if (rec.type != dns::RrType::ptr) continue;
        auto q = dns::normalize_query_name(rec.target);
        if (!q.ok()) {
            ++invalid;
            continue;
        }
        if (std::find(names.begin(), names.end(), q.name) != names.end()) continue;
        if (names.size() == max_ptr_names) {
            capped = true;
            break;
        }
        names.push_back(std::move(q.name));
    }
    if (names.empty()) {
        return result("permerror", "IPREV_PERMERROR",
                      {fmt::format("ptr:no valid name ({} invalid)", invalid)});
    }

    // The second round of lookups: all at once, then one shared deadline (the stage's).
    const auto type = ip.is_v4() ? dns::RrType::a : dns::RrType::aaaa;
    std::vector<dns::Pending> forward;
    forward.reserve(names.size());
    for (const auto& n : names) forward.push_back(resolver.lookup(n, type));

    std::optional<std::string> temp, perm;
    for (std::size_t i = 0; i < names.size(); ++i) {
        auto a = forward[i].wait_until(deadline);
        switch (a.status) {
            case dns::Status::answer:
                if (!confirmed && std::any_of(a.records.begin(), a.records.end(), [&](const dns::Record& r) {
                        return r.address && r.address->unmapped() == ip;
                    })) {
                    confirmed = names[i];
                }
                break;
            case dns::Status::nxdomain:
            case dns::Status::nodata:
                break;
            case dns::Status::timeout:
            case dns::Status::servfail:
                if (!temp) temp = fmt::format("forward:{}:{}", reported(names[i]), dns::to_string(a.status));
                break;
            case dns::Status::malformed:
                if (!perm) perm = fmt::format("forward:{}:malformed", reported(names[i]));
                break;
        }
    }

    std::vector<std::string> extra;
    if (capped) extra.push_back(fmt::format("only the first {} PTR names were checked", max_ptr_names));
    if (invalid > 0) extra.push_back(fmt::format("{} invalid PTR names skipped", invalid));
    const std::string& judged = confirmed ? *confirmed : names.front();
    ev.generic = looks_generic(judged, ip);

    std::vector<std::string> options;
    if (confirmed) {
        options.push_back(reported(*confirmed));
        options.insert(options.end(), extra.begin(), extra.end());
        return result("pass", "IPREV_PASS", std::move(options));
    }
    // No name confirmed. A name we could not check might have: that is not a fail.
    if (temp) {
        options.push_back(*temp);
        options.insert(options.end(), extra.begin(), extra.end());
        return result("temperror", "IPREV_TEMPERROR", std::move(options));
    }
    if (perm) {
        options.push_back(*perm);
        options.insert(options.end(), extra.begin(), extra.end());
        return result("permerror", "IPREV_PERMERROR", std::move(options));
    }
    for (std::size_t i = 0; i < names.size() && i < 3; ++i) options.push_back("ptr:" + reported(names[i]));
    options.insert(options.end(), extra.begin(), extra.end());
    return result("fail", "IPREV_FAIL", std::move(options));
}

void IprevCheck::run(check::Context& ctx) const {
    auto* st = static_cast<IprevState*>(ctx.state(*this));
    if (st == nullptr) return;
    const auto ip = st->ip;
    const auto ip_text = ip.to_string();
    auto ev = evaluate_iprev(ctx.resolver(), ip, st->ptr, ctx.deadline());
    const std::string judged = ev.confirmed       ? *ev.confirmed
                               : ev.names.empty() ? std::string()
                                                  : ev.names.front();
    if (ev.generic) ctx.add_symbol(*this, "IPREV_GENERIC", 1.0, {reported(judged)});
    ctx.add_symbol(*this, ev.symbol, 1.0, ev.options);
    ctx.add_auth_result(fmt::format("iprev={} policy.iprev={}", ev.result, ip_text));
    // What `vigil check --json` shows under "iprev".
    if (!ctx.wants_reports()) return;
    std::string list;
    for (const auto& n : ev.names)
        list += fmt::format("{}\"{}\"", list.empty() ? "" : ",", core::json_escape(n));
    ctx.add_report("iprev",
                   fmt::format("{{\"result\":\"{}\",\"ip\":\"{}\",\"ptr_status\":\"{}\",\"ptr\":[{}],"
                               "\"confirmed\":{},\"generic\":{},\"symbol\":\"{}\"}}",
                               ev.result, ip_text, ev.ptr_status, list,
                               ev.confirmed ? "\"" + core::json_escape(*ev.confirmed) + "\"" : "null",
                               ev.generic ? "true" : "false", ev.symbol));
}

}  // namespace vigil::reputation
