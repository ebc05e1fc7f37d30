#pragma once
// Where inbound DMARC evaluations are kept for aggregate reports (RFC 7489 §7.2, Appendix C).
// The DMARC check hands every evaluation of a domain that publishes rua= to record(); building and
// sending the reports is `vigil dmarc report`'s business. Implementations must never block the mail
// path for long, never throw, and never lose mail over a storage problem (full disk: log and drop).
#include <cstdint>
#include <string>
#include <vector>

namespace vigil::report {

struct DmarcDkimRow {
    std::string domain;    // d=
    std::string selector;  // s=
    std::string result;    // DKIMResultType: none pass fail policy neutral temperror permerror
};

struct DmarcSpfRow {
    std::string domain;  // the checked identity's domain
    std::string scope;   // "mfrom" or "helo"
    std::string result;  // SPFResultType: none neutral pass fail softfail temperror permerror
};

// One evaluated message: the fields of an Appendix C <record> plus the published policy it was
// evaluated against (<policy_published>). Strings are lowercase where the RFC's types are tokens.
struct DmarcEvaluation {
    std::int64_t time = 0;      // seconds since the epoch, when evaluated
    std::string policy_domain;  // the domain whose _dmarc record applied (From domain or org domain)
    // <policy_published>
    std::string adkim = "r", aspf = "r";  // "r" or "s"
    std::string p, sp, np;                // none quarantine reject ("" = not published)
    int pct = 100;
    std::string fo = "0";
    std::vector<std::string> rua;  // the record's rua= URIs, as published
    // <row>
    std::string source_ip;             // textual IPv4 or IPv6
    std::string disposition;           // none quarantine reject: what we did
    std::string dkim_aligned;          // policy_evaluated/dkim: "pass" or "fail"
    std::string spf_aligned;           // policy_evaluated/spf: "pass" or "fail"
    std::vector<std::string> reasons;  // PolicyOverrideType: forwarded sampled_out trusted_forwarder
                                       // mailing_list local_policy other
    std::string reason_comment;
    // <identifiers>
    std::string header_from;    // From domain
    std::string envelope_from;  // MAIL FROM domain ("" for the null sender)
    std::string envelope_to;    // first recipient's domain
    // <auth_results>
    std::vector<DmarcDkimRow> dkim;
    std::vector<DmarcSpfRow> spf;
};

class DmarcStore {
  public:
    virtual ~DmarcStore() = default;
    // Called on the mail path: keep it cheap (queue and write elsewhere). Never throws.
    virtual void record(const DmarcEvaluation& evaluation) noexcept = 0;
};

}  // namespace vigil::report
