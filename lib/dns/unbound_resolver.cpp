#include "dns/unbound_resolver.hpp"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <unbound.h>

#include "core/printable.hpp"
#include "dns/rdata.hpp"

namespace vigil::dns {

namespace {

constexpr int class_in = 1;

// RFC 1035 §4.1.1 and RFC 2136 §2.2 response codes that get their own name in Answer::detail.
constexpr int rcode_noerror = 0;
constexpr int rcode_nxdomain = 3;

std::string rcode_name(int rcode) {
    switch (rcode) {
        case 1:
            return "FORMERR";
        case 2:
            return "SERVFAIL";
        case 4:
            return "NOTIMP";
        case 5:
            return "REFUSED";
        default:
            return fmt::format("RCODE {}", rcode);
    }
}

// Sizes of unbound's own caches. Vigil's CachingResolver holds the answers; unbound's caches matter for
// what it does not see: delegations, DNSKEYs and DS records while recursing or validating. In
// single-server mode there is nothing to recurse or validate, so they are kept tiny. They cannot be
// switched off (measured: even a size of 0 keeps answering repeats from cache), so in every mode unbound
// may answer a repeated question from its cache within the record's TTL; TTL 0 records are never reused.
constexpr const char* unbound_cache_size = "8m";
constexpr const char* single_server_cache_size = "64k";
// Upstream UDP queries libunbound keeps outstanding at once (one socket each). libunbound's default is
// 16, which serializes a busy milter: measured against a server answering in 200 ms, 17 parallel
// lookups took 404 ms and 100 took 1414 ms. The daemon needs a file descriptor limit well above this.
constexpr const char* unbound_outgoing_range = "512";
// How long unbound remembers a server's round-trip time and failures in forward and single-server mode.
// The default (900 s) lets one burst of timeouts for a single name mark the only upstream as down for
// 15 minutes; a minute still damps a dead server without holding a grudge.
constexpr const char* forward_infra_host_ttl = "60";

// libunbound answers these itself by default (RFC 6761/6762/7686/8375 special-use names and their
// reverse zones, as of unbound 1.17: see ub_ctx_print_local_zones). In single-server mode every query
// must reach the one server, test zones under .test and TEST-NET reverse zones included, so they are
// made transparent (local data, of which there is none, else resolve normally). The AS112 reverse zones
// (RFC 1918, TEST-NET, ...) are released with unblock-lan-zones. The last two are defaults of newer
// unbound versions; naming them here is harmless on older ones.
constexpr const char* special_use_zones[] = {
    "localhost.",
    "127.in-addr.arpa.",
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
    "home.arpa.",
    "test.",
    "onion.",
    "invalid.",
    "resolver.arpa.",
    "service.arpa.",
};

void check(int rc, std::string_view what) {
    if (rc != 0) throw std::runtime_error(fmt::format("libunbound: {}: {}", what, ub_strerror(rc)));
}

void set_option(ub_ctx* ctx, const char* name, const std::string& value) {
    int rc = ub_ctx_set_option(ctx, name, value.c_str());
    if (rc != 0) {
        throw std::runtime_error(fmt::format("libunbound: option {} {}: {}", name, value, ub_strerror(rc)));
    }
}

std::uint32_t clamp_ttl(int ttl) {
    if (ttl <= static_cast<int>(limits::min_ttl)) return limits::min_ttl;
    return std::min(static_cast<std::uint32_t>(ttl), limits::max_ttl);
}

// unbound's text names carry a trailing dot and the server's letter case.
std::string owner_text(const char* text) {
    std::string_view s = text != nullptr ? text : "";
    if (!s.empty() && s.back() == '.') s.remove_suffix(1);
    return core::to_lower(s);
}

}  // namespace

Answer detail::answer_from_unbound(int err, const ub_result* r, RrType type, bool validating) {
    if (err != 0 || r == nullptr) {
        return Answer::failure(Status::servfail, fmt::format("libunbound: {}", ub_strerror(err)));
    }
    Answer a;
    a.dnssec = !validating ? Dnssec::unchecked
               : r->secure ? Dnssec::secure
               : r->bogus  ? Dnssec::bogus
                           : Dnssec::insecure;
    a.ttl = clamp_ttl(r->ttl);
    if (r->rcode == rcode_noerror) {
        a.status = r->havedata ? Status::answer : Status::nodata;
    } else if (r->rcode == rcode_nxdomain) {
        a.status = Status::nxdomain;
    } else {
        a.status = Status::servfail;
        a.detail = rcode_name(r->rcode);
    }
    if (a.dnssec == Dnssec::bogus) {
        if (!a.detail.empty()) a.detail += "; ";
        a.detail +=
            "DNSSEC bogus: " + core::printable(r->why_bogus != nullptr ? r->why_bogus : "no reason given",
                                               limits::max_detail_length);
    }
    if (a.status != Status::answer) {
        if (a.status == Status::servfail) a.ttl = 0;
        return a;
    }

    const std::string owner = owner_text(r->canonname != nullptr ? r->canonname : r->qname);
    // Look at no more rdata than we could keep (one extra tells us whether anything was dropped).
    std::vector<std::string_view> rdatas;
    for (std::size_t i = 0; r->data != nullptr && r->data[i] != nullptr; ++i) {
        if (rdatas.size() > limits::max_records_per_answer) break;
        if (r->len == nullptr || r->len[i] < 0)
            return Answer::failure(Status::malformed, "negative rdata length");
        rdatas.emplace_back(r->data[i], static_cast<std::size_t>(r->len[i]));
    }
    std::string detail;
    if (!decode_answer_records(type, owner, rdatas, a.records, detail)) {
        return Answer::failure(Status::malformed, core::printable(detail, limits::max_detail_length),
                               a.dnssec);
    }
    if (!detail.empty()) a.detail = a.detail.empty() ? detail : a.detail + "; " + detail;
    if (a.records.empty()) a.status = Status::nodata;  // havedata without data: treat as nothing there
    // libunbound asks upstream with the DO bit and hands the RRSIGs back only inside answer_packet.
    // An undecodable packet just shows no signatures.
    if (type == RrType::dnskey && a.ok() && r->answer_packet != nullptr && r->answer_len > 0) {
        std::string ignored;
        find_signatures({static_cast<const char*>(r->answer_packet), static_cast<std::size_t>(r->answer_len)},
                        type, a.signatures, ignored);
    }
    return a;
}

namespace {

bool parse_port(std::string_view text, unsigned& port) {
    if (text.empty() || text.size() > 5) return false;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    return ec == std::errc() && end == text.data() + text.size() && port >= 1 && port <= 65535;
}

}  // namespace

std::optional<std::string> unbound_server_address(std::string_view text) {
    std::string_view host = text;
    std::optional<unsigned> port;
    unsigned p = 0;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        host = text.substr(1, close - 1);
        auto rest = text.substr(close + 1);
        if (!rest.empty()) {
            if ((rest.front() != ':' && rest.front() != '@') || !parse_port(rest.substr(1), p))
                return std::nullopt;
            port = p;
        }
    } else if (auto at = text.find('@'); at != std::string_view::npos) {
        host = text.substr(0, at);
        if (!parse_port(text.substr(at + 1), p)) return std::nullopt;
        port = p;
    } else if (auto colon = text.find(':');
               colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
        // Exactly one colon: IPv4 "HOST:PORT" (an IPv6 literal has at least two).
        host = text.substr(0, colon);
        if (!parse_port(text.substr(colon + 1), p)) return std::nullopt;
        port = p;
    }
    // Only literals: resolving a host name for the resolver itself would need a resolver.
    if (host.find_first_of("[]") != std::string_view::npos) return std::nullopt;
    auto ip = core::IpAddress::parse(host);
    if (!ip) return std::nullopt;
    std::string out = ip->to_string();
    if (port) out += fmt::format("@{}", *port);
    return out;
}

