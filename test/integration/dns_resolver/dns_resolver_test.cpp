// UnboundResolver in single-server mode against vigil-test-dns on 127.0.0.1, over real UDP and TCP.
//
//   vigil-dns-resolver-test PATH/TO/vigil-test-dns
//
// Writes its zone files to a temporary directory, starts the server (twice: once with fault
// injection on chosen names, once with every answer delayed), prints what each check saw, and exits
// non-zero if any check failed. Nothing leaves 127.0.0.0/8.
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/printable.hpp"
#include "dns/cache.hpp"
#include "dns/dns_limits.hpp"
#include "dns/unbound_resolver.hpp"

extern char** environ;

namespace {

using namespace vigil::dns;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long the server may take to print its port before the test gives up.
constexpr milliseconds server_start_limit{10000};
// The lookup budget the timeout checks give, and the slack allowed over it for scheduling.
constexpr milliseconds stage_deadline{300};
constexpr milliseconds deadline_slack{100};
// The delayed server's per-answer delay, and how many lookups run through it at once.
constexpr milliseconds server_delay{200};
constexpr int parallel_lookups = 6;
// A bigger stage: more than libunbound's default of 16 outstanding upstream queries.
constexpr int wide_stage_lookups = 40;
// The resolver's own query timeout: longer than any stage deadline, short enough to keep the test quick.
constexpr milliseconds query_timeout{1500};
// Generous bound for checks that expect an answer.
constexpr milliseconds answer_deadline{5000};

const char* const zone_example = R"($ORIGIN example.test.
$TTL 300
@         IN SOA ns hostmaster 1 3600 600 86400 120
@         IN NS  ns
ns        IN A   127.0.0.1
@         IN MX  10 mx1
@         IN MX  20 MX2.Example.Test.
mx1       IN A   192.0.2.21
mx2       IN A   192.0.2.22
host 3600 IN A   192.0.2.10
host      IN AAAA 2001:db8::10
alias     IN CNAME host
spf       IN TXT "v=spf1 ip4:192.0.2.0/24" " include:_spf.example.test" " -all"
sel._domainkey IN TXT "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC"
servfail  IN A   192.0.2.1
refused   IN A   192.0.2.1
timeout   IN A   192.0.2.1
wrongid   IN A   192.0.2.99
malformed IN TXT "this reply is cut short"
absurd    IN A   192.0.2.30
msb       IN A   192.0.2.31
null      IN MX  0 .
*.wild    IN A   192.0.2.77
)";

const char* const zone_reverse = R"($ORIGIN 2.0.192.in-addr.arpa.
$TTL 600
@   IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 60
@   IN NS  ns.example.test.
10  IN PTR host.example.test.
)";

struct Failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

int failures = 0;
int passes = 0;

void check(bool ok, const std::string& what) {
    std::printf("  %s %s\n", ok ? "ok  " : "FAIL", what.c_str());
    if (ok) {
        ++passes;
    } else {
        ++failures;
    }
}

std::string describe(const Answer& a) {
    std::string out = fmt::format("{} ttl={} dnssec={}", to_string(a.status), a.ttl, to_string(a.dnssec));
    for (const auto& r : a.records) {
        out += fmt::format(" [{} {}", r.name, to_string(r.type));
        if (r.address) out += " " + r.address->to_string();
        if (r.type == RrType::mx) out += fmt::format(" {}", r.preference);
        if (!r.target.empty() || r.type == RrType::mx) out += " " + (r.target.empty() ? "." : r.target);
        for (const auto& s : r.txt) out += " \"" + vigil::core::printable(s, 80) + "\"";
        out += "]";
        if (out.size() > 400) {
            out += " ...";
            break;
        }
    }
    if (!a.detail.empty()) out += " (" + a.detail + ")";
    return out;
}

