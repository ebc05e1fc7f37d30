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

// One From domain to evaluate: the only one of a well-formed From, or one of several.
struct Target {
    AuthorDomain author;
    std::optional<dns::Pending> txt_from;  // _dmarc.<From domain>
    std::optional<dns::Pending> txt_org;   // _dmarc.<organizational domain>, when different
};

struct DmarcState final : check::CheckState {
    FromDomains from;
    std::vector<Target> targets;
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
    auto bad = s.get_choice("bad_from", "strictest", {"strictest", "reject", "score", "skip"});
    o.bad_from = bad == "strictest" ? OnBadFrom::strictest
                 : bad == "reject"  ? OnBadFrom::reject
                 : bad == "score"   ? OnBadFrom::score
                                    : OnBadFrom::skip;
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
         "(by default every domain found is evaluated and the strictest outcome applies; [checks.dmarc] "
         "bad_from)",
         1.0},
    };
}

namespace {

// The evaluation of one From domain (RFC 7489 §6.6.2-6.6.4) and what local policy makes of it.
struct Evaluation {
    const AuthorDomain* author = nullptr;
    Discovery d;
    std::string result;  // pass fail temperror permerror none
    // The rest is set only when a record was found (d.found == Found::record).
    Policy policy = Policy::none;
    std::string policy_tag = "p";
    Policy applied = Policy::none;
    bool existence_unknown = false;
    bool sampled_out = false;
    bool spf_aligned = false;
    bool spf_temp = false;
    bool dkim_temp = false;
    std::vector<std::string> dkim_aligned_domains;
    std::vector<std::string> reasons;  // Appendix C PolicyOverrideType
    bool score_only = false;
    bool missing_inputs = false;  // score only because SPF or DKIM did not run
    std::string score_only_why;