struct UnboundResolver::Impl {
    using Clock = std::chrono::steady_clock;

    // One in-flight query. Owned by `queries`; its address is libunbound's callback argument, so it
    // stays put until the callback has run or libunbound has promised not to run it (ub_cancel).
    struct Query {
        Impl* impl;
        std::uint64_t seq;
        RrType type;
        Promise promise;
        int async_id = 0;
        bool has_id = false;
        bool abandoned = false;  // timed out but could not be cancelled: the callback will still come
    };

    explicit Impl(const Options& o) : options(o) {}

    Options options;
    bool validating = false;
    ub_ctx* ctx = nullptr;
    int wake_fd = -1;
    std::thread worker;
    std::atomic<bool> stopping{false};
    std::atomic<bool> bg_started{false};

    mutable std::mutex mutex;
    std::map<std::uint64_t, std::unique_ptr<Query>> queries;
    // (deadline, seq) in issue order; with one fixed query_timeout that is also deadline order.
    std::deque<std::pair<Clock::time_point, std::uint64_t>> deadlines;
    std::uint64_t next_seq = 1;
    bool broken = false;  // libunbound's result pipe failed; no result can arrive any more
    Stats counters;

    void configure();
    void run();
    void wake() const {
        std::uint64_t one = 1;
        // Cannot fail in a way that matters: EAGAIN means the counter is already non-zero (awake).
        [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
    }
    int poll_timeout_ms();
    void expire(Clock::time_point now);
    static void on_result(void* data, int err, ub_result* result);
};

void UnboundResolver::Impl::configure() {
    ctx = ub_ctx_create();
    if (ctx == nullptr) throw std::runtime_error("libunbound: could not create a context");
    // Resolve on a thread inside libunbound (not a forked process); we collect results from ub_fd().
    check(ub_ctx_async(ctx, 1), "ub_ctx_async");

    // Unbound hands us TTLs already clamped the way Answer documents them.
    set_option(ctx, "cache-max-ttl:", std::to_string(limits::max_ttl));
    set_option(ctx, "cache-max-negative-ttl:", std::to_string(limits::max_negative_ttl));
    set_option(ctx, "outgoing-range:", unbound_outgoing_range);
    const bool single = options.mode == Options::Mode::single_server;
    set_option(ctx, "msg-cache-size:", single ? single_server_cache_size : unbound_cache_size);
    set_option(ctx, "rrset-cache-size:", single ? single_server_cache_size : unbound_cache_size);

    switch (options.mode) {
        case Options::Mode::recursive:
            // Keep unbound's defaults, including do-not-query-localhost: a delegation to 127.0.0.1 on the
            // Internet is an attack, not a configuration.
            if (!options.root_hints_file.empty()) set_option(ctx, "root-hints:", options.root_hints_file);
            break;
        case Options::Mode::forward:
        case Options::Mode::single_server: {
            // The operator named these servers; they may well be on loopback (a local unbound, or the
            // test server on 127.0.0.1 with its own port).
            set_option(ctx, "do-not-query-localhost:", "no");
            // Forwarders get the full name anyway; minimisation would only add queries.
            set_option(ctx, "qname-minimisation:", "no");
            // With one or two upstreams, declaring them all down after a few timeouts (for a name the
            // server chooses not to answer) turns every later lookup into an instant SERVFAIL. Keep
            // probing instead, and forget failures after a minute.
            set_option(ctx, "infra-keep-probing:", "yes");
            set_option(ctx, "infra-host-ttl:", forward_infra_host_ttl);
            // Private-address reverse zones (10.in-addr.arpa, ...) belong to the forwarders, which may
            // well hold PTRs for internal relays; by default unbound answers them NXDOMAIN itself.
            // insecure-lan-zones keeps validation from calling such local answers bogus.
            set_option(ctx, "unblock-lan-zones:", "yes");
            set_option(ctx, "insecure-lan-zones:", "yes");
            if (single) {
                for (const char* zone : special_use_zones)
                    set_option(ctx, "local-zone:", fmt::format("{} transparent", zone));
            }
            std::vector<std::string> servers;
            if (single) {
                if (options.single_server.empty())
                    throw std::runtime_error("single_server mode needs HOST:PORT");
                servers.push_back(options.single_server);
            } else {
                servers = options.forwarders;
            }
            for (const auto& s : servers) {
                auto addr = unbound_server_address(s);
                if (!addr) {
                    throw std::runtime_error(
                        fmt::format("DNS server address '{}' is not IP, IP@PORT or HOST:PORT "
                                    "with an IP literal",
                                    core::printable(s)));
                }
                check(ub_ctx_set_fwd(ctx, addr->c_str()), "ub_ctx_set_fwd " + *addr);
            }
            if (servers.empty()) check(ub_ctx_resolvconf(ctx, nullptr), "ub_ctx_resolvconf /etc/resolv.conf");
            break;
        }
    }

    validating = options.dnssec && !single;
    if (validating) {
        if (!std::ifstream(options.trust_anchor_file)) {
            throw std::runtime_error(fmt::format("DNSSEC trust anchor file '{}' is not readable",
                                                 core::printable(options.trust_anchor_file)));
        }
        check(ub_ctx_add_ta_file(ctx, options.trust_anchor_file.c_str()), "ub_ctx_add_ta_file");
    } else {
        // No validator module at all: nothing is marked secure or bogus, answers are taken as they come.
        set_option(ctx, "module-config:", "iterator");
    }
    // Finalize now, so that a bad setting (e.g. an unparsable trust anchor) fails at start-up rather than
    // at the first query. Removing a zone that does not exist is the cheapest public call that
    // finalizes the context.
    check(ub_ctx_zone_remove(ctx, "finalize.vigil.invalid."),
          "applying the configuration (trust anchor? root hints? see libunbound's messages above)");
}

int UnboundResolver::Impl::poll_timeout_ms() {
    std::lock_guard lock(mutex);
    while (!deadlines.empty()) {
        auto it = queries.find(deadlines.front().second);
        if (it != queries.end() && !it->second->abandoned) break;
        deadlines.pop_front();  // answered (or already timed out): nothing to wait for
    }
    if (deadlines.empty()) return -1;
    auto left = deadlines.front().first - Clock::now();
    if (left <= Clock::duration::zero()) return 0;
    // Round up so that we never wake just before the deadline and go back to sleep for 0 ms in a loop.
    // Deadlines are at most limits::max_query_timeout away, so the count fits an int.
    return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(left).count());
}

