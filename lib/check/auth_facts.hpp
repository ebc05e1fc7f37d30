#pragma once
// Authentication results that a later check reads (DMARC reads SPF and DKIM). Kept per message by
// the session and reset with it; written only by the check that computed them.
#include <optional>
#include <string>
#include <vector>

namespace vigil::check {

struct SpfFact {
    std::string result;          // RFC 8601 spelling: pass fail softfail neutral none temperror permerror
    std::string domain;          // the checked identity's domain, lowercase (the HELO name for scope "helo")
    std::string scope;           // "mfrom" or "helo" (RFC 7489 §7.2 / Appendix C SPFDomainScope)
    bool dnssec_secure = false;  // the SPF record answer validated as signed
};

struct DkimFact {
    std::string result;  // RFC 8601 spelling: pass fail neutral policy none permerror temperror
    std::string domain;  // d=, lowercase
    std::string selector;
    std::string algorithm;
    std::string b_prefix;        // header.b
    bool dnssec_secure = false;  // the key record answer validated as signed
};

struct AuthFacts {
    // The MAIL FROM identity's result; for the null sender, the postmaster@HELO evaluation
    // (scope "helo"), as RFC 7489 §4.1 asks.
    std::optional<SpfFact> spf;
    std::optional<SpfFact> spf_helo;  // the separate HELO check, when enabled
    bool dkim_evaluated = false;      // the DKIM check ran verification for this message
    std::vector<DkimFact> dkim;       // one per DKIM-Signature, header order
};

}  // namespace vigil::check
