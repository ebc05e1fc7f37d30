// vigil-bench: what a milter costs, side by side. Starts the test DNS server with the corpus's zone,
// the no-op libmilter filter (the floor), OpenDKIM in verify mode and vigil-milter with every inbound
// check on, each on its own socket, and drives them one after another with the same Postfix-like load.
// See `vigil-bench --help` and README, "Performance".
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "tools/bench/corpus.hpp"
#include "tools/bench/load.hpp"
#include "tools/bench/milter_wire.hpp"
#include "tools/bench/procs.hpp"

namespace fs = std::filesystem;
using namespace vigil::bench;

namespace {

constexpr const char* kUsage = R"(usage: vigil-bench [options]
Runs the no-op libmilter filter (the floor), OpenDKIM (verify mode) and vigil-milter (every inbound
check on) side by side, each on its own socket, against the same corpus and the same test DNS server,
and prints msg/s, latency percentiles, CPU per message and peak RSS of each filter, with ratios.
Outcomes also show the messages each connection finished (fewest-most) and any message begun in the
warm-up still unanswered when the measurement ended (in no latency figure).

What is measured
  --filters LIST        floor,floor-rx,opendkim,vigil (default: all; opendkim is left out if not
                        installed). floor: the no-op filter skipping every event it may;
                        floor-rx: the same receiving every event (the cost of reading a message)
  --sizes LIST          message sizes: 2k,4k,16k,100k,1m (default 4k)
  --kinds LIST          unsigned,rsa,ed25519,dual (default rsa)
  --conns LIST          concurrent filter connections (default 1,8,64,256)
  --per-connection      one SMTP session (filter connection) per message; default: persistent
                        sessions, ABORT between messages, as Postfix does for several messages
  --rate R              open loop: R messages/s whatever the filter does; latency counts from the
                        time a message was due (no coordinated omission). Default: closed loop
  --duration S          measured seconds per run (default 5)
  --warmup S            unmeasured seconds before each run (default 2)
  --repeat N            run everything N times, interleaved; report the round with median msg/s
  --transport T         inet (default) or unix
  --pin CPU             run each filter under taskset -c CPU; this client runs on the other CPUs
  --postfix-nagle       leave Nagle on on our side, as Postfix 3.7 does (default: TCP_NODELAY)
  --markdown            print the tables as Markdown

Modes
  --smoke               a few seconds: floor + vigil (+ opendkim) at 4 KiB, every kind verified,
                        closed and open loop, persistent and per connection; exit 1 on any problem
  --callgrind [N]       user-space instructions per message of vigil-milter (and the floor) under
                        valgrind --tool=callgrind: 1 connection, 4 KiB RSA-signed, N messages
                        (default 1000) after 100 unmeasured; keeps the profile for callgrind_annotate
                        (with --per-connection: a new connection for every message)
  --syscalls [N]        system calls per message of each filter (default floor-rx,vigil), counted by
                        strace -f -c attached after 200 unmeasured messages, over N messages (default
                        2000) at the first --conns value (default 8), 4 KiB RSA-signed, persistent
                        (with --per-connection: a new connection per message)

Set-up
  --vigil PATH --noop PATH --dns-server PATH --opendkim PATH
                        binaries (default: next to this one in the build tree; opendkim from PATH)
  --floor-args "ARGS"   extra vigil-noop-milter options (default: --nodelay)
  --seed N              corpus seed (default 20260801); --variants N messages per cell (default 8)
  --write-corpus DIR    also write the messages there (.eml)
  --keep                keep the work directory (configs, zones, logs) and print its path
)";

struct Options {
    std::vector<std::string> filters = {"floor", "floor-rx", "opendkim", "vigil"};
    bool filters_given = false;
    std::vector<std::size_t> sizes = {4096};
    std::vector<Kind> kinds = {Kind::rsa};
    std::vector<int> conns = {1, 8, 64, 256};
    bool persistent = true;
    double rate = 0, duration = 5, warmup = 2;
    int repeat = 1;
    std::string transport = "inet";
    std::optional<int> pin;
    bool nodelay = true, markdown = false, smoke = false, keep = false;
    std::optional<std::uint64_t> callgrind, syscalls;
    bool conns_given = false;
    std::string vigil, noop, dns, opendkim;
    std::string floor_args = "--nodelay";
    std::uint64_t seed = 20260801;
    int variants = 8;
    std::string write_corpus;
};

// Stops the children and removes the work directory; set by main. std::exit skips destructors of
// locals, so die() and Ctrl-C go through this.
void (*g_cleanup)() = nullptr;

[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "vigil-bench: %s\n", msg.c_str());
    if (auto c = std::exchange(g_cleanup, nullptr)) c();
    std::exit(2);
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    std::istringstream in(s);
    while (std::getline(in, cur, sep)) {
        if (!cur.empty()) out.push_back(cur);
    }
    return out;
}

double number(const std::string& s, const char* what) {
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || v < 0) die(fmt::format("bad {}: {}", what, s));
    return v;
}

