#pragma once
// DKIM public keys from DNS (RFC 6376 §3.6.2): one TXT lookup per selector, parsed once and cached
// parsed (EVP_PKEY) with the answer's TTL, since parsing an RSA key costs far more than verifying.
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "auth/dkim/crypto.hpp"
#include "auth/dkim/signature.hpp"
#include "dns/resolver.hpp"

namespace vigil::dns {
class CachingResolver;
}

namespace vigil::auth::dkim {

struct DkimKey {
    KeyRecord record;                          // p= bytes dropped once parsed
    std::shared_ptr<EVP_PKEY> pkey;            // null when revoked
    std::shared_ptr<EVP_PKEY_CTX> rsa_sha256;  // prepared verification context (RSA keys), or null
};

// status: pass (key found and parsed), permerror (no key, bad record, not a key), temperror (DNS).
struct KeyOutcome {
    Result status = Result::temperror;
    std::shared_ptr<const DkimKey> key;
    std::string detail;
    dns::Dnssec dnssec = dns::Dnssec::unchecked;  // of the key record's answer
};

// The query name "<selector>._domainkey.<domain>".
std::string key_query_name(std::string_view selector, std::string_view domain);
// The key record to publish, in zone-file form, split into 250-byte character-strings:
// `sel._domainkey.example.com. IN TXT ( "v=DKIM1; k=rsa; p=..." )` (`vigil dkim keygen`, `vigil doctor`).
std::string key_txt_record(std::string_view selector, std::string_view domain, KeyType type,
                           std::string_view public_b64);
// A DNS answer (TXT) turned into a key outcome. Pure apart from OpenSSL.
KeyOutcome key_from_answer(const dns::Answer& answer);
// What the DNS cache's entry for `outcome` keeps alive (the outcome, the key, OpenSSL's objects).
std::size_t cached_key_bytes(const KeyOutcome& outcome);

// Lookups for one message: start() them all first, then get() each with the stage deadline.
// Parsed keys come from, and go to, `cache` when there is one.
class KeyFetcher {
  public:
    KeyFetcher(dns::Resolver& resolver, dns::CachingResolver* cache) : resolver_(&resolver), cache_(cache) {}
    void start(const std::string& name);
    KeyOutcome get(const std::string& name, std::chrono::steady_clock::time_point deadline);

  private:
    dns::Resolver* resolver_;
    dns::CachingResolver* cache_;
    std::map<std::string, dns::Pending> pending_;
    std::map<std::string, KeyOutcome> done_;
};

}  // namespace vigil::auth::dkim