// One vigil-test-dns process, started by us and stopped by its pid.
class TestServer {
  public:
    TestServer(const std::string& binary, const std::vector<std::string>& args) {
        int out[2];
        if (::pipe(out) != 0) throw Failure("pipe failed");
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
        posix_spawn_file_actions_addclose(&actions, out[0]);
        std::vector<std::string> all{binary};
        all.insert(all.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : all) argv.push_back(a.data());
        argv.push_back(nullptr);
        int rc = posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        ::close(out[1]);
        if (rc != 0) {
            ::close(out[0]);
            throw Failure(fmt::format("cannot start {}: {}", binary, std::strerror(rc)));
        }
        // Read "port N\n" without blocking forever on a server that never gets there.
        std::string line;
        const auto give_up = Clock::now() + server_start_limit;
        while (line.find('\n') == std::string::npos) {
            auto left = std::chrono::duration_cast<milliseconds>(give_up - Clock::now()).count();
            pollfd p{out[0], POLLIN, 0};
            if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) break;
            char buf[64];
            ssize_t n = ::read(out[0], buf, sizeof buf);
            if (n <= 0) break;
            line.append(buf, static_cast<std::size_t>(n));
        }
        ::close(out[0]);
        unsigned port = 0;
        if (std::sscanf(line.c_str(), "port %u", &port) != 1 || port == 0 || port > 65535) {
            stop();
            throw Failure("vigil-test-dns did not report its port; it said: " + vigil::core::printable(line));
        }
        port_ = port;
    }
    ~TestServer() { stop(); }
    TestServer(const TestServer&) = delete;
    TestServer& operator=(const TestServer&) = delete;

    std::string address() const { return fmt::format("127.0.0.1:{}", port_); }

  private:
    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }
    pid_t pid_ = -1;
    unsigned port_ = 0;
};

UnboundResolver::Options single(const TestServer& server) {
    UnboundResolver::Options o;
    o.mode = UnboundResolver::Options::Mode::single_server;
    o.single_server = server.address();
    o.query_timeout = query_timeout;
    return o;
}

Answer ask(Resolver& r, const std::string& name, RrType type, milliseconds budget = answer_deadline) {
    const auto start = Clock::now();
    Answer a = r.resolve(name, type, start + budget);
    const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
    std::printf("%s %s -> %s  [%lld ms]\n", name.c_str(), std::string(to_string(type)).c_str(),
                describe(a).c_str(), static_cast<long long>(took));
    return a;
}

bool has_address(const Answer& a, const std::string& ip) {
    for (const auto& r : a.records) {
        if (r.address && r.address->to_string() == ip) return true;
    }
    return false;
}

// The server's query log lines ("<proto> <qname> <qtype> <action>") for one name, to show what went
// over the wire.
std::vector<std::string> log_lines(const std::filesystem::path& log, const std::string& name) {
    std::vector<std::string> out;
    std::ifstream in(log);
    std::string line;
    const std::string key = " " + name + ". ";
    while (std::getline(in, line)) {
        if (line.find(key) != std::string::npos) out.push_back(line);
    }
    return out;
}

bool any_starts_with(const std::vector<std::string>& lines, const std::string& prefix) {
    for (const auto& l : lines) {
        if (l.starts_with(prefix)) return true;
    }
    return false;
}

