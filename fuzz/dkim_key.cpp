// DKIM key records (RFC 6376 §3.6.1) as they come from DNS: the tag list, then the key itself through
// OpenSSL (key_from_answer), with the record split into TXT character-strings as a server may send it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/dkim/keys.hpp"
#include "auth/dkim/signature.hpp"
#include "dns/resolver.hpp"
#include "fuzz_check.hpp"

using namespace vigil;
using namespace vigil::auth::dkim;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);

    auto parsed = parse_key_record(text);
    FUZZ_CHECK(parsed.key.has_value() || !parsed.detail.empty());

    // The same bytes as one TXT record in 255-byte character-strings, as a server sends a long key.
    dns::Record r;
    r.type = dns::RrType::txt;
    r.name = "sel._domainkey.example.com";
    for (std::size_t i = 0; i < text.size(); i += 255) r.txt.emplace_back(text.substr(i, 255));
    dns::Answer a;
    a.status = dns::Status::answer;
    a.records.push_back(r);
    auto one = key_from_answer(a);
    if (one.status == Result::pass) {
        FUZZ_CHECK(parsed.key.has_value() && one.key != nullptr);
        FUZZ_CHECK(one.key->record.revoked || one.key->pkey != nullptr);
    } else {
        FUZZ_CHECK(one.status == Result::permerror && !one.detail.empty());
    }
    return 0;
}
