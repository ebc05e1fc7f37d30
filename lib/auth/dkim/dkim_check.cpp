#include "auth/dkim/dkim_check.hpp"

#include "core/printable.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "core/limits.hpp"
#include "core/message.hpp"

namespace vigil::auth::dkim {

namespace {

std::optional<Canon> canon_of(std::string_view v) {
    if (v == "simple") return Canon::simple;
    if (v == "relaxed") return Canon::relaxed;
    return std::nullopt;
}

}  // namespace

class DkimCheck::State final : public check::CheckState {
  public:
    bool begun = false;
    bool outbound = false;
    std::optional<Verifier> verifier;
    std::optional<Signer> signer;
    std::vector<HeaderRef> refs;
    std::optional<KeyFetcher> fetcher;
};

std::string from_domain(std::string_view from_value) {
    auto v = core::unfold(from_value);
    // The address: inside the last <...> if any, else the whole value; domain after the last '@'.
    std::string_view addr = v;
    auto lt = addr.rfind('<');
    if (lt != std::string_view::npos) {
        auto gt = addr.find('>', lt);
        addr = addr.substr(lt + 1, gt == std::string_view::npos ? std::string_view::npos : gt - lt - 1);
    }
    auto at = addr.rfind('@');
    if (at == std::string_view::npos) return {};
    auto dom = addr.substr(at + 1);
    while (!dom.empty() && (dom.back() == ' ' || dom.back() == '>' || dom.back() == '\t'))
        dom.remove_suffix(1);
    std::string out = core::to_lower(dom);
    return valid_domain(out) ? out : std::string();
}

std::string load_signing_key(const std::string& path, SigningKey& into) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return "cannot read key file " + path + " (missing?)";
    if (!S_ISREG(st.st_mode)) return "key file " + path + " is not a regular file";
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
        return "key file " + path + " is readable by group or others (chmod 600 it)";
    if (st.st_size > static_cast<off_t>(limits::max_private_key_file))
        return "key file " + path + " is too large";
    std::ifstream f(path, std::ios::binary);
    if (!f) return "cannot open key file " + path;
    std::stringstream ss;
    ss << f.rdbuf();
    auto parsed = parse_private_key(ss.str());
    if (!parsed.key) return "key file " + path + ": " + parsed.error;
    if (parsed.type == KeyType::rsa) {
        if (auto bits = key_bits(parsed.key.get()); bits < limits::min_signing_rsa_bits)
            return fmt::format(
                "key file {}: RSA key of {} bits; RFC 8301 forbids signing with RSA keys under {} bits "
                "(make a new one: vigil dkim keygen --type rsa --bits 2048)",
                path, bits, limits::min_signing_rsa_bits);
    }
    into.type = parsed.type;
    into.key = std::shared_ptr<EVP_PKEY>(parsed.key.release(), PkeyFree{});
    into.file = path;
    return {};
}

std::unique_ptr<check::Check> DkimCheck::make(check::Section& s) {
    DkimOptions o;
    o.verify = s.get_bool("verify", true);
    o.verify_options.max_signatures = static_cast<std::size_t>(
        s.get_int("max_signatures", limits::default_verified_signatures, 1, limits::max_signature_fields));
    o.verify_options.allow_sha1 = s.get_bool("allow_sha1", false);
    o.verify_options.min_rsa_bits = static_cast<unsigned>(
        s.get_int("min_rsa_bits", limits::default_min_rsa_bits, 512, limits::max_rsa_bits));
    o.verify_options.clock_skew = s.get_int("clock_skew", limits::default_clock_skew, 0, 86400);
    for (auto& d : s.get_strings("trusted_signers", {})) o.trusted_signers.push_back(core::to_lower(d));

    o.sign = s.get_bool("sign", true);
    auto canon = s.get_choice("canonicalization", "relaxed/relaxed",
                              {"relaxed/relaxed", "relaxed/simple", "simple/relaxed", "simple/simple"});
    auto slash = canon.find('/');
    o.sign_params.header_canon = *canon_of(canon.substr(0, slash));
    o.sign_params.body_canon = *canon_of(canon.substr(slash + 1));
    o.sign_params.headers.clear();
    for (auto& h : s.get_strings("sign_headers", default_signed_headers()))
        o.sign_params.headers.push_back(core::to_lower(h));
    if (std::find(o.sign_params.headers.begin(), o.sign_params.headers.end(), "from") ==
        o.sign_params.headers.end())
        s.error("sign_headers", "must include From (RFC 6376 §5.4)");
    o.sign_params.oversign.clear();
    for (auto& h : s.get_strings("oversign_headers", default_oversigned_headers()))
        o.sign_params.oversign.push_back(core::to_lower(h));
    auto ttl = s.get_int("signature_ttl", 0, 0, 10LL * 365 * 86400);
    if (ttl > 0) o.sign_params.expire_after = ttl;

    for (auto& k : s.sub_array("key")) {
        SigningKey key;
        key.domain = core::to_lower(k.get_string("domain", ""));
        key.selector = core::to_lower(k.get_string("selector", ""));
        auto file = k.get_string("file", "");
        if (!valid_domain(key.domain)) k.error("domain", "must be a domain name");
        if (!valid_domain(key.selector)) k.error("selector", "must be a selector (DNS labels)");
        if (file.empty()) {
            k.error("file", "is required (a PEM private key file, mode 0600)");
        } else if (auto err = load_signing_key(file, key); !err.empty()) {
            k.error("file", err);
        } else {
            o.keys.push_back(std::make_shared<const SigningKey>(std::move(key)));
        }
        k.finish();
    }
    for (auto& r : s.sub_array("signing")) {
        SigningRule rule;
        rule.from = core::to_lower(r.get_string("from", ""));
        rule.domain = core::to_lower(r.get_string("domain", ""));
        std::string_view f = rule.from;
        if (f.starts_with("*.")) f.remove_prefix(2);
        if (!valid_domain(f)) r.error("from", "must be a domain or *.domain");
        if (!valid_domain(rule.domain))
            r.error("domain", "must be a signing domain with [[checks.dkim.key]] entries");
        o.rules.push_back(std::move(rule));
        r.finish();
    }
    return std::make_unique<DkimCheck>(std::move(o));
}

