#pragma once
// The SPF check (RFC 7208) at MAIL FROM: evaluates the MAIL FROM identity (postmaster@HELO for the
// null sender) and, when enabled, the HELO identity; adds SPF_* / SPF_HELO_* symbols, "spf=" entries
// for Authentication-Results (smtp.mailfrom / smtp.helo), an optional Received-SPF header field, and
// the "spf" / "spf_helo" objects of `vigil check --json`. Local policy may reject a fail
// (550 5.7.23, RFC 7372) or defer a temperror (451 4.4.3); by default results are only scored.
#include <string>

#include "auth/spf/evaluator.hpp"
#include "check/check.hpp"
#include "check/check_factory.hpp"

namespace vigil::auth::spf {

struct CheckOptions {
    bool reject_on_fail = false;
    bool tempfail_on_temperror = false;
    bool helo_check = true;
    bool received_spf_header = true;
    bool explanation = false;
};

// A Received-SPF field value (RFC 7208 §9.1), starting with a space. Every peer- or DNS-supplied
// string in it is made printable, bounded, and quoted or stripped of comment delimiters.
std::string received_spf_value(const Outcome& o, const core::IpAddress& ip, std::string_view mail_from,
                               std::string_view helo, std::string_view receiver, std::string_view identity);
// The "spf=..." resinfo for Authentication-Results.
std::string auth_result(const Outcome& o, std::string_view property, std::string_view value);

class SpfCheck final : public check::Check {
  public:
    explicit SpfCheck(CheckOptions options) : options_(options) {}
    static std::unique_ptr<check::Check> make(check::Section& options);

    std::string_view name() const override { return "spf"; }
    std::vector<check::Stage> stages() const override { return {check::Stage::mail}; }
    bool may_refuse_before_data() const override {
        return options_.reject_on_fail || options_.tempfail_on_temperror;
    }
    std::vector<core::SymbolDef> symbols() const override;
    void start(check::Context& ctx) const override;
    void run(check::Context& ctx) const override;

  private:
    CheckOptions options_;
};

}  // namespace vigil::auth::spf
