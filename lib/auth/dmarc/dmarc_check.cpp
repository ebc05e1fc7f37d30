#include "auth/dmarc/dmarc_check.hpp"

#include <algorithm>
#include <mutex>
#include <optional>
#include <random>

#include <fmt/format.h>

#include "auth/authentication_results.hpp"
#include "auth/dmarc/alignment.hpp"
#include "auth/dmarc/dmarc_limits.hpp"
#include "auth/dmarc/from_domain.hpp"
#include "check/config_reader.hpp"
#include "core/printable.hpp"
#include "dns/resolver.hpp"
#include "report/dmarc_store.hpp"

namespace vigil::auth::dmarc {

namespace {

constexpr std::size_t max_shown = 200;

struct DmarcState final : check::CheckState {
    FromDomain from;
    AuthorDomain author;
    std::optional<dns::Pending> txt_from;  // _dmarc.<From domain>
    std::optional<dns::Pending> txt_org;   // _dmarc.<organizational domain>, when different
};

enum class Found { record, none, several, invalid, temperror };

struct Discovery {
    Found found = Found::none;
    std::optional<Record> record;
    std::string domain;   // where the record was looked for / found
    bool at_org = false;  // found at the organizational domain, not at the From domain itself
    std::string text;     // the record, printable
    std::string problem;  // printable
    dns::Dnssec dnssec = dns::Dnssec::unchecked;
};

std::optional<dns::Pending> policy_lookup(dns::Resolver& resolver, std::string_view domain) {
    std::string name = fmt::format("_dmarc.{}", domain);
    // A From domain this long has no room for a policy record: nothing to look up.
    if (name.size() > limits::max_domain_length) return std::nullopt;
    return resolver.lookup(name, dns::RrType::txt);
}

// RFC 7489 §6.6.3 steps 1-4 for one name: keep the TXT records starting with v=DMARC1; none,
// several, or exactly one (parsed).
Discovery examine(const std::optional<dns::Pending>& pending, std::string_view domain,
                  std::chrono::steady_clock::time_point deadline) {
    Discovery d;
    d.domain = std::string(domain);
    if (!pending) return d;
    auto a = pending->wait_until(deadline);
    d.dnssec = a.dnssec;
    switch (a.status) {
        case dns::Status::nxdomain:
        case dns::Status::nodata:
            return d;
        case dns::Status::timeout:
        case dns::Status::servfail:
        case dns::Status::malformed:
            d.found = Found::temperror;
            d.problem = fmt::format("_dmarc.{}: {}", domain, dns::to_string(a.status));
            return d;
        case dns::Status::answer:
            break;
    }
    std::vector<std::string> records;
    std::size_t looked = 0;
    for (const auto& r : a.records) {
        if (r.type != dns::RrType::txt || ++looked > limits::max_txt_records) continue;
        auto text = r.txt_joined();
        if (is_dmarc_record(text)) records.push_back(std::move(text));
    }
    if (records.empty()) return d;
    if (records.size() > 1) {
        d.found = Found::several;
        d.problem = fmt::format("{} DMARC records at _dmarc.{}", records.size(), domain);
        return d;
    }
    d.text = core::printable(records[0], max_shown);
    auto parsed = parse_record(records[0]);
    if (!parsed.ok()) {
        d.found = Found::invalid;
        d.problem = core::printable(parsed.error, max_shown);
        return d;
    }
    d.found = Found::record;
    d.record = std::move(parsed.record);
    return d;
}

// RFC 9091 §2.7: a domain is non-existent when A, AAAA and MX all answer NXDOMAIN or NODATA.
// nullopt: a lookup failed, so it is not known.
std::optional<bool> non_existent(dns::Resolver& resolver, const std::string& domain,
                                 std::chrono::steady_clock::time_point deadline) {
    std::vector<dns::Pending> p;
    for (auto t : {dns::RrType::a, dns::RrType::aaaa, dns::RrType::mx})
        p.push_back(resolver.lookup(domain, t));
    bool unknown = false;
    for (auto& one : p) {
        auto a = one.wait_until(deadline);
        if (a.status == dns::Status::answer) return false;
        if (a.status != dns::Status::nxdomain && a.status != dns::Status::nodata) unknown = true;
    }
    if (unknown) return std::nullopt;
    return true;
}

Policy less_strict(Policy p) {
    // RFC 7489 §6.6.4: a message not sampled gets the next policy down.
    return p == Policy::reject ? Policy::quarantine : Policy::none;
}

bool name_matches(std::string_view name, const std::vector<std::string>& list) {
    for (const auto& e : list) {
        if (!e.empty() && e.front() == '.') {
            if (name.size() > e.size() && name.substr(name.size() - e.size()) == e) return true;
        } else if (name == e) {
            return true;
        }
    }
    return false;
}

std::string upper(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
    return out;
}

std::string json_string(std::string_view s) {
    auto escaped = core::json_escape(s);
    std::string out;
    out.reserve(escaped.size() + 2);
    out += '"';
    out += escaped;
    out += '"';
    return out;
}

std::string json_strings(const std::vector<std::string>& v) {
    std::string out = "[";
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) out += ",";
        out += json_string(v[i]);
    }
    return out + "]";
}

