// DMARC policy records (RFC 7489 §6.3) as any domain owner publishes them.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "auth/dmarc/dmarc_limits.hpp"
#include "auth/dmarc/record.hpp"
#include "fuzz_check.hpp"

using namespace vigil::auth::dmarc;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    const bool is = is_dmarc_record(text);
    auto parsed = parse_record(text);
    if (!is) FUZZ_CHECK(!parsed.ok() && parsed.status == RecordStatus::not_dmarc);
    if (!parsed.ok()) {
        FUZZ_CHECK(!parsed.error.empty());
        for (unsigned char c : parsed.error) FUZZ_CHECK(c >= 0x20 && c < 0x7f);
        return 0;
    }
    const auto& r = *parsed.record;
    FUZZ_CHECK(r.pct >= 0 && r.pct <= 100);
    FUZZ_CHECK(r.rua.size() <= limits::max_report_uris && r.ruf.size() <= limits::max_report_uris);
    for (const auto& u : r.rua) FUZZ_CHECK(u.uri.size() <= limits::max_uri_bytes);
    (void)to_string(r.subdomain_policy());
    (void)to_string(r.nonexistent_policy());
    (void)to_string(r.adkim);
    return 0;
}
