#pragma once
// The [checks.dkim] check: verifies every DKIM-Signature of inbound mail as the body streams
// through, and signs outbound mail whose From domain has a key. See lib/auth/dkim/DOCS.md.
#include <memory>
#include <string>
#include <vector>

#include "auth/dkim/sign.hpp"
#include "auth/dkim/verify.hpp"
#include "check/check.hpp"
#include "check/check_factory.hpp"

namespace vigil::auth::dkim {

struct SigningRule {
    std::string from;    // "example.org" (that domain) or "*.example.org" (subdomains and itself)
    std::string domain;  // the d= whose keys sign it
};

struct DkimOptions {
    bool verify = true;
    VerifyOptions verify_options;
    std::vector<std::string> trusted_signers;  // lowercase d= domains
    bool sign = true;
    SignParams sign_params;
    std::vector<std::shared_ptr<const SigningKey>> keys;
    std::vector<SigningRule> rules;
};

// Reads the From domain of a message (the address in the first From field), lowercase; "" if none.
std::string from_domain(std::string_view from_value);

class DkimCheck final : public check::Check {
  public:
    explicit DkimCheck(DkimOptions options) : options_(std::move(options)) {}
    static std::unique_ptr<check::Check> make(check::Section& options);

    std::string_view name() const override { return "dkim"; }
    std::vector<check::Stage> stages() const override { return {check::Stage::body, check::Stage::eom}; }
    std::vector<core::SymbolDef> symbols() const override;
    // Runs for outbound mail too (it signs it); verification is for inbound mail only.
    bool inbound_only() const override { return false; }
    void body_chunk(check::Context& ctx, std::string_view chunk) const override;
    void start(check::Context& ctx) const override;
    void run(check::Context& ctx) const override;

    // The keys that sign mail from `domain` (after the signing rules), in configured order.
    std::vector<std::shared_ptr<const SigningKey>> keys_for(std::string_view from_domain) const;
    const DkimOptions& options() const { return options_; }

  private:
    class State;
    State& state(check::Context& ctx) const;
    DkimOptions options_;
};

// Loads a private key file for signing; refuses files readable by group or others, and RSA keys
// under limits::min_signing_rsa_bits (RFC 8301). Throws nothing: returns the error text (empty on
// success).
std::string load_signing_key(const std::string& path, SigningKey& into);

}  // namespace vigil::auth::dkim
