#include "auth/spf/spf_check.hpp"

#include <algorithm>
#include <optional>

#include <fmt/format.h>

#include "auth/authentication_results.hpp"
#include "check/config_reader.hpp"
#include "core/printable.hpp"
#include "dns/resolver.hpp"

namespace vigil::auth::spf {

namespace {

// Peer- and DNS-supplied strings in headers and replies are cut to this many bytes.
constexpr std::size_t max_header_string = 200;
constexpr std::size_t max_reply_text = 400;

struct SpfState final : check::CheckState {
    core::IpAddress ip;
    Identity mailfrom;
    std::optional<dns::Pending> mailfrom_txt;
    std::optional<dns::Pending> helo_txt;
    bool check_helo = false;
};

bool token_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_' || c == '@' || c == '+';
}

// A dot-atom-like token as is; anything else as a quoted-string of printable ASCII.
std::string header_value(std::string_view raw) {
    auto p = core::printable(raw, max_header_string);
    if (!p.empty() && std::all_of(p.begin(), p.end(), token_char) && p.front() != '.' && p.back() != '.')
        return p;
    std::string out = "\"";
    for (char c : p) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
    return out;
}

// Text for inside a header comment: printable, no parentheses or backslashes.
std::string comment_text(std::string_view raw) {
    auto p = core::printable(raw, max_header_string);
    for (auto& c : p) {
        if (c == '(' || c == ')' || c == '\\') c = '_';
    }
    return p;
}

std::string symbol_for(Result r, bool helo) {
    std::string name = helo ? "SPF_HELO_" : "SPF_";
    auto s = to_string(r);
    for (char c : s) name += static_cast<char>(c - 'a' + 'A');
    return name;
}

std::int64_t unix_time(const core::Clock& clock) {
    return std::chrono::duration_cast<std::chrono::seconds>(clock.now().time_since_epoch()).count();
}

std::string receiver_of(const check::ServerFacts& cfg) {
    if (!cfg.authserv_id.empty()) return cfg.authserv_id;
    if (!cfg.hostname.empty()) return cfg.hostname;
    return "unknown";
}

}  // namespace

std::string received_spf_value(const Outcome& o, const core::IpAddress& ip, std::string_view mail_from,
                               std::string_view helo, std::string_view receiver, std::string_view identity) {
    auto ip_text = ip.unmapped().to_string();
    std::string why;
    switch (o.result) {
        case Result::pass:
            why = fmt::format("domain of {} designates {} as permitted sender", comment_text(o.domain),
                              ip_text);
            break;
        case Result::fail:
            why = fmt::format("domain of {} does not designate {} as permitted sender",
                              comment_text(o.domain), ip_text);
            break;
        case Result::softfail:
            why = fmt::format("domain of {} discourages use of {} as permitted sender",
                              comment_text(o.domain), ip_text);
            break;
        case Result::neutral:
            why = fmt::format("{} is neither permitted nor denied by domain of {}", ip_text,
                              comment_text(o.domain));
            break;
        case Result::none:
            why = fmt::format("domain of {} does not publish SPF", comment_text(o.domain));
            break;
        case Result::temperror:
            why = "temporary error in processing during lookup";
            break;
        case Result::permerror:
            why = "permanent error in processing";
            break;
    }
    std::string v =
        fmt::format(" {} ({}: {}) client-ip={}; envelope-from={}; helo={}; receiver={}; identity={};",
                    to_string(o.result), comment_text(receiver), why, ip_text,
                    header_value(mail_from.empty() ? std::string_view("<>") : mail_from), header_value(helo),
                    header_value(receiver), identity);
    if (!o.mechanism.empty()) v += fmt::format(" mechanism={};", header_value(o.mechanism));
    if (!o.problem.empty() && (o.result == Result::permerror || o.result == Result::temperror)) {
        v += fmt::format(" problem={};", header_value(o.problem));
    }
    return v;
}

std::string auth_result(const Outcome& o, std::string_view property, std::string_view value) {
    return fmt::format("spf={}{} {}={}", to_string(o.result), auth::dnssec_comment(o.dnssec), property,
                       auth::ar_value(value));
}

std::unique_ptr<check::Check> SpfCheck::make(check::Section& s) {
    CheckOptions o;
    o.reject_on_fail = s.get_bool("reject_on_fail", o.reject_on_fail);
    o.tempfail_on_temperror = s.get_bool("tempfail_on_temperror", o.tempfail_on_temperror);
    o.helo_check = s.get_bool("helo_check", o.helo_check);
    o.received_spf_header = s.get_bool("received_spf_header", o.received_spf_header);
    o.explanation = s.get_bool("explanation", o.explanation);
    return std::make_unique<SpfCheck>(o);
}

