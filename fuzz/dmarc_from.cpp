// The RFC5322.From domain (RFC 7489 §6.6.1): the sender writes the From field, and the domain
// read from it decides whose DMARC policy applies — the field OpenDMARC's parser crashed on
// (CVE-2024-25768) and misread. Also the domain normalisation and organizational domain behind
// alignment.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "auth/dmarc/dmarc_limits.hpp"
#include "auth/dmarc/from_domain.hpp"
#include "auth/dmarc/org_domain.hpp"
#include "fuzz_check.hpp"

using namespace vigil::auth::dmarc;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const auto psl = PublicSuffixList::system();
    FuzzedDataProvider in(data, size);
    std::vector<std::string> fields;
    const int extra = in.ConsumeIntegralInRange(0, 3);
    for (int i = 0; i < extra; ++i) fields.push_back(in.ConsumeRandomLengthString(256));
    fields.push_back(in.ConsumeRemainingBytesAsString());
    const std::string_view last = fields.back();

    auto one = parse_from_value(last);
    if (one.ok()) {
        // Not necessarily a usable domain (the check normalises it and calls it unparsable if not),
        // but never empty.
        FUZZ_CHECK(!one.domain.empty());
        auto norm = normalize_domain(one.domain);
        if (norm.ok() && psl) {
            auto org = psl->organizational_domain(norm.name);
            FUZZ_CHECK(!org.empty() && norm.name.ends_with(org));
        }
    } else {
        FUZZ_CHECK(one.domain.empty());
    }
    for (unsigned char c : one.detail) FUZZ_CHECK(c >= 0x20 && c < 0x7f);

    std::vector<std::string_view> views(fields.begin(), fields.end());
    auto all = extract_from_domain(views);
    if (fields.size() > 1)
        FUZZ_CHECK(all.status == FromStatus::several_fields);
    else
        FUZZ_CHECK(all.status == one.status && all.domain == one.domain);

    // Every domain a reader could see (the strictest-policy path): bounded, normalized, distinct;
    // a well-formed value's domain is always among them unless the result says it is incomplete.
    const bool cut = fields.front().size() % 7 == 3;  // as if the first value had been cut at its cap
    auto doms = from_domains(views, views.size(), cut);
    FUZZ_CHECK(doms.domains.size() <= limits::max_from_domains);
    for (std::size_t i = 0; i < doms.domains.size(); ++i) {
        const auto& d = doms.domains[i];
        FUZZ_CHECK(!d.empty());
        auto again = normalize_domain(d);
        FUZZ_CHECK(again.ok() && again.name == d);
        for (std::size_t j = 0; j < i; ++j) FUZZ_CHECK(doms.domains[j] != d);
    }
    for (unsigned char c : doms.detail) FUZZ_CHECK(c >= 0x20 && c < 0x7f);
    if (!doms.complete()) FUZZ_CHECK(!doms.ok());
    if (doms.ok()) {
        FUZZ_CHECK(doms.domains.size() == 1 && fields.size() == 1 && !cut);
        FUZZ_CHECK(one.ok() && normalize_domain(one.domain).name == doms.domains[0]);
    }
    if (all.status != FromStatus::ok)
        FUZZ_CHECK(doms.status == all.status);
    else
        FUZZ_CHECK(doms.ok() || doms.status == FromStatus::unparsable);
    if (one.ok() && doms.complete()) {
        auto mine = normalize_domain(one.domain);
        if (mine.ok())
            FUZZ_CHECK(std::find(doms.domains.begin(), doms.domains.end(), mine.name) != doms.domains.end());
    }
    // Past the field cap: never complete, never ok.
    auto more = from_domains(views, views.size() + 1, false);
    FUZZ_CHECK(!more.complete() && !more.ok());

    auto norm = normalize_domain(last);
    if (norm.ok()) {
        FUZZ_CHECK(norm.name.size() <= limits::max_domain_length);
        FUZZ_CHECK(normalize_domain(norm.name).name == norm.name);  // normalising is idempotent
        if (psl) (void)organizational_domain(*psl, last);
    }
    return 0;
}
