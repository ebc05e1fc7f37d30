#pragma once
// DKIM verification of one message (RFC 6376 §6, RFC 8463, RFC 8301), streaming: begin() with the
// header fields, body() per chunk, finish() with a key source. Every signature keeps its own result.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "auth/dkim/canon.hpp"
#include "auth/dkim/dkim_limits.hpp"
#include "auth/dkim/keys.hpp"
#include "auth/dkim/signature.hpp"

namespace vigil::auth::dkim {

struct VerifyOptions {
    std::size_t max_signatures = limits::default_verified_signatures;
    bool allow_sha1 = false;
    unsigned min_rsa_bits = limits::default_min_rsa_bits;
    std::int64_t clock_skew = limits::default_clock_skew;  // seconds
};

struct SignatureResult {
    Result result = Result::none;
    std::string domain, selector, algorithm, identity;
    std::string b_prefix;                         // header.b: the first 8 characters of b=
    std::string detail;                           // why, for people (printable)
    bool length_used = false;                     // l= present (and the result depended on it)
    bool testing = false;                         // key record t=y
    dns::Dnssec dnssec = dns::Dnssec::unchecked;  // of the key record's answer
};

class Verifier {
  public:
    explicit Verifier(VerifyOptions options = {}) : options_(options) {}
    // Parses every DKIM-Signature field (up to limits::max_signature_fields) and prepares the body
    // hashes they need. `now`: seconds since the epoch, for t= and x=.
    void begin(const std::vector<HeaderRef>& headers, std::int64_t now);
    void body(std::string_view chunk) { hashes_.feed(chunk); }
    // Key query names of the signatures that will be verified (for issuing lookups early).
    std::vector<std::string> key_names() const;
    // `headers` must be the same fields given to begin(). `key_for` answers a key query name.
    std::vector<SignatureResult> finish(const std::vector<HeaderRef>& headers,
                                        const std::function<KeyOutcome(const std::string&)>& key_for);
    std::size_t signature_count() const { return sigs_.size(); }

  private:
    struct Entry {
        SignatureParse parse;
        std::size_t field = 0;                 // index in headers
        bool verify = false;                   // within max_signatures and parsed
        std::optional<SignatureResult> early;  // decided before any key
    };
    VerifyOptions options_;
    std::vector<Entry> sigs_;
    BodyHashes hashes_;
};

// Header fields as HeaderRef views.
template <class Fields>
std::vector<HeaderRef> header_refs(const Fields& fields) {
    std::vector<HeaderRef> out;
    out.reserve(fields.size());
    for (const auto& f : fields) out.push_back(HeaderRef{f.name, f.value});
    return out;
}

// "dkim=pass header.d=... header.i=... header.s=... header.a=... header.b=..." (RFC 8601).
std::string auth_result_text(const SignatureResult& r);
// {"result":..,"domain":..,"selector":..,"algorithm":..,"detail":..}
std::string json_of(const SignatureResult& r);

}  // namespace vigil::auth::dkim
