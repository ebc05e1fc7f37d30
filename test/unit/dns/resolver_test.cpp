// The Resolver interface's own rules: name validation, reverse names, names of enum values, and the
// Pending/Promise deadline semantics every implementation relies on.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "dns/resolver.hpp"

using namespace vigil::dns;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

TEST_CASE("dns: query names are normalized to lowercase without the trailing dot", "[dns]") {
    CHECK(normalize_query_name("Example.COM").name == "example.com");
    CHECK(normalize_query_name("example.com.").name == "example.com");
    CHECK(normalize_query_name("_dmarc.example.com").ok());
    CHECK(normalize_query_name("sel._domainkey.example.com").ok());
    CHECK(normalize_query_name("a").ok());
    // SPF macros can put a local part with '@', '+' or '=' into a name; those are printable ASCII.
    CHECK(normalize_query_name("user+tag=x@example.com.spf.example").ok());
}

TEST_CASE("dns: invalid query names are refused with a reason", "[dns]") {
    const std::string label63(63, 'a');
    const std::string label64(64, 'a');
    // 4 labels of 63 + 3 dots = 255 characters; 3 labels of 63 + one of 61 + 3 dots = 253.
    const std::string name253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
    const std::string name254 = name253 + "c";

    CHECK(normalize_query_name(label63 + ".example").ok());
    CHECK_FALSE(normalize_query_name(label64 + ".example").ok());
    CHECK(normalize_query_name(name253).ok());
    CHECK(normalize_query_name(name253 + ".").ok());  // the trailing dot does not count
    CHECK_FALSE(normalize_query_name(name254).ok());

    CHECK_FALSE(normalize_query_name("").ok());
    CHECK_FALSE(normalize_query_name(".").ok());
    CHECK_FALSE(normalize_query_name("example..com").ok());
    CHECK_FALSE(normalize_query_name(".example.com").ok());
    CHECK_FALSE(normalize_query_name("example.com..").ok());
    // A space is a legal octet in a DNS label, and SPF macros produce such names (RFC 7208 suite,
    // macro-mania-in-domain): accepted, and escaped for libunbound by the resolver.
    CHECK(normalize_query_name("ex ample.com").ok());
    CHECK_FALSE(normalize_query_name("ex\\046ample.com").ok());
    CHECK_FALSE(normalize_query_name("b\xc3\xbcro.example").ok());  // UTF-8 must arrive as A-labels
    CHECK_FALSE(normalize_query_name(std::string("a\0b.example", 11)).ok());
    CHECK_FALSE(normalize_query_name("tab\t.example").ok());

    auto bad = normalize_query_name("b\xc3\xbcro.example");
    CHECK(bad.error.find("\\xc3") != std::string::npos);  // the reason is printable
}

