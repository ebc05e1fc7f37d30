#include "auth/dkim/keys.hpp"

#include <stdexcept>

#include "dns/cache.hpp"
#include "dns/heap_size.hpp"

namespace vigil::auth::dkim {

namespace {
constexpr std::string_view cache_tag = "dkim-key";
struct CachedKey {
    KeyOutcome outcome;
};

// OpenSSL 3's objects behind a parsed key, for the DNS cache's byte budget. Measured with mallinfo2()
// over 2,000 keys each (OpenSSL 3.0, Debian 12): an RSA public key takes 795 bytes at 1024 bits, 916
// at 2048 and 1176 at 4096 (about 670 + bits/8), its prepared verification context 400, an Ed25519
// key 417. Rounded up; test/unit/dns/cache_test.cpp checks the sum against mallinfo2().
constexpr std::size_t openssl_rsa_key_base = 704;
constexpr std::size_t openssl_rsa_verify_ctx = 448;
constexpr std::size_t openssl_ed25519_key = 448;
// A shared_ptr made from a pointer and a deleter has its counts in a block of their own (a vtable
// pointer, two counts, the pointer).
constexpr std::size_t deleter_counts = dns::heap::block(24);
}  // namespace

std::size_t cached_key_bytes(const KeyOutcome& outcome) {
    namespace heap = dns::heap;
    std::size_t n = heap::make_shared_block<CachedKey>() + heap::of(outcome.detail);
    if (const auto* key = outcome.key.get()) {
        n += heap::make_shared_block<DkimKey>() + heap::of(key->record.public_key) +
             heap::buffer_of(key->record.hashes);
        for (const auto& h : key->record.hashes) n += heap::of(h);
        if (key->pkey) {
            n += deleter_counts;
            n += key->record.type == KeyType::rsa ? openssl_rsa_key_base + key_bits(key->pkey.get()) / 8
                                                  : openssl_ed25519_key;
        }
        if (key->rsa_sha256) n += deleter_counts + openssl_rsa_verify_ctx;
    }
    return n;
}

std::string key_query_name(std::string_view selector, std::string_view domain) {
    std::string n(selector);
    n += "._domainkey.";
    n += domain;
    return n;
}

std::string key_txt_record(std::string_view selector, std::string_view domain, KeyType type,
                           std::string_view public_b64) {
    std::string txt = "v=DKIM1; k=" + std::string(to_string(type)) + "; p=" + std::string(public_b64);
    std::string out = key_query_name(selector, domain) + ". IN TXT (";
    // A character-string holds at most 255 bytes; 250 keeps the lines short.
    for (std::size_t i = 0; i < txt.size(); i += 250) out += " \"" + txt.substr(i, 250) + "\"";
    out += " )";
    return out;
}

KeyOutcome key_from_answer(const dns::Answer& answer) {
    KeyOutcome out;
    out.dnssec = answer.dnssec;
    switch (answer.status) {
        case dns::Status::answer:
            break;
        case dns::Status::nxdomain:
        case dns::Status::nodata:
            out.status = Result::permerror;
            out.detail = "no key record (" + std::string(dns::to_string(answer.status)) + ")";
            return out;
        case dns::Status::malformed:
            out.status = Result::permerror;
            out.detail = "key lookup impossible: " + answer.detail.substr(0, 80);
            return out;
        case dns::Status::servfail:
        case dns::Status::timeout:
            out.status = Result::temperror;
            out.detail = "key lookup " + std::string(dns::to_string(answer.status));
            return out;
    }
    if (answer.records.empty()) {
        out.status = Result::permerror;
        out.detail = "no key record";
        return out;
    }
    // RFC 6376 §3.6.2.2: the strings of one TXT record are concatenated; with several records the
    // first is used.
    auto parsed = parse_key_record(answer.records.front().txt_joined());
    if (!parsed.key) {
        out.status = Result::permerror;
        out.detail = parsed.detail;
        return out;
    }
    auto key = std::make_shared<DkimKey>();
    key->record = std::move(*parsed.key);
    if (!key->record.revoked) {
        auto pk = parse_public_key(key->record.type, key->record.public_key);
        if (!pk.key) {
            out.status = Result::permerror;
            out.detail = "bad key: " + pk.error;
            return out;
        }
        key->pkey = std::shared_ptr<EVP_PKEY>(pk.key.release(), PkeyFree{});
        if (key->record.type == KeyType::rsa) {
            key->rsa_sha256 = std::shared_ptr<EVP_PKEY_CTX>(
                prepare_rsa_verify(key->pkey.get(), HashAlg::sha256).release(), PkeyCtxFree{});
        }
    }
    std::string().swap(key->record.public_key);  // clear() would keep the buffer
    out.status = Result::pass;
    out.key = std::move(key);
    return out;
}

void KeyFetcher::start(const std::string& name) {
    if (pending_.count(name) || done_.count(name)) return;
    if (cache_) {
        if (auto hit = cache_->get_parsed<CachedKey>(name, dns::RrType::txt, cache_tag)) {
            done_[name] = hit->outcome;
            return;
        }
    }
    try {
        pending_.emplace(name, resolver_->lookup(name, dns::RrType::txt));
    } catch (const std::exception& e) {  // a test fake refusing an unexpected query
        done_[name] = KeyOutcome{Result::temperror, nullptr, "key lookup failed"};
    }
}

KeyOutcome KeyFetcher::get(const std::string& name, std::chrono::steady_clock::time_point deadline) {
    if (auto it = done_.find(name); it != done_.end()) return it->second;
    start(name);
    if (auto it = done_.find(name); it != done_.end()) return it->second;
    auto answer = pending_.at(name).wait_until(deadline);
    auto outcome = key_from_answer(answer);
    if (cache_ && outcome.status != Result::temperror) {
        cache_->put_parsed(name, dns::RrType::txt, cache_tag,
                           std::make_shared<const CachedKey>(CachedKey{outcome}), answer.ttl,
                           cached_key_bytes(outcome));
    }
    done_[name] = outcome;
    return outcome;
}

}  // namespace vigil::auth::dkim