void functional_checks(const std::string& binary, const std::filesystem::path& dir) {
    const std::string many = "many.example.test";
    const auto log = dir / "queries.log";
    TestServer server(binary, {"--port",         "0",
                               "--log",          log.string(),
                               "--zone",         (dir / "example.test.zone").string(),
                               "--zone",         (dir / "reverse.zone").string(),
                               "--servfail",     "servfail.example.test",
                               "--refused",      "refused.example.test",
                               "--timeout",      "timeout.example.test",
                               "--truncate",     "spf.example.test",
                               "--truncate",     many,
                               "--wrong-id",     "wrongid.example.test",
                               "--malformed",    "malformed.example.test",
                               "--ttl-override", "absurd.example.test=2147483647",
                               "--ttl-override", "msb.example.test=4294967295"});
    std::printf("== vigil-test-dns with fault injection at %s\n", server.address().c_str());
    UnboundResolver resolver(single(server));

    Answer a = ask(resolver, "Host.Example.Test", RrType::a);
    check(a.status == Status::answer && has_address(a, "192.0.2.10"), "A answer");
    check(a.ttl == 3600, "A carries the record TTL (3600)");
    check(a.dnssec == Dnssec::unchecked, "single-server mode does not validate (unchecked)");
    check(!a.records.empty() && a.records[0].name == "host.example.test",
          "owner is lowercase, no trailing dot");

    Answer aaaa = ask(resolver, "host.example.test", RrType::aaaa);
    check(aaaa.status == Status::answer && has_address(aaaa, "2001:db8::10") && aaaa.ttl == 300,
          "AAAA answer");

    Answer mx = ask(resolver, "example.test", RrType::mx);
    bool mx_ok = mx.status == Status::answer && mx.records.size() == 2;
    if (mx_ok) {
        const auto& first = mx.records[0].preference == 10 ? mx.records[0] : mx.records[1];
        const auto& second = mx.records[0].preference == 10 ? mx.records[1] : mx.records[0];
        mx_ok = first.target == "mx1.example.test" && second.preference == 20 &&
                second.target == "mx2.example.test";
    }
    check(mx_ok, "MX answer with preferences and lowercase targets");

    Answer null_mx = ask(resolver, "null.example.test", RrType::mx);
    check(
        null_mx.status == Status::answer && null_mx.records.size() == 1 && null_mx.records[0].target.empty(),
        "null MX (RFC 7505) has an empty target");

    Answer ptr = ask(resolver, reverse_name(*vigil::core::IpAddress::parse("192.0.2.10")), RrType::ptr);
    check(ptr.status == Status::answer && ptr.records.size() == 1 &&
              ptr.records[0].target == "host.example.test" && ptr.ttl == 600,
          "PTR answer");

    Answer dkim = ask(resolver, "sel._domainkey.example.test", RrType::txt);
    check(dkim.status == Status::answer && dkim.records.size() == 1 &&
              dkim.records[0].txt_joined().starts_with("v=DKIM1; k=rsa;"),
          "TXT answer (single string)");

    Answer cname = ask(resolver, "alias.example.test", RrType::a);
    check(cname.status == Status::answer && has_address(cname, "192.0.2.10") && cname.records.size() == 1 &&
              cname.records[0].name == "host.example.test",
          "CNAME is chased; records are those of the queried type, owned by the target");

    Answer nx = ask(resolver, "nope.example.test", RrType::a);
    check(nx.status == Status::nxdomain, "NXDOMAIN");
    check(nx.ttl == 120, "NXDOMAIN TTL is the SOA minimum (120)");
    Answer nodata = ask(resolver, "host.example.test", RrType::txt);
    check(nodata.status == Status::nodata, "NODATA is not NXDOMAIN");
    check(nodata.ttl == 120, "NODATA TTL is the SOA minimum (120)");

    Answer sf = ask(resolver, "servfail.example.test", RrType::a);
    check(sf.status == Status::servfail, "SERVFAIL is servfail");
    Answer refused = ask(resolver, "refused.example.test", RrType::a);
    check(refused.status == Status::servfail, "REFUSED is servfail");
    for (const auto& l : log_lines(log, "refused.example.test"))
        std::printf("    server saw: %s\n", l.c_str());

    // The stage deadline, not the server, decides how long a silent name costs.
    auto start = Clock::now();
    Answer to = ask(resolver, "timeout.example.test", RrType::a, stage_deadline);
    auto took = Clock::now() - start;
    check(to.status == Status::timeout, "an unanswered name is timeout, not servfail");
    check(took <= stage_deadline + deadline_slack,
          fmt::format("timeout costs at most the deadline ({} ms + {} ms slack)", stage_deadline.count(),
                      deadline_slack.count()));
    // Given longer, the resolver's own query timeout ends the lookup.
    start = Clock::now();
    Answer to_full = ask(resolver, "timeout.example.test", RrType::txt, milliseconds(10000));
    took = Clock::now() - start;
    check(to_full.status == Status::timeout && took <= query_timeout + deadline_slack * 3,
          fmt::format("query_timeout ({} ms) ends a lookup the caller would wait longer for",
                      query_timeout.count()));
    // One silent name must not make the only upstream look dead to everything else.
    Answer after = ask(resolver, "mx1.example.test", RrType::a);
    check(after.status == Status::answer && has_address(after, "192.0.2.21"),
          "other names still resolve after timeouts");

    Answer spf = ask(resolver, "spf.example.test", RrType::txt);
    check(spf.status == Status::answer && spf.records.size() == 1 && spf.records[0].txt.size() == 3 &&
              spf.records[0].txt_joined() == "v=spf1 ip4:192.0.2.0/24 include:_spf.example.test -all",
          "TC=1 over UDP falls back to TCP; multi-string TXT kept string by string");
    auto spf_log = log_lines(log, "spf.example.test");
    for (const auto& l : spf_log) std::printf("    server saw: %s\n", l.c_str());
    check(any_starts_with(spf_log, "udp ") && any_starts_with(spf_log, "tcp "),
          "the server saw UDP, then TCP");

    Answer big = ask(resolver, many, RrType::a);
    check(big.status == Status::answer && big.records.size() == limits::max_records_per_answer &&
              big.detail.find("truncated") != std::string::npos,
          fmt::format("120 records over TCP are capped at {}", limits::max_records_per_answer));

    Answer wrong = ask(resolver, "wrongid.example.test", RrType::a);
    check(wrong.status == Status::answer && has_address(wrong, "192.0.2.99") && wrong.records.size() == 1,
          "a reply with the wrong query ID is ignored; the right one is used");
    for (const auto& l : log_lines(log, "wrongid.example.test"))
        std::printf("    server saw: %s\n", l.c_str());

    Answer bad = ask(resolver, "malformed.example.test", RrType::txt);
    check(bad.status == Status::servfail || bad.status == Status::malformed,
          "a cut-short reply gives servfail or malformed, never an answer (and no crash)");
    for (const auto& l : log_lines(log, "malformed.example.test"))
        std::printf("    server saw: %s\n", l.c_str());

    Answer absurd = ask(resolver, "absurd.example.test", RrType::a);
    check(absurd.status == Status::answer && absurd.ttl == limits::max_ttl,
          fmt::format("TTL 2147483647 is clamped to {}", limits::max_ttl));
    Answer msb = ask(resolver, "msb.example.test", RrType::a);
    check(msb.status == Status::answer && msb.ttl <= limits::max_ttl,
          "TTL 4294967295 (top bit set) stays within the cap");

    Answer invalid = ask(resolver, "bad..example.test", RrType::a);
    check(invalid.status == Status::malformed, "an invalid name is malformed without a query");

    auto s = resolver.stats();
    std::printf("resolver stats: queries=%llu answered=%llu timeouts=%llu errors=%llu in_flight=%zu\n",
                static_cast<unsigned long long>(s.queries), static_cast<unsigned long long>(s.answered),
                static_cast<unsigned long long>(s.timeouts), static_cast<unsigned long long>(s.errors),
                s.in_flight);
}