Options parse(int argc, char** argv) {
    Options o;
    fs::path build = fs::canonical("/proc/self/exe").parent_path().parent_path();
    o.vigil = (build / "milter/vigil-milter").string();
    o.noop = (build / "test/support/noop_milter/vigil-noop-milter").string();
    o.dns = (build / "test/support/dns_server/vigil-test-dns").string();
    o.opendkim = which("opendkim");
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) die(a + " needs a value");
            return argv[++i];
        };
        if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            std::exit(0);
        } else if (a == "--filters") {
            o.filters = split(val(), ',');
            o.filters_given = true;
            for (auto& f : o.filters) {
                if (f != "floor" && f != "floor-rx" && f != "opendkim" && f != "vigil")
                    die("unknown filter " + f);
            }
        } else if (a == "--sizes") {
            o.sizes.clear();
            for (auto& s : split(val(), ',')) {
                auto v = parse_size(s);
                if (!v) die("bad size " + s);
                o.sizes.push_back(*v);
            }
        } else if (a == "--kinds") {
            o.kinds.clear();
            for (auto& s : split(val(), ',')) {
                auto k = parse_kind(s);
                if (!k) die("bad kind " + s);
                o.kinds.push_back(*k);
            }
        } else if (a == "--conns") {
            o.conns.clear();
            o.conns_given = true;
            for (auto& s : split(val(), ',')) {
                int n = static_cast<int>(number(s, "connection count"));
                if (n < 1 || n > 4096) die("connections must be 1..4096");
                o.conns.push_back(n);
            }
        } else if (a == "--per-connection") {
            o.persistent = false;
        } else if (a == "--rate") {
            o.rate = number(val(), "rate");
        } else if (a == "--duration") {
            o.duration = number(val(), "duration");
        } else if (a == "--warmup") {
            o.warmup = number(val(), "warm-up");
        } else if (a == "--repeat") {
            o.repeat = std::max(1, static_cast<int>(number(val(), "repeat")));
        } else if (a == "--transport") {
            o.transport = val();
            if (o.transport != "inet" && o.transport != "unix") die("transport is inet or unix");
        } else if (a == "--pin") {
            o.pin = static_cast<int>(number(val(), "CPU"));
        } else if (a == "--postfix-nagle") {
            o.nodelay = false;
        } else if (a == "--markdown") {
            o.markdown = true;
        } else if (a == "--smoke") {
            o.smoke = true;
        } else if (a == "--callgrind") {
            o.callgrind = 1000;
            if (i + 1 < argc && argv[i + 1][0] != '-')
                o.callgrind = static_cast<std::uint64_t>(number(val(), "count"));
        } else if (a == "--syscalls") {
            o.syscalls = 2000;
            if (i + 1 < argc && argv[i + 1][0] != '-')
                o.syscalls = static_cast<std::uint64_t>(number(val(), "count"));
        } else if (a == "--vigil") {
            o.vigil = val();
        } else if (a == "--noop") {
            o.noop = val();
        } else if (a == "--dns-server") {
            o.dns = val();
        } else if (a == "--opendkim") {
            o.opendkim = which(val());
        } else if (a == "--floor-args") {
            o.floor_args = val();
        } else if (a == "--seed") {
            o.seed = static_cast<std::uint64_t>(number(val(), "seed"));
        } else if (a == "--variants") {
            o.variants = std::max(1, static_cast<int>(number(val(), "variants")));
        } else if (a == "--write-corpus") {
            o.write_corpus = val();
        } else if (a == "--keep") {
            o.keep = true;
        } else {
            die("unknown option " + a + " (see --help)");
        }
    }
    return o;
}

// -- the set-up ----------------------------------------------------------------------------------

struct Filter {
    std::string name;
    Target target;
    Child child;
    std::string note;  // shown under the tables
};

struct Bench {
    Options opt;
    std::string dir;
    std::unique_ptr<Corpus> corpus;
    Child dns;
    int dns_port = 0;
    std::vector<std::unique_ptr<Filter>> filters;
    bool dmarc = false;
    int failures = 0;  // sanity problems; the exit status

    ~Bench() {
        filters.clear();
        dns.stop();
        if (!opt.keep && !dir.empty()) {
            std::error_code ec;
            fs::remove_all(dir, ec);
        }
    }

    std::string path(const std::string& name) const { return dir + "/" + name; }

    void write(const std::string& name, const std::string& text) const {
        std::ofstream f(path(name), std::ios::trunc);
        f << text;
        if (!f) die("cannot write " + path(name));
    }

    std::string socket_for(const std::string& name) {
        if (opt.transport == "unix") return "unix:" + path(name + ".sock");
        return fmt::format("inet:{}@127.0.0.1", free_port());
    }

    void start_dns() {
        std::vector<std::string> argv = {opt.dns, "--listen", "127.0.0.1", "--port", "0"};
        for (const auto& z : corpus->write_zones(dir)) {
            argv.push_back("--zone");
            argv.push_back(z);
        }
        dns = Child::start_with_pipe(argv, path("dns.log"));
        std::string line = dns.read_line(10);
        if (line.rfind("port ", 0) != 0) die("vigil-test-dns did not start: " + slurp(path("dns.log")));
        dns_port = std::atoi(line.c_str() + 5);
    }