std::vector<core::SymbolDef> DkimCheck::symbols() const {
    return {
        {"DKIM_ALLOW", "A DKIM signature verified (dkim=pass)", -0.20},
        {"DKIM_REJECT", "A DKIM signature failed: bad signature or body hash (dkim=fail)", 1.00},
        {"DKIM_PERMERROR",
         "A DKIM signature could not be verified: syntax, missing or revoked key, key mismatch "
         "(dkim=permerror)",
         0.00},
        {"DKIM_TEMPERROR", "A DKIM key lookup failed temporarily (dkim=temperror)", 0.00},
        {"DKIM_POLICY", "A DKIM signature was refused by local policy: rsa-sha1, short RSA key (dkim=policy)",
         0.00},
        {"DKIM_NEUTRAL",
         "A DKIM signature was not verified (over max_signatures) or failed under a testing key, t=y "
         "(dkim=neutral)",
         0.00},
        {"DKIM_LENGTH",
         "A passing DKIM signature covers only part of the body (l=); content may have been appended", 0.50},
        {"DKIM_TRUSTED", "A passing DKIM signature is from a signer on [checks.dkim] trusted_signers", -1.00},
        {"DKIM_NONE", "The message has no DKIM signature (dkim=none)", 0.00},
        {"DKIM_SIGNED", "Outbound: the message was DKIM-signed (informational)", 0.00},
        {"DKIM_SIGN_ERROR", "Outbound: a message that should be signed could not be (e.g. no From)", 0.00},
    };
}

std::vector<std::shared_ptr<const SigningKey>> DkimCheck::keys_for(std::string_view from) const {
    std::string domain(from);
    for (const auto& r : options_.rules) {
        std::string_view f = r.from;
        bool match = f == from;
        if (!match && f.starts_with("*.")) {
            auto base = f.substr(2);
            match = from == base || (from.size() > base.size() && from.ends_with(base) &&
                                     from[from.size() - base.size() - 1] == '.');
        }
        if (match) {
            domain = r.domain;
            break;
        }
    }
    std::vector<std::shared_ptr<const SigningKey>> out;
    for (const auto& k : options_.keys) {
        if (k->domain == domain) out.push_back(k);
    }
    return out;
}

DkimCheck::State& DkimCheck::state(check::Context& ctx) const {
    auto* st = static_cast<State*>(ctx.state(*this));
    if (st == nullptr) {
        auto fresh = std::make_unique<State>();
        st = fresh.get();
        ctx.set_state(*this, std::move(fresh));
    }
    if (!st->begun) {
        st->begun = true;
        const auto& headers = ctx.message().headers();
        st->refs = header_refs(headers);
        st->outbound = ctx.envelope().direction == core::Direction::outbound;
        if (st->outbound) {
            if (options_.sign) {
                const auto* from = ctx.message().find("From");
                auto keys = from ? keys_for(from_domain(from->value))
                                 : std::vector<std::shared_ptr<const SigningKey>>{};
                if (!keys.empty()) {
                    auto params = options_.sign_params;
                    params.timestamp =
                        std::chrono::duration_cast<std::chrono::seconds>(ctx.clock().now().time_since_epoch())
                            .count();
                    st->signer.emplace(std::move(keys), std::move(params));
                }
            }
        } else if (options_.verify) {
            st->verifier.emplace(options_.verify_options);
            auto now = std::chrono::duration_cast<std::chrono::seconds>(ctx.clock().now().time_since_epoch())
                           .count();
            st->verifier->begin(st->refs, now);
        }
    }
    return *st;
}

