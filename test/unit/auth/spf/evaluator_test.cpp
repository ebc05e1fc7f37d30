#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "auth/spf/evaluator.hpp"
#include "auth/spf/spf_limits.hpp"
#include "dns/cache.hpp"
#include "fakes/fake_resolver.hpp"

using namespace vigil;
using namespace vigil::auth::spf;
using dns::RrType;
using dns::Status;
namespace fake = dns::fake;

namespace {

struct Spf {
    dns::FakeResolver dns;
    Options options;
    std::string ip = "192.0.2.10";
    std::string helo = "mx.sender.example";

    void txt(std::string_view name, std::string record) {
        dns.set_records(name, RrType::txt, {fake::txt(name, {std::move(record)})});
    }
    void a(std::string_view name, std::string_view address) {
        dns.set_records(name, RrType::a, {fake::address(name, address)});
    }
    Outcome check(std::string_view mail_from) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        return evaluate(dns, deadline, *core::IpAddress::parse(ip), mailfrom_identity(mail_from, helo), helo,
                        options);
    }
};

}  // namespace

TEST_CASE("spf eval: pass, fail and the deciding mechanism", "[spf][eval]") {
    Spf s;
    s.txt("example.com", "v=spf1 ip4:192.0.2.0/24 -all");
    auto o = s.check("user@example.com");
    CHECK(o.result == Result::pass);
    CHECK(o.mechanism == "ip4:192.0.2.0/24");

    s.ip = "198.51.100.1";
    o = s.check("user@example.com");
    CHECK(o.result == Result::fail);
    CHECK(o.mechanism == "-all");
    CHECK(o.explanation.empty());
    CHECK(to_json(o, "mailfrom").find("\"result\":\"fail\"") != std::string::npos);
}

TEST_CASE("spf eval: an IPv4-mapped IPv6 client is checked as IPv4", "[spf][eval]") {
    Spf s;
    s.ip = "::ffff:192.0.2.10";
    s.txt("example.com", "v=spf1 ip4:192.0.2.10 -all");
    CHECK(s.check("user@example.com").result == Result::pass);
}

TEST_CASE("spf eval: explanations only on fail and only when configured", "[spf][eval]") {
    Spf s;
    s.ip = "198.51.100.1";
    s.txt("example.com", "v=spf1 -all exp=why.example.com");
    CHECK(s.check("user@example.com").explanation.empty());  // not configured: not even asked
    CHECK_FALSE(s.dns.was_queried("why.example.com", RrType::txt));

    s.options.fetch_explanation = true;
    s.txt("why.example.com", "%{i} may not send for %{d}");
    auto o = s.check("user@example.com");
    CHECK(o.explanation == "198.51.100.1 may not send for example.com");

    // An explanation with bytes outside printable ASCII is dropped, not passed on.
    s.txt("why.example.com", "bad \x01 text");
    CHECK(s.check("user@example.com").explanation.empty());
}

TEST_CASE("spf eval: none for missing records and uncheckable domains", "[spf][eval]") {
    Spf s;
    s.dns.set_status("nothing.example", RrType::txt, Status::nxdomain);
    CHECK(s.check("a@nothing.example").result == Result::none);
    s.dns.set_records("other.example", RrType::txt,
                      {fake::txt("other.example", {"google-site-verification=x"})});
    CHECK(s.check("a@other.example").result == Result::none);
    CHECK(s.check("a@[192.0.2.1]").result == Result::none);
    CHECK(s.check("a@localhost").result == Result::none);
    CHECK(s.check(std::string("a@") + std::string(64, 'x') + ".example").result == Result::none);
    CHECK(s.dns.queries().size() == 2);  // the uncheckable ones caused no lookup
}