    std::string vigil_config(const std::string& socket, bool with_dmarc) const {
        std::string c = fmt::format(
            R"(# written by vigil-bench: every inbound check on, DNS from the benchmark's zone
[milter]
socket = "{}"
user = "root"
allow_root = true
tcp_nodelay = true
[server]
hostname = "{}"
authserv_id = "{}"
[dns]
server = "127.0.0.1:{}"
[checks.iprev]
enabled = true
[checks.helo]
enabled = true
[checks.dnsbl]
enabled = true
[[checks.dnsbl.list]]
name = "bl"
zone = "{}"
[[checks.dnsbl.list]]
name = "wl"
zone = "{}"
type = "allow"
[checks.spf]
enabled = true
[checks.dkim]
enabled = true
)",
            socket, Corpus::kOurHost, Corpus::kOurHost, dns_port, Corpus::kBlockList, Corpus::kAllowList);
        if (with_dmarc) c += "[checks.dmarc]\nenabled = true\n";
        return c;
    }

    void start_filter(const std::string& name, std::optional<int> cpu,
                      std::vector<std::string> wrapper = {}) {
        auto f = std::make_unique<Filter>();
        f->name = name;
        std::string sock = socket_for(name);
        auto t = parse_target(sock);
        if (!t) die("bad socket " + sock);
        f->target = *t;
        std::vector<std::string> argv;
        if (name == "floor" || name == "floor-rx") {
            argv = {opt.noop, "-p", sock};
            for (auto& a : split(opt.floor_args, ' ')) argv.push_back(a);
            // floor: asks the MTA to skip every event it may (the issue's floor); floor-rx receives
            // every event, body included, and answers none: what reading the message costs.
            if (name == "floor-rx") argv.push_back("--receive");
            f->note =
                fmt::format("vigil-noop-milter {}{}", opt.floor_args, name == "floor-rx" ? " --receive" : "");
        } else if (name == "opendkim") {
            // OpenDKIM (Debian: libunbound) hands Nameservers to ub_ctx_set_fwd, which takes "IP@PORT".
            // (ResolverConfiguration, an unbound config file, crashed it under concurrency: "fatal
            // flex scanner internal error".)
            std::string osock = opt.transport == "unix" ? "local:" + path("opendkim.sock") : sock;
            write("opendkim.conf",
                  fmt::format("Mode v\nSocket {}\nNameservers 127.0.0.1@{}\nAlwaysAddARHeader yes\n"
                              "AuthservID {}\nBackground no\nSyslog yes\nUMask 000\nDNSTimeout 5\n",
                              osock, dns_port, Corpus::kOurHost));
            argv = {opt.opendkim, "-f", "-x", path("opendkim.conf")};
            f->note = "opendkim (Debian) Mode v, Nameservers = the test DNS server";
        } else {
            write("vigil.conf", vigil_config(sock, true));
            dmarc = std::system(fmt::format("'{}' -t -c '{}' > '{}' 2>&1", opt.vigil, path("vigil.conf"),
                                            path("vigil-check.log"))
                                    .c_str()) == 0;
            if (!dmarc) {
                write("vigil.conf", vigil_config(sock, false));
                if (std::system(fmt::format("'{}' -t -c '{}' >> '{}' 2>&1", opt.vigil, path("vigil.conf"),
                                            path("vigil-check.log"))
                                    .c_str()) != 0)
                    die("vigil-milter refuses the benchmark configuration: " +
                        slurp(path("vigil-check.log")));
            }
            argv = {opt.vigil, "-c", path("vigil.conf")};
            f->note = std::string("vigil-milter: iprev, dnsbl (2 lists), helo, spf (+helo), dkim") +
                      (dmarc ? ", dmarc" : "; dmarc: not in this build (its config section is refused)");
        }
        argv.insert(argv.begin(), wrapper.begin(), wrapper.end());
        f->child = Child(argv, path(name + ".log"), cpu);
        if (!wait_listening(f->target, f->child, wrapper.empty() ? 20 : 120))
            die(fmt::format("{} did not start listening on {}; its log:\n{}", name, sock,
                            slurp(path(name + ".log"))));
        filters.push_back(std::move(f));
    }

    Filter* filter(const std::string& name) {
        for (auto& f : filters) {
            if (f->name == name) return f.get();
        }
        return nullptr;
    }
};

std::vector<const Message*> pointers(const std::vector<Message>& msgs) {
    std::vector<const Message*> out;
    for (const auto& m : msgs) out.push_back(&m);
    return out;
}

int count(const std::string& hay, const std::string& needle) {
    int n = 0;
    for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
    return n;
}

// -- sanity: does each filter really do its work on this corpus? ---------------------------------

// One message of every kind through each filter; checks the verdict and the Authentication-Results
// each filter adds (a verifier that silently fails to verify would look fast). Also the first pass
// that fills the filters' DNS caches.
void sanity(Bench& b, std::size_t size, const std::vector<Kind>& kinds, bool verbose) {
    std::vector<const Message*> msgs;
    for (Kind k : kinds) {
        for (const auto& m : b.corpus->cell(size, k)) msgs.push_back(&m);
    }
    for (auto& f : b.filters) {
        LoadSpec s;
        s.target = f->target;
        s.connections = 1;
        s.messages = msgs.size();
        s.corpus = msgs;
        s.clients = b.corpus->clients();
        s.capture = true;
        s.nodelay = b.opt.nodelay;
        s.reply_timeout_s = 60;
        auto r = run_load(s);
        std::map<std::string, int> problems;  // counted, so 32 equal findings make one line
        auto problem = [&](const std::string& what) { ++problems[what]; };
        if (r.errors > 0) problem(fmt::format("{} errors, first: {}", r.errors, r.first_error));
        for (const auto& [outcome, n] : r.outcomes) {
            if (outcome != "accept") problem(fmt::format("{} message(s) got '{}'", n, outcome));
        }
        std::set<Kind> shown;
        for (std::size_t i = 0; i < msgs.size() && i < r.mods.size(); ++i) {
            if (!r.answered[i]) continue;  // counted above
            const Message& m = *msgs[i];
            std::string kind(to_string(m.kind));
            std::string ar;
            for (const auto& mod : r.mods[i]) {
                if ((mod.code == reply::insheader || mod.code == reply::addheader) &&
                    mod.name == "Authentication-Results")
                    ar += mod.value + "\n";
            }
            int sigs = m.kind == Kind::dual ? 2 : m.kind == Kind::plain ? 0 : 1;
            if (f->name == "vigil") {
                for (const char* need : {"spf=pass", "iprev=pass"}) {
                    if (ar.find(need) == std::string::npos)
                        problem(fmt::format("{} message: no {} in Authentication-Results", kind, need));
                }
                if (b.dmarc && ar.find("dmarc=pass") == std::string::npos)
                    problem(fmt::format("{} message: no dmarc=pass in Authentication-Results", kind));
                if (sigs == 0 && ar.find("dkim=none") == std::string::npos)
                    problem("unsigned message: no dkim=none");
            }
            if (f->name.rfind("floor", 0) != 0 && count(ar, "dkim=pass") != sigs)
                problem(fmt::format("{} message: {} dkim=pass in Authentication-Results, expected {}", kind,
                                    count(ar, "dkim=pass"), sigs));
            if (f->name.rfind("floor", 0) == 0 && !r.mods[i].empty()) problem("the floor modified a message");
            if (verbose && f->name.rfind("floor", 0) != 0 && !shown.count(m.kind)) {
                shown.insert(m.kind);
                std::string one = ar;
                std::replace(one.begin(), one.end(), '\n', ' ');
                std::replace(one.begin(), one.end(), '\t', ' ');
                std::printf("  %-8s %-8s A-R: %s\n", f->name.c_str(), kind.c_str(), one.c_str());
            }
        }
        for (const auto& [what, n] : problems) {
            b.failures += n;
            std::printf("  PROBLEM %s: %s%s\n", f->name.c_str(), what.c_str(),
                        n > 1 ? fmt::format(" ({}x)", n).c_str() : "");
        }
        if (verbose) {
            std::printf("  %-8s negotiated actions 0x%x protocol 0x%x; %zu messages: %s\n", f->name.c_str(),
                        r.negotiation.actions, r.negotiation.protocol, msgs.size(),
                        r.errors == 0 && r.outcomes.size() == 1 && r.outcomes.count("accept") ? "all accepted"
                                                                                              : "see above");
        }
    }
}

