// cached_key_bytes: what a parsed DKIM key charges the DNS cache, held against what malloc really
// gives back when such keys are freed (OpenSSL's objects included).
#include <malloc.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "auth/dkim/crypto.hpp"
#include "auth/dkim/keys.hpp"
#include "fakes/fake_resolver.hpp"

using namespace vigil;
using namespace vigil::auth::dkim;

namespace {

#if defined(__SANITIZE_ADDRESS__)
#define VIGIL_OWN_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VIGIL_OWN_MALLOC 1
#endif
#endif

[[maybe_unused]] dns::Answer key_answer(const std::string& txt) {
    dns::Answer a;
    a.status = dns::Status::answer;
    a.ttl = 300;
    std::vector<std::string> strings;
    for (std::size_t i = 0; i < txt.size(); i += 250) strings.push_back(txt.substr(i, 250));
    a.records = {dns::fake::txt("sel._domainkey.example.com", std::move(strings))};
    return a;
}

}  // namespace

TEST_CASE("dkim keys: the cache is charged about what a parsed key really holds", "[dkim][memory]") {
#ifdef VIGIL_OWN_MALLOC
    WARN("skipped: mallinfo2() says nothing under a sanitizer's allocator");
#else
    struct Kind {
        KeyType type;
        unsigned bits;
    };
    for (auto kind : {Kind{KeyType::rsa, 1024}, Kind{KeyType::rsa, 2048}, Kind{KeyType::rsa, 4096},
                      Kind{KeyType::ed25519, 0}}) {
        auto g = generate_key(kind.type, kind.bits);
        REQUIRE(g.error.empty());
        auto answer =
            key_answer("v=DKIM1; k=" + std::string(to_string(kind.type)) + "; h=sha256; p=" + g.public_b64);
        REQUIRE(key_from_answer(answer).status == Result::pass);  // warms OpenSSL's own tables

        const std::size_t n = 300;
        std::vector<std::shared_ptr<const KeyOutcome> > kept;
        kept.reserve(n);
        std::size_t charged = 0;
        for (std::size_t i = 0; i < n; ++i) {
            auto outcome = key_from_answer(answer);
            charged += cached_key_bytes(outcome);
            // What the cache keeps: the outcome alone (the cache's CachedKey has the same layout).
            kept.push_back(std::make_shared<const KeyOutcome>(std::move(outcome)));
        }
        auto before = mallinfo2();
        kept.clear();
        auto after = mallinfo2();
        const std::size_t freed = (before.uordblks + before.hblkhd) - (after.uordblks + after.hblkhd);
        INFO(to_string(kind.type) << " " << kind.bits << ": charged " << charged / n << " bytes a key, freed "
                                  << freed / n);
        // An estimate that may err on the generous side, never much below.
        CHECK(static_cast<double>(charged) >= 0.95 * static_cast<double>(freed));
        CHECK(static_cast<double>(charged) <= 1.25 * static_cast<double>(freed));
    }
#endif
}
