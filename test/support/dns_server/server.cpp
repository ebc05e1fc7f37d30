#include "server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace vigil::test_dns {
namespace {

using Clock = std::chrono::steady_clock;

// A legitimate query is a few hundred bytes; anything far larger is garbage or an attack on the harness.
constexpr std::size_t kMaxTcpQuery = 16 * 1024;
// A client that stops reading must not make the server buffer without bound.
constexpr std::size_t kMaxTcpOutput = 1024 * 1024;
constexpr std::size_t kMaxTcpConnections = 128;
// Bounds the time one loop iteration spends on UDP so TCP clients and timers are not starved.
constexpr int kMaxDatagramsPerWakeup = 64;
constexpr int kBindAttempts = 32;

// The only way a signal handler can talk to the loop; written only from the handler.
volatile std::sig_atomic_t g_stop_requested = 0;

extern "C" void on_stop_signal(int) {
    g_stop_requested = 1;
}

std::string errno_text(const char* what) {
    return std::string(what) + ": " + std::strerror(errno);
}

void set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL, 0);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        throw std::runtime_error(errno_text("fcntl"));
}

class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = other.fd_;
            other.fd_ = -1;
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    int get() const { return fd_; }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

  private:
    int fd_ = -1;
};

struct Peer {
    sockaddr_storage addr{};
    socklen_t len = 0;
};

struct TcpConn {
    Fd fd;
    std::vector<std::uint8_t> in;
    std::vector<std::uint8_t> out;
    Clock::time_point last_activity;
    int pending = 0;  // answers waiting in the timer queue; the connection must outlive them
    bool read_closed = false;
    bool dead = false;
};

struct Timer {
    Clock::time_point due;
    std::uint64_t seq;  // keeps equal deadlines in arrival order (the wrong-ID reply before the real one)
    bool tcp;
    Peer peer;
    std::uint64_t conn_id;
    std::vector<std::uint8_t> bytes;
};

struct TimerLater {
    bool operator()(const Timer& a, const Timer& b) const {
        return a.due != b.due ? a.due > b.due : a.seq > b.seq;
    }
};

}  // namespace

struct Server::Impl {
    const Responder& responder;
    Fd udp;
    Fd tcp;
    std::uint16_t port = 0;
    std::FILE* log = nullptr;
    std::unordered_map<std::uint64_t, TcpConn> conns;
    std::uint64_t next_conn_id = 1;
    std::vector<Timer> timers;  // a heap ordered by TimerLater
    std::uint64_t next_seq = 0;
    sigset_t wait_mask{};
    Clock::duration tcp_idle_timeout = std::chrono::seconds(10);

    explicit Impl(const Responder& r) : responder(r) {}

    ~Impl() {
        if (log != nullptr) std::fclose(log);
    }