// -- measuring -----------------------------------------------------------------------------------

struct Row {
    std::string filter;
    LoadResult r;
    double cpu_us = 0;   // per message
    double sys_pct = 0;  // of it, in the kernel
    double peak_mib = 0;
    double client_pct = 0;  // this process's CPU over the window: near 100 % means we are the limit
    bool peak_reset = true;
};

double self_cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

Row measure(Filter& f, LoadSpec s) {
    Row row;
    row.filter = f.name;
    s.target = f.target;
    pid_t pid = f.child.pid();
    double cpu0 = 0, cpu1 = 0, self0 = 0, self1 = 0, sys0 = 0, sys1 = 0;
    s.on_window_start = [&] {
        cpu0 = cpu_seconds(pid, &sys0).value_or(0);
        self0 = self_cpu_seconds();
        row.peak_reset = reset_peak_rss(pid);
    };
    s.on_window_end = [&] {
        cpu1 = cpu_seconds(pid, &sys1).value_or(0);
        self1 = self_cpu_seconds();
    };
    row.r = run_load(s);
    if (row.r.window_s > 0 && self1 > 0) row.client_pct = (self1 - self0) / row.r.window_s * 100;
    if (cpu1 == 0) cpu1 = cpu_seconds(pid, &sys1).value_or(0);
    if (cpu1 > cpu0) row.sys_pct = (sys1 - sys0) / (cpu1 - cpu0) * 100;
    row.peak_mib = static_cast<double>(vm_kib(pid, "VmHWM").value_or(0)) / 1024.0;
    if (row.r.completed > 0) row.cpu_us = (cpu1 - cpu0) * 1e6 / static_cast<double>(row.r.completed);
    std::sort(row.r.txn_ns.begin(), row.r.txn_ns.end());
    std::sort(row.r.eom_ns.begin(), row.r.eom_ns.end());
    return row;
}

double ms(std::int64_t ns) {
    return static_cast<double>(ns) / 1e6;
}

std::string outcome_text(const LoadResult& r) {
    std::string s;
    for (const auto& [k, n] : r.outcomes) s += fmt::format("{}{} {}", s.empty() ? "" : ", ", k, n);
    if (r.errors > 0) s += fmt::format("{}errors {} ({})", s.empty() ? "" : "; ", r.errors, r.first_error);
    if (r.max_backlog > 0) s += fmt::format("; backlog max {}", r.max_backlog);
    if (r.per_connection.size() > 1) {
        // A filter that serves some connections over and over while others wait shows here (and in
        // the max latency) long before it shows in p99: a starved connection finishes few messages.
        auto [lo, hi] = std::minmax_element(r.per_connection.begin(), r.per_connection.end());
        s += fmt::format("; per connection {}-{} messages", *lo, *hi);
    }
    if (r.starved > 0) {
        s += fmt::format("; {} begun before the window still unanswered at its end (waiting up to {:.0f} ms)",
                         r.starved, static_cast<double>(r.starved_longest_ns) / 1e6);
    }
    return s.empty() ? "-" : s;
}

std::string outcome_text(const Row& row) {
    std::string s = outcome_text(row.r);
    if (row.cpu_us > 0) s += fmt::format("; {:.0f}% of its CPU in the kernel", row.sys_pct);
    if (row.client_pct > 0) s += fmt::format("; client CPU {:.0f}%", row.client_pct);
    if (!row.peak_reset) s += "; peak RSS since start (could not reset VmHWM)";
    return s;
}

void print_rows(const std::vector<Row>& rows, bool markdown) {
    if (markdown) {
        std::printf(
            "| filter | msg/s | txn p50 ms | p99 | p99.9 | max | EOM p50 ms | p99 | p99.9 | max | CPU µs/msg "
            "| peak RSS MiB | outcomes |\n");
        std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    } else {
        std::printf("%-9s %9s | %7s %7s %7s %8s | %7s %7s %7s %8s | %10s %8s | %s\n", "filter", "msg/s",
                    "txn p50", "p99", "p99.9", "max ms", "EOM p50", "p99", "p99.9", "max ms", "CPU µs/msg",
                    "RSS MiB", "outcomes");
    }
    for (const auto& row : rows) {
        const auto& t = row.r.txn_ns;
        const auto& e = row.r.eom_ns;
        if (markdown) {
            std::printf(
                "| %s | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f | %.1f | %s |\n",
                row.filter.c_str(), row.r.msgs_per_s(), ms(percentile(t, 50)), ms(percentile(t, 99)),
                ms(percentile(t, 99.9)), ms(t.empty() ? 0 : t.back()), ms(percentile(e, 50)),
                ms(percentile(e, 99)), ms(percentile(e, 99.9)), ms(e.empty() ? 0 : e.back()), row.cpu_us,
                row.peak_mib, outcome_text(row).c_str());
        } else {
            std::printf(
                "%-9s %9.0f | %7.2f %7.2f %7.2f %8.2f | %7.2f %7.2f %7.2f %8.2f | %10.1f %8.1f | %s\n",
                row.filter.c_str(), row.r.msgs_per_s(), ms(percentile(t, 50)), ms(percentile(t, 99)),
                ms(percentile(t, 99.9)), ms(t.empty() ? 0 : t.back()), ms(percentile(e, 50)),
                ms(percentile(e, 99)), ms(percentile(e, 99.9)), ms(e.empty() ? 0 : e.back()), row.cpu_us,
                row.peak_mib, outcome_text(row).c_str());
        }
    }
}

const Row* find_row(const std::vector<Row>& rows, const std::string& name) {
    for (const auto& r : rows) {
        if (r.filter == name) return &r;
    }
    return nullptr;
}