TEST_CASE("spf eval: temperror and permerror stay apart", "[spf][eval]") {
    Spf s;
    s.dns.set_status("slow.example", RrType::txt, Status::timeout);
    auto o = s.check("a@slow.example");
    CHECK(o.result == Result::temperror);
    CHECK(o.problem.find("timeout") != std::string::npos);

    s.dns.set_status("broken.example", RrType::txt, Status::servfail);
    CHECK(s.check("a@broken.example").result == Result::temperror);

    s.dns.set_records("two.example", RrType::txt,
                      {fake::txt("two.example", {"v=spf1 -all"}), fake::txt("two.example", {"v=spf1 +all"})});
    CHECK(s.check("a@two.example").result == Result::permerror);

    s.txt("syntax.example", "v=spf1 a:museum -all");
    CHECK(s.check("a@syntax.example").result == Result::permerror);

    s.txt("atime.example", "v=spf1 a:host.atime.example -all");
    s.dns.set_status("host.atime.example", RrType::a, Status::timeout);
    CHECK(s.check("a@atime.example").result == Result::temperror);
}

TEST_CASE("spf eval: include semantics", "[spf][eval]") {
    Spf s;
    s.txt("example.com", "v=spf1 include:_spf.example.net -all");
    s.txt("_spf.example.net", "v=spf1 ip4:192.0.2.0/24 -all");
    CHECK(s.check("a@example.com").result == Result::pass);
    s.ip = "198.51.100.1";
    auto o = s.check("a@example.com");
    CHECK(o.result == Result::fail);  // the included -all does not match, the outer one does
    CHECK(o.mechanism == "-all");

    s.txt("norecord.example", "v=spf1 include:missing.example -all");
    s.dns.set_status("missing.example", RrType::txt, Status::nxdomain);
    CHECK(s.check("a@norecord.example").result == Result::permerror);
}

TEST_CASE("spf eval: include loops end in permerror within the lookup limit", "[spf][eval][malformed]") {
    Spf s;
    s.txt("loop.example", "v=spf1 include:loop.example -all");
    auto o = s.check("a@loop.example");
    CHECK(o.result == Result::permerror);
    CHECK(o.dns_terms == limits::max_dns_terms + 1);
    CHECK(s.dns.count("loop.example", RrType::txt) == limits::max_dns_terms + 1);

    s.txt("r.example", "v=spf1 redirect=r.example");
    CHECK(s.check("a@r.example").result == Result::permerror);
}

TEST_CASE("spf eval: 10 DNS terms are fine, 11 are a permerror", "[spf][eval]") {
    Spf s;
    s.ip = "198.51.100.1";
    std::string ten = "v=spf1", eleven = "v=spf1";
    for (int i = 0; i < 10; ++i) {
        auto host = "h" + std::to_string(i) + ".example";
        s.a(host, "192.0.2.1");
        ten += " a:" + host;
        eleven += " a:" + host;
    }
    eleven += " a:h10.example";
    s.a("h10.example", "192.0.2.1");
    s.txt("ten.example", ten + " -all");
    s.txt("eleven.example", eleven + " -all");
    CHECK(s.check("a@ten.example").result == Result::fail);
    auto o = s.check("a@eleven.example");
    CHECK(o.result == Result::permerror);
    CHECK_FALSE(s.dns.was_queried("h10.example", RrType::a));  // never asked once over the limit
}

TEST_CASE("spf eval: more than two void lookups are a permerror", "[spf][eval]") {
    Spf s;
    for (auto n : {"v1.example", "v2.example", "v3.example"})
        s.dns.set_status(n, RrType::a, Status::nxdomain);
    s.txt("two.example", "v=spf1 a:v1.example a:v2.example ?all");
    s.txt("three.example", "v=spf1 a:v1.example a:v2.example a:v3.example ?all");
    CHECK(s.check("a@two.example").result == Result::neutral);
    CHECK(s.check("a@three.example").result == Result::permerror);
}

TEST_CASE("spf eval: the A lookups of MX hosts run in parallel", "[spf][eval]") {
    Spf s;
    s.txt("example.com", "v=spf1 mx -all");
    s.dns.set_records(
        "example.com", RrType::mx,
        {fake::mx("example.com", 10, "mx1.example.com"), fake::mx("example.com", 20, "mx2.example.com")});
    s.a("mx1.example.com", "198.51.100.1");
    s.a("mx2.example.com", "192.0.2.10");
    s.dns.hold("mx1.example.com", RrType::a);
    std::atomic<bool> both_issued{false};
    std::thread server([&] {
        auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (!s.dns.was_queried("mx2.example.com", RrType::a) &&
               std::chrono::steady_clock::now() < give_up) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        both_issued = s.dns.was_queried("mx2.example.com", RrType::a);
        s.dns.release("mx1.example.com", RrType::a);
    });
    auto o = s.check("a@example.com");
    server.join();
    CHECK(both_issued);
    CHECK(o.result == Result::pass);
    CHECK(o.mechanism == "mx");
}