TEST_CASE("dns: reverse_name for IPv4 - IPv6 and IPv4-mapped addresses", "[dns]") {
    using vigil::core::IpAddress;
    CHECK(reverse_name(*IpAddress::parse("1.2.3.4")) == "4.3.2.1.in-addr.arpa");
    CHECK(reverse_name(*IpAddress::parse("192.0.2.10")) == "10.2.0.192.in-addr.arpa");
    CHECK(reverse_name(*IpAddress::parse("2001:db8::1")) ==
          "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
    CHECK(reverse_name(*IpAddress::parse("::ffff:192.0.2.1")) == "1.2.0.192.in-addr.arpa");
    CHECK(normalize_query_name(reverse_name(*IpAddress::parse("2001:db8::1"))).ok());
}

TEST_CASE("dns: enum values have stable names", "[dns]") {
    CHECK(to_string(Status::answer) == "answer");
    CHECK(to_string(Status::nxdomain) == "nxdomain");
    CHECK(to_string(Status::nodata) == "nodata");
    CHECK(to_string(Status::servfail) == "servfail");
    CHECK(to_string(Status::timeout) == "timeout");
    CHECK(to_string(Status::malformed) == "malformed");
    CHECK(to_string(Dnssec::insecure) == "insecure");
    CHECK(to_string(Dnssec::secure) == "secure");
    CHECK(to_string(Dnssec::bogus) == "bogus");
    CHECK(to_string(Dnssec::unchecked) == "unchecked");
    CHECK(to_string(RrType::a) == "A");
    CHECK(to_string(RrType::aaaa) == "AAAA");
    CHECK(to_string(RrType::txt) == "TXT");
    CHECK(to_string(RrType::mx) == "MX");
    CHECK(to_string(RrType::ptr) == "PTR");
    CHECK(to_string(static_cast<RrType>(99)) == "UNKNOWN");
    CHECK(is_known_type(RrType::soa));
    CHECK_FALSE(is_known_type(static_cast<RrType>(99)));
}

TEST_CASE("dns: txt_joined concatenates character-strings without separators", "[dns]") {
    Record r;
    r.type = RrType::txt;
    r.txt = {"v=spf1 ", "include:example.com", " -all"};
    CHECK(r.txt_joined() == "v=spf1 include:example.com -all");
    r.txt = {};
    CHECK(r.txt_joined().empty());
}

TEST_CASE("dns: Pending returns timeout when the deadline passes first - the answer later", "[dns]") {
    Promise promise;
    Pending pending = promise.pending();
    CHECK_FALSE(pending.ready());

    const auto start = steady_clock::now();
    Answer early = pending.wait_until(start + milliseconds(50));
    const auto waited = steady_clock::now() - start;
    CHECK(early.status == Status::timeout);
    CHECK(waited >= milliseconds(50));
    CHECK(waited < milliseconds(1000));

    Answer late;
    late.status = Status::answer;
    late.ttl = 60;
    CHECK(promise.complete(late));
    CHECK(pending.ready());
    // A deadline already in the past still returns a ready answer.
    Answer got = pending.wait_until(steady_clock::now() - milliseconds(1));
    CHECK(got.status == Status::answer);
    CHECK(got.ttl == 60);
}

TEST_CASE("dns: the first completion wins", "[dns]") {
    Promise promise;
    CHECK(promise.complete(Answer::failure(Status::timeout, "late")));
    CHECK_FALSE(promise.complete(Answer::failure(Status::nxdomain, "")));
    CHECK(promise.completed());
    CHECK(promise.pending().wait_until(steady_clock::now()).status == Status::timeout);
}

TEST_CASE("dns: a waiter wakes as soon as another thread completes the lookup", "[dns]") {
    Promise promise;
    Pending pending = promise.pending();
    std::thread completer([promise] {
        std::this_thread::sleep_for(milliseconds(20));
        Answer a;
        a.status = Status::nodata;
        promise.complete(a);
    });
    const auto start = steady_clock::now();
    Answer a = pending.wait_until(start + std::chrono::seconds(5));
    const auto waited = steady_clock::now() - start;
    completer.join();
    CHECK(a.status == Status::nodata);
    CHECK(waited < std::chrono::seconds(2));
}

TEST_CASE("dns: on_ready runs once - immediately if ready - otherwise on completion", "[dns]") {
    Promise promise;
    std::atomic<int> calls{0};
    promise.pending().on_ready([&](const Answer& a) {
        CHECK(a.status == Status::servfail);
        ++calls;
    });
    CHECK(calls == 0);
    promise.complete(Answer::failure(Status::servfail, "REFUSED"));
    CHECK(calls == 1);
    promise.complete(Answer::failure(Status::nxdomain, ""));
    CHECK(calls == 1);

    int immediate = 0;
    Pending::of(Answer::failure(Status::nxdomain, "")).on_ready([&](const Answer& a) {
        CHECK(a.status == Status::nxdomain);
        ++immediate;
    });
    CHECK(immediate == 1);
}

TEST_CASE("dns: one shared deadline costs the slowest lookup - not the sum", "[dns]") {
    // The engine's pattern: issue everything, then wait on each with the same stage deadline.
    std::vector<Promise> promises(5);
    std::vector<Pending> pendings;
    for (auto& p : promises) pendings.push_back(p.pending());
    std::vector<std::thread> servers;
    for (std::size_t i = 0; i < promises.size(); ++i) {
        servers.emplace_back([p = promises[i]] {
            std::this_thread::sleep_for(milliseconds(100));
            Answer a;
            a.status = Status::answer;
            p.complete(a);
        });
    }
    const auto start = steady_clock::now();
    const auto deadline = start + std::chrono::seconds(5);
    for (const auto& p : pendings) CHECK(p.wait_until(deadline).status == Status::answer);
    const auto took = steady_clock::now() - start;
    for (auto& t : servers) t.join();
    CHECK(took < milliseconds(400));  // five 100 ms lookups in sequence would take 500 ms
}