struct Config {
    std::size_t size;
    Kind kind;
    int conns;
    std::vector<Row> rows;
};

std::string machine_line() {
    std::string model;
    std::istringstream in(slurp("/proc/cpuinfo"));
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) == 0) {
            model = line.substr(line.find(':') + 2);
            break;
        }
    }
    std::string load = slurp("/proc/loadavg");
    if (!load.empty()) load = load.substr(0, load.find(' ', load.find(' ', load.find(' ') + 1) + 1));
    return fmt::format("{} CPUs ({}), load average {}", std::thread::hardware_concurrency(), model, load);
}

void pin_self_away(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    int n = static_cast<int>(std::thread::hardware_concurrency());
    for (int i = 0; i < n; ++i) {
        if (i != cpu) CPU_SET(i, &set);
    }
    if (n < 2 || sched_setaffinity(0, sizeof set, &set) != 0) die("--pin needs at least two CPUs");
}

void start_filters(Bench& b, const std::vector<std::string>& names) {
    for (const auto& name : names) {
        if (name == "opendkim" && b.opt.opendkim.empty()) {
            if (b.opt.filters_given) die("opendkim is not installed (apt-get install opendkim)");
            std::printf("  (opendkim is not installed: left out)\n");
            continue;
        }
        b.start_filter(name, b.opt.pin);
    }
}

void setup(Bench& b, const std::vector<std::size_t>& sizes, const std::vector<Kind>& kinds) {
    char tmpl[] = "/tmp/vigil-bench.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) die("mkdtemp failed");
    b.dir = tmpl;
    chmod(b.dir.c_str(), 0755);
    CorpusSpec cs;
    cs.seed = b.opt.seed;
    cs.variants = b.opt.variants;
    cs.sizes = sizes;
    cs.kinds = kinds;
    b.corpus = std::make_unique<Corpus>(cs);
    if (!b.opt.write_corpus.empty()) {
        fs::create_directories(b.opt.write_corpus);
        b.corpus->write_messages(b.opt.write_corpus);
    }
    b.start_dns();
}

// -- modes ---------------------------------------------------------------------------------------