TEST_CASE("spf eval: more than 10 MX names is a permerror; PTR names past 10 are ignored", "[spf][eval]") {
    Spf s;
    std::vector<dns::Record> mx;
    for (int i = 0; i < 11; ++i)
        mx.push_back(fake::mx("many.example", 10, "mx" + std::to_string(i) + ".many.example"));
    s.dns.set_records("many.example", RrType::mx, mx);
    s.txt("many.example", "v=spf1 mx -all");
    CHECK(s.check("a@many.example").result == Result::permerror);

    std::vector<dns::Record> ptr;
    const std::string rev = "10.2.0.192.in-addr.arpa";
    for (int i = 0; i < 12; ++i) ptr.push_back(fake::ptr(rev, "h" + std::to_string(i) + ".ptr.example"));
    s.dns.set_records(rev, RrType::ptr, ptr);
    for (int i = 0; i < 10; ++i)
        s.dns.set_status("h" + std::to_string(i) + ".ptr.example", RrType::a, Status::nxdomain);
    s.txt("ptr.example", "v=spf1 ptr -all");
    auto o = s.check("a@ptr.example");
    CHECK(o.result == Result::fail);
    CHECK_FALSE(s.dns.was_queried("h10.ptr.example", RrType::a));
    CHECK(s.dns.unexpected().empty());
}

TEST_CASE("spf eval: the null sender checks postmaster@HELO", "[spf][eval]") {
    Spf s;
    s.txt("mx.sender.example", "v=spf1 exists:%{l}.%{d} -all");
    s.a("postmaster.mx.sender.example", "127.0.0.2");
    auto o = s.check("");
    CHECK(o.result == Result::pass);
    CHECK(o.domain == "mx.sender.example");
}

TEST_CASE("spf eval: hostile records end within the limits", "[spf][eval][malformed]") {
    Spf s;
    std::string thousands = "v=spf1";
    for (int i = 0; i < 2000; ++i) thousands += " ?a";
    s.txt("many.example", thousands);
    CHECK(s.check("a@many.example").result == Result::permerror);  // over max_terms: not even started

    std::string macros = "v=spf1 exists:";
    while (macros.size() < 450) macros += "%{s}";
    macros += ".example.com -all";
    s.txt("macro.example", macros);
    auto o = s.check(std::string(300, 'l') + "@macro.example");
    CHECK(o.result == Result::permerror);

    std::string nul = "v=spf1 ip4:192.0.2.10";
    nul += '\0';
    s.txt("nul.example", nul + " -all");
    CHECK(s.check("a@nul.example").result == Result::permerror);
    s.txt("eight.example", "v=spf1 \xc3\xa9 -all");
    CHECK(s.check("a@eight.example").result == Result::permerror);
    CHECK(s.dns.unexpected().empty());
}

TEST_CASE("spf eval: parsed records are reused from the cache only while the text is the same",
          "[spf][eval]") {
    auto upstream = std::make_shared<dns::FakeResolver>();
    upstream->set_records("example.com", RrType::txt,
                          {fake::txt("example.com", {"v=spf1 ip4:192.0.2.0/24 -all"})});
    struct Clock final : core::Clock {
        std::chrono::system_clock::time_point now() const override { return {}; }
        std::chrono::steady_clock::time_point monotonic() const override { return t; }
        std::chrono::steady_clock::time_point t{std::chrono::seconds(100)};
    } clock;
    dns::CachingResolver cache(upstream, clock);
    Options opt;
    opt.parsed_cache = &cache;
    auto ip = *core::IpAddress::parse("192.0.2.10");
    auto id = mailfrom_identity("a@example.com", "h.example");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    CHECK(evaluate(cache, deadline, ip, id, "h.example", opt).result == Result::pass);
    CHECK(evaluate(cache, deadline, ip, id, "h.example", opt).result == Result::pass);
    CHECK(cache.stats().parsed_hits == 1);

    // After the TTL the answer is fetched again; a changed record is parsed afresh.
    upstream->set_records("example.com", RrType::txt, {fake::txt("example.com", {"v=spf1 -all"})});
    clock.t += std::chrono::seconds(301);
    CHECK(evaluate(cache, deadline, ip, id, "h.example", opt).result == Result::fail);
}

