// SPF macro expansion (RFC 7208 §7): the record's author picks the macro string, the SMTP client the
// sender, HELO and address it expands — the ground of libspf2's CVE-2021-20314 and CVE-2023-42118.
// Every expansion must stay within limits::max_expansion_bytes, and a domain-spec within 253 bytes.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "auth/spf/macro.hpp"
#include "auth/spf/spf_limits.hpp"
#include "fuzz_check.hpp"

using namespace vigil;
using namespace vigil::auth::spf;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const std::string local = in.ConsumeRandomLengthString(128);
    const std::string sender_domain = in.ConsumeRandomLengthString(128);
    const std::string domain = in.ConsumeRandomLengthString(300);
    const std::string helo = in.ConsumeRandomLengthString(300);
    const std::string ptr = in.ConsumeRandomLengthString(300);
    const bool have_ptr = in.ConsumeBool();
    core::IpAddress ip;
    if (in.ConsumeBool()) {
        std::array<std::uint8_t, 16> b{};
        for (auto& x : b) x = in.ConsumeIntegral<std::uint8_t>();
        ip = core::IpAddress::v6(b);
    } else {
        std::array<std::uint8_t, 4> b{};
        for (auto& x : b) x = in.ConsumeIntegral<std::uint8_t>();
        ip = core::IpAddress::v4(b);
    }
    const auto timestamp = in.ConsumeIntegral<std::int64_t>();
    const std::string spec = in.ConsumeRemainingBytesAsString();

    MacroContext ctx;
    ctx.local_part = local;
    ctx.sender_domain = sender_domain;
    ctx.domain = domain;
    ctx.helo = helo;
    ctx.ip = ip;
    ctx.timestamp = timestamp;
    int ptr_calls = 0;
    if (have_ptr) {
        ctx.validated_ptr = [&] {
            ++ptr_calls;
            return ptr;
        };
    }

    for (bool explanation : {false, true}) {
        auto e = expand_macros(spec, ctx, explanation);
        if (e.ok())
            FUZZ_CHECK(e.value.size() <= limits::max_expansion_bytes);
        else
            FUZZ_CHECK(!e.error.empty());
    }
    auto d = expand_domain(spec, ctx);
    if (d.ok()) FUZZ_CHECK(d.value.size() <= limits::max_domain_length);
    (void)macro_ip(ip);
    return 0;
}