void DkimCheck::body_chunk(check::Context& ctx, std::string_view chunk) const {
    auto& st = state(ctx);
    if (st.verifier) st.verifier->body(chunk);
    if (st.signer) st.signer->body(chunk);
}

void DkimCheck::start(check::Context& ctx) const {
    if (ctx.stage() != check::Stage::eom) return;
    auto& st = state(ctx);
    if (!st.verifier) return;
    st.fetcher.emplace(ctx.resolver(), ctx.cache());
    for (const auto& n : st.verifier->key_names()) st.fetcher->start(n);
}

void DkimCheck::run(check::Context& ctx) const {
    if (ctx.stage() != check::Stage::eom) return;
    auto& st = state(ctx);
    if (st.signer) {
        // Fields past the cap were passed to the MTA but not kept here: a signature over the ones
        // we saw would pick the wrong instances of repeated fields and fail at every receiver.
        if (ctx.message().headers_truncated()) {
            ctx.add_symbol(
                *this, "DKIM_SIGN_ERROR", 1.0,
                {fmt::format("more than {} header fields; not signed", core::limits::max_header_fields)});
            ctx.warn(fmt::format("DKIM: outbound message with more than {} header fields was not signed",
                                 core::limits::max_header_fields));
            return;
        }
        auto out = st.signer->finish(st.refs);
        if (!out.error.empty()) {
            ctx.add_symbol(*this, "DKIM_SIGN_ERROR", 1.0, {out.error});
        } else {
            // Prepended fields keep their order at the top: the configured key order.
            for (auto& v : out.values) ctx.prepend_header("DKIM-Signature", v);
            ctx.add_symbol(*this, "DKIM_SIGNED", 1.0, {std::to_string(out.values.size())});
        }
        return;
    }
    if (!st.verifier) return;
    if (!st.fetcher) st.fetcher.emplace(ctx.resolver(), ctx.cache());
    auto deadline = ctx.deadline();
    auto results = st.verifier->finish(
        st.refs, [&](const std::string& name) { return st.fetcher->get(name, deadline); });
    if (ctx.message().headers_truncated()) {
        // The fields a signature covers may lie past the cap (bottom-up selection of repeated
        // fields): neither a pass nor a fail computed on the part we kept can be trusted.
        for (auto& r : results) {
            r.result = Result::neutral;
            r.detail =
                fmt::format("not verified: more than {} header fields", core::limits::max_header_fields);
        }
    }
    const bool reports = ctx.wants_reports();  // only `vigil check` shows them
    std::string json = "[";
    auto& facts = ctx.facts();
    facts.dkim_evaluated = true;
    for (const auto& r : results) {
        facts.dkim.push_back(check::DkimFact{std::string(to_string(r.result)), core::to_lower(r.domain),
                                             r.selector, r.algorithm, r.b_prefix,
                                             r.dnssec == dns::Dnssec::secure});
    }
    if (results.empty()) {
        ctx.add_symbol(*this, "DKIM_NONE");
        ctx.add_auth_result("dkim=none");
    }
    bool trusted = false, length = false;
    std::vector<std::string> by_result[7];
    for (std::size_t i = 0; i < results.size(); ++i) {
        const auto& r = results[i];
        ctx.add_auth_result(auth_result_text(r));
        if (reports) {
            if (i > 0) json += ",";
            json += json_of(r);
        }
        by_result[static_cast<int>(r.result)].push_back(r.domain.empty() ? "?" : r.domain);
        if (r.result == Result::pass) {
            if (std::find(options_.trusted_signers.begin(), options_.trusted_signers.end(), r.domain) !=
                options_.trusted_signers.end())
                trusted = true;
            if (r.length_used) length = true;
        }
    }
    json += "]";
    auto add = [&](Result r, std::string_view sym) {
        auto& v = by_result[static_cast<int>(r)];
        if (!v.empty()) ctx.add_symbol(*this, sym, 1.0, v);
    };
    add(Result::pass, "DKIM_ALLOW");
    add(Result::fail, "DKIM_REJECT");
    add(Result::permerror, "DKIM_PERMERROR");
    add(Result::temperror, "DKIM_TEMPERROR");
    add(Result::policy, "DKIM_POLICY");
    add(Result::neutral, "DKIM_NEUTRAL");
    if (length) ctx.add_symbol(*this, "DKIM_LENGTH");
    if (trusted) ctx.add_symbol(*this, "DKIM_TRUSTED");
    if (reports) ctx.add_report("dkim", "{\"signatures\":" + json + "}");
}

}  // namespace vigil::auth::dkim