    // Signals are blocked except inside ppoll, so a stop request can never slip in between the check of
    // the flag and the wait.
    void install_signals() {
        sigset_t block;
        sigemptyset(&block);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIGINT);
        if (sigprocmask(SIG_BLOCK, &block, &wait_mask) != 0)
            throw std::runtime_error(errno_text("sigprocmask"));
        sigdelset(&wait_mask, SIGTERM);
        sigdelset(&wait_mask, SIGINT);
        struct sigaction sa {};
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, nullptr);
        sigaction(SIGINT, &sa, nullptr);
        struct sigaction ignore {};
        ignore.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &ignore, nullptr);
    }

    void bind_sockets(const std::string& listen, std::uint16_t wanted_port) {
        addrinfo hints{};
        hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_DGRAM;
        addrinfo* found = nullptr;
        if (int rc = getaddrinfo(listen.c_str(), nullptr, &hints, &found); rc != 0) {
            throw std::runtime_error("--listen " + listen + ": " + gai_strerror(rc));
        }
        sockaddr_storage addr{};
        socklen_t addr_len = found->ai_addrlen;
        std::memcpy(&addr, found->ai_addr, found->ai_addrlen);
        int family = found->ai_family;
        freeaddrinfo(found);

        auto set_port = [&](std::uint16_t p) {
            if (family == AF_INET) {
                reinterpret_cast<sockaddr_in*>(&addr)->sin_port = htons(p);
            } else {
                reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port = htons(p);
            }
        };

        // With port 0 the kernel picks a TCP port that may be taken for UDP; retry until both fit.
        for (int attempt = 0; attempt < kBindAttempts; ++attempt) {
            Fd t(::socket(family, SOCK_STREAM, 0));
            if (t.get() < 0) throw std::runtime_error(errno_text("socket"));
            int one = 1;
            setsockopt(t.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            set_port(wanted_port);
            if (::bind(t.get(), reinterpret_cast<sockaddr*>(&addr), addr_len) != 0) {
                throw std::runtime_error(
                    errno_text(("bind tcp " + listen + " port " + std::to_string(wanted_port)).c_str()));
            }
            sockaddr_storage bound{};
            socklen_t bound_len = sizeof bound;
            getsockname(t.get(), reinterpret_cast<sockaddr*>(&bound), &bound_len);
            std::uint16_t p = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                                      : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
            Fd u(::socket(family, SOCK_DGRAM, 0));
            if (u.get() < 0) throw std::runtime_error(errno_text("socket"));
            set_port(p);
            if (::bind(u.get(), reinterpret_cast<sockaddr*>(&addr), addr_len) != 0) {
                if (errno == EADDRINUSE && wanted_port == 0) continue;
                throw std::runtime_error(
                    errno_text(("bind udp " + listen + " port " + std::to_string(p)).c_str()));
            }
            if (::listen(t.get(), 64) != 0) throw std::runtime_error(errno_text("listen"));
            set_nonblocking(t.get());
            set_nonblocking(u.get());
            tcp = std::move(t);
            udp = std::move(u);
            port = p;
            return;
        }
        throw std::runtime_error("could not find a port free for both UDP and TCP");
    }

    void write_log(const char* proto, const Reply& reply) {
        if (log == nullptr) return;
        if (reply.is_query) {
            std::fprintf(log, "%s %s %s %s\n", proto, reply.qname.c_str(), reply.qtype.c_str(),
                         reply.action.c_str());
        } else {
            std::fprintf(log, "%s - - dropped\n", proto);
        }
        std::fflush(log);
    }

    void schedule(Timer timer) {
        timers.push_back(std::move(timer));
        std::push_heap(timers.begin(), timers.end(), TimerLater{});
    }

    void send_udp(const Peer& peer, const std::vector<std::uint8_t>& bytes) {
        // A full socket buffer loses the datagram, exactly as the network could; the client retries.
        ::sendto(udp.get(), bytes.data(), bytes.size(), MSG_DONTWAIT,
                 reinterpret_cast<const sockaddr*>(&peer.addr), peer.len);
    }

    void flush(TcpConn& conn) {
        while (!conn.out.empty() && !conn.dead) {
            ssize_t n = ::send(conn.fd.get(), conn.out.data(), conn.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                conn.out.erase(conn.out.begin(), conn.out.begin() + n);
                conn.last_activity = Clock::now();
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                return;
            } else {
                conn.dead = true;
            }
        }
    }

    void send_tcp(std::uint64_t conn_id, const std::vector<std::uint8_t>& bytes) {
        auto it = conns.find(conn_id);
        if (it == conns.end() || it->second.dead) return;
        TcpConn& conn = it->second;
        if (conn.out.size() + bytes.size() + 2 > kMaxTcpOutput) {
            conn.dead = true;
            return;
        }
        conn.out.push_back(static_cast<std::uint8_t>(bytes.size() >> 8));
        conn.out.push_back(static_cast<std::uint8_t>(bytes.size() & 0xff));
        conn.out.insert(conn.out.end(), bytes.begin(), bytes.end());
        flush(conn);
    }

    // Returns false when the message was not a DNS query.
    bool dispatch(std::span<const std::uint8_t> message, Transport transport, const Peer& peer,
                  std::uint64_t conn_id) {
        Reply reply = responder.respond(message, transport);
        bool is_tcp = transport == Transport::kTcp;
        write_log(is_tcp ? "tcp" : "udp", reply);
        auto now = Clock::now();
        for (auto& send : reply.sends) {
            if (send.delay_ms == 0) {
                if (is_tcp) {
                    send_tcp(conn_id, send.bytes);
                } else {
                    send_udp(peer, send.bytes);
                }
                continue;
            }
            if (is_tcp) ++conns.at(conn_id).pending;
            schedule(Timer{now + std::chrono::milliseconds(send.delay_ms), next_seq++, is_tcp, peer, conn_id,
                           std::move(send.bytes)});
        }
        return reply.is_query;
    }

    void fire_due_timers() {
        auto now = Clock::now();
        while (!timers.empty() && timers.front().due <= now) {
            std::pop_heap(timers.begin(), timers.end(), TimerLater{});
            Timer timer = std::move(timers.back());
            timers.pop_back();
            if (!timer.tcp) {
                send_udp(timer.peer, timer.bytes);
                continue;
            }
            if (auto it = conns.find(timer.conn_id); it != conns.end()) {
                --it->second.pending;
                send_tcp(timer.conn_id, timer.bytes);
            }
        }
    }

    void read_udp() {
        std::vector<std::uint8_t> buf(65536);
        for (int i = 0; i < kMaxDatagramsPerWakeup; ++i) {
            Peer peer;
            peer.len = sizeof peer.addr;
            ssize_t n = ::recvfrom(udp.get(), buf.data(), buf.size(), 0,
                                   reinterpret_cast<sockaddr*>(&peer.addr), &peer.len);
            if (n < 0) return;  // EAGAIN, or an ICMP error from an earlier send: nothing to do either way
            dispatch(std::span<const std::uint8_t>(buf.data(), static_cast<std::size_t>(n)), Transport::kUdp,
                     peer, 0);
        }
    }

    void accept_tcp() {
        for (;;) {
            int fd = ::accept(tcp.get(), nullptr, nullptr);
            if (fd < 0) return;
            Fd owned(fd);
            if (conns.size() >= kMaxTcpConnections) continue;  // closes it: fail fast rather than queue
            set_nonblocking(fd);
            TcpConn conn;
            conn.fd = std::move(owned);
            conn.last_activity = Clock::now();
            conns.emplace(next_conn_id++, std::move(conn));
        }
    }

    void read_tcp(std::uint64_t id, TcpConn& conn) {
        std::uint8_t buf[4096];
        ssize_t n = ::recv(conn.fd.get(), buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0) {
            conn.read_closed = true;
            return;
        }
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) conn.dead = true;
            return;
        }
        conn.last_activity = Clock::now();
        conn.in.insert(conn.in.end(), buf, buf + n);
        std::size_t used = 0;
        while (conn.in.size() - used >= 2) {
            std::size_t len = (std::size_t{conn.in[used]} << 8) | conn.in[used + 1];
            if (len < 12 || len > kMaxTcpQuery) {
                write_log("tcp", Reply{});
                conn.dead = true;
                return;
            }
            if (conn.in.size() - used < 2 + len) break;
            std::span<const std::uint8_t> message(conn.in.data() + used + 2, len);
            used += 2 + len;
            // Framing survives a bad message, but a peer that sends one is not speaking DNS: hang up.
            if (!dispatch(message, Transport::kTcp, Peer{}, id)) conn.dead = true;
            if (conn.dead) return;
        }
        conn.in.erase(conn.in.begin(), conn.in.begin() + static_cast<std::ptrdiff_t>(used));
    }

    void reap_connections() {
        auto now = Clock::now();
        for (auto it = conns.begin(); it != conns.end();) {
            TcpConn& c = it->second;
            bool quiet = c.pending == 0 && c.out.empty();
            if (c.dead || (quiet && (c.read_closed || now - c.last_activity > tcp_idle_timeout))) {
                it = conns.erase(it);
            } else {
                ++it;
            }
        }
    }

    int poll_timeout_ms() const {
        // Wake often enough to close idle TCP connections on time.
        long long ms = std::clamp<long long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(tcp_idle_timeout).count() / 4, 10, 1000);
        if (!timers.empty()) {
            auto wait =
                std::chrono::ceil<std::chrono::milliseconds>(timers.front().due - Clock::now()).count();
            ms = std::clamp<long long>(wait, 0, ms);
        }
        return static_cast<int>(ms);
    }

    void run() {
        std::vector<pollfd> fds;
        std::vector<std::uint64_t> fd_conn;
        while (g_stop_requested == 0) {
            fire_due_timers();
            reap_connections();

            fds.clear();
            fd_conn.clear();
            fds.push_back({udp.get(), POLLIN, 0});
            fds.push_back({tcp.get(), POLLIN, 0});
            for (auto& [id, conn] : conns) {
                short events = 0;
                if (!conn.read_closed) events |= POLLIN;
                if (!conn.out.empty()) events |= POLLOUT;
                fds.push_back({conn.fd.get(), events, 0});
                fd_conn.push_back(id);
            }
            int ms = poll_timeout_ms();
            timespec ts{ms / 1000, (ms % 1000) * 1'000'000L};
            int ready = ::ppoll(fds.data(), fds.size(), &ts, &wait_mask);
            if (ready < 0) {
                if (errno == EINTR) continue;
                throw std::runtime_error(errno_text("ppoll"));
            }
            if (ready == 0) continue;
            if (fds[0].revents != 0) read_udp();
            if (fds[1].revents != 0) accept_tcp();
            for (std::size_t i = 0; i < fd_conn.size(); ++i) {
                short revents = fds[i + 2].revents;
                if (revents == 0) continue;
                auto it = conns.find(fd_conn[i]);
                if (it == conns.end()) continue;
                TcpConn& conn = it->second;
                if (revents & (POLLERR | POLLNVAL)) {
                    conn.dead = true;
                    continue;
                }
                if (revents & (POLLIN | POLLHUP)) read_tcp(fd_conn[i], conn);
                // POLLHUP means the peer can no longer receive either; polling on would spin.
                if (revents & POLLHUP) conn.dead = true;
                if ((revents & POLLOUT) && !conn.dead) flush(conn);
            }
        }
    }
};

Server::Server(const Responder& responder, const Options& options)
    : impl_(std::make_unique<Impl>(responder)) {
    impl_->install_signals();
    impl_->tcp_idle_timeout = std::chrono::milliseconds(options.tcp_idle_ms);
    if (!options.log_file.empty()) {
        impl_->log = std::fopen(options.log_file.c_str(), "a");
        if (impl_->log == nullptr)
            throw std::runtime_error(errno_text(("--log " + options.log_file).c_str()));
    }
    impl_->bind_sockets(options.listen, options.port);
}

Server::~Server() = default;

std::uint16_t Server::port() const {
    return impl_->port;
}

void Server::run() {
    impl_->run();
}

}  // namespace vigil::test_dns
