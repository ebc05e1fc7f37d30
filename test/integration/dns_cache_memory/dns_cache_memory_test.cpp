// The DNS cache's byte budget against the answers that once grew the milter without bound.
//
//   vigil-dns-cache-memory-test PATH/TO/vigil-test-dns [--lookups N] [--budget-mb N] [--no-byte-budget]
//
// vigil-test-dns serves a zone whose wildcard owns 60,000 bytes of TXT (8 records of 7,500 bytes: a
// zone file line holds at most about 10 KB). The real UnboundResolver (single-server mode, so every
// answer comes over UDP, truncated, then TCP) behind the real CachingResolver looks up one distinct
// name under the wildcard per lookup, as an attacker's zone does with one MAIL FROM domain per
// message, and keeps every answer (TTL one day). Checked:
//   - every answer really is the 60,000 bytes (else the test would prove nothing);
//   - the cache's own byte count never exceeds its budget (after every lookup);
//   - the process's RSS, sampled after every 16 lookups, grows by at most budget + allowance over the
//     RSS before the first lookup;
//   - the cache is really used: at the end it holds at least 3/4 of its budget and has evicted.
// --no-byte-budget keeps the entry bound only (what the cache did before it had a byte budget) and
// checks that RSS then does grow past budget + allowance: the RSS check can fail. Under
// AddressSanitizer (whose quarantine keeps freed memory resident) RSS is printed, not judged.
// Nothing leaves 127.0.0.0/8.
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
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/printable.hpp"
#include "dns/cache.hpp"
#include "dns/unbound_resolver.hpp"

extern char** environ;

#if defined(__SANITIZE_ADDRESS__)
#define VIGIL_RSS_MEANINGLESS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VIGIL_RSS_MEANINGLESS 1
#endif
#endif

namespace {

using namespace vigil::dns;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// The wildcard's TXT: records x strings x bytes per string.
constexpr std::size_t txt_records = 8;
constexpr std::size_t strings_per_record = 30;
constexpr std::size_t string_bytes = 250;
constexpr std::size_t txt_bytes = txt_records * strings_per_record * string_bytes;  // 60,000
// What RSS may grow by beyond the budget: libunbound's thread, buffers and own caches (64 KB each in
// single-server mode), malloc's per-thread arenas and free lists (the completion that stores an
// answer runs on unbound's thread, the caller's copy on ours), and the lookups in flight (16 x 60 KB).
// Measured: 4.5 MiB (RSS +20.5 MiB with a 16 MiB budget full; +217 MiB for 213 MiB counted without
// a budget).
constexpr std::size_t allowance = std::size_t{8} << 20;
constexpr int parallel = 16;
constexpr milliseconds server_start_limit{10000};
constexpr milliseconds batch_deadline{20000};

int failures = 0;

void check(bool ok, const std::string& what) {
    std::printf("  %s %s\n", ok ? "ok  " : "FAIL", what.c_str());
    if (!ok) ++failures;
}

double mib(std::size_t bytes) {
    return static_cast<double>(bytes) / (1 << 20);
}

// Resident set size now, from /proc/self/statm (pages).
std::size_t rss_bytes() {
    std::ifstream in("/proc/self/statm");
    std::size_t size = 0, resident = 0;
    in >> size >> resident;
    return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// The peak RSS of the process (VmHWM), for the record.
std::size_t peak_rss_bytes() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with("VmHWM:")) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
    }
    return 0;
}

std::string zone_text() {
    std::string z =
        "$ORIGIN big.test.\n$TTL 86400\n"
        "@ IN SOA ns hostmaster 1 3600 600 86400 300\n"
        "@ IN NS ns\n"
        "ns IN A 127.0.0.1\n";
    for (std::size_t r = 0; r < txt_records; ++r) {
        z += "* IN TXT (";
        for (std::size_t s = 0; s < strings_per_record; ++s) {
            // Every record different (an RRset holds no duplicates), every string full length.
            std::string text = fmt::format("r{}s{}-", r, s);
            text.resize(string_bytes, static_cast<char>('a' + (r + s) % 26));
            z += " \"" + text + "\"";
        }
        z += " )\n";
    }
    return z;
}

// One vigil-test-dns process, started by us and stopped by its pid.
class TestServer {
  public:
    TestServer(const std::string& binary, const std::vector<std::string>& args) {
        int out[2];
        if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
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
            throw std::runtime_error(fmt::format("cannot start {}: {}", binary, std::strerror(rc)));
        }
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
            throw std::runtime_error("vigil-test-dns did not report its port; it said: " +
                                     vigil::core::printable(line));
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

std::size_t txt_size(const Answer& a) {
    std::size_t n = 0;
    for (const auto& r : a.records) n += r.txt_joined().size();
    return n;
}

struct Args {
    std::string server_binary;
    int lookups = 3000;
    std::size_t budget = std::size_t{16} << 20;
    bool byte_budget = true;
};

Args parse(int argc, char** argv) {
    Args a;
    if (argc < 2)
        throw std::runtime_error(
            "usage: vigil-dns-cache-memory-test PATH/TO/vigil-test-dns "
            "[--lookups N] [--budget-mb N] [--no-byte-budget]");
    a.server_binary = argv[1];
    for (int i = 2; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--lookups" && i + 1 < argc) {
            a.lookups = std::atoi(argv[++i]);
        } else if (arg == "--budget-mb" && i + 1 < argc) {
            a.budget = static_cast<std::size_t>(std::atoll(argv[++i])) << 20;
        } else if (arg == "--no-byte-budget") {
            a.byte_budget = false;
        } else {
            throw std::runtime_error("unknown argument " + arg);
        }
    }
    return a;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Args args = parse(argc, argv);
        auto dir = std::filesystem::temp_directory_path() / fmt::format("vigil-cache-memory-{}", getpid());
        std::filesystem::create_directories(dir);
        std::ofstream(dir / "big.test.zone") << zone_text();
        TestServer server(args.server_binary, {"--port", "0", "--zone", (dir / "big.test.zone").string()});
        std::filesystem::remove_all(dir);

