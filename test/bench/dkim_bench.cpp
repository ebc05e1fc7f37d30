// DKIM microbenchmark: CPU µs per verification of a 4 KiB message (RSA-2048 and Ed25519, key from
// the parsed-key cache), µs to parse a key record (what the cache saves), and body hashing MB/s.
//   build-dkim/test/bench/vigil-dkim-bench [iterations [verify-only]]
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "auth/dkim/keys.hpp"
#include "auth/dkim/sign.hpp"
#include "auth/dkim/verify.hpp"
#include "core/clock.hpp"
#include "core/message.hpp"
#include "dns/cache.hpp"
#include "fakes/fake_resolver.hpp"

using namespace vigil::auth::dkim;

namespace {

double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::string make_message() {
    std::string m =
        "Received: from mail.example.com (mail.example.com [192.0.2.1]) by mx.example.net\r\n"
        "From: Joe <joe@example.com>\r\nTo: Suzie <suzie@example.net>\r\nSubject: benchmark message\r\n"
        "Date: Fri, 11 Jul 2003 21:00:37 -0700\r\nMessage-ID: <1@example.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n";
    while (m.size() < 4096) m += "The quick brown fox jumps over the lazy dog, again and again.  \r\n";
    return m.substr(0, 4094) + "\r\n";
}

struct Bench {
    std::shared_ptr<SigningKey> key;
    std::string record;
};

Bench make(KeyType t) {
    auto g = generate_key(t, 2048);
    auto p = parse_private_key(g.private_pem);
    Bench b;
    b.key = std::make_shared<SigningKey>();
    b.key->domain = "example.com";
    b.key->selector = t == KeyType::rsa ? "rsa" : "ed";
    b.key->type = p.type;
    b.key->key = std::shared_ptr<EVP_PKEY>(p.key.release(), PkeyFree{});
    b.record = std::string("v=DKIM1; k=") + (t == KeyType::rsa ? "rsa" : "ed25519") + "; p=" + g.public_b64;
    return b;
}

}  // namespace

