#pragma once
// Facts about the message's form that other checks cannot see: fields dropped at our caps,
// a missing From, a body without a header.
#include "check/check.hpp"
#include "check/check_factory.hpp"

namespace vigil::content {

class MessageStructureCheck final : public check::Check {
  public:
    static std::unique_ptr<check::Check> make(check::Section& options);
    std::string_view name() const override { return "message_structure"; }
    std::vector<check::Stage> stages() const override { return {check::Stage::headers}; }
    std::vector<core::SymbolDef> symbols() const override;
    void run(check::Context& ctx) const override;
};

}  // namespace vigil::content
