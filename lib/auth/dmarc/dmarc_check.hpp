#pragma once
// The [checks.dmarc] check (RFC 7489, np= from RFC 9091): at end of message it ties the SPF and
// DKIM results (AuthFacts, left by those checks) to the RFC5322.From domain, finds the domain's
// policy (_dmarc.<From domain>, then _dmarc.<organizational domain>), and applies local policy to
// a failure. The policy lookups start as soon as the header is complete, so they overlap the body.
// See lib/auth/dmarc/DOCS.md.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "auth/dmarc/org_domain.hpp"
#include "auth/dmarc/record.hpp"
#include "check/check.hpp"
#include "check/check_factory.hpp"
#include "core/ip_address.hpp"

namespace vigil::auth::dmarc {

// What a failure under p=reject does; under p=quarantine; with no single usable From domain.
enum class OnReject { reject, quarantine, score };
enum class OnQuarantine { quarantine, junk, score };  // junk: delivered with the spam headers
// A From that is not one field with one mailbox (several fields or mailboxes, malformed, none):
// strictest: evaluate every domain found in it and enforce the strictest outcome (a part never
//            examined counts as a failure under p=reject); no domain at all: DMARC_BAD_FROM only;
// reject:    refuse it (550 5.7.1) whatever it holds;
// score:     DMARC_BAD_FROM and no DMARC: a malformed From then escapes the domain's policy;
// skip:      no DMARC at all for it.
enum class OnBadFrom { strictest, reject, score, skip };

struct DmarcOptions {
    OnReject on_reject = OnReject::reject;
    OnQuarantine on_quarantine = OnQuarantine::quarantine;
    OnBadFrom bad_from = OnBadFrom::strictest;
    bool tempfail_on_temperror = false;
    // Failures of mail from these clients or From domains are scored, never enforced: forwarders
    // and mailing lists that break SPF and DKIM. Hosts are matched against the client name the MTA
    // verified (forward-confirmed reverse DNS; "unknown" never matches), exactly or, written with a
    // leading dot, as any subdomain. Domains are matched against the From domain the same way.
    std::vector<core::Cidr> score_only_networks;
    std::vector<std::string> score_only_hosts;
    std::vector<std::string> score_only_domains;
};

// A number in [0, 100) for pct= sampling (RFC 7489 §6.6.4); the policy applies when it is below pct.
using Sampler = std::function<int()>;
// Uniform, seeded from std::random_device, safe from any thread.
Sampler random_sampler();

class DmarcCheck final : public check::Check {
  public:
    DmarcCheck(DmarcOptions options, std::shared_ptr<const PublicSuffixList> psl,
               Sampler sampler = random_sampler())
        : options_(std::move(options)), psl_(std::move(psl)), sampler_(std::move(sampler)) {}
    static std::unique_ptr<check::Check> make(check::Section& options);

    std::string_view name() const override { return "dmarc"; }
    // headers: start the policy lookups; eom: evaluate (after DKIM, which runs at eom too).
    std::vector<check::Stage> stages() const override { return {check::Stage::headers, check::Stage::eom}; }
    std::vector<core::SymbolDef> symbols() const override;
    std::vector<std::string_view> depends_on() const override { return {"spf", "dkim"}; }
    void start(check::Context& ctx) const override;
    void run(check::Context& ctx) const override;

    const DmarcOptions& options() const { return options_; }
    // For tests, before the configuration is shared: replaces the pct= sampler.
    void set_sampler(Sampler sampler) { sampler_ = std::move(sampler); }

  private:
    DmarcOptions options_;
    std::shared_ptr<const PublicSuffixList> psl_;
    Sampler sampler_;
};

}  // namespace vigil::auth::dmarc