void UnboundResolver::Impl::expire(Clock::time_point now) {
    std::vector<Promise> timed_out;
    {
        std::lock_guard lock(mutex);
        while (!deadlines.empty() && deadlines.front().first <= now) {
            const auto seq = deadlines.front().second;
            deadlines.pop_front();
            auto it = queries.find(seq);
            if (it == queries.end() || it->second->abandoned) continue;
            Query& q = *it->second;
            timed_out.push_back(q.promise);
            ++counters.timeouts;
            // Cancel so that libunbound drops the query's callback; ub_cancel runs on this thread, the
            // only one that calls ub_process, so the callback cannot be running concurrently.
            if (q.has_id && ub_cancel(ctx, q.async_id) == 0) {
                queries.erase(it);
            } else {
                q.abandoned = true;
            }
        }
    }
    for (auto& p : timed_out)
        p.complete(Answer::failure(Status::timeout, "no answer within the query timeout"));
}

void UnboundResolver::Impl::on_result(void* data, int err, ub_result* result) {
    std::unique_ptr<ub_result, decltype(&ub_resolve_free)> owned(result, &ub_resolve_free);
    auto* q = static_cast<Query*>(data);
    Impl* self = q->impl;
    // seq and type never change after the Query is created, so they can be read without the lock.
    Answer answer = detail::answer_from_unbound(err, result, q->type, self->validating);
    std::optional<Promise> promise;
    {
        std::lock_guard lock(self->mutex);
        auto it = self->queries.find(q->seq);
        if (it == self->queries.end()) return;
        promise = it->second->promise;
        self->queries.erase(it);
        ++self->counters.answered;
        if (err != 0) ++self->counters.errors;
    }
    promise->complete(std::move(answer));  // a no-op if the query already timed out
}