std::vector<core::SymbolDef> SpfCheck::symbols() const {
    // Magnitudes as SpamAssassin/rspamd give them: SPF alone is a hint (forwarding breaks it), so a
    // fail scores but does not reject unless reject_on_fail says so. Errors are never findings.
    return {
        {"SPF_PASS", "SPF: the client may send for the MAIL FROM domain (spf=pass)", 0.0},
        {"SPF_FAIL", "SPF: the MAIL FROM domain says the client may not send for it (spf=fail)", 3.0},
        {"SPF_SOFTFAIL", "SPF: the MAIL FROM domain discourages this client (spf=softfail)", 1.0},
        {"SPF_NEUTRAL", "SPF: the MAIL FROM domain makes no assertion about this client (spf=neutral)", 0.0},
        {"SPF_NONE", "SPF: the MAIL FROM domain publishes no SPF record, or is not checkable (spf=none)",
         0.0},
        {"SPF_PERMERROR", "SPF: the MAIL FROM domain's SPF record is broken (spf=permerror)", 0.5},
        {"SPF_TEMPERROR",
         "SPF: a DNS timeout or SERVFAIL prevented the check (spf=temperror); never a finding", 0.0},
        {"SPF_HELO_PASS", "SPF for the HELO name: pass", 0.0},
        {"SPF_HELO_FAIL", "SPF for the HELO name: fail", 2.0},
        {"SPF_HELO_SOFTFAIL", "SPF for the HELO name: softfail", 0.5},
        {"SPF_HELO_NEUTRAL", "SPF for the HELO name: neutral", 0.0},
        {"SPF_HELO_NONE", "SPF for the HELO name: no record, or the name is not checkable", 0.0},
        {"SPF_HELO_PERMERROR", "SPF for the HELO name: broken record (permerror)", 0.3},
        {"SPF_HELO_TEMPERROR", "SPF for the HELO name: DNS timeout or SERVFAIL (temperror)", 0.0},
    };
}

void SpfCheck::start(check::Context& ctx) const {
    const auto& env = ctx.envelope();
    if (!env.client_ip) return;
    auto st = std::make_unique<SpfState>();
    st->ip = env.client_ip->unmapped();
    st->mailfrom = mailfrom_identity(env.mail_from, env.helo);
    // Both record lookups at once: the HELO one is independent of the MAIL FROM one.
    st->mailfrom_txt = start_lookup(ctx.resolver(), st->mailfrom.domain);
    st->check_helo = options_.helo_check && !env.mail_from.empty();
    if (st->check_helo) st->helo_txt = start_lookup(ctx.resolver(), env.helo);
    ctx.set_state(*this, std::move(st));
}

void SpfCheck::run(check::Context& ctx) const {
    auto* st = static_cast<SpfState*>(ctx.state(*this));
    if (st == nullptr) return;
    const auto& env = ctx.envelope();
    Options opt;
    opt.fetch_explanation = options_.explanation;
    opt.receiver = receiver_of(ctx.server());
    opt.timestamp = unix_time(ctx.clock());
    opt.parsed_cache = ctx.cache();

    const bool null_sender = env.mail_from.empty();
    auto o = evaluate(ctx.resolver(), ctx.deadline(), st->ip, st->mailfrom, env.helo, opt, st->mailfrom_txt);
    std::vector<std::string> options;
    if (!o.mechanism.empty()) options.push_back(o.mechanism);
    if (!o.problem.empty() && o.result != Result::pass) options.push_back(core::printable(o.problem, 120));
    // For the null sender the checked identity is postmaster@HELO: report it as the HELO.
    ctx.add_symbol(*this, symbol_for(o.result, false), 1.0, options);
    if (null_sender) {
        ctx.add_auth_result(auth_result(o, "smtp.helo", env.helo));
    } else {
        ctx.add_auth_result(auth_result(o, "smtp.mailfrom", st->mailfrom.domain));
    }
    if (ctx.wants_reports()) ctx.add_report("spf", to_json(o, null_sender ? "helo" : "mailfrom"));
    ctx.facts().spf = check::SpfFact{std::string(to_string(o.result)), core::to_lower(o.domain),
                                     null_sender ? "helo" : "mfrom", o.dnssec == dns::Dnssec::secure};
    if (options_.received_spf_header) {
        ctx.prepend_header("Received-SPF",
                           received_spf_value(o, st->ip, env.mail_from, env.helo, opt.receiver,
                                              null_sender ? "helo" : "mailfrom"));
    }

    if (st->check_helo) {
        Options helo_opt = opt;
        helo_opt.fetch_explanation = false;
        auto h = evaluate(ctx.resolver(), ctx.deadline(), st->ip, helo_identity(env.helo), env.helo, helo_opt,
                          st->helo_txt);
        std::vector<std::string> hopts;
        if (!h.mechanism.empty()) hopts.push_back(h.mechanism);
        if (!h.problem.empty() && h.result != Result::pass) hopts.push_back(core::printable(h.problem, 120));
        ctx.add_symbol(*this, symbol_for(h.result, true), 1.0, hopts);
        ctx.add_auth_result(auth_result(h, "smtp.helo", env.helo));
        if (ctx.wants_reports()) ctx.add_report("spf_helo", to_json(h, "helo"));
        ctx.facts().spf_helo = check::SpfFact{std::string(to_string(h.result)), core::to_lower(h.domain),
                                              "helo", h.dnssec == dns::Dnssec::secure};
    }

    if (o.result == Result::fail && options_.reject_on_fail) {
        std::string text = o.explanation.empty() ? fmt::format("SPF: {} is not allowed to send mail for {}",
                                                               st->ip.to_string(), o.domain)
                                                 : core::printable(o.explanation, max_reply_text);
        ctx.force(*this, core::Action::reject, fmt::format("spf=fail for {}", o.domain),
                  core::SmtpReply{"550", "5.7.23", text});
    } else if (o.result == Result::temperror && options_.tempfail_on_temperror) {
        ctx.force(*this, core::Action::tempfail, fmt::format("spf=temperror for {}", o.domain),
                  core::SmtpReply{"451", "4.4.3", "SPF: temporary DNS error, try again later"});
    }
}

}  // namespace vigil::auth::spf