    bool enforceable() const { return result == "fail" && applied != Policy::none && !score_only; }
};

// Fills `e`, a fresh Evaluation (in place: it is not small).
void evaluate(Evaluation& e, check::Context& ctx, const Target& t, const DmarcOptions& options,
              const PublicSuffixList& psl, const Sampler& sampler) {
    const auto& author = t.author;
    e.author = &author;
    auto deadline = ctx.deadline();
    e.d = examine(t.txt_from, author.name, deadline);
    if (e.d.found == Found::none && author.org != author.name) {
        e.d = examine(t.txt_org, author.org, deadline);
        e.d.at_org = true;
    }
    switch (e.d.found) {
        case Found::record:
            break;
        case Found::temperror:
            e.result = "temperror";
            return;
        case Found::invalid:
            e.result = "permerror";
            return;
        default:
            e.result = "none";
            return;
    }

    const Record& rec = *e.d.record;
    const auto& facts = ctx.facts();
    // Alignment (§3.1) of every authenticated identifier; a temperror of an identifier that would
    // align keeps "could not tell" apart from "failed".
    if (facts.spf && aligned(author, facts.spf->domain, rec.aspf, psl)) {
        e.spf_aligned = facts.spf->result == "pass";
        e.spf_temp = facts.spf->result == "temperror";
    }
    for (const auto& k : facts.dkim) {
        if (k.result != "pass" && k.result != "temperror") continue;
        if (!aligned(author, k.domain, rec.adkim, psl)) continue;
        if (k.result == "pass")
            e.dkim_aligned_domains.push_back(k.domain);
        else
            e.dkim_temp = true;
    }
    bool pass = e.spf_aligned || !e.dkim_aligned_domains.empty();
    e.result = pass ? "pass" : (e.spf_temp || e.dkim_temp) ? "temperror" : "fail";

    // The policy that applies (§6.6.3, RFC 9091 §4): p for the domain itself, sp for a subdomain
    // whose record came from the organizational domain, np for a subdomain that does not exist.
    e.policy = rec.p;
    if (e.d.at_org) {
        e.policy = rec.subdomain_policy();
        e.policy_tag = rec.sp ? "sp" : "p";
        // Only a failure under an np= that differs needs the three existence lookups.
        if (rec.np && *rec.np != e.policy && e.result == "fail") {
            auto nx = non_existent(ctx.resolver(), author.name, deadline);
            if (nx && *nx) {
                e.policy = *rec.np;
                e.policy_tag = "np";
            }
            e.existence_unknown = !nx;
        }
    }

    e.applied = e.policy;
    if (e.result == "fail" && e.policy != Policy::none && rec.pct < 100) {
        int roll = sampler ? sampler() : 0;
        if (roll >= rec.pct) {
            e.sampled_out = true;
            e.applied = less_strict(e.policy);
            e.reasons.push_back("sampled_out");
        }
    }

    const auto& env = ctx.envelope();
    if (env.client_ip && std::any_of(options.score_only_networks.begin(), options.score_only_networks.end(),
                                     [&](const core::Cidr& c) { return c.contains(*env.client_ip); })) {
        e.score_only_why = "score_only_networks";
    } else if (env.client_name != "unknown" &&
               name_matches(core::to_lower(env.client_name), options.score_only_hosts)) {
        e.score_only_why = "score_only_hosts";
    } else if (name_matches(author.name, options.score_only_domains)) {
        e.score_only_why = "score_only_domains";
    }
    if (e.result == "fail" && e.applied != Policy::none) {
        if (!e.score_only_why.empty()) {
            e.score_only = true;
            e.reasons.push_back(e.score_only_why == "score_only_domains" ? "local_policy"
                                                                         : "trusted_forwarder");
        } else if (!facts.spf || !facts.dkim_evaluated) {
            // Without both SPF and DKIM results every message would fail: never enforce on half the input.
            e.score_only = true;
            e.missing_inputs = true;
            e.score_only_why = !facts.spf ? "no SPF result" : "no DKIM verification";
            e.reasons.push_back("local_policy");
        }
    }
}

// Which evaluation decides for a message with several From domains: the strictest outcome. An
// enforceable failure under reject, then under quarantine, then a temperror (it may defer), then
// failures that are only scored, then the rest; a pass decides only when everything passed.
int severity(const Evaluation& e) {
    if (e.result == "fail") {
        int policy = e.applied == Policy::reject ? 2 : e.applied == Policy::quarantine ? 1 : 0;
        if (e.enforceable()) return 7 + policy;
        return 3 + policy;
    }
    if (e.result == "temperror") return 6;
    if (e.result == "permerror") return 2;
    if (e.result == "none") return 1;
    return 0;  // pass
}

std::string record_json(const Evaluation& e) {
    const Record& rec = *e.d.record;
    std::vector<std::string> rua;
    for (const auto& u : rec.rua) rua.push_back(core::printable(u.uri, max_shown));
    return fmt::format(
        ",\"record\":{},\"p\":{},\"sp\":{},\"np\":{},\"adkim\":{},\"aspf\":{},\"pct\":{},\"rua\":{},"
        "\"policy\":{},"
        "\"policy_tag\":{},\"applied\":{}",
        json_string(e.d.text), json_string(to_string(rec.p)),
        rec.sp ? json_string(to_string(*rec.sp)) : "null", rec.np ? json_string(to_string(*rec.np)) : "null",
        json_string(to_string(rec.adkim)), json_string(to_string(rec.aspf)), rec.pct, json_strings(rua),
        json_string(to_string(e.policy)), json_string(e.policy_tag), json_string(to_string(e.applied)));
}

}  // namespace

void DmarcCheck::start(check::Context& ctx) const {
    if (ctx.state(*this) != nullptr) return;
    auto st = std::make_unique<DmarcState>();
    const auto& msg = ctx.message();
    // Every From field the MTA sent, also those past the caps on kept header fields: a From hidden
    // behind 5,000 other fields is still the one the reader sees.
    std::vector<std::string_view> values;
    values.reserve(msg.from_kept());
    for (std::size_t i = 0; i < msg.from_kept(); ++i) values.push_back(msg.from_value(i));
    st->from = from_domains(values, msg.from_fields_seen(), msg.from_value_cut());
    // A single From domain is evaluated whatever bad_from says; under "strictest" so is every domain
    // of a From that is not (unless not all of it could be examined: that is decided without DNS).
    bool evaluate = st->from.ok() || (options_.bad_from == OnBadFrom::strictest && st->from.complete());
    if (evaluate && psl_) {
        st->targets.reserve(st->from.domains.size());
        for (const auto& name : st->from.domains) {
            auto& t = st->targets.emplace_back();
            t.author.name = name;
            t.author.org = psl_->organizational_domain(name);
            // Both names at once: the organizational one is needed whenever the From domain has
            // no record, and asking later would cost a second round trip.
            t.txt_from = policy_lookup(ctx.resolver(), t.author.name);
            if (t.author.org != t.author.name) t.txt_org = policy_lookup(ctx.resolver(), t.author.org);
        }
    }
    ctx.set_state(*this, std::move(st));
}