std::int64_t unix_time(const core::Clock& clock) {
    return std::chrono::duration_cast<std::chrono::seconds>(clock.now().time_since_epoch()).count();
}

std::vector<std::string> normalized_names(check::Section& s, std::string_view key) {
    std::vector<std::string> out;
    for (const auto& raw : s.get_strings(key, {})) {
        std::string_view v = raw;
        bool dot = !v.empty() && v.front() == '.';
        if (dot) v.remove_prefix(1);
        auto n = normalize_domain(v);
        if (!n.ok()) {
            s.error(key, fmt::format("'{}' is not a domain name ({})", core::printable(raw, 80), n.error));
            continue;
        }
        out.push_back(dot ? "." + n.name : n.name);
    }
    return out;
}

}  // namespace

Sampler random_sampler() {
    struct Source {
        std::mutex mutex;
        std::mt19937 engine{std::random_device{}()};
    };
    auto src = std::make_shared<Source>();
    return [src] {
        std::lock_guard lock(src->mutex);
        return static_cast<int>(std::uniform_int_distribution<int>(0, 99)(src->engine));
    };
}

std::unique_ptr<check::Check> DmarcCheck::make(check::Section& s) {
    DmarcOptions o;
    auto rej = s.get_choice("on_reject", "reject", {"reject", "quarantine", "score"});
    o.on_reject = rej == "reject"       ? OnReject::reject
                  : rej == "quarantine" ? OnReject::quarantine
                                        : OnReject::score;
    auto quar = s.get_choice("on_quarantine", "quarantine", {"quarantine", "junk", "score"});
    o.on_quarantine = quar == "quarantine" ? OnQuarantine::quarantine
                      : quar == "junk"     ? OnQuarantine::junk
                                           : OnQuarantine::score;
    auto bad = s.get_choice("bad_from", "score", {"reject", "score", "skip"});
    o.bad_from = bad == "reject" ? OnBadFrom::reject : bad == "score" ? OnBadFrom::score : OnBadFrom::skip;
    o.tempfail_on_temperror = s.get_bool("tempfail_on_temperror", o.tempfail_on_temperror);
    o.score_only_networks = s.get_cidrs("score_only_networks", {});
    o.score_only_hosts = normalized_names(s, "score_only_hosts");
    o.score_only_domains = normalized_names(s, "score_only_domains");
    auto psl_file = s.get_string("psl_file", "");
    // The list is loaded (once per process for Debian's) only when the check will run.
    std::shared_ptr<const PublicSuffixList> psl;
    if (s.get_bool("enabled", false)) {
        psl = psl_file.empty() ? PublicSuffixList::system() : PublicSuffixList::load_file(psl_file);
        if (!psl) {
            s.error(psl_file.empty() ? "enabled" : "psl_file",
                    psl_file.empty() ? "cannot load the Public Suffix List (Debian package publicsuffix)"
                                     : "cannot load this Public Suffix List file");
        }
    }
    return std::make_unique<DmarcCheck>(std::move(o), std::move(psl));
}