        UnboundResolver::Options uo;
        uo.mode = UnboundResolver::Options::Mode::single_server;
        uo.single_server = server.address();
        uo.query_timeout = milliseconds(10000);
        auto upstream = std::make_shared<UnboundResolver>(uo);
        CacheOptions co;
        co.max_bytes = args.byte_budget ? args.budget : std::numeric_limits<std::size_t>::max();
        CachingResolver cache(upstream, vigil::core::SystemClock::instance(), co);
        std::printf("== %d lookups of distinct names under a wildcard %zu-byte TXT at %s; %s\n", args.lookups,
                    txt_bytes, server.address().c_str(),
                    args.byte_budget ? fmt::format("cache budget {:.1f} MiB", mib(args.budget)).c_str()
                                     : "no byte budget (entry bound only, as before the budget existed)");

        int name = 0;
        int wrong = 0;
        std::size_t worst_cache_bytes = 0;
        auto run_batch = [&](int n) {
            std::vector<Pending> pending;
            for (int i = 0; i < n; ++i)
                pending.push_back(cache.lookup(fmt::format("n{}.big.test", name++), RrType::txt));
            const auto deadline = Clock::now() + batch_deadline;
            for (const auto& p : pending) {
                Answer a = p.wait_until(deadline);
                if (a.status != Status::answer || txt_size(a) != txt_bytes) {
                    if (++wrong <= 3)
                        std::printf("  unexpected answer: %s, %zu bytes of TXT (%s)\n",
                                    std::string(to_string(a.status)).c_str(), txt_size(a), a.detail.c_str());
                }
                worst_cache_bytes = std::max(worst_cache_bytes, cache.stats().bytes);
            }
        };

        // From the resolver as built, before its first query: whatever the lookups cost, libunbound's
        // thread and TCP buffers included, counts.
        const std::size_t baseline = rss_bytes();
        std::printf("RSS with the resolver built, before the first lookup: %.1f MiB\n", mib(baseline));

        std::size_t max_rss = baseline;
        const auto start = Clock::now();
        for (int done = 0; done < args.lookups; done += parallel) {
            run_batch(std::min(parallel, args.lookups - done));
            max_rss = std::max(max_rss, rss_bytes());
            if ((done / parallel) % 50 == 0 || done + parallel >= args.lookups) {
                auto s = cache.stats();
                std::printf(
                    "  after %5d lookups: RSS %7.1f MiB (+%6.1f), cache %6.1f MiB in %5zu entries, %zu "
                    "evictions\n",
                    std::min(done + parallel, args.lookups), mib(rss_bytes()), mib(rss_bytes() - baseline),
                    mib(s.bytes), s.entries, static_cast<std::size_t>(s.evictions));
            }
        }
        const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
        auto s = cache.stats();
        const std::size_t growth = max_rss - baseline;
        std::printf("%s\n", describe(s).c_str());
        std::printf(
            "RSS: baseline %.1f MiB, highest %.1f MiB, growth %.1f MiB (%.1f KiB per lookup); peak (VmHWM) "
            "%.1f MiB; %.1f s\n",
            mib(baseline), mib(max_rss), mib(growth), static_cast<double>(growth) / 1024 / args.lookups,
            mib(peak_rss_bytes()), seconds);

#ifdef VIGIL_RSS_MEANINGLESS
        const bool rss_judged = false;
        std::printf("(AddressSanitizer: its quarantine keeps freed memory resident; RSS is not judged)\n");
#else
        const bool rss_judged = true;
#endif
        check(wrong == 0,
              fmt::format("every answer holds the {} bytes of TXT ({} did not)", txt_bytes, wrong));
        if (args.byte_budget) {
            check(
                worst_cache_bytes <= args.budget,
                fmt::format("the cache's byte count never exceeded the budget (highest {:.2f} of {:.2f} MiB)",
                            mib(worst_cache_bytes), mib(args.budget)));
            if (rss_judged)
                check(growth <= args.budget + allowance,
                      fmt::format(
                          "RSS grew by {:.1f} MiB, within the budget + {:.0f} MiB allowance ({:.1f} MiB)",
                          mib(growth), mib(allowance), mib(args.budget + allowance)));
            check(s.bytes >= args.budget / 4 * 3 && s.evictions > 0,
                  fmt::format("the cache was used to its budget ({:.1f} MiB held, {} evictions)",
                              mib(s.bytes), s.evictions));
        } else if (rss_judged) {
            check(growth > args.budget + allowance,
                  fmt::format(
                      "without a byte budget RSS grew by {:.1f} MiB, past the budget + allowance ({:.1f} "
                      "MiB) that the bounded run must keep",
                      mib(growth), mib(args.budget + allowance)));
        }
        std::printf("%d failure(s)\n", failures);
        return failures == 0 ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vigil-dns-cache-memory-test: %s\n", e.what());
        return 2;
    }
}
