#include "auth/dkim/verify.hpp"
#include "auth/authentication_results.hpp"

#include "core/printable.hpp"

#include <algorithm>
#include <cstdio>

namespace vigil::auth::dkim {

namespace {

SignatureResult base_result(const SignatureParse& p) {
    SignatureResult r;
    r.domain = p.domain;
    r.selector = p.selector;
    r.algorithm = p.algorithm;
    r.identity = p.identity;
    r.b_prefix = p.b_text.substr(0, 8);
    return r;
}

// A pseudo-domain safe in an Authentication-Results value.
bool token_safe(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f || c == ';' || c == '(' || c == ')' || c == '"' || c == '\\') return false;
    }
    return true;
}

}  // namespace

void Verifier::begin(const std::vector<HeaderRef>& headers, std::int64_t now) {
    SignaturePolicy pol{options_.allow_sha1};
    std::size_t verified = 0;
    for (std::size_t i = 0; i < headers.size() && sigs_.size() < limits::max_signature_fields; ++i) {
        if (!core::iequals(headers[i].name, "DKIM-Signature")) continue;
        // Built in place: an Entry is large, and moving one cost more than most of its parse.
        if (sigs_.empty()) sigs_.reserve(4);
        auto& e = sigs_.emplace_back();
        e.field = i;
        e.parse = parse_signature(headers[i].value, pol);
        auto& p = e.parse;
        if (!p.detail.empty()) {
            auto r = base_result(p);
            r.result = p.error;
            r.detail = p.detail;
            e.early = r;
        } else if (verified >= options_.max_signatures) {
            auto r = base_result(p);
            // RFC 8601 §2.7.1: neutral is for a signature that could not be processed; the cap on
            // the work per message is such a reason, and says nothing against the signer.
            r.result = Result::neutral;
            r.detail = "not verified: more than " + std::to_string(options_.max_signatures) + " signatures";
            e.early = r;
        } else {
            const auto& s = *p.sig;
            auto early = [&](std::string why) {
                auto r = base_result(p);
                r.length_used = s.length.has_value();
                r.result = Result::permerror;
                r.detail = std::move(why);
                e.early = std::move(r);
            };
            if (s.expiry && *s.expiry + options_.clock_skew < now) {
                early("signature expired (x=" + std::to_string(*s.expiry) + ")");
            } else if (s.timestamp && *s.timestamp > now + options_.clock_skew) {
                early("signature timestamp t= is in the future");
            } else if (!hashes_.register_need(s.body_canon, s.hash, s.length)) {
                early("too many distinct body hashes or l= values");
            } else {
                e.verify = true;
                ++verified;
            }
        }
    }
}

std::vector<std::string> Verifier::key_names() const {
    std::vector<std::string> out;
    for (const auto& e : sigs_) {
        if (e.verify) out.push_back(key_query_name(e.parse.sig->selector, e.parse.sig->domain));
    }
    return out;
}