std::vector<core::SymbolDef> DmarcCheck::symbols() const {
    // A failure's weight grows with what the domain owner asked for; the forced action (local
    // policy: on_reject, on_quarantine) does the enforcing, the weights count when it only scores.
    return {
        {"DMARC_POLICY_ALLOW", "DMARC: an aligned SPF or DKIM pass for the From domain (dmarc=pass)", -0.5},
        {"DMARC_POLICY_REJECT",
         "DMARC: fail, and the From domain's policy is reject (forces [checks.dmarc] on_reject, default 550 "
         "5.7.26)",
         5.0},
        {"DMARC_POLICY_QUARANTINE",
         "DMARC: fail, and the From domain's policy is quarantine (forces [checks.dmarc] on_quarantine)",
         3.0},
        {"DMARC_POLICY_NONE", "DMARC: fail, but the From domain's policy is none (monitoring only)", 0.5},
        {"DMARC_NA", "DMARC: the From domain publishes no DMARC record, or several (dmarc=none)", 0.0},
        {"DMARC_TEMPERROR",
         "DMARC: a DNS timeout or SERVFAIL for the policy record, or an aligned SPF/DKIM temperror "
         "(dmarc=temperror); "
         "never a finding",
         0.0},
        {"DMARC_PERMERROR",
         "DMARC: the From domain's DMARC record is invalid: no valid p= and no valid rua= "
         "(dmarc=permerror)",
         0.0},
        {"DMARC_BAD_FROM",
         "DMARC: no single From domain: no From field, several, several addresses, no domain, unparsable "
         "([checks.dmarc] bad_from)",
         1.0},
    };
}

void DmarcCheck::start(check::Context& ctx) const {
    if (ctx.state(*this) != nullptr) return;
    auto st = std::make_unique<DmarcState>();
    std::vector<std::string_view> values;
    for (const auto& h : ctx.message().headers()) {
        if (core::iequals(h.name, "From") && values.size() <= limits::max_from_fields)
            values.push_back(h.value);
    }
    st->from = extract_from_domain(values);
    if (st->from.ok() && psl_) {
        auto n = normalize_domain(st->from.domain);
        if (!n.ok()) {
            st->from.status = FromStatus::unparsable;
            st->from.detail = n.error;
        } else {
            st->author.org = psl_->organizational_domain(n.name);
            st->author.name = std::move(n.name);
            // Both names at once: the organizational one is needed whenever the From domain has
            // no record, and asking later would cost a second round trip.
            st->txt_from = policy_lookup(ctx.resolver(), st->author.name);
            if (st->author.org != st->author.name)
                st->txt_org = policy_lookup(ctx.resolver(), st->author.org);
        }
    }
    ctx.set_state(*this, std::move(st));
}

