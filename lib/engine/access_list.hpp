#pragma once
// Local allow/deny rules on the client IP, HELO name, sender and recipient: the operator's own
// word, applied at the SMTP stage where the value becomes known.
#include <string>
#include <vector>

#include "core/ip_address.hpp"
#include "engine/builtin_checks.hpp"
#include "engine/check_api.hpp"

namespace vigil::engine {

struct AccessRule {
    enum class Field { ip, helo, sender, rcpt };
    Field field;
    std::string pattern;                 // as written, for symbol options and log lines
    std::optional<core::Cidr> network;   // for ip
    std::optional<core::Action> action;  // nullopt: only add `score`
    double score = 0;
    std::string reply;  // optional "550 5.7.1 text" override for reject/tempfail
};

// Address patterns: "user@example.com" (exact), "@example.com" (that domain), "@.example.com"
// (any subdomain of it), "user@" (that local part anywhere), "<>" (the null sender).
// HELO patterns: "host.example.com" (exact) or ".example.com" (any subdomain).
bool access_pattern_matches(AccessRule::Field field, std::string_view pattern, std::string_view value);

class AccessListCheck final : public Check {
  public:
    explicit AccessListCheck(std::vector<AccessRule> rules) : rules_(std::move(rules)) {}
    static std::unique_ptr<Check> make(Section& options);

    std::string_view name() const override { return "access"; }
    std::vector<Stage> stages() const override {
        return {Stage::connect, Stage::helo, Stage::mail, Stage::rcpt};
    }
    std::vector<core::SymbolDef> symbols() const override;
    // The operator's rules apply to outbound mail as well (e.g. a compromised account's sender).
    bool inbound_only() const override { return false; }
    bool may_refuse_before_data() const override;  // a rule whose action is reject or tempfail
    void run(Context& ctx) const override;

  private:
    std::vector<AccessRule> rules_;
};

}  // namespace vigil::engine
