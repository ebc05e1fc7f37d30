// UnboundResolver without a DNS server: address parsing, start-up errors, the no-I/O paths, and the
// query timeout against a loopback socket that swallows every query. Answers from a real server are
// covered by test/integration/dns_resolver.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>

#include "dns/unbound_resolver.hpp"

using namespace vigil::dns;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

// A UDP socket on 127.0.0.1 that is never read: queries sent to it are never answered.
class BlackHole {
  public:
    BlackHole() {
        fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        socklen_t len = sizeof addr;
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
        port_ = ntohs(addr.sin_port);
    }
    ~BlackHole() { ::close(fd_); }
    BlackHole(const BlackHole&) = delete;
    BlackHole& operator=(const BlackHole&) = delete;
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  private:
    int fd_ = -1;
    unsigned port_ = 0;
};

UnboundResolver::Options single(const std::string& server, milliseconds timeout = milliseconds(2000)) {
    UnboundResolver::Options o;
    o.mode = UnboundResolver::Options::Mode::single_server;
    o.single_server = server;
    o.query_timeout = timeout;
    return o;
}

}  // namespace

TEST_CASE("dns unbound: server addresses are turned into libunbound's IP@PORT form", "[dns]") {
    CHECK(unbound_server_address("127.0.0.1:5353") == "127.0.0.1@5353");
    CHECK(unbound_server_address("127.0.0.1@5353") == "127.0.0.1@5353");
    CHECK(unbound_server_address("192.0.2.1") == "192.0.2.1");
    CHECK(unbound_server_address("[::1]:5353") == "::1@5353");
    CHECK(unbound_server_address("[::1]") == "::1");
    CHECK(unbound_server_address("::1") == "::1");
    CHECK(unbound_server_address("2001:db8::53@53") == "2001:db8::53@53");

    CHECK_FALSE(unbound_server_address(""));
    CHECK_FALSE(unbound_server_address("dns.example:53"));  // no host names: no resolver to resolve them
    CHECK_FALSE(unbound_server_address("127.0.0.1:"));
    CHECK_FALSE(unbound_server_address("127.0.0.1:0"));
    CHECK_FALSE(unbound_server_address("127.0.0.1:65536"));
    CHECK_FALSE(unbound_server_address("127.0.0.1:53x"));
    CHECK_FALSE(unbound_server_address("[::1]5353"));
    CHECK_FALSE(unbound_server_address("[::1"));
    CHECK_FALSE(unbound_server_address("[[::1]]:53"));
}

TEST_CASE("dns unbound: bad options fail at start-up", "[dns]") {
    CHECK_THROWS_AS(UnboundResolver(single("not-an-address")), std::runtime_error);
    CHECK_THROWS_AS(UnboundResolver(single("")), std::runtime_error);
    CHECK_THROWS_AS(UnboundResolver(single("127.0.0.1:53", milliseconds(0))), std::runtime_error);
    CHECK_THROWS_AS(UnboundResolver(single("127.0.0.1:53", limits::max_query_timeout + milliseconds(1))),
                    std::runtime_error);

    UnboundResolver::Options fwd;
    fwd.mode = UnboundResolver::Options::Mode::forward;
    fwd.forwarders = {"127.0.0.1@53", "bogus"};
    CHECK_THROWS_AS(UnboundResolver(fwd), std::runtime_error);

    UnboundResolver::Options rec;
    rec.trust_anchor_file = "/nonexistent/root.key";
    CHECK_THROWS_AS(UnboundResolver(rec), std::runtime_error);
}

TEST_CASE("dns unbound: a validating recursive resolver starts and stops without queries", "[dns]") {
    UnboundResolver::Options rec;  // defaults: recursive, DNSSEC with /usr/share/dns/root.key
    UnboundResolver resolver(rec);
    CHECK(resolver.stats().queries == 0);
}

TEST_CASE("dns unbound: invalid names are answered malformed without I/O", "[dns]") {
    BlackHole hole;
    UnboundResolver resolver(single(hole.address()));
    Pending p = resolver.lookup("bad..name", RrType::a);
    CHECK(p.ready());
    CHECK(p.wait_until(steady_clock::now()).status == Status::malformed);
    CHECK(resolver.lookup(std::string(254, 'a'), RrType::a).ready());
    CHECK(resolver.lookup("ok.example", static_cast<RrType>(99)).wait_until(steady_clock::now()).status ==
          Status::malformed);
    CHECK(resolver.stats().queries == 0);
}

TEST_CASE("dns unbound: a server that never answers gives timeout - at the deadline or query timeout",
          "[dns]") {
    BlackHole hole;
    UnboundResolver resolver(single(hole.address(), milliseconds(300)));

    // The caller's deadline comes first: timeout at the deadline, the lookup goes on.
    auto start = steady_clock::now();
    Pending p = resolver.lookup("never.example", RrType::a);
    Answer early = p.wait_until(start + milliseconds(100));
    auto took = steady_clock::now() - start;
    CHECK(early.status == Status::timeout);
    CHECK(took >= milliseconds(100));
    CHECK(took < milliseconds(250));

    // The resolver's query timeout completes the lookup itself.
    Answer late = p.wait_until(start + milliseconds(3000));
    took = steady_clock::now() - start;
    CHECK(late.status == Status::timeout);
    CHECK(took >= milliseconds(300));
    CHECK(took < milliseconds(1000));
    CHECK(p.ready());
    auto s = resolver.stats();
    CHECK(s.queries == 1);
    CHECK(s.timeouts == 1);
}

TEST_CASE("dns unbound: destroying the resolver completes lookups still in flight", "[dns]") {
    BlackHole hole;
    std::optional<Pending> p;
    {
        UnboundResolver resolver(single(hole.address(), milliseconds(10000)));
        p.emplace(resolver.lookup("inflight.example", RrType::txt));
        CHECK_FALSE(p->ready());
    }
    REQUIRE(p->ready());
    Answer a = p->wait_until(steady_clock::now());
    CHECK(a.status == Status::servfail);
    CHECK(a.detail == "resolver shut down");
}

TEST_CASE("dns unbound: an unparsable trust anchor fails at start-up, not at the first query", "[dns]") {
    char path[] = "/tmp/vigil-bad-anchor.XXXXXX";
    int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    const std::string garbage = ". IN DS not a key\n";
    REQUIRE(::write(fd, garbage.data(), garbage.size()) == static_cast<ssize_t>(garbage.size()));
    ::close(fd);
    UnboundResolver::Options rec;
    rec.trust_anchor_file = path;
    CHECK_THROWS_AS(UnboundResolver(rec), std::runtime_error);
    ::unlink(path);
}
