#include "auth/spf/evaluator.hpp"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "auth/spf/macro.hpp"
#include "auth/spf/record.hpp"
#include "auth/spf/spf_limits.hpp"
#include "core/printable.hpp"
#include "dns/cache.hpp"
#include "dns/heap_size.hpp"

namespace vigil::auth::spf {

namespace {

constexpr std::size_t max_reported = 120;

bool ldh(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

bool same_prefix(const core::IpAddress& a, const core::IpAddress& b, unsigned bits) {
    if (a.is_v4() != b.is_v4()) return false;
    const auto& x = a.bytes();
    const auto& y = b.bytes();
    unsigned full = bits / 8;
    for (unsigned i = 0; i < full; ++i) {
        if (x[i] != y[i]) return false;
    }
    unsigned rest = bits % 8;
    if (rest == 0) return true;
    auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (x[full] & mask) == (y[full] & mask);
}

Result of(Qualifier q) {
    switch (q) {
        case Qualifier::pass:
            return Result::pass;
        case Qualifier::fail:
            return Result::fail;
        case Qualifier::softfail:
            return Result::softfail;
        case Qualifier::neutral:
            return Result::neutral;
    }
    return Result::neutral;
}

bool is_temp(dns::Status s) {
    return s == dns::Status::timeout || s == dns::Status::servfail;
}
bool is_void(dns::Status s) {
    return s == dns::Status::nxdomain || s == dns::Status::nodata;
}

std::string strip_dot(std::string_view s) {
    if (!s.empty() && s.back() == '.') s.remove_suffix(1);
    return core::to_lower(s);
}

enum class Match { no, yes, temperror, permerror };

// What the parsed-object cache holds for a name: the record text and its parse.
struct CachedRecord {
    std::string text;
    ParsedRecord parsed;
};
constexpr std::string_view cache_tag = "spf-record";

// What the DNS cache's entry for a parsed record keeps alive.
std::size_t cached_bytes(const CachedRecord& c) {
    namespace heap = dns::heap;
    std::size_t n = heap::make_shared_block<CachedRecord>() + heap::of(c.text) + heap::of(c.parsed.error);
    if (const auto& r = c.parsed.record) {
        n += heap::buffer_of(r->mechanisms);
        for (const auto& m : r->mechanisms) n += heap::of(m.domain_spec) + heap::of(m.text);
        if (r->redirect) n += heap::of(*r->redirect);
        if (r->exp) n += heap::of(*r->exp);
    }
    return n;
}

struct Step {
    Result result = Result::neutral;
    std::string mechanism;
    std::string explanation;
    std::string problem;
};

class Evaluator {
  public:
    Evaluator(dns::Resolver& r, std::chrono::steady_clock::time_point deadline, const core::IpAddress& ip,
              const Identity& id, std::string_view helo, const Options& opt,
              std::optional<dns::Pending> prefetched)
        : resolver_(r),
          deadline_(deadline),
          ip_(ip.unmapped()),
          id_(id),
          helo_(helo),
          opt_(opt),
          prefetched_(std::move(prefetched)) {}

    Outcome run() {
        Outcome o;
        o.domain = core::printable(id_.domain, max_reported);
        auto s = check_host(strip_dot(id_.domain), 0, true);
        o.result = s.result;
        o.mechanism = std::move(s.mechanism);
        o.explanation = std::move(s.explanation);
        o.problem = std::move(s.problem);
        o.dns_terms = dns_terms_;
        o.void_lookups = voids_;
        o.queries = queries_;
        o.dnssec = dnssec_;
        return o;
    }

  private:
    dns::Answer wait(dns::Pending p) { return p.wait_until(deadline_); }
    dns::Pending lookup(std::string_view name, dns::RrType type) {
        ++queries_;
        return resolver_.lookup(name, type);
    }
    dns::RrType address_type() const { return ip_.is_v4() ? dns::RrType::a : dns::RrType::aaaa; }

    MacroContext macro_context(std::string_view domain) {
        MacroContext m;
        m.local_part = id_.local_part;
        m.sender_domain = id_.domain;
        m.domain = domain;
        m.helo = helo_;
        m.ip = ip_;
        m.receiver = opt_.receiver;
        m.timestamp = opt_.timestamp;
        m.validated_ptr = [this, d = std::string(domain)] { return validated_name(d); };
        return m;
    }

    // PTR names of the client that resolve back to it (at most limits::max_ptr_names looked at).
    const std::vector<std::string>& validated_names() {
        if (validated_) return *validated_;
        validated_.emplace();
        auto ptr = wait(lookup(dns::reverse_name(ip_), dns::RrType::ptr));
        if (!ptr.ok()) return *validated_;
        std::vector<std::string> names;
        for (const auto& rec : ptr.records) {
            if (rec.type != dns::RrType::ptr) continue;
            if (names.size() == limits::max_ptr_names) break;
            auto q = dns::normalize_query_name(rec.target);
            if (q.ok()) names.push_back(q.name);
        }
        std::vector<dns::Pending> forward;
        for (const auto& n : names) forward.push_back(lookup(n, address_type()));
        for (std::size_t i = 0; i < names.size(); ++i) {
            auto a = wait(forward[i]);
            if (!a.ok()) continue;
            for (const auto& r : a.records) {
                if (r.address && r.address->unmapped() == ip_) {
                    validated_->push_back(names[i]);
                    break;
                }
            }
        }
        return *validated_;
    }

    static bool within(std::string_view name, std::string_view domain) {
        return name == domain || (name.size() > domain.size() && name.ends_with(domain) &&
                                  name[name.size() - domain.size() - 1] == '.');
    }

    std::string validated_name(const std::string& domain) {
        const auto& names = validated_names();
        auto d = strip_dot(domain);
        for (const auto& n : names) {
            if (within(n, d)) return n;
        }
        return names.empty() ? "unknown" : names.front();
    }

    bool count_term(std::string& problem) {
        if (++dns_terms_ > limits::max_dns_terms) {
            problem = fmt::format("more than {} DNS-querying terms", limits::max_dns_terms);
            return false;
        }
        return true;
    }
    bool count_void(std::string& problem) {
        if (++voids_ > limits::max_void_lookups) {
            problem = fmt::format("more than {} void lookups", limits::max_void_lookups);
            return false;
        }
        return true;
    }

    // True if any address of the answer is in the client's network of the given prefix.
    bool matches(const dns::Answer& a, const Mechanism& m) const {
        for (const auto& r : a.records) {
            if (!r.address) continue;
            auto addr = *r.address;
            if (addr.is_v4() != ip_.is_v4()) continue;
            if (same_prefix(addr, ip_, ip_.is_v4() ? m.cidr4 : m.cidr6)) return true;
        }
        return false;
    }

    Match target(const Mechanism& m, std::string_view domain, std::string& out, std::string& problem) {
        if (m.domain_spec.empty()) {
            out = std::string(domain);
            return Match::yes;
        }
        auto e = expand_domain(m.domain_spec, macro_context(domain));
        if (!e.ok()) {
            problem = fmt::format("{}: {}", m.text, e.error);
            return Match::permerror;
        }
        out = strip_dot(e.value);
        return Match::yes;
    }

    Match dns_error(const dns::Answer& a, std::string_view what, std::string& problem) {
        problem = fmt::format("{}: {}{}{}", core::printable(what, max_reported), dns::to_string(a.status),
                              a.detail.empty() ? "" : " ", core::printable(a.detail, max_reported));
        return Match::temperror;
    }

    Match mechanism(const Mechanism& m, std::string_view domain, std::size_t depth, std::string& problem) {
        if (m.counts_dns() && !count_term(problem)) return Match::permerror;
        std::string name;
        switch (m.kind) {
            case MechanismKind::all:
                return Match::yes;
            case MechanismKind::ip4:
            case MechanismKind::ip6:
                if (!m.network) return Match::no;
                return (ip_.is_v4() == m.network->network().is_v4() &&
                        same_prefix(ip_, m.network->network(), m.network->prefix()))
                           ? Match::yes
                           : Match::no;
            case MechanismKind::include: {
                if (auto t = target(m, domain, name, problem); t != Match::yes) return t;
                auto s = check_host(name, depth + 1, false);
                switch (s.result) {
                    case Result::pass:
                        return Match::yes;
                    case Result::fail:
                    case Result::softfail:
                    case Result::neutral:
                        return Match::no;
                    case Result::temperror:
                        problem = s.problem;
                        return Match::temperror;
                    case Result::permerror:
                        problem = s.problem;
                        return Match::permerror;
                    case Result::none:
                        problem = fmt::format("{}: no SPF record ({})", m.text, s.problem);
                        return Match::permerror;
                }
                return Match::permerror;
            }
            case MechanismKind::a:
            case MechanismKind::exists: {
                if (auto t = target(m, domain, name, problem); t != Match::yes) return t;
                auto type = m.kind == MechanismKind::exists ? dns::RrType::a : address_type();
                auto a = wait(lookup(name, type));
                if (a.ok())
                    return m.kind == MechanismKind::exists ? Match::yes
                                                           : (matches(a, m) ? Match::yes : Match::no);
                if (is_void(a.status)) return count_void(problem) ? Match::no : Match::permerror;
                if (a.status == dns::Status::malformed && !dns::normalize_query_name(name).ok())
                    return Match::no;
                return dns_error(a, name, problem);
            }
            case MechanismKind::mx: {
                if (auto t = target(m, domain, name, problem); t != Match::yes) return t;
                auto mx = wait(lookup(name, dns::RrType::mx));
                if (is_void(mx.status)) return count_void(problem) ? Match::no : Match::permerror;
                if (mx.status == dns::Status::malformed && !dns::normalize_query_name(name).ok())
                    return Match::no;
                if (!mx.ok()) return dns_error(mx, name, problem);
                std::vector<std::string> hosts;
                for (const auto& r : mx.records) {
                    if (r.type != dns::RrType::mx) continue;
                    if (hosts.size() == limits::max_mx_names) {
                        problem = fmt::format("{}: more than {} MX names", m.text, limits::max_mx_names);
                        return Match::permerror;
                    }
                    hosts.push_back(r.target);
                }
                std::vector<dns::Pending> addrs;
                for (const auto& h : hosts) {
                    addrs.push_back(
                        h.empty() ? dns::Pending::of(dns::Answer::failure(dns::Status::nodata, "null MX"))
                                  : lookup(h, address_type()));
                }
                std::optional<std::string> temp;
                for (std::size_t i = 0; i < hosts.size(); ++i) {
                    auto a = wait(addrs[i]);
                    if (a.ok() && matches(a, m)) return Match::yes;
                    if (is_temp(a.status) && !temp) {
                        std::string p;
                        dns_error(a, hosts[i], p);
                        temp = p;
                    }
                }
                if (temp) {
                    problem = *temp;
                    return Match::temperror;
                }
                return Match::no;
            }
            case MechanismKind::ptr: {
                if (auto t = target(m, domain, name, problem); t != Match::yes) return t;
                const auto& names = validated_names();
                for (const auto& n : names) {
                    if (within(n, name)) return Match::yes;
                }
                return Match::no;
            }
        }
        return Match::no;
    }

    std::string explanation(const Record& rec, std::string_view domain) {
        if (!opt_.fetch_explanation || !rec.exp) return {};
        auto ctx = macro_context(domain);
        auto e = expand_domain(*rec.exp, ctx);
        if (!e.ok() || !dns::normalize_query_name(e.value).ok()) return {};
        auto a = wait(lookup(e.value, dns::RrType::txt));
        if (!a.ok()) return {};
        std::vector<std::string> texts;
        for (const auto& r : a.records) {
            if (r.type == dns::RrType::txt) texts.push_back(r.txt_joined());
        }
        if (texts.size() != 1 || texts[0].size() > limits::max_expansion_bytes) return {};
        if (!valid_explain_string(texts[0])) return {};
        auto x = expand_macros(texts[0], ctx, true);
        if (!x.ok()) return {};
        for (char c : x.value) {
            auto u = static_cast<unsigned char>(c);
            if (u < 0x20 || u > 0x7e) return {};
        }
        if (x.value.size() > limits::max_explanation_bytes) x.value.resize(limits::max_explanation_bytes);
        return x.value;
    }

    Step check_host(const std::string& domain, std::size_t depth, bool exp_allowed) {
        Step s;
        if (depth > limits::max_recursion_depth) {
            s.result = Result::permerror;
            s.problem = "include/redirect nesting too deep";
            return s;
        }
        if (!checkable_domain(domain)) {
            s.result = Result::none;
            s.problem = fmt::format("'{}' is not a checkable domain", core::printable(domain, max_reported));
            return s;
        }
        dns::Answer txt;
        if (depth == 0 && prefetched_) {
            txt = wait(*prefetched_);
        } else {
            txt = wait(lookup(domain, dns::RrType::txt));
        }
        if (depth == 0) dnssec_ = txt.dnssec;
        if (is_void(txt.status)) {
            s.result = Result::none;
            s.problem = fmt::format("{}: no SPF record ({})", core::printable(domain, max_reported),
                                    dns::to_string(txt.status));
            return s;
        }
        if (!txt.ok()) {
            s.result = Result::temperror;
            std::string p;
            dns_error(txt, domain, p);
            s.problem = "TXT " + p;
            return s;
        }
        std::vector<std::string> spf;
        std::size_t seen = 0;
        for (const auto& r : txt.records) {
            if (r.type != dns::RrType::txt || ++seen > limits::max_txt_records) continue;
            auto joined = r.txt_joined();
            if (is_spf_record(joined)) spf.push_back(std::move(joined));
        }
        if (spf.empty()) {
            s.result = Result::none;
            s.problem = fmt::format("{}: no SPF record", core::printable(domain, max_reported));
            return s;
        }
        if (spf.size() > 1) {
            s.result = Result::permerror;
            s.problem = fmt::format("{}: {} SPF records", core::printable(domain, max_reported), spf.size());
            return s;
        }
        std::shared_ptr<const CachedRecord> cached;
        if (opt_.parsed_cache != nullptr) {
            cached = opt_.parsed_cache->get_parsed<CachedRecord>(domain, dns::RrType::txt, cache_tag);
            if (cached && cached->text != spf.front()) cached.reset();
        }
        if (!cached) {
            auto fresh =
                std::make_shared<const CachedRecord>(CachedRecord{spf.front(), parse_record(spf.front())});
            if (opt_.parsed_cache != nullptr) {
                opt_.parsed_cache->put_parsed<CachedRecord>(domain, dns::RrType::txt, cache_tag, fresh,
                                                            txt.ttl, cached_bytes(*fresh));
            }
            cached = std::move(fresh);
        }
        const auto& parsed = cached->parsed;
        if (!parsed.ok()) {
            s.result = Result::permerror;
            s.problem = fmt::format("{}: {}", core::printable(domain, max_reported), parsed.error);
            return s;
        }
        const auto& rec = *parsed.record;
        for (const auto& m : rec.mechanisms) {
            std::string problem;
            auto r = mechanism(m, domain, depth, problem);
            if (r == Match::no) continue;
            if (r == Match::temperror || r == Match::permerror) {
                s.result = r == Match::temperror ? Result::temperror : Result::permerror;
                s.mechanism = m.text;
                s.problem = std::move(problem);
                return s;
            }
            s.result = of(m.qualifier);
            s.mechanism = m.text;
            if (s.result == Result::fail && exp_allowed) s.explanation = explanation(rec, domain);
            return s;
        }
        if (rec.redirect) {
            if (!count_term(s.problem)) {
                s.result = Result::permerror;
                return s;
            }
            auto e = expand_domain(*rec.redirect, macro_context(domain));
            if (!e.ok()) {
                s.result = Result::permerror;
                s.problem = "redirect: " + e.error;
                return s;
            }
            auto inner = check_host(strip_dot(e.value), depth + 1, exp_allowed);
            if (inner.result == Result::none) {
                inner.result = Result::permerror;
                inner.problem =
                    fmt::format("redirect={}: {}", core::printable(e.value, max_reported), inner.problem);
            }
            return inner;
        }
        s.result = Result::neutral;
        s.mechanism = "default";
        return s;
    }

    dns::Resolver& resolver_;
    std::chrono::steady_clock::time_point deadline_;
    core::IpAddress ip_;
    const Identity& id_;
    std::string_view helo_;
    const Options& opt_;
    std::optional<dns::Pending> prefetched_;
    dns::Dnssec dnssec_ = dns::Dnssec::unchecked;
    std::size_t dns_terms_ = 0;
    std::size_t voids_ = 0;
    std::size_t queries_ = 0;
    std::optional<std::vector<std::string>> validated_;
};

}  // namespace

std::string_view to_string(Result r) {
    switch (r) {
        case Result::none:
            return "none";
        case Result::neutral:
            return "neutral";
        case Result::pass:
            return "pass";
        case Result::fail:
            return "fail";
        case Result::softfail:
            return "softfail";
        case Result::temperror:
            return "temperror";
        case Result::permerror:
            return "permerror";
    }
    return "permerror";
}

Identity mailfrom_identity(std::string_view mail_from, std::string_view helo) {
    if (mail_from.empty()) return helo_identity(helo);
    auto at = mail_from.rfind('@');
    if (at == std::string_view::npos) return {"postmaster", std::string(mail_from)};
    auto local = mail_from.substr(0, at);
    return {local.empty() ? "postmaster" : std::string(local), std::string(mail_from.substr(at + 1))};
}

Identity helo_identity(std::string_view helo) {
    return {"postmaster", std::string(helo)};
}

bool checkable_domain(std::string_view domain) {
    if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
    if (domain.empty() || domain.size() > limits::max_domain_length) return false;
    std::size_t labels = 0;
    std::size_t start = 0;
    while (true) {
        auto dot = domain.find('.', start);
        auto label =
            domain.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (label.empty() || label.size() > limits::max_label_length) return false;
        if (!std::all_of(label.begin(), label.end(), ldh)) return false;
        ++labels;
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    return labels >= 2;
}

std::optional<dns::Pending> start_lookup(dns::Resolver& resolver, std::string_view domain) {
    if (!checkable_domain(domain)) return std::nullopt;
    return resolver.lookup(strip_dot(domain), dns::RrType::txt);
}

Outcome evaluate(dns::Resolver& resolver, std::chrono::steady_clock::time_point deadline,
                 const core::IpAddress& ip, const Identity& identity, std::string_view helo,
                 const Options& options, std::optional<dns::Pending> prefetched) {
    Evaluator e(resolver, deadline, ip, identity, helo, options, std::move(prefetched));
    return e.run();
}

std::string to_json(const Outcome& o, std::string_view identity_kind) {
    std::string out = fmt::format("{{\"result\":\"{}\",\"identity\":\"{}\",\"domain\":\"{}\",\"mechanism\":",
                                  to_string(o.result), identity_kind, core::json_escape(o.domain));
    out += o.mechanism.empty() ? std::string("null") : fmt::format("\"{}\"", core::json_escape(o.mechanism));
    if (!o.explanation.empty())
        out += fmt::format(",\"explanation\":\"{}\"", core::json_escape(o.explanation));
    if (!o.problem.empty()) out += fmt::format(",\"problem\":\"{}\"", core::json_escape(o.problem));
    out += fmt::format(",\"dns_terms\":{},\"void_lookups\":{}}}", o.dns_terms, o.void_lookups);
    return out;
}

}  // namespace vigil::auth::spf