void concurrency_checks(const std::string& binary, const std::filesystem::path& dir) {
    TestServer server(binary, {"--port", "0", "--zone", (dir / "example.test.zone").string(), "--delay-ms",
                               std::to_string(server_delay.count()), "--timeout", "timeout.example.test"});
    std::printf("== vigil-test-dns delaying every answer by %lld ms at %s\n",
                static_cast<long long>(server_delay.count()), server.address().c_str());
    auto upstream = std::make_shared<UnboundResolver>(single(server));

    const std::vector<std::pair<std::string, RrType>> stage = {
        {"host.example.test", RrType::a}, {"host.example.test", RrType::aaaa},
        {"example.test", RrType::mx},     {"spf.example.test", RrType::txt},
        {"nope.example.test", RrType::a}, {"mx2.example.test", RrType::a},
    };
    static_assert(parallel_lookups == 6);
    auto start = Clock::now();
    std::vector<Pending> pending;
    for (const auto& [name, type] : stage) pending.push_back(upstream->lookup(name, type));
    const auto deadline = start + answer_deadline;
    int answered = 0;
    for (std::size_t i = 0; i < pending.size(); ++i) {
        Answer a = pending[i].wait_until(deadline);
        std::printf("%s %s -> %s\n", stage[i].first.c_str(), std::string(to_string(stage[i].second)).c_str(),
                    describe(a).c_str());
        if (a.status == Status::answer || a.status == Status::nxdomain) ++answered;
    }
    auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    std::printf("%d lookups issued together against a %lld ms server: %lld ms wall time\n", parallel_lookups,
                static_cast<long long>(server_delay.count()), static_cast<long long>(took.count()));
    check(answered == parallel_lookups, "all parallel lookups answered");
    check(took < 2 * server_delay, fmt::format("{} lookups took {} ms, well under 2 x {} ms",
                                               parallel_lookups, took.count(), server_delay.count()));

    // A wide stage: without raising libunbound's outgoing-range (16 by default) this takes 3 x 200 ms.
    start = Clock::now();
    std::vector<Pending> wide;
    for (int i = 0; i < wide_stage_lookups; ++i)
        wide.push_back(upstream->lookup(fmt::format("n{}.wild.example.test", i), RrType::a));
    int wide_answered = 0;
    for (const auto& p : wide)
        wide_answered += p.wait_until(start + answer_deadline).status == Status::answer ? 1 : 0;
    took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    std::printf("%d lookups issued together against a %lld ms server: %d answered, %lld ms wall time\n",
                wide_stage_lookups, static_cast<long long>(server_delay.count()), wide_answered,
                static_cast<long long>(took.count()));
    check(wide_answered == wide_stage_lookups && took < 2 * server_delay,
          fmt::format("{} lookups took {} ms, under 2 x {} ms", wide_stage_lookups, took.count(),
                      server_delay.count()));

    // The same stage behind the shared cache: a second pass is served without the 200 ms.
    vigil::dns::CachingResolver cache(upstream, vigil::core::SystemClock::instance());
    for (const auto& [name, type] : stage)
        cache.lookup(name, type).wait_until(Clock::now() + answer_deadline);
    start = Clock::now();
    int hits = 0;
    for (const auto& [name, type] : stage) {
        if (cache.lookup(name, type).ready()) ++hits;
    }
    took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    check(hits == parallel_lookups,
          fmt::format("second pass through the cache: {} of {} ready at once ({} ms)", hits, parallel_lookups,
                      took.count()));

    // A silent name in a stage costs the stage deadline, and the others in the stage still answer.
    start = Clock::now();
    Pending silent = upstream->lookup("timeout.example.test", RrType::a);
    Pending fine = upstream->lookup("mx1.example.test", RrType::a);
    const auto stage_end = start + stage_deadline + server_delay;
    Answer s1 = silent.wait_until(stage_end);
    Answer s2 = fine.wait_until(stage_end);
    took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    std::printf("timeout.example.test A -> %s\nmx1.example.test A -> %s\nstage took %lld ms\n",
                describe(s1).c_str(), describe(s2).c_str(), static_cast<long long>(took.count()));
    check(s1.status == Status::timeout && s2.status == Status::answer &&
              took <= stage_deadline + server_delay + deadline_slack,
          "a stage with one silent name costs its deadline; the other lookup still answers");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s PATH/TO/vigil-test-dns\n", argv[0]);
        return 2;
    }
    const std::string binary = argv[1];
    // The server must not outlive us if we are killed mid-test: it is stopped by pid in ~TestServer,
    // and a broken pipe on its stdout is harmless since it only prints its port once.
    std::error_code ec;
    char tmpl[] = "/tmp/vigil-dns-resolver-test.XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    if (made == nullptr) {
        std::perror("mkdtemp");
        return 1;
    }
    const std::filesystem::path dir = made;
    int rc = 0;
    try {
        {
            std::ofstream zone(dir / "example.test.zone");
            zone << zone_example;
            // More A records than an Answer keeps; too big for UDP, so this also goes over TCP.
            for (int i = 1; i <= 120; ++i) zone << "many IN A 198.51.100." << i << "\n";
        }
        std::ofstream(dir / "reverse.zone") << zone_reverse;
        functional_checks(binary, dir);
        concurrency_checks(binary, dir);
    } catch (const std::exception& e) {
        std::printf("FAIL: %s\n", e.what());
        ++failures;
        rc = 1;
    }
    std::filesystem::remove_all(dir, ec);
    std::printf("%d checks passed, %d failed\n", passes, failures);
    return failures == 0 && rc == 0 ? 0 : 1;
}
