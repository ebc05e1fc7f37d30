// SPF records (RFC 7208 §4.5, §12) as any domain owner may publish them, and the ABNF checks on
// the macro strings inside them.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "auth/spf/record.hpp"
#include "auth/spf/spf_limits.hpp"
#include "fuzz_check.hpp"

using namespace vigil::auth::spf;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    (void)valid_macro_string(text);
    (void)valid_domain_spec(text);
    (void)valid_explain_string(text);
    if (!is_spf_record(text)) return 0;
    auto parsed = parse_record(text);
    if (!parsed.ok()) {
        FUZZ_CHECK(!parsed.error.empty());
        return 0;
    }
    FUZZ_CHECK(text.size() <= limits::max_record_bytes);
    FUZZ_CHECK(parsed.record->mechanisms.size() <= limits::max_terms);
    for (const auto& m : parsed.record->mechanisms) {
        FUZZ_CHECK(m.domain_spec.empty() || valid_domain_spec(m.domain_spec));
        FUZZ_CHECK(m.cidr4 <= 32 && m.cidr6 <= 128);
        (void)to_string(m.kind);
    }
    if (parsed.record->redirect) FUZZ_CHECK(valid_domain_spec(*parsed.record->redirect));
    if (parsed.record->exp) FUZZ_CHECK(valid_domain_spec(*parsed.record->exp));
    return 0;
}
