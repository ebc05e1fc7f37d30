// DKIM canonicalisation (RFC 6376 §3.4) of sender-controlled header fields and bodies. The body
// arrives from the MTA in chunks of any size, so the properties checked are: the canonical body does
// not depend on how it was chunked, canonicalisation is idempotent, relaxed output carries no
// white space the algorithm removes, and the body hashes (with l= snapshots) agree across chunkings.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/dkim/canon.hpp"
#include "fuzz_check.hpp"

using namespace vigil::auth::dkim;

namespace {

std::string canon_body(Canon c, std::string_view body, const std::vector<std::size_t>& cuts) {
    std::string out;
    BodyCanonicalizer b(c);
    auto sink = [&](std::string_view piece) { out.append(piece); };
    std::size_t pos = 0;
    for (std::size_t cut : cuts) {
        std::size_t n = std::min(cut, body.size() - pos);
        b.feed(body.substr(pos, n), sink);
        pos += n;
    }
    b.feed(body.substr(pos), sink);
    b.finish(sink);
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const Canon header_canon = in.ConsumeBool() ? Canon::relaxed : Canon::simple;
    const Canon body_canon = in.ConsumeBool() ? Canon::relaxed : Canon::simple;
    const auto length = in.ConsumeIntegralInRange<std::uint64_t>(0, 256);
    std::vector<std::size_t> cuts;
    for (int n = in.ConsumeIntegralInRange(0, 16); n > 0; --n)
        cuts.push_back(in.ConsumeIntegralInRange<std::size_t>(0, 64));
    const std::string name = in.ConsumeRandomLengthString(64);
    const std::string value = in.ConsumeRandomLengthString(1024);
    const std::string body = in.ConsumeRemainingBytesAsString();

    std::string h = canon_header(header_canon, name, value);
    FUZZ_CHECK(h.size() >= 3 && h.ends_with("\r\n"));

    const std::string whole = canon_body(body_canon, body, {});
    FUZZ_CHECK(canon_body(body_canon, body, cuts) == whole);
    std::vector<std::size_t> bytewise(body.size() < 512 ? body.size() : 0, 1);
    if (!bytewise.empty()) FUZZ_CHECK(canon_body(body_canon, body, bytewise) == whole);
    FUZZ_CHECK(canon_body(body_canon, whole, {}) == whole);
    if (body_canon == Canon::simple) {
        FUZZ_CHECK(whole.ends_with("\r\n"));
    } else {
        FUZZ_CHECK(whole.empty() || whole.ends_with("\r\n"));
        FUZZ_CHECK(whole.find('\t') == std::string::npos);
        FUZZ_CHECK(whole.find("  ") == std::string::npos);
        FUZZ_CHECK(whole.find(" \r\n") == std::string::npos);
    }
    FUZZ_CHECK(!whole.ends_with("\r\n\r\n"));

    // Body hashes: full and at an l= length, fed whole and in pieces.
    auto hashes = [&](const std::vector<std::size_t>& pieces) {
        BodyHashes bh;
        FUZZ_CHECK(bh.register_need(body_canon, HashAlg::sha256, std::nullopt));
        FUZZ_CHECK(bh.register_need(body_canon, HashAlg::sha256, length));
        std::size_t pos = 0;
        for (std::size_t cut : pieces) {
            std::size_t n = std::min(cut, body.size() - pos);
            bh.feed(std::string_view(body).substr(pos, n));
            pos += n;
        }
        bh.feed(std::string_view(body).substr(pos));
        bh.finish();
        FUZZ_CHECK(bh.canonical_length(body_canon) == whole.size());
        auto full = bh.result(body_canon, HashAlg::sha256, std::nullopt);
        auto part = bh.result(body_canon, HashAlg::sha256, length);
        FUZZ_CHECK(full.has_value());
        FUZZ_CHECK(part.has_value() == (length <= whole.size()));
        if (length == whole.size()) FUZZ_CHECK(part == full);
        return std::pair{full, part};
    };
    FUZZ_CHECK(hashes({}) == hashes(cuts));
    return 0;
}