int main(int argc, char** argv) {
    int iterations = argc > 1 ? std::atoi(argv[1]) : 20000;
    auto raw = make_message();
    auto fake = std::make_shared<vigil::dns::FakeResolver>();
    const auto& clock = vigil::core::SystemClock::instance();
    vigil::dns::CachingResolver cache(fake, clock);

    for (auto t : {KeyType::rsa, KeyType::ed25519}) {
        auto b = make(t);
        auto name = key_query_name(b.key->selector, "example.com");
        vigil::dns::Record rec;
        rec.type = vigil::dns::RrType::txt;
        rec.name = name;
        rec.txt = {b.record.substr(0, 255)};
        if (b.record.size() > 255) rec.txt.push_back(b.record.substr(255));
        fake->set_records(name, vigil::dns::RrType::txt, {rec}, 3600);

        auto parsed = vigil::core::parse_message(raw);
        SignParams sp;
        sp.timestamp = 1'700'000'000;
        Signer signer({b.key}, sp);
        signer.body(parsed.body);
        auto sig = signer.finish(header_refs(parsed.headers));
        auto msg = vigil::core::parse_message("DKIM-Signature:" + sig.values.at(0) + "\r\n" + raw);
        auto refs = header_refs(msg.headers);

        // Key parse cost (uncached).
        vigil::dns::Answer ans;
        ans.status = vigil::dns::Status::answer;
        ans.records.push_back(rec);
        int parse_n = iterations / 10 + 1;
        double t0 = cpu_seconds();
        for (int i = 0; i < parse_n; ++i) (void)key_from_answer(ans);
        double parse_us = (cpu_seconds() - t0) / parse_n * 1e6;

        // Besides the average, the fastest batch of 20: on a shared VM other workers' load inflates the
        // average (cache and CPU contention show up as our CPU time); the fastest batch is what one
        // verification costs when nothing disturbs it.
        constexpr int batch = 20;
        double best_batch = 1e9;
        double batch_t0 = cpu_seconds();
        int passed = 0;
        t0 = cpu_seconds();
        for (int i = 0; i < iterations; ++i) {
            if (i % batch == 0 && i > 0) {
                double now = cpu_seconds();
                best_batch = std::min(best_batch, now - batch_t0);
                batch_t0 = now;
            }
            Verifier v;
            v.begin(refs, 1'700'000'000);
            v.body(msg.body);
            KeyFetcher f(cache, &cache);
            auto rs = v.finish(refs, [&](const std::string& n) {
                return f.get(n, std::chrono::steady_clock::now() + std::chrono::seconds(1));
            });
            passed += rs.at(0).result == Result::pass;
        }
        double us = (cpu_seconds() - t0) / iterations * 1e6;
        std::printf(
            "%-8s verify 4 KiB message, cached key: %7.1f us CPU/message (%d/%d pass); key record parse: "
            "%7.1f us\n",
            t == KeyType::rsa ? "RSA-2048" : "Ed25519", us, passed, iterations, parse_us);
        if (iterations >= 2 * batch) {
            std::printf("%-8s   fastest batch of %d verifications: %7.1f us CPU/message\n", "", batch,
                        best_batch / batch * 1e6);
        }

        // What that is made of: the body hash of this message, and the bare signature check
        // (no DKIM around it) with the same key, prepared the way the cache prepares it.
        t0 = cpu_seconds();
        for (int i = 0; i < iterations; ++i) {
            BodyHashes h;
            h.register_need(Canon::relaxed, HashAlg::sha256, std::nullopt);
            h.feed(msg.body);
            h.finish();
        }
        double body_us = (cpu_seconds() - t0) / iterations * 1e6;
        auto hash = digest(HashAlg::sha256, "header data stands in here");
        auto raw_sig = sign_hash(b.key->key.get(), t, HashAlg::sha256, hash).value();
        auto prepared =
            t == KeyType::rsa ? prepare_rsa_verify(b.key->key.get(), HashAlg::sha256) : PkeyCtxPtr{};
        int ok = 0;
        t0 = cpu_seconds();
        for (int i = 0; i < iterations; ++i) {
            ok += t == KeyType::rsa ? verify_prepared(prepared.get(), hash, raw_sig)
                                    : verify_hash(b.key->key.get(), t, HashAlg::sha256, hash, raw_sig);
        }
        double crypto_us = (cpu_seconds() - t0) / iterations * 1e6;
        std::printf(
            "%-8s   of which: body canonicalise+hash %5.1f us, signature check alone %5.1f us (%d/%d), "
            "the rest (parse, headers, key cache) %5.1f us\n",
            "", body_us, crypto_us, ok, iterations, us - body_us - crypto_us);
    }
    std::printf("cache: %llu parsed-key hits, %llu misses, upstream queries %zu\n",
                static_cast<unsigned long long>(cache.stats().parsed_hits),
                static_cast<unsigned long long>(cache.stats().parsed_misses), fake->queries().size());

    if (argc > 2 && std::string(argv[2]) == "verify-only") return 0;
    // Body hashing throughput, 64 KiB chunks as the milter hands them.
    std::string chunk;
    while (chunk.size() < 65535)
        chunk += "Lorem ipsum dolor sit amet,  consectetur \tadipiscing elit. 0123456789\r\n";
    chunk.resize(65535);
    const std::size_t total = 256u << 20;
    for (auto c : {Canon::simple, Canon::relaxed}) {
        BodyHashes h;
        h.register_need(c, HashAlg::sha256, std::nullopt);
        double t0 = cpu_seconds();
        for (std::size_t done = 0; done < total; done += chunk.size()) h.feed(chunk);
        h.finish();
        double s = cpu_seconds() - t0;
        std::printf("body hash c=%-7s sha256: %7.0f MB/s\n", std::string(to_string(c)).c_str(),
                    total / s / 1e6);
    }
    return 0;
}