void DmarcCheck::run(check::Context& ctx) const {
    if (ctx.stage() != check::Stage::eom || !psl_) return;
    auto* st = static_cast<DmarcState*>(ctx.state(*this));
    if (st == nullptr) return;
    const auto& env = ctx.envelope();

    if (!st->from.ok()) {
        auto status = std::string(to_string(st->from.status));
        auto detail = core::printable(st->from.detail, 120);
        if (ctx.wants_reports()) {
            ctx.add_report(
                "dmarc",
                fmt::format("{{\"result\":{},\"from_status\":{},\"problem\":{}}}",
                            json_string(options_.bad_from == OnBadFrom::skip ? "skipped" : "permerror"),
                            json_string(status), json_string(detail)));
        }
        if (options_.bad_from == OnBadFrom::skip) return;
        ctx.add_symbol(*this, "DMARC_BAD_FROM", 1.0, {status, detail});
        ctx.add_auth_result(fmt::format("dmarc=permerror (From: {})", status));
        if (options_.bad_from == OnBadFrom::reject) {
            ctx.force(*this, core::Action::reject, fmt::format("dmarc: From {}", status),
                      core::SmtpReply{"550", "5.7.1",
                                      "DMARC: the message needs exactly one From address with a domain"});
        }
        return;
    }

    const auto& author = st->author;
    auto deadline = ctx.deadline();
    auto d = examine(st->txt_from, author.name, deadline);
    if (d.found == Found::none && author.org != author.name) {
        d = examine(st->txt_org, author.org, deadline);
        d.at_org = true;
    }
    auto header_from = ar_value(author.name);
    const bool reports = ctx.wants_reports();
    auto json_common = reports ? fmt::format("\"from\":{},\"policy_domain\":{}", json_string(author.name),
                                             json_string(d.domain))
                               : std::string();

    if (d.found != Found::record) {
        std::string result, symbol;
        switch (d.found) {
            case Found::temperror:
                result = "temperror";
                symbol = "DMARC_TEMPERROR";
                break;
            case Found::invalid:
                result = "permerror";
                symbol = "DMARC_PERMERROR";
                break;
            default:
                result = "none";
                symbol = "DMARC_NA";
                break;
        }
        std::vector<std::string> opts{author.name};
        if (!d.problem.empty()) opts.push_back(d.problem);
        ctx.add_symbol(*this, symbol, 1.0, opts);
        ctx.add_auth_result(
            fmt::format("dmarc={}{} header.from={}", result, dnssec_comment(d.dnssec), header_from));
        if (reports) {
            std::string json = fmt::format("{{\"result\":{},{}", json_string(result), json_common);
            if (!d.text.empty()) json += fmt::format(",\"record\":{}", json_string(d.text));
            if (!d.problem.empty()) json += fmt::format(",\"problem\":{}", json_string(d.problem));
            ctx.add_report("dmarc", json + "}");
        }
        if (d.found == Found::temperror && options_.tempfail_on_temperror) {
            ctx.force(*this, core::Action::tempfail, fmt::format("dmarc=temperror for {}", author.name),
                      core::SmtpReply{"451", "4.4.3", "DMARC: temporary DNS error, try again later"});
        }
        return;
    }

    const Record& rec = *d.record;
    const auto& facts = ctx.facts();
    // Alignment (§3.1) of every authenticated identifier; a temperror of an identifier that would
    // align keeps "could not tell" apart from "failed".
    bool spf_aligned = false, spf_temp = false;
    if (facts.spf && aligned(author, facts.spf->domain, rec.aspf, *psl_)) {
        spf_aligned = facts.spf->result == "pass";
        spf_temp = facts.spf->result == "temperror";
    }
    std::vector<std::string> dkim_aligned_domains;
    bool dkim_temp = false;
    for (const auto& k : facts.dkim) {
        if (k.result != "pass" && k.result != "temperror") continue;
        if (!aligned(author, k.domain, rec.adkim, *psl_)) continue;
        if (k.result == "pass")
            dkim_aligned_domains.push_back(k.domain);
        else
            dkim_temp = true;
    }
    bool dkim_aligned = !dkim_aligned_domains.empty();
    bool pass = spf_aligned || dkim_aligned;
    std::string result = pass ? "pass" : (spf_temp || dkim_temp) ? "temperror" : "fail";

    // The policy that applies (§6.6.3, RFC 9091 §4): p for the domain itself, sp for a subdomain
    // whose record came from the organizational domain, np for a subdomain that does not exist.
    Policy policy = rec.p;
    std::string policy_tag = "p";
    bool existence_unknown = false;
    if (d.at_org) {
        policy = rec.subdomain_policy();
        policy_tag = rec.sp ? "sp" : "p";
        // Only a failure under an np= that differs needs the three existence lookups.
        if (rec.np && *rec.np != policy && result == "fail") {
            auto nx = non_existent(ctx.resolver(), author.name, deadline);
            if (nx && *nx) {
                policy = *rec.np;
                policy_tag = "np";
            }
            existence_unknown = !nx;
        }
    }

    std::vector<std::string> reasons;  // Appendix C PolicyOverrideType
    Policy applied = policy;
    bool sampled_out = false;
    if (result == "fail" && policy != Policy::none && rec.pct < 100) {
        int roll = sampler_ ? sampler_() : 0;
        if (roll >= rec.pct) {
            sampled_out = true;
            applied = less_strict(policy);
            reasons.push_back("sampled_out");
        }
    }

    bool score_only = false;
    std::string score_only_why;
    if (env.client_ip && std::any_of(options_.score_only_networks.begin(), options_.score_only_networks.end(),
                                     [&](const core::Cidr& c) { return c.contains(*env.client_ip); })) {
        score_only_why = "score_only_networks";
    } else if (env.client_name != "unknown" &&
               name_matches(core::to_lower(env.client_name), options_.score_only_hosts)) {
        score_only_why = "score_only_hosts";
    } else if (name_matches(author.name, options_.score_only_domains)) {
        score_only_why = "score_only_domains";
    }
    bool missing_inputs = !facts.spf || !facts.dkim_evaluated;
    if (result == "fail" && applied != Policy::none) {
        if (!score_only_why.empty()) {
            score_only = true;
            reasons.push_back(score_only_why == "score_only_domains" ? "local_policy" : "trusted_forwarder");
        } else if (missing_inputs) {
            // Without both SPF and DKIM results every message would fail: never enforce on half the input.
            score_only = true;
            score_only_why = !facts.spf ? "no SPF result" : "no DKIM verification";
            reasons.push_back("local_policy");
            ctx.warn(
                fmt::format("dmarc: {} for this message, so its DMARC failure is only scored; enable "
                            "[checks.spf] and [checks.dkim] verification",
                            score_only_why));
        }
    }

    // Enforcement is local policy.
    std::string disposition = "none";
    std::string enforced = "none";
    if (result == "fail" && !score_only) {
        auto reason = fmt::format("dmarc=fail {}={} for {}", policy_tag, to_string(policy), author.name);
        if (applied == Policy::reject) {
            if (options_.on_reject == OnReject::reject) {
                ctx.force(
                    *this, core::Action::reject, reason,
                    core::SmtpReply{"550", "5.7.26",
                                    fmt::format("Unauthenticated email from {} is not accepted due to the "
                                                "domain's DMARC policy",
                                                author.name)});
                disposition = enforced = "reject";
            } else if (options_.on_reject == OnReject::quarantine) {
                ctx.force(*this, core::Action::quarantine, reason);
                disposition = enforced = "quarantine";
            }
        } else if (applied == Policy::quarantine) {
            if (options_.on_quarantine == OnQuarantine::quarantine) {
                ctx.force(*this, core::Action::quarantine, reason);
                disposition = enforced = "quarantine";
            } else if (options_.on_quarantine == OnQuarantine::junk) {
                ctx.force(*this, core::Action::add_header, reason);
                disposition = "quarantine";
                enforced = "junk";
            }
        }
        if (enforced == "none" && applied != Policy::none) reasons.push_back("local_policy");
        // The engine will only score what we force (RFC 7489 Appendix C: disposition is the policy
        // actually applied), so the report must not claim a reject or quarantine that never happened.
        if (enforced != "none" && !ctx.honour_forced_actions()) {
            disposition = "none";
            reasons.push_back("local_policy");
            if (score_only_why.empty()) score_only_why = "honour_forced_actions = false";
        }
    }

    // Symbol, Authentication-Results (RFC 7489 §11.2: policy.dmarc is the policy after sp/np and pct).
    std::vector<std::string> opts{author.name};
    if (pass) {
        if (spf_aligned) opts.push_back("spf");
        for (const auto& k : dkim_aligned_domains) opts.push_back("dkim=" + k);
        ctx.add_symbol(*this, "DMARC_POLICY_ALLOW", 1.0, opts);
    } else if (result == "temperror") {
        opts.push_back(spf_temp ? "spf temperror" : "dkim temperror");
        ctx.add_symbol(*this, "DMARC_TEMPERROR", 1.0, opts);
    } else {
        opts.push_back(fmt::format("{}={}", policy_tag, to_string(policy)));
        if (existence_unknown) opts.push_back("np not applied: existence unknown");
        if (sampled_out) opts.push_back(fmt::format("pct={} sampled out", rec.pct));
        if (score_only) opts.push_back("score only: " + score_only_why);
        ctx.add_symbol(*this, "DMARC_POLICY_" + upper(to_string(policy)), 1.0, opts);
    }
    ctx.add_auth_result(fmt::format("dmarc={}{} header.from={} policy.dmarc={}", result,
                                    dnssec_comment(d.dnssec), header_from, to_string(applied)));

    if (reports) {
        std::vector<std::string> rua;
        for (const auto& u : rec.rua) rua.push_back(core::printable(u.uri, max_shown));
        ctx.add_report(
            "dmarc",
            fmt::format(
                "{{\"result\":{},{},\"record\":{},\"p\":{},\"sp\":{},\"np\":{},\"adkim\":{},\"aspf\":{},"
                "\"pct\":{},\"rua\":{},\"policy\":{},\"policy_tag\":{},\"applied\":{},\"enforced\":{},"
                "\"spf_aligned\":{},\"dkim_aligned\":{},\"dkim_aligned_domains\":{},\"reasons\":{}}}",
                json_string(result), json_common, json_string(d.text), json_string(to_string(rec.p)),
                rec.sp ? json_string(to_string(*rec.sp)) : "null",
                rec.np ? json_string(to_string(*rec.np)) : "null", json_string(to_string(rec.adkim)),
                json_string(to_string(rec.aspf)), rec.pct, json_strings(rua), json_string(to_string(policy)),
                json_string(policy_tag), json_string(to_string(applied)), json_string(enforced),
                spf_aligned ? "true" : "false", dkim_aligned ? "true" : "false",
                json_strings(dkim_aligned_domains), json_strings(reasons)));
    }

    // Aggregate reports (§7.2): only for domains that ask for them.
    if (auto* store = ctx.dmarc_store(); store != nullptr && !rec.rua.empty()) {
        report::DmarcEvaluation ev;
        ev.time = unix_time(ctx.clock());
        ev.policy_domain = d.domain;
        ev.adkim = std::string(to_string(rec.adkim));
        ev.aspf = std::string(to_string(rec.aspf));
        ev.p = std::string(to_string(rec.p));
        if (rec.sp) ev.sp = std::string(to_string(*rec.sp));
        if (rec.np) ev.np = std::string(to_string(*rec.np));
        ev.pct = rec.pct;
        ev.fo = rec.fo;
        // As published, size limit included: the report tool honours "!size".
        for (const auto& u : rec.rua)
            ev.rua.push_back(u.max_bytes ? fmt::format("{}!{}", u.uri, *u.max_bytes) : u.uri);
        if (env.client_ip) ev.source_ip = env.client_ip->unmapped().to_string();
        ev.disposition = disposition;
        ev.dkim_aligned = dkim_aligned ? "pass" : "fail";
        ev.spf_aligned = spf_aligned ? "pass" : "fail";
        ev.reasons = reasons;
        if (!score_only_why.empty()) ev.reason_comment = score_only_why;
        ev.header_from = author.name;
        ev.envelope_from = core::address_domain(env.mail_from);
        if (!env.rcpts.empty()) ev.envelope_to = core::address_domain(env.rcpts.front());
        for (const auto& k : facts.dkim) ev.dkim.push_back({k.domain, k.selector, k.result});
        if (facts.spf) ev.spf.push_back({facts.spf->domain, facts.spf->scope, facts.spf->result});
        store->record(ev);
    }
}

}  // namespace vigil::auth::dmarc