int run_matrix(Bench& b) {
    const Options& o = b.opt;
    std::vector<Kind> all_kinds = o.kinds;
    for (Kind k : {Kind::plain, Kind::rsa, Kind::ed25519, Kind::dual}) {
        if (std::find(all_kinds.begin(), all_kinds.end(), k) == all_kinds.end()) all_kinds.push_back(k);
    }
    std::vector<std::size_t> sizes = o.sizes;
    std::size_t smallest = *std::min_element(sizes.begin(), sizes.end());
    // The sanity pass needs every kind at one size only.
    setup(b, sizes, all_kinds);
    std::printf("vigil-bench: %s\n", machine_line().c_str());
    std::printf("work dir %s, test DNS server on 127.0.0.1:%d\n", b.dir.c_str(), b.dns_port);
    start_filters(b, o.filters);
    std::printf("sanity pass (%s, every kind, 1 connection; also warms the DNS caches):\n",
                size_label(smallest).c_str());
    sanity(b, smallest, all_kinds, true);
    if (b.failures > 0)
        std::printf("  the sanity pass found %d problem(s): figures below are not trustworthy\n", b.failures);

    std::vector<Config> configs;
    for (std::size_t size : sizes) {
        for (Kind kind : o.kinds) {
            for (int conns : o.conns) {
                std::vector<std::vector<Row>> rounds(b.filters.size());
                for (int round = 0; round < o.repeat; ++round) {
                    for (std::size_t fi = 0; fi < b.filters.size(); ++fi) {
                        LoadSpec s;
                        s.connections = conns;
                        s.persistent = o.persistent;
                        s.rate = o.rate;
                        s.warmup_s = o.warmup;
                        s.duration_s = o.duration;
                        s.nodelay = o.nodelay;
                        s.corpus = pointers(b.corpus->cell(size, kind));
                        s.clients = b.corpus->clients();
                        rounds[fi].push_back(measure(*b.filters[fi], s));
                    }
                }
                Config c{size, kind, conns, {}};
                for (auto& rs : rounds) {
                    std::sort(rs.begin(), rs.end(),
                              [](const Row& x, const Row& y) { return x.r.msgs_per_s() < y.r.msgs_per_s(); });
                    c.rows.push_back(rs[rs.size() / 2]);
                }
                std::printf("\n%s %s %s · %d connection%s · %s · %s · %s%s%s\n",
                            o.markdown ? "####" : "==", size_label(size).c_str(),
                            std::string(to_string(kind)).c_str(), conns, conns == 1 ? "" : "s",
                            o.persistent ? "persistent sessions" : "one session per message",
                            o.rate > 0 ? fmt::format("open loop {} msg/s", o.rate).c_str() : "closed loop",
                            o.transport.c_str(),
                            o.pin ? fmt::format(" · filters on CPU {}", *o.pin).c_str() : "",
                            o.repeat > 1 ? fmt::format(" · median of {} rounds", o.repeat).c_str() : "");
                print_rows(c.rows, o.markdown);
                const Row* v = find_row(c.rows, "vigil");
                const Row* fl = find_row(c.rows, "floor");
                const Row* od = find_row(c.rows, "opendkim");
                std::string ratios;
                if (v && fl && fl->r.msgs_per_s() > 0)
                    ratios += fmt::format("vigil / floor: {:.2f} msg/s, {:.1f}x CPU per message",
                                          v->r.msgs_per_s() / fl->r.msgs_per_s(),
                                          fl->cpu_us > 0 ? v->cpu_us / fl->cpu_us : 0);
                const Row* rx = find_row(c.rows, "floor-rx");
                if (v && rx && rx->r.msgs_per_s() > 0)
                    ratios += fmt::format("{}vigil / floor-rx: {:.2f} msg/s", ratios.empty() ? "" : "; ",
                                          v->r.msgs_per_s() / rx->r.msgs_per_s());
                if (v && od && od->r.msgs_per_s() > 0)
                    ratios += fmt::format("{}vigil / opendkim: {:.2f}x msg/s, {:.2f}x CPU per message",
                                          ratios.empty() ? "" : "; ", v->r.msgs_per_s() / od->r.msgs_per_s(),
                                          od->cpu_us > 0 ? v->cpu_us / od->cpu_us : 0);
                if (!ratios.empty()) std::printf("%s\n", ratios.c_str());
                configs.push_back(std::move(c));
            }
        }
    }

    // Summary, and the issue's targets where this run measured them.
    std::printf("\n%s summary (msg/s; ratios of msg/s)\n", o.markdown ? "####" : "==");
    std::printf(
        "| size | kind | conns | floor | floor-rx | opendkim | vigil | vigil/floor | vigil/opendkim | vigil "
        "p99 ms | vigil CPU µs/msg | vigil RSS MiB |\n");
    std::printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const auto& c : configs) {
        const Row* v = find_row(c.rows, "vigil");
        const Row* fl = find_row(c.rows, "floor");
        const Row* od = find_row(c.rows, "opendkim");
        const Row* rx = find_row(c.rows, "floor-rx");
        auto rate = [](const Row* r) {
            return r ? fmt::format("{:.0f}", r->r.msgs_per_s()) : std::string("-");
        };
        auto ratio = [&](const Row* r, const char* f) {
            return v && r && r->r.msgs_per_s() > 0
                       ? fmt::format(fmt::runtime(f), v->r.msgs_per_s() / r->r.msgs_per_s())
                       : std::string("-");
        };
        std::printf("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                    size_label(c.size).c_str(), std::string(to_string(c.kind)).c_str(), c.conns,
                    rate(fl).c_str(), rate(rx).c_str(), rate(od).c_str(), rate(v).c_str(),
                    ratio(fl, "{:.2f}").c_str(), ratio(od, "{:.2f}").c_str(),
                    v ? fmt::format("{:.2f}", ms(percentile(v->r.txn_ns, 99))).c_str() : "-",
                    v ? fmt::format("{:.1f}", v->cpu_us).c_str() : "-",
                    v ? fmt::format("{:.1f}", v->peak_mib).c_str() : "-");
    }
    auto met = [](bool ok) { return ok ? "met" : "NOT met"; };
    for (const auto& c : configs) {
        const Row* v = find_row(c.rows, "vigil");
        if (!v || c.kind != Kind::rsa || c.size != 4096) continue;
        const Row* fl = find_row(c.rows, "floor");
        const Row* od = find_row(c.rows, "opendkim");
        if (c.conns == 8 && o.rate == 0) {
            std::printf("target (4 KiB RSA, 8 connections): vigil >= 50%% of the floor: %s",
                        fl ? met(v->r.msgs_per_s() >= 0.5 * fl->r.msgs_per_s()) : "not measured");
            std::printf("; >= 5x OpenDKIM: %s",
                        od ? met(v->r.msgs_per_s() >= 5 * od->r.msgs_per_s()) : "not measured");
            std::printf("; p99 <= 2 ms: %s (%.2f ms)%s\n", met(ms(percentile(v->r.txn_ns, 99)) <= 2.0),
                        ms(percentile(v->r.txn_ns, 99)), o.pin ? "" : "  [the issue measures with --pin]");
        }
        if (c.conns == 256)
            std::printf("target (256 connections): vigil peak RSS <= 64 MB: %s (%.1f MiB)\n",
                        met(v->peak_mib <= 64), v->peak_mib);
    }
    // Cost = fixed + per byte: with two large sizes measured, the slope between them and what it
    // predicts for the smaller one show whether the cost is linear in size.
    for (const auto& a : configs) {
        for (const auto& z : configs) {
            if (a.size != 102400 || z.size != 1048576 || a.kind != z.kind || a.conns != z.conns) continue;
            for (const char* name : {"vigil", "opendkim", "floor-rx"}) {
                const Row* ra = find_row(a.rows, name);
                const Row* rz = find_row(z.rows, name);
                if (!ra || !rz || ra->cpu_us <= 0) continue;
                double per_kib = (rz->cpu_us - ra->cpu_us) / ((1048576.0 - 102400.0) / 1024.0);
                std::printf(
                    "size scaling %s (%s, %d conns): %.1f µs/msg at 100 KiB, %.1f at 1 MiB: %.2f µs per "
                    "extra KiB, "
                    "fixed part %.0f µs; peak RSS %.1f vs %.1f MiB\n",
                    name, std::string(to_string(a.kind)).c_str(), a.conns, ra->cpu_us, rz->cpu_us, per_kib,
                    ra->cpu_us - per_kib * 100, ra->peak_mib, rz->peak_mib);
            }
        }
    }
    for (const auto& f : b.filters) std::printf("%s: %s\n", f->name.c_str(), f->note.c_str());
    std::printf("ended at load average %s\n",
                machine_line().substr(machine_line().rfind("load average ") + 13).c_str());
    if (o.keep) std::printf("kept %s\n", b.dir.c_str());
    return b.failures > 0 ? 1 : 0;
}

int run_smoke(Bench& b) {
    std::vector<Kind> kinds = {Kind::plain, Kind::rsa, Kind::ed25519, Kind::dual};
    setup(b, {4096}, kinds);
    std::vector<std::string> names = {"floor", "floor-rx", "vigil"};
    if (!b.opt.opendkim.empty()) names.insert(names.begin() + 2, "opendkim");
    start_filters(b, names);
    std::printf("smoke: sanity pass\n");
    sanity(b, 4096, kinds, true);
    struct Variant {
        const char* what;
        bool persistent;
        double rate;
        int conns;
    };
    for (const Variant& v : {Variant{"closed loop, persistent", true, 0, 2},
                             Variant{"closed loop, session per message", false, 0, 2},
                             Variant{"open loop 200 msg/s, persistent", true, 200, 4}}) {
        std::vector<Row> rows;
        for (auto& f : b.filters) {
            LoadSpec s;
            s.connections = v.conns;
            s.persistent = v.persistent;
            s.rate = v.rate;
            s.warmup_messages = 20;
            s.messages = 100;
            s.nodelay = b.opt.nodelay;
            s.reply_timeout_s = 10;
            s.corpus = pointers(b.corpus->cell(4096, Kind::rsa));
            s.clients = b.corpus->clients();
            rows.push_back(measure(*f, s));
            const Row& r = rows.back();
            bool ok = r.r.errors == 0 && r.r.outcomes.size() == 1 && r.r.outcomes.count("accept") &&
                      r.r.outcomes.at("accept") == 100 && r.r.txn_ns.size() == 100 &&
                      r.r.eom_ns.size() == 100 && r.r.msgs_per_s() > 0 && r.peak_mib > 0;
            if (!ok) {
                ++b.failures;
                std::printf("  PROBLEM %s, %s: %s\n", f->name.c_str(), v.what, outcome_text(r.r).c_str());
            }
        }
        std::printf("smoke: %s\n", v.what);
        print_rows(rows, false);
    }
    std::printf("smoke: %s\n", b.failures == 0 ? "ok" : "FAILED");
    return b.failures > 0 ? 1 : 0;
}

