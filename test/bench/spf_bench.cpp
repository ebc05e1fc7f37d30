// SPF evaluation cost with a warm cache: the real evaluator (auth::spf::evaluate) on the real
// CachingResolver, whose upstream is a FakeResolver holding a typical include chain. Not a test.
//
//   vigil-spf-bench [ITERATIONS]
//
// Prints microseconds per evaluation for a few client IPs: one matched in a nested include, one
// matched by the MX hosts' addresses, one that falls through everything to -all.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "auth/spf/evaluator.hpp"
#include "core/clock.hpp"
#include "dns/cache.hpp"
#include "fakes/fake_resolver.hpp"

using namespace vigil;
using dns::RrType;
namespace fake = dns::fake;

namespace {

void txt(dns::FakeResolver& f, std::string_view name, std::string record) {
    f.set_records(name, RrType::txt, {fake::txt(name, {std::move(record)})}, 3600);
}

// example.com -> mx, include:_spf.example.com (-> include:_netblocks.example.com),
// include:spf.mailhost.example (-> include:_v4.mailhost.example, include:_v6.mailhost.example).
std::shared_ptr<dns::FakeResolver> zone() {
    auto f = std::make_shared<dns::FakeResolver>();
    txt(*f, "example.com", "v=spf1 mx include:_spf.example.com include:spf.mailhost.example -all");
    f->set_records(
        "example.com", RrType::mx,
        {fake::mx("example.com", 10, "mx1.example.com"), fake::mx("example.com", 20, "mx2.example.com")},
        3600);
    f->set_records("mx1.example.com", RrType::a, {fake::address("mx1.example.com", "198.51.100.10")}, 3600);
    f->set_records("mx2.example.com", RrType::a, {fake::address("mx2.example.com", "198.51.100.20")}, 3600);
    f->set_status("mx1.example.com", RrType::aaaa, dns::Status::nodata, 3600);
    f->set_status("mx2.example.com", RrType::aaaa, dns::Status::nodata, 3600);
    txt(*f, "_spf.example.com",
        "v=spf1 ip4:192.0.2.0/26 ip4:192.0.2.128/26 include:_netblocks.example.com ~all");
    txt(*f, "_netblocks.example.com",
        "v=spf1 ip4:203.0.113.0/28 ip4:203.0.113.32/28 ip4:203.0.113.64/28 ip6:2001:db8:1::/48 ~all");
    txt(*f, "spf.mailhost.example", "v=spf1 include:_v4.mailhost.example include:_v6.mailhost.example ~all");
    txt(*f, "_v4.mailhost.example",
        "v=spf1 ip4:100.64.0.0/16 ip4:100.65.0.0/16 ip4:100.66.0.0/16 ip4:100.67.0.0/16 ip4:100.68.0.0/16 "
        "ip4:100.69.0.0/16 ip4:100.70.0.0/16 ip4:100.71.0.0/16 ~all");
    txt(*f, "_v6.mailhost.example", "v=spf1 ip6:2001:db8:100::/40 ip6:2001:db8:200::/40 ~all");
    return f;
}

}  // namespace

int main(int argc, char** argv) {
    long iterations = argc > 1 ? std::atol(argv[1]) : 200000;
    if (iterations <= 0) iterations = 200000;
    auto upstream = zone();
    dns::CachingResolver cache(upstream, core::SystemClock::instance());
    auth::spf::Options opt;
    opt.parsed_cache = &cache;  // as the milter and `vigil spf` run it
    auto identity = auth::spf::mailfrom_identity("user@example.com", "mx.client.example");
    struct Case {
        const char* what;
        const char* ip;
    } cases[] = {
        {"pass in a nested include (_netblocks)", "203.0.113.70"},
        {"pass by mx", "198.51.100.20"},
        {"pass in the last include (_v6)", "2001:db8:200::1"},
        {"fail: every term, then -all", "198.18.0.1"},
    };
    std::printf("SPF evaluation with a warm cache, %ld iterations each\n", iterations);
    for (const auto& c : cases) {
        auto ip = *core::IpAddress::parse(c.ip);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::hours(1);
        auto warm = auth::spf::evaluate(cache, deadline, ip, identity, "mx.client.example", opt);
        auto start = std::chrono::steady_clock::now();
        std::size_t queries = 0;
        for (long i = 0; i < iterations; ++i) {
            auto o = auth::spf::evaluate(cache, deadline, ip, identity, "mx.client.example", opt);
            queries += o.queries;
            if (o.result != warm.result) return 1;
        }
        auto us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
        std::printf("  %-42s %-9s %5.2f us/evaluation (%zu lookups each, %zu DNS terms)\n", c.what,
                    std::string(auth::spf::to_string(warm.result)).c_str(),
                    us / static_cast<double>(iterations), queries / static_cast<std::size_t>(iterations),
                    warm.dns_terms);
    }
    auto stats = cache.stats();
    std::printf("cache: %llu hits, %llu misses\n", static_cast<unsigned long long>(stats.hits),
                static_cast<unsigned long long>(stats.misses));
    return 0;
}