void DmarcCheck::run(check::Context& ctx) const {
    if (ctx.stage() != check::Stage::eom || !psl_) return;
    auto* st = static_cast<DmarcState*>(ctx.state(*this));
    if (st == nullptr) return;
    const auto& env = ctx.envelope();
    const auto& from = st->from;
    const bool reports = ctx.wants_reports();

    // A From that is not exactly one mailbox with a domain (§6.6.1).
    std::string from_comment;  // for Authentication-Results
    std::string from_json;     // for the report
    if (!from.ok()) {
        auto status = std::string(to_string(from.status));
        auto detail = core::printable(from.detail, 120);
        std::vector<std::string> opts{status, detail};
        if (!from.complete()) opts.push_back(core::printable(from.incomplete, 120));
        from_comment = fmt::format(" (From: {})", status);
        if (reports) {
            from_json = fmt::format(",\"from_status\":{},\"problem\":{},\"from_domains\":{}",
                                    json_string(status), json_string(detail), json_strings(from.domains));
            if (!from.complete()) from_json += fmt::format(",\"incomplete\":{}", json_string(opts.back()));
        }
        const bool strictest = options_.bad_from == OnBadFrom::strictest;
        if (!strictest || (from.domains.empty() && from.complete())) {
            // No domain to evaluate, or local policy asks not to: skip, score or reject as configured.
            // Under "strictest" a From without any domain is scored: there is no policy to apply.
            if (reports) {
                ctx.add_report(
                    "dmarc",
                    fmt::format("{{\"result\":{}{}}}",
                                json_string(options_.bad_from == OnBadFrom::skip ? "skipped" : "permerror"),
                                from_json));
            }
            if (options_.bad_from == OnBadFrom::skip) return;
            ctx.add_symbol(*this, "DMARC_BAD_FROM", 1.0, opts);
            ctx.add_auth_result(fmt::format("dmarc=permerror{}", from_comment));
            if (options_.bad_from == OnBadFrom::reject) {
                ctx.force(*this, core::Action::reject, fmt::format("dmarc: From {}: {}", status, detail),
                          core::SmtpReply{"550", "5.7.1",
                                          "DMARC: the message needs exactly one From address with a domain"});
            }
            return;
        }
        ctx.add_symbol(*this, "DMARC_BAD_FROM", 1.0, opts);
        if (!from.complete()) {
            // Some From fields or domains were never examined: whatever they hold, the answer is the
            // strictest one, a failure under p=reject, enforced as on_reject says.
            auto why = core::printable(from.incomplete, 120);
            ctx.add_symbol(*this, "DMARC_POLICY_REJECT", 1.0, {"From not fully examined", why});
            std::string header_from =
                from.domains.empty() ? std::string() : " header.from=" + ar_value(from.domains.front());
            ctx.add_auth_result(fmt::format("dmarc=fail{}{} policy.dmarc=reject", from_comment, header_from));
            std::string enforced = "none";
            auto reason = fmt::format("dmarc=fail: {}", why);
            if (options_.on_reject == OnReject::reject) {
                ctx.force(
                    *this, core::Action::reject, reason,
                    core::SmtpReply{"550", "5.7.1",
                                    "DMARC: the From header fields cannot all be checked; not accepted"});
                enforced = "reject";
            } else if (options_.on_reject == OnReject::quarantine) {
                ctx.force(*this, core::Action::quarantine, reason);
                enforced = "quarantine";
            }
            if (reports) {
                ctx.add_report("dmarc",
                               fmt::format("{{\"result\":\"fail\"{},\"policy\":\"reject\",\"applied\":"
                                           "\"reject\",\"enforced\":{}}}",
                                           from_json, json_string(enforced)));
            }
            return;
        }
    }

    // Every From domain on its own; the strictest outcome decides.
    std::vector<Evaluation> evs;
    evs.reserve(st->targets.size());
    for (const auto& t : st->targets) evaluate(evs.emplace_back(), ctx, t, options_, *psl_, sampler_);
    if (evs.empty()) return;
    std::size_t decider = 0;
    bool all_pass = true;
    for (std::size_t i = 0; i < evs.size(); ++i) {
        if (evs[i].result != "pass") all_pass = false;
        if (severity(evs[i]) > severity(evs[decider])) decider = i;
    }
    auto& e = evs[decider];
    const auto& author = *e.author;
    auto header_from = ar_value(author.name);
    if (std::any_of(evs.begin(), evs.end(), [](const Evaluation& x) { return x.missing_inputs; })) {
        ctx.warn(
            fmt::format("dmarc: {} for this message, so its DMARC failure is only scored; enable "
                        "[checks.spf] and [checks.dkim] verification",
                        !ctx.facts().spf ? "no SPF result" : "no DKIM verification"));
    }

    // Symbols: one for each domain that did not pass; DMARC_POLICY_ALLOW only when all passed.
    auto symbol_of = [](const Evaluation& x, std::vector<std::string>& opts) -> std::string_view {
        opts.push_back(x.author->name);
        if (!x.d.problem.empty()) opts.push_back(x.d.problem);
        if (x.result == "pass") {
            if (x.spf_aligned) opts.emplace_back("spf");
            for (const auto& k : x.dkim_aligned_domains) opts.push_back("dkim=" + k);
            return "DMARC_POLICY_ALLOW";
        }
        if (x.d.found == Found::temperror) return "DMARC_TEMPERROR";
        if (x.d.found == Found::invalid) return "DMARC_PERMERROR";
        if (x.d.found != Found::record) return "DMARC_NA";
        if (x.result == "temperror") {
            opts.emplace_back(x.spf_temp ? "spf temperror" : "dkim temperror");
            return "DMARC_TEMPERROR";
        }
        opts.push_back(fmt::format("{}={}", x.policy_tag, to_string(x.policy)));
        if (x.existence_unknown) opts.emplace_back("np not applied: existence unknown");
        if (x.sampled_out) opts.push_back(fmt::format("pct={} sampled out", x.d.record->pct));
        if (x.score_only) opts.push_back("score only: " + x.score_only_why);
        return x.policy == Policy::reject       ? "DMARC_POLICY_REJECT"
               : x.policy == Policy::quarantine ? "DMARC_POLICY_QUARANTINE"
                                                : "DMARC_POLICY_NONE";
    };
    if (all_pass) {
        std::vector<std::string> opts;
        for (const auto& x : evs) symbol_of(x, opts);
        ctx.add_symbol(*this, "DMARC_POLICY_ALLOW", 1.0, std::move(opts));
    } else {
        for (const auto& x : evs) {
            if (x.result == "pass") continue;
            std::vector<std::string> opts;
            auto name = symbol_of(x, opts);
            ctx.add_symbol(*this, name, 1.0, std::move(opts));
        }
    }

    // No record (or not a usable one) for the deciding domain.
    if (e.d.found != Found::record) {
        ctx.add_auth_result(fmt::format("dmarc={}{}{} header.from={}", e.result, dnssec_comment(e.d.dnssec),
                                        from_comment, header_from));
        if (reports) {
            std::string json =
                fmt::format("{{\"result\":{},\"from\":{},\"policy_domain\":{}", json_string(e.result),
                            json_string(author.name), json_string(e.d.domain));
            if (!e.d.text.empty()) json += fmt::format(",\"record\":{}", json_string(e.d.text));
            if (!e.d.problem.empty())
                json += fmt::format(",\"{}\":{}", from.ok() ? "problem" : "policy_problem",
                                    json_string(e.d.problem));
            ctx.add_report("dmarc", json + from_json + "}");
        }
        if (e.d.found == Found::temperror && options_.tempfail_on_temperror) {
            ctx.force(*this, core::Action::tempfail, fmt::format("dmarc=temperror for {}", author.name),
                      core::SmtpReply{"451", "4.4.3", "DMARC: temporary DNS error, try again later"});
        }
        return;
    }

    // Enforcement is local policy.
    std::string disposition = "none";
    std::string enforced = "none";
    if (e.result == "fail" && !e.score_only) {
        auto reason = fmt::format("dmarc=fail {}={} for {}", e.policy_tag, to_string(e.policy), author.name);
        if (!from.ok()) reason += fmt::format(" (From {})", to_string(from.status));
        if (e.applied == Policy::reject) {
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
        } else if (e.applied == Policy::quarantine) {
            if (options_.on_quarantine == OnQuarantine::quarantine) {
                ctx.force(*this, core::Action::quarantine, reason);
                disposition = enforced = "quarantine";
            } else if (options_.on_quarantine == OnQuarantine::junk) {
                ctx.force(*this, core::Action::add_header, reason);
                disposition = "quarantine";
                enforced = "junk";
            }
        }
        if (enforced == "none" && e.applied != Policy::none) e.reasons.push_back("local_policy");
        // The engine will only score what we force (RFC 7489 Appendix C: disposition is the policy
        // actually applied), so the report must not claim a reject or quarantine that never happened.
        if (enforced != "none" && !ctx.honour_forced_actions()) {
            disposition = "none";
            e.reasons.push_back("local_policy");
            if (e.score_only_why.empty()) e.score_only_why = "honour_forced_actions = false";
        }
    }

    // Authentication-Results (RFC 7489 §11.2: policy.dmarc is the policy after sp/np and pct).
    ctx.add_auth_result(fmt::format("dmarc={}{}{} header.from={} policy.dmarc={}", e.result,
                                    dnssec_comment(e.d.dnssec), from_comment, header_from,
                                    to_string(e.applied)));

    if (reports) {
        std::string evaluated;
        if (!from.ok()) {
            evaluated = ",\"evaluated\":[";
            for (std::size_t i = 0; i < evs.size(); ++i) {
                const auto& x = evs[i];
                evaluated +=
                    fmt::format("{}{{\"from\":{},\"result\":{},\"policy\":{}}}", i ? "," : "",
                                json_string(x.author->name), json_string(x.result),
                                json_string(x.d.found == Found::record ? to_string(x.applied) : "none"));
            }
            evaluated += "]";
        }
        ctx.add_report(
            "dmarc",
            fmt::format(
                "{{\"result\":{},\"from\":{},\"policy_domain\":{}{},\"enforced\":{},\"spf_aligned\":{},"
                "\"dkim_aligned\":{},\"dkim_aligned_domains\":{},\"reasons\":{}{}{}}}",
                json_string(e.result), json_string(author.name), json_string(e.d.domain), record_json(e),
                json_string(enforced), e.spf_aligned ? "true" : "false",
                e.dkim_aligned_domains.empty() ? "false" : "true", json_strings(e.dkim_aligned_domains),
                json_strings(e.reasons), from_json, evaluated));
    }

    // Aggregate reports (§7.2): only for domains that ask for them; every evaluated domain of the
    // message, each with the disposition the message got.
    auto* store = ctx.dmarc_store();
    if (store == nullptr) return;
    const auto& facts = ctx.facts();
    for (auto& x : evs) {
        if (x.d.found != Found::record || x.d.record->rua.empty()) continue;
        const Record& rec = *x.d.record;
        report::DmarcEvaluation ev;
        ev.time = unix_time(ctx.clock());
        ev.policy_domain = x.d.domain;
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
        ev.dkim_aligned = x.dkim_aligned_domains.empty() ? "fail" : "pass";
        ev.spf_aligned = x.spf_aligned ? "pass" : "fail";
        ev.reasons = x.reasons;
        if (!x.score_only_why.empty()) ev.reason_comment = x.score_only_why;
        ev.header_from = x.author->name;
        ev.envelope_from = core::address_domain(env.mail_from);
        if (!env.rcpts.empty()) ev.envelope_to = core::address_domain(env.rcpts.front());
        for (const auto& k : facts.dkim) ev.dkim.push_back({k.domain, k.selector, k.result});
        if (facts.spf) ev.spf.push_back({facts.spf->domain, facts.spf->scope, facts.spf->result});
        store->record(ev);
    }
}

}  // namespace vigil::auth::dmarc