void UnboundResolver::Impl::run() {
    const int ub = ub_fd(ctx);
    while (!stopping.load()) {
        pollfd fds[2] = {{ub, POLLIN, 0}, {wake_fd, POLLIN, 0}};
        {
            std::lock_guard lock(mutex);
            if (broken) fds[0].fd = -1;  // poll ignores negative descriptors
        }
        const int n = ::poll(fds, 2, poll_timeout_ms());
        if (n < 0 && errno != EINTR) {
            std::fprintf(stderr, "vigil: DNS resolver poll failed: %s\n", std::strerror(errno));
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        if (n > 0 && (fds[1].revents & POLLIN) != 0) {
            std::uint64_t count = 0;
            [[maybe_unused]] auto r = ::read(wake_fd, &count, sizeof count);
        }
        if (n > 0 && (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
            // Runs on_result for every finished query.
            if (int rc = ub_process(ctx); rc != 0) {
                std::fprintf(stderr, "vigil: libunbound stopped delivering results: %s\n", ub_strerror(rc));
                std::lock_guard lock(mutex);
                broken = true;
            }
        }
        expire(Clock::now());
    }
}

UnboundResolver::UnboundResolver(const Options& options) : impl_(std::make_unique<Impl>(options)) {
    if (options.query_timeout <= std::chrono::milliseconds::zero() ||
        options.query_timeout > limits::max_query_timeout) {
        throw std::runtime_error(
            fmt::format("DNS query timeout must be 1..{} ms", limits::max_query_timeout.count()));
    }
    try {
        impl_->configure();
        impl_->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (impl_->wake_fd < 0) throw std::runtime_error(fmt::format("eventfd: {}", std::strerror(errno)));
        // The I/O thread must not take process signals meant for the daemon's signal handling
        // (libmilter waits for them with sigwait), so it starts with every signal blocked.
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        try {
            impl_->worker = std::thread([impl = impl_.get()] { impl->run(); });
        } catch (...) {
            pthread_sigmask(SIG_SETMASK, &old, nullptr);
            throw;
        }
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
    } catch (...) {
        if (impl_->ctx != nullptr) ub_ctx_delete(impl_->ctx);
        if (impl_->wake_fd >= 0) ::close(impl_->wake_fd);
        throw;
    }
}

UnboundResolver::~UnboundResolver() {
    impl_->stopping.store(true);
    impl_->wake();
    if (impl_->worker.get_id() == std::this_thread::get_id()) {
        // Destroyed from a completion callback on our own I/O thread: we can neither join ourselves nor
        // free the context that ub_process is still using. Leak both rather than crash.
        impl_->worker.detach();
        (void)impl_.release();
        return;
    }
    if (impl_->worker.joinable()) impl_->worker.join();
    // Stops libunbound's thread and frees pending queries without calling their callbacks.
    ub_ctx_delete(impl_->ctx);
    std::vector<Promise> orphans;
    {
        std::lock_guard lock(impl_->mutex);
        for (auto& [seq, q] : impl_->queries) orphans.push_back(q->promise);
        impl_->queries.clear();
    }
    for (auto& p : orphans) p.complete(Answer::failure(Status::servfail, "resolver shut down"));
    ::close(impl_->wake_fd);
}

Pending UnboundResolver::lookup(std::string_view raw_name, RrType type) {
    QueryName qn = normalize_query_name(raw_name);
    if (!qn.ok()) return Pending::of(Answer::failure(Status::malformed, qn.error));
    // libunbound parses the name in presentation format, where a space must be written \032.
    std::string wire_name;
    for (char c : qn.name) {
        if (c == ' ') {
            wire_name += "\\032";
        } else {
            wire_name += c;
        }
    }
    if (!is_known_type(type))
        return Pending::of(Answer::failure(Status::malformed, "unsupported query type"));

    Impl& im = *impl_;
    Promise promise;
    std::uint64_t seq = 0;
    Impl::Query* raw = nullptr;
    {
        std::lock_guard lock(im.mutex);
        if (im.broken)
            return Pending::of(Answer::failure(Status::servfail, "libunbound stopped delivering results"));
        seq = im.next_seq++;
        auto q = std::make_unique<Impl::Query>(Impl::Query{&im, seq, type, promise});
        raw = q.get();
        im.queries.emplace(seq, std::move(q));
        const bool idle = im.deadlines.empty();
        im.deadlines.emplace_back(Impl::Clock::now() + im.options.query_timeout, seq);
        ++im.counters.queries;
        // A busy I/O thread already sleeps no later than the oldest deadline, which is earlier than ours;
        // an idle one sleeps without a timeout and must be told.
        if (idle) im.wake();
    }

    int async_id = 0;
    int rc = 0;
    if (!im.bg_started.load()) {
        // The first query starts libunbound's own thread, which inherits our signal mask: block
        // everything around it for the same reason as for the I/O thread.
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        rc = ub_resolve_async(im.ctx, wire_name.c_str(), static_cast<int>(type), class_in, raw,
                              &Impl::on_result, &async_id);
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
        im.bg_started.store(true);
    } else {
        rc = ub_resolve_async(im.ctx, wire_name.c_str(), static_cast<int>(type), class_in, raw,
                              &Impl::on_result, &async_id);
    }

    {
        std::lock_guard lock(im.mutex);
        auto it = im.queries.find(seq);
        if (rc != 0) {
            // libunbound did not take the query, so no callback will come for it.
            if (it != im.queries.end()) im.queries.erase(it);
            ++im.counters.errors;
        } else if (it != im.queries.end()) {
            it->second->async_id = async_id;
            it->second->has_id = true;
        }
    }
    if (rc != 0)
        promise.complete(Answer::failure(Status::servfail, fmt::format("libunbound: {}", ub_strerror(rc))));
    return promise.pending();
}

UnboundResolver::Stats UnboundResolver::stats() const {
    std::lock_guard lock(impl_->mutex);
    Stats s = impl_->counters;
    s.in_flight = impl_->queries.size();
    return s;
}

}  // namespace vigil::dns