// Total instructions ("summary:" or "totals:" line) of a callgrind output file.
std::optional<unsigned long long> callgrind_total(const std::string& file) {
    std::istringstream in(slurp(file));
    std::string line;
    std::optional<unsigned long long> v;
    while (std::getline(in, line)) {
        if (line.rfind("summary:", 0) == 0 || line.rfind("totals:", 0) == 0)
            v = std::strtoull(line.c_str() + line.find(':') + 1, nullptr, 10);
    }
    return v;
}

int run_callgrind(Bench& b) {
    std::uint64_t n = *b.opt.callgrind;
    const std::uint64_t warm = 100;
    const int top = 25;
    if (which("valgrind").empty() || which("callgrind_control").empty())
        die("needs valgrind (apt-get install valgrind)");
    setup(b, {4096}, {Kind::plain, Kind::rsa, Kind::ed25519, Kind::dual});
    std::printf("vigil-bench --callgrind: %s\n", machine_line().c_str());
    std::vector<std::string> names =
        b.opt.filters_given ? b.opt.filters : std::vector<std::string>{"floor", "vigil"};
    for (const auto& name : names) {
        if (name == "opendkim" && b.opt.opendkim.empty()) continue;
        std::string out = b.path("callgrind.out." + name);
        b.start_filter(name, std::nullopt,
                       {"valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, "--dump-instr=no",
                        "--collect-jumps=no"});
        Filter& f = *b.filters.back();
        LoadSpec s;
        s.target = f.target;
        s.connections = 1;
        s.persistent = b.opt.persistent;
        s.warmup_messages = warm;
        s.messages = n;
        s.nodelay = b.opt.nodelay;
        s.reply_timeout_s = 120;
        s.corpus = pointers(b.corpus->cell(4096, Kind::rsa));
        s.clients = b.corpus->clients();
        pid_t pid = f.child.pid();
        auto control = [&](const char* what) {
            std::string cmd = fmt::format("callgrind_control {} {} > '{}' 2>&1", what, pid,
                                          b.path("callgrind_control.log"));
            if (std::system(cmd.c_str()) != 0)
                die("callgrind_control failed: " + slurp(b.path("callgrind_control.log")));
        };
        // Counters start at zero after the warm-up (connection set-up, cold caches, first-use
        // allocations) and are dumped after the N measured messages.
        s.on_window_start = [&] { control("-z"); };
        auto r = run_load(s);
        control("-d");
        if (r.errors > 0 || r.completed != n)
            die(fmt::format("{} under callgrind: {}", name, outcome_text(r)));
        // The dump is written as OUT.1 (the final one, at exit, as OUT).
        std::string dump;
        for (const auto& e : fs::directory_iterator(b.dir)) {
            auto p = e.path().string();
            if (p.rfind(out + ".", 0) == 0) dump = p;
        }
        auto total = dump.empty() ? std::nullopt : callgrind_total(dump);
        if (!total) die("no callgrind dump found for " + name);
        std::printf("%-8s %llu instructions per message (%llu over %llu messages, 4 KiB RSA-signed, %s)\n",
                    name.c_str(), *total / n, *total, static_cast<unsigned long long>(n),
                    b.opt.persistent ? "1 persistent connection" : "one connection per message");
        std::string keep = fmt::format("callgrind.{}.out", name);
        fs::copy_file(dump, keep, fs::copy_options::overwrite_existing);
        std::printf("         profile: %s (callgrind_annotate --inclusive=yes %s | head -60)\n", keep.c_str(),
                    keep.c_str());
        if (name.rfind("floor", 0) != 0) {
            // Where the instructions go: the top cost centres by self cost.
            std::string cmd =
                fmt::format("callgrind_annotate --inclusive=no --threshold=100 '{}' 2>/dev/null", keep);
            std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
            char line[4096];
            int shown = 0;
            bool table = false;
            while (p && std::fgets(line, sizeof line, p.get()) != nullptr && shown < top) {
                std::string l = line;
                if (l.find("file:function") != std::string::npos) {
                    table = true;
                    continue;
                }
                // Thread entry points carry everything; they say nothing.
                if (!table || l.find('(') == std::string::npos ||
                    l.find("clone.S:clone") != std::string::npos ||
                    l.find(":start_thread") != std::string::npos)
                    continue;
                if (l.size() > 180) l = l.substr(0, 177) + "...\n";
                std::printf("         %s", l.c_str());
                ++shown;
            }
        }
        f.child.stop(5);
        b.filters.pop_back();
    }
    if (b.dmarc) std::printf("vigil ran with dmarc on\n");
    return 0;
}

// True once every thread of `pid` is traced (strace -p attaches thread by thread).
bool all_threads_traced(pid_t pid) {
    std::error_code ec;
    int n = 0;
    for (const auto& t : fs::directory_iterator(fmt::format("/proc/{}/task", pid), ec)) {
        std::istringstream in(slurp(t.path().string() + "/status"));
        std::string line;
        bool traced = false;
        while (std::getline(in, line)) {
            if (line.rfind("TracerPid:", 0) == 0) traced = std::strtol(line.c_str() + 10, nullptr, 10) != 0;
        }
        if (!traced) return false;
        ++n;
    }
    return n > 0;
}