namespace {

// Answers every query: TXT from a fixed record per name (the same mutated record everywhere, so
// includes and redirects recurse into it), A/MX/PTR with a few records.
class EchoResolver final : public dns::Resolver {
  public:
    std::string record;
    std::size_t lookups = 0;
    dns::Pending lookup(std::string_view name, RrType type) override {
        ++lookups;
        auto q = dns::normalize_query_name(name);
        if (!q.ok()) return dns::Pending::of(dns::Answer::failure(Status::malformed, q.error));
        dns::Answer a;
        a.status = Status::answer;
        a.ttl = 60;
        switch (type) {
            case RrType::txt:
                a.records.push_back(fake::txt(q.name, {record}));
                break;
            case RrType::a:
                a.records.push_back(fake::address(q.name, "192.0.2.1"));
                break;
            case RrType::aaaa:
                a.records.push_back(fake::address(q.name, "2001:db8::1"));
                break;
            case RrType::mx:
                a.records.push_back(fake::mx(q.name, 10, "mx." + q.name.substr(0, 200)));
                break;
            case RrType::ptr:
                a.records.push_back(fake::ptr(q.name, "ptr.example.com"));
                break;
            default:
                return dns::Pending::of(dns::Answer::failure(Status::nodata, ""));
        }
        return dns::Pending::of(a);
    }
};

}  // namespace

TEST_CASE("spf eval: mutated records never crash and never exceed the limits", "[spf][eval][malformed]") {
    const std::string seeds[] = {
        "v=spf1 a mx ptr include:%{d} exists:%{ir}.%{l}.%{o}.x.example redirect=%{d2} exp=%{h}",
        "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a:%{d}/24//64 mx:%{d}/16 -all",
        "v=spf1 include:a.example include:b.example ~all exp=%{p}.example",
    };
    const char alphabet[] = "v=spf1 :%{}/.-+~?_aimxpdlorshtcv0123456789\x00\x80\xff";
    std::uint32_t rng = 12345;
    auto next = [&] { return rng = rng * 1103515245u + 12345u; };
    EchoResolver dns;
    Options opt;
    opt.fetch_explanation = true;
    for (int i = 0; i < 3000; ++i) {
        std::string r = seeds[i % 3];
        int edits = 1 + static_cast<int>(next() % 8);
        for (int e = 0; e < edits; ++e) {
            auto pos = next() % (r.size() + 1);
            auto c = alphabet[next() % (sizeof alphabet - 1)];
            switch (next() % 3) {
                case 0:
                    r.insert(r.begin() + static_cast<long>(pos), c);
                    break;
                case 1:
                    if (pos < r.size()) r.erase(pos, 1);
                    break;
                default:
                    if (pos < r.size()) r[pos] = c;
            }
        }
        dns.record = r;
        dns.lookups = 0;
        auto ip = *core::IpAddress::parse(i % 2 ? "192.0.2.1" : "2001:db8::1");
        auto o = evaluate(dns, std::chrono::steady_clock::now() + std::chrono::seconds(1), ip,
                          mailfrom_identity("l@example.com", "h.example"), "h.example", opt);
        INFO(r);
        CHECK(o.dns_terms <= limits::max_dns_terms + 1);
        // Per term at most one MX/A query plus its 10 hosts, plus PTR validation and exp once.
        CHECK(dns.lookups <=
              (limits::max_dns_terms + 2) * (limits::max_mx_names + 2) + limits::max_ptr_names + 4);
        CHECK(o.problem.size() < 1024);
    }
}