std::vector<SignatureResult> Verifier::finish(const std::vector<HeaderRef>& headers,
                                              const std::function<KeyOutcome(const std::string&)>& key_for) {
    hashes_.finish();
    std::vector<SignatureResult> out;
    for (const auto& e : sigs_) {
        if (e.early) {
            out.push_back(*e.early);
            continue;
        }
        const auto& s = *e.parse.sig;
        auto r = base_result(e.parse);
        r.length_used = s.length.has_value();
        auto set = [&](Result res, std::string why) {
            r.result = res;
            r.detail = std::move(why);
        };
        auto fetched = key_for(key_query_name(s.selector, s.domain));
        r.dnssec = fetched.dnssec;
        if (fetched.status != Result::pass || !fetched.key) {
            set(fetched.status == Result::temperror ? Result::temperror : Result::permerror, fetched.detail);
            out.push_back(std::move(r));
            continue;
        }
        const auto& key = fetched.key;
        const auto& rec = key->record;
        r.testing = rec.testing;
        std::string_view ident_domain = std::string_view(s.identity).substr(s.identity.rfind('@') + 1);
        if (rec.revoked) {
            set(Result::permerror, "key revoked (empty p=)");
        } else if (rec.type != s.key_type) {
            set(Result::permerror,
                "key type k=" + std::string(to_string(rec.type)) + " does not match a=" + s.algorithm);
        } else if (!rec.hashes.empty() && std::find(rec.hashes.begin(), rec.hashes.end(),
                                                    std::string(to_string(s.hash))) == rec.hashes.end()) {
            set(Result::permerror, "key h= does not allow " + std::string(to_string(s.hash)));
        } else if (rec.strict && !core::iequals(ident_domain, s.domain)) {
            set(Result::permerror, "key t=s requires i= domain to equal d=");
        } else if (s.key_type == KeyType::rsa && key_bits(key->pkey.get()) > limits::max_rsa_bits) {
            set(Result::permerror, "RSA key larger than " + std::to_string(limits::max_rsa_bits) + " bits");
        } else if (s.key_type == KeyType::rsa && key_bits(key->pkey.get()) < options_.min_rsa_bits) {
            set(Result::policy,
                "RSA key of " + std::to_string(key_bits(key->pkey.get())) + " bits refused (RFC 8301)");
        } else {
            auto bh = hashes_.result(s.body_canon, s.hash, s.length);
            if (!bh) {
                set(Result::permerror, "l=" + std::to_string(*s.length) + " exceeds the body length");
            } else if (*bh != s.body_hash) {
                set(Result::fail, "body hash did not verify");
            } else {
                auto data =
                    header_hash_input(headers, s.header_canon, s.signed_headers, headers[e.field].name,
                                      headers[e.field].value, s.b_begin, s.b_end);
                auto hash = digest(s.hash, data);
                if (s.key_type == KeyType::rsa &&
                    s.sig.size() != static_cast<std::size_t>((key_bits(key->pkey.get()) + 7) / 8)) {
                    set(Result::fail, "b= has the wrong length for the key");
                } else if (s.key_type == KeyType::rsa && s.hash == HashAlg::sha256 && key->rsa_sha256
                               ? verify_prepared(key->rsa_sha256.get(), hash, s.sig)
                               : verify_hash(key->pkey.get(), s.key_type, s.hash, hash, s.sig)) {
                    set(Result::pass, rec.testing ? "key in testing mode (t=y)" : "");
                } else {
                    set(Result::fail, "signature did not verify");
                }
            }
        }
        // RFC 6376 §3.6.1: mail signed with a testing key (t=y) must be treated like unsigned mail
        // "even should the signature fail to verify": report the failure, but as neutral.
        if (r.result == Result::fail && r.testing) {
            r.result = Result::neutral;
            r.detail += " (key in testing mode, t=y)";
        }
        out.push_back(std::move(r));
    }
    return out;
}

std::string auth_result_text(const SignatureResult& r) {
    std::string out = "dkim=" + std::string(to_string(r.result)) + auth::dnssec_comment(r.dnssec);
    if (!r.detail.empty() && r.result != Result::pass) {
        std::string why;
        for (char c : r.detail) why.push_back(c == '(' || c == ')' || c == '\\' ? ' ' : c);
        out += " (" + why + ")";
    }
    if (token_safe(r.domain)) out += " header.d=" + r.domain;
    if (token_safe(r.identity) && r.identity.find('=') == std::string::npos) out += " header.i=" + r.identity;
    if (token_safe(r.selector)) out += " header.s=" + r.selector;
    if (token_safe(r.algorithm)) out += " header.a=" + r.algorithm;
    // b= base64 holds '/', '+' and '=', which are not token characters: quote it (RFC 8601 value).
    if (!r.b_prefix.empty() && token_safe(r.b_prefix)) out += " header.b=\"" + r.b_prefix + "\"";
    return out;
}

std::string json_of(const SignatureResult& r) {
    return "{\"result\":\"" + std::string(to_string(r.result)) + "\",\"domain\":\"" +
           core::json_escape(r.domain) + "\",\"selector\":\"" + core::json_escape(r.selector) +
           "\",\"algorithm\":\"" + core::json_escape(r.algorithm) + "\",\"detail\":\"" +
           core::json_escape(r.detail) + "\"}";
}

}  // namespace vigil::auth::dkim