// Where the kernel time goes: the filter's system calls per message, side by side. strace slows the
// filter down, so only the counts mean anything, not its seconds.
int run_syscalls(Bench& b) {
    std::uint64_t n = *b.opt.syscalls;
    const std::uint64_t warm = 200;
    int conns = b.opt.conns_given ? b.opt.conns.front() : 8;
    if (which("strace").empty()) die("needs strace (apt-get install strace)");
    setup(b, {4096}, {Kind::plain, Kind::rsa, Kind::ed25519, Kind::dual});
    std::printf("vigil-bench --syscalls: %s\n", machine_line().c_str());
    std::printf("%llu messages, 4 KiB RSA-signed, %d %s over %s, after %llu unmeasured\n",
                static_cast<unsigned long long>(n), conns,
                b.opt.persistent ? (conns == 1 ? "persistent connection" : "persistent connections")
                                 : (conns == 1 ? "client, a new connection per message"
                                               : "clients, a new connection per message"),
                b.opt.transport.c_str(), static_cast<unsigned long long>(warm));
    std::vector<std::string> names =
        b.opt.filters_given ? b.opt.filters : std::vector<std::string>{"floor-rx", "vigil"};
    std::map<std::string, std::map<std::string, std::pair<double, double>>>
        table;  // syscall -> filter -> calls, errors
    std::map<std::string, double> totals;
    for (const auto& name : names) {
        if (name == "opendkim" && b.opt.opendkim.empty()) continue;
        b.start_filter(name, std::nullopt);
        Filter& f = *b.filters.back();
        LoadSpec s;
        s.target = f.target;
        s.connections = conns;
        s.persistent = b.opt.persistent;
        s.warmup_messages = warm;
        s.messages = n;
        s.nodelay = b.opt.nodelay;
        s.corpus = pointers(b.corpus->cell(4096, Kind::rsa));
        s.clients = b.corpus->clients();
        std::string out = b.path("strace." + name);
        Child tracer;
        s.on_window_start = [&] {
            tracer = Child({"strace", "-f", "-c", "-q", "-o", out, "-p", std::to_string(f.child.pid())},
                           b.path("strace.log"));
            for (int i = 0; i < 500 && !all_threads_traced(f.child.pid()); ++i) usleep(10000);
            if (!all_threads_traced(f.child.pid()))
                die("strace did not attach: " + slurp(b.path("strace.log")));
        };
        auto r = run_load(s);
        tracer.stop(10);  // strace detaches and writes its summary on SIGTERM
        if (r.errors > 0 || r.completed != n) die(fmt::format("{} under strace: {}", name, outcome_text(r)));
        // "% time  seconds  usecs/call  calls  errors syscall"
        std::istringstream in(slurp(out));
        std::string line;
        bool any = false;
        while (std::getline(in, line)) {
            std::istringstream l(line);
            std::vector<std::string> w;
            for (std::string x; l >> x;) w.push_back(x);
            if (w.size() < 5 || w.back() == "total" || w.back() == "syscall" ||
                !std::isdigit(static_cast<unsigned char>(w[0][0])))
                continue;
            bool has_errors = w.size() == 6;
            double calls = std::strtod(w[3].c_str(), nullptr) / static_cast<double>(n);
            double errors = has_errors ? std::strtod(w[4].c_str(), nullptr) / static_cast<double>(n) : 0;
            table[w.back()][name] = {calls, errors};
            totals[name] += calls;
            any = true;
        }
        if (!any) die("no strace summary for " + name + ": " + slurp(out));
        f.child.stop(5);
        b.filters.pop_back();
    }
    std::vector<std::pair<std::string, double>> rows;
    for (const auto& [sc, by] : table) {
        double most = 0;
        for (const auto& [fname, ce] : by) most = std::max(most, ce.first);
        rows.emplace_back(sc, most);
    }
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& c) { return a.second > c.second; });
    std::printf("%-18s", "calls per message");
    for (const auto& name : names) std::printf(" %14s", name.c_str());
    std::printf("\n");
    for (const auto& [sc, most] : rows) {
        if (most < 0.005) continue;
        std::printf("%-18s", sc.c_str());
        for (const auto& name : names) {
            auto it = table[sc].find(name);
            if (it == table[sc].end()) {
                std::printf(" %14s", "-");
            } else if (it->second.second > 0) {
                std::printf(" %14s",
                            fmt::format("{:.2f} ({:.2f} err)", it->second.first, it->second.second).c_str());
            } else {
                std::printf(" %14.2f", it->second.first);
            }
        }
        std::printf("\n");
    }
    std::printf("%-18s", "total");
    for (const auto& name : names) std::printf(" %14.2f", totals[name]);
    std::printf("\n");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    signal(SIGPIPE, SIG_IGN);
    Bench b;
    b.opt = parse(argc, argv);
    for (const auto& [what, path] :
         {std::pair{"vigil-milter", b.opt.vigil}, std::pair{"vigil-noop-milter", b.opt.noop},
          std::pair{"vigil-test-dns", b.opt.dns}}) {
        if (access(path.c_str(), X_OK) != 0)
            die(fmt::format("{} not found at {} (build it, or pass its path)", what, path));
    }
    if (b.opt.pin) pin_self_away(*b.opt.pin);
    static Bench* current = &b;
    g_cleanup = [] { current->~Bench(); };
    // Best effort (not async-signal-safe, but the alternative is filters left running).
    signal(SIGINT, [](int) {
        if (auto c = std::exchange(g_cleanup, nullptr)) c();
        _exit(130);
    });
    int rc = 0;
    try {
        rc = b.opt.callgrind  ? run_callgrind(b)
             : b.opt.syscalls ? run_syscalls(b)
             : b.opt.smoke    ? run_smoke(b)
                              : run_matrix(b);
    } catch (const std::exception& e) {
        die(e.what());
    }
    g_cleanup = nullptr;  // b's destructor does it
    return rc;
}
