#pragma once
// GTUBE: the Generic Test for Unsolicited Bulk Email string. Lets an operator prove end to end
// that rejection works without sending real spam.
#include "check/check.hpp"
#include "check/check_factory.hpp"

namespace vigil::content {

inline constexpr std::string_view gtube_string =
    "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

class GtubeCheck final : public check::Check {
  public:
    explicit GtubeCheck(core::Action action) : action_(action) {}
    static std::unique_ptr<check::Check> make(check::Section& options);

    std::string_view name() const override { return "gtube"; }
    std::vector<check::Stage> stages() const override { return {check::Stage::body}; }
    std::vector<core::SymbolDef> symbols() const override;
    // Outbound mail is tested too: an operator checks their own submission path with it.
    bool inbound_only() const override { return false; }
    void body_chunk(check::Context& ctx, std::string_view chunk) const override;
    void run(check::Context& ctx) const override;

  private:
    core::Action action_;
};

}  // namespace vigil::content
