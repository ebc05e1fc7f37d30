#pragma once
// Facts about the message's form that other checks cannot see: fields dropped at our caps,
// a missing From, a body without a header.
#include "policy/builtin_checks.hpp"
#include "policy/check.hpp"

namespace vigil::content {

class MessageStructureCheck final : public policy::Check {
  public:
    static std::unique_ptr<policy::Check> make(policy::Section& options);
    std::string_view name() const override { return "message_structure"; }
    std::vector<policy::Stage> stages() const override { return {policy::Stage::headers}; }
    std::vector<core::SymbolDef> symbols() const override;
    void run(policy::Context& ctx) const override;
};

}  // namespace vigil::content
