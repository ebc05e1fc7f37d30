#pragma once
// What the client's HELO/EHLO name says about it (RFC 5321 §4.1.1.1, §4.1.3): a name that is not a
// host name, an address literal that is not the client's address, our own name or address claimed by
// a stranger, or a name that does not exist in the DNS.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "check/check.hpp"
#include "check/check_factory.hpp"
#include "core/ip_address.hpp"

namespace vigil::reputation {

// HELO text in symbol options is made printable and cut to this length (house rule 8).
inline constexpr std::size_t max_reported_helo = 64;

struct HeloOptions {
    std::vector<std::string> our_names;  // lowercase, no trailing dot; includes [server] hostname
    std::vector<core::Cidr> our_ips;
    bool resolve = true;  // look the name up (A and AAAA) for HELO_NO_RESOLVE
};

// The findings that need no DNS, and whether the name should be looked up. Pure, for tests.
struct HeloAnalysis {
    std::vector<std::string> symbols;
    std::string lookup_name;  // empty: no lookup (not a host name, an IP, or ours)
};
HeloAnalysis analyze_helo(std::string_view helo, const std::optional<core::IpAddress>& client,
                          const HeloOptions& options);

// RFC 5321 "Domain": LDH labels of 1..63 characters, not starting or ending with '-', at most 253
// characters (one trailing dot tolerated), last label not all digits.
bool valid_hostname(std::string_view name);

class HeloCheck final : public check::Check {
  public:
    HeloCheck(std::vector<std::string> our_names, std::vector<core::Cidr> our_ips, bool resolve)
        : our_names_(std::move(our_names)), our_ips_(std::move(our_ips)), resolve_(resolve) {}
    static std::unique_ptr<check::Check> make(check::Section& options);

    std::string_view name() const override { return "helo"; }
    std::vector<check::Stage> stages() const override { return {check::Stage::helo}; }
    bool may_refuse_before_data() const override { return false; }  // it only scores
    std::vector<core::SymbolDef> symbols() const override;
    void start(check::Context& ctx) const override;
    void run(check::Context& ctx) const override;

  private:
    HeloOptions options_for(const check::Context& ctx) const;

    std::vector<std::string> our_names_;
    std::vector<core::Cidr> our_ips_;
    bool resolve_;
};

}  // namespace vigil::reputation
