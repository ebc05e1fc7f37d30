#include "tools/bench/load.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>

#include <fmt/format.h>

namespace vigil::bench {
namespace {

std::int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

constexpr const char* kPostfixVersionMacro = "Postfix 3.7.11";
// Output we let pile up per connection before we stop queueing body chunks and wait for the socket.
constexpr std::size_t kMaxPending = 256 * 1024;

enum class Step { optneg, connect, helo, idle, mail, rcpt, data, headers, eoh, body, eom };

struct Conn {
    int slot = 0;
    std::uint32_t gen = 0;  // bumped per socket, so stale epoll events are recognised
    int fd = -1;
    bool connecting = false;
    bool want_out = false;
    bool negotiated = false;
    Step step = Step::idle;
    char awaiting = 0;  // the command whose reply we wait for
    std::int64_t deadline = 0;
    Negotiation neg;
    std::string out;
    std::size_t out_off = 0;     // written so far
    std::size_t flush_mark = 0;  // written up to here when the socket allows: Postfix's write boundaries
    std::string in;
    std::uint16_t client_port = 0;
    std::size_t client = 0;
    // The message in flight.
    bool busy = false;
    std::uint64_t seq = 0;
    std::size_t msg_index = 0;
    const Message* msg = nullptr;
    std::int64_t t_due = 0, t_first = 0, t_eom = 0;
    std::size_t eom_end = 0;  // position in `out` after the EOM packet; 0 = not queued
    std::size_t hdr_i = 0, body_off = 0;
    bool body_skipped = false;
    bool qid_visible = false;
    std::string queue_id;
    std::vector<Modification> mods;
};

std::string_view domain_of(std::string_view addr) {
    auto at = addr.rfind('@');
    return at == std::string_view::npos ? std::string_view{} : addr.substr(at + 1);
}

class Engine {
  public:
    explicit Engine(const LoadSpec& spec) : spec_(spec) {
        res_.mods.resize(spec.capture ? spec.corpus.size() : 0);
        res_.answered.resize(spec.capture ? spec.corpus.size() : 0);
        conns_.resize(static_cast<std::size_t>(spec.connections));
        res_.per_connection.assign(conns_.size(), 0);
        for (std::size_t i = 0; i < conns_.size(); ++i) {
            conns_[i].slot = static_cast<int>(i);
            conns_[i].client = spec.clients.empty() ? 0 : i % spec.clients.size();
            free_.push_back(static_cast<int>(conns_.size() - 1 - i));
        }
        count_mode_ = spec.messages > 0;
        open_loop_ = spec.rate > 0;
        interval_ns_ = open_loop_ ? static_cast<std::int64_t>(1e9 / spec.rate) : 0;
    }

    LoadResult run() {
        ep_ = epoll_create1(EPOLL_CLOEXEC);
        if (ep_ < 0) {
            error(fmt::format("epoll_create1: {}", std::strerror(errno)));
            return std::move(res_);
        }
        t0_ = now_ns();
        next_due_ = t0_;
        if (!count_mode_) {
            window_start_ = t0_ + static_cast<std::int64_t>(spec_.warmup_s * 1e9);
            window_end_ = window_start_ + static_cast<std::int64_t>(spec_.duration_s * 1e9);
        } else if (spec_.warmup_messages == 0) {
            open_window(t0_);
        }
        // A persistent session is set up before its first message is due (Postfix holds it from the
        // SMTP client's connect on).
        if (spec_.persistent) {
            for (auto& c : conns_) open_conn(c);
        }
        epoll_event events[256];
        std::int64_t last_sweep = t0_;
        while (!done_) {
            pump();
            if (done_) break;
            std::int64_t now = now_ns();
            std::int64_t wake = now + 50'000'000;
            if (open_loop_ && !stop_new_) wake = std::min(wake, next_due_);
            if (!count_mode_ && !window_open_) wake = std::min(wake, window_start_);
            if (!count_mode_ && window_open_ && !window_closed_) wake = std::min(wake, window_end_);
            for (auto& r : retries_) wake = std::min(wake, r.first);
            std::int64_t wait = std::max<std::int64_t>(0, wake - now);
            timespec ts{static_cast<time_t>(wait / 1'000'000'000), static_cast<long>(wait % 1'000'000'000)};
            int n = epoll_pwait2(ep_, events, 256, &ts, nullptr);
            if (n < 0 && errno != EINTR) {
                error(fmt::format("epoll_pwait2: {}", std::strerror(errno)));
                break;
            }
            for (int i = 0; i < n; ++i) {
                auto slot = static_cast<std::size_t>(events[i].data.u64 & 0xffffffffu);
                auto gen = static_cast<std::uint32_t>(events[i].data.u64 >> 32);
                Conn& c = conns_[slot];
                if (c.gen != gen || c.fd < 0) continue;
                if (events[i].events & EPOLLOUT) on_writable(c);
                if (c.gen == gen && c.fd >= 0 && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                    on_readable(c);
            }
            now = now_ns();
            if (now - last_sweep > 20'000'000) {
                last_sweep = now;
                for (auto& c : conns_) {
                    if (c.fd >= 0 && (c.awaiting != 0 || c.connecting) && c.deadline > 0 &&
                        now > c.deadline) {
                        fail(c, fmt::format("no reply within {} s ({})", spec_.reply_timeout_s,
                                            c.connecting ? "connect" : std::string(1, c.awaiting)));
                    }
                }
            }
            run_retries(now);
            if (res_.errors > 50 && res_.completed == 0 && completed_total_ == 0) {
                error("giving up: the filter fails every message");
                break;
            }
        }
        for (auto& c : conns_) {
            if (c.fd >= 0) {
                if (c.negotiated && !c.busy) {
                    put_packet(c.out, cmd::quit);
                    flush(c);
                }
                ::close(c.fd);
                c.fd = -1;
            }
        }
        ::close(ep_);
        if (!window_closed_ && window_open_) close_window(now_ns());
        return std::move(res_);
    }

  private:
    // -- scheduling -------------------------------------------------------------------------------

    void open_window(std::int64_t now) {
        window_open_ = true;
        window_t_ = now;
        if (spec_.on_window_start) spec_.on_window_start();
    }

    void close_window(std::int64_t now) {
        window_closed_ = true;
        res_.window_s = static_cast<double>(now - window_t_) / 1e9;
        // A message that began before the window (in the warm-up) and is still unanswered when it
        // ends is in no latency figure: a connection the filter starved all along would not show.
        for (const auto& c : conns_) {
            if (!c.busy || c.t_first == 0 || c.t_first >= window_t_) continue;
            ++res_.starved;
            res_.starved_longest_ns = std::max(res_.starved_longest_ns, now - c.t_first);
        }
        if (spec_.on_window_end) spec_.on_window_end();
    }

    void pump() {
        std::int64_t now = now_ns();
        if (!count_mode_) {
            if (!window_open_ && now >= window_start_) open_window(window_start_);
            if (window_open_ && !window_closed_ && now >= window_end_) {
                close_window(window_end_);
                stop_new_ = true;
                drain_deadline_ = now + static_cast<std::int64_t>(spec_.reply_timeout_s * 1e9);
            }
        }
        if (open_loop_ && !stop_new_) {
            while (next_due_ <= now) {
                if (count_mode_ && issued_due_ >= spec_.warmup_messages + spec_.messages) {
                    stop_new_ = true;
                    break;
                }
                backlog_.push_back(next_due_);
                ++issued_due_;
                next_due_ += interval_ns_;
            }
            res_.max_backlog = std::max(res_.max_backlog, backlog_.size());
        }
        while (!free_.empty()) {
            if (count_mode_) {
                if (next_seq_ >= spec_.warmup_messages + spec_.messages) {
                    stop_new_ = true;
                    break;
                }
                if (next_seq_ == spec_.warmup_messages && !window_open_) {
                    if (busy_ > 0) break;  // the warm-up is over only when its last message is answered
                    open_window(now_ns());
                    if (open_loop_) {  // restart the schedule after the barrier
                        next_due_ = now_ns();
                        backlog_.clear();
                        issued_due_ = spec_.warmup_messages;
                        break;
                    }
                }
            } else if (stop_new_ && !open_loop_) {
                break;
            }
            std::int64_t due = now_ns();
            if (open_loop_) {
                if (backlog_.empty()) break;
                due = backlog_.front();
                backlog_.pop_front();
            }
            int slot = free_.back();
            free_.pop_back();
            start_message(conns_[static_cast<std::size_t>(slot)], due);
        }
        bool idle = busy_ == 0 && backlog_.empty();
        if (stop_new_ && idle) {
            if (count_mode_ && window_open_ && !window_closed_) close_window(last_done_);
            done_ = true;
        }
        if (stop_new_ && drain_deadline_ > 0 && now > drain_deadline_ && !done_) {
            for (auto& c : conns_) {
                if (c.busy) fail(c, "still unanswered when the run ended");
            }
            res_.outcomes["never sent (no free connection)"] += backlog_.size();
            backlog_.clear();
            done_ = true;
        }
    }

    void start_message(Conn& c, std::int64_t due) {
        c.busy = true;
        ++busy_;
        c.seq = next_seq_++;
        c.msg_index = corpus_rr_++ % spec_.corpus.size();
        c.msg = spec_.corpus[c.msg_index];
        c.t_due = due;
        c.t_first = now_ns();
        c.t_eom = 0;
        c.eom_end = 0;
        c.mods.clear();
        if (!spec_.persistent || c.fd < 0) {
            if (c.fd < 0) open_conn(c);
            return;  // the transaction begins once the session is set up (after HELO)
        }
        if (c.step == Step::idle && c.awaiting == 0) {
            c.step = Step::mail;
            advance(c);
        }
    }

    bool measured(const Conn& c) const {
        if (count_mode_) return c.seq >= spec_.warmup_messages;
        std::int64_t start = open_loop_ ? c.t_due : c.t_first;
        return start >= window_start_ && start < window_end_;
    }

    // A message answered (or ended by the filter closing) inside the measurement counts for msg/s and
    // for its connection.
    void count_finished(const Conn& c, std::int64_t now) {
        if (count_mode_ ? c.seq < spec_.warmup_messages : (now < window_start_ || now > window_end_)) return;
        ++res_.completed;
        ++res_.per_connection[static_cast<std::size_t>(c.slot)];
    }

    void finish_message(Conn& c, std::string outcome) {
        std::int64_t now = now_ns();
        ++completed_total_;
        last_done_ = now;
        if (measured(c)) {
            res_.txn_ns.push_back(now - (open_loop_ ? c.t_due : c.t_first));
            if (c.t_eom > 0) res_.eom_ns.push_back(now - c.t_eom);
            for (const auto& m : c.mods) {
                if (m.code == reply::quarantine) outcome += "+quarantine";
            }
            ++res_.outcomes[outcome];
        }
        count_finished(c, now);
        if (spec_.capture) {
            res_.mods[c.msg_index] = c.mods;
            res_.answered[c.msg_index] = 1;
        }
        c.busy = false;
        --busy_;
        c.msg = nullptr;
        // Postfix: ABORT after every transaction; it goes out with the next write.
        put_packet(c.out, cmd::abort);
        c.step = Step::idle;
        if (!spec_.persistent) {
            put_packet(c.out, cmd::quit);
            flush(c);
            close_conn(c);
        }
        free_.push_back(c.slot);
    }

    // -- connections -------------------------------------------------------------------------------

    void open_conn(Conn& c) {
        c.fd = ::socket(spec_.target.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c.fd < 0) {
            error(fmt::format("socket: {}", std::strerror(errno)));
            retry(c);
            return;
        }
        ++c.gen;
        c.out.clear();
        c.in.clear();
        c.out_off = c.flush_mark = 0;
        c.negotiated = false;
        c.awaiting = 0;
        c.want_out = false;
        c.step = Step::optneg;  // a message assigned before the session is set up waits for it
        c.client_port = static_cast<std::uint16_t>(32768 + (port_rr_++ % 28000));
        if (spec_.target.inet() && spec_.nodelay) {
            int one = 1;
            setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = static_cast<std::uint64_t>(c.slot) | (static_cast<std::uint64_t>(c.gen) << 32);
        epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
        int rc = ::connect(c.fd, reinterpret_cast<const sockaddr*>(&spec_.target.addr), spec_.target.len);
        if (rc == 0) {
            connected(c);
        } else if (errno == EINPROGRESS) {
            c.connecting = true;
            c.deadline = now_ns() + static_cast<std::int64_t>(spec_.reply_timeout_s * 1e9);
            set_want_out(c, true);
        } else if (errno == EAGAIN) {  // a unix socket's backlog is full: try again shortly
            close_conn(c);
            retry(c, 1'000'000);
        } else {
            fail(c, fmt::format("connect to {}: {}", spec_.target.spec, std::strerror(errno)));
        }
    }

    void connected(Conn& c) {
        c.connecting = false;
        c.step = Step::optneg;
        advance(c);
    }

    void close_conn(Conn& c) {
        if (c.fd >= 0) {
            epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
            ::close(c.fd);
        }
        c.fd = -1;
        ++c.gen;
        c.connecting = false;
        c.negotiated = false;
        c.awaiting = 0;
        c.want_out = false;
        c.out.clear();
        c.in.clear();
        c.out_off = c.flush_mark = 0;
    }

    void retry(Conn& c, std::int64_t after_ns = 10'000'000) {
        retries_.push_back({now_ns() + after_ns, c.slot});
    }

    void run_retries(std::int64_t now) {
        for (std::size_t i = 0; i < retries_.size();) {
            if (retries_[i].first > now) {
                ++i;
                continue;
            }
            Conn& c = conns_[static_cast<std::size_t>(retries_[i].second)];
            retries_.erase(retries_.begin() + static_cast<long>(i));
            if (c.fd >= 0) continue;
            if (c.busy || (spec_.persistent && !stop_new_)) open_conn(c);
        }
    }

    void error(const std::string& what) {
        ++res_.errors;
        if (res_.first_error.empty()) res_.first_error = what;
    }

    // A connection broke (or the filter broke the protocol): the message in flight is lost, as Postfix
    // would apply milter_default_action to it. Persistent sessions come back after a short pause.
    void fail(Conn& c, const std::string& why) {
        if (trace_) std::fprintf(stderr, "[%d] failed: %s\n", c.slot, why.c_str());
        error(why);
        close_conn(c);
        if (c.busy) {
            c.busy = false;
            --busy_;
            if (measured(c)) ++res_.outcomes["error"];
            free_.push_back(c.slot);
        }
        ++res_.reconnects;
        if (spec_.persistent && !stop_new_) retry(c);
    }

    void set_want_out(Conn& c, bool on) {
        if (c.want_out == on || c.fd < 0) return;
        c.want_out = on;
        epoll_event ev{};
        ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
        ev.data.u64 = static_cast<std::uint64_t>(c.slot) | (static_cast<std::uint64_t>(c.gen) << 32);
        epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
    }

    // -- output ------------------------------------------------------------------------------------

    void flush(Conn& c) {
        c.flush_mark = c.out.size();
        write_some(c);
    }

    void write_some(Conn& c) {
        while (c.fd >= 0 && c.out_off < c.flush_mark) {
            ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.flush_mark - c.out_off, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) {
                    set_want_out(c, true);
                    return;
                }
                fail(c, fmt::format("write: {}", std::strerror(errno)));
                return;
            }
            if (trace_) {
                std::string codes;  // the command letters of the packets in this write, when they start it
                for (std::size_t p = c.out_off; p + 5 <= c.out_off + static_cast<std::size_t>(n);) {
                    std::uint32_t len = 0;
                    std::memcpy(&len, c.out.data() + p, 4);
                    codes += c.out[p + 4];
                    p += 4 + ntohl(len);
                }
                std::fprintf(stderr, "[%d] > %zd bytes: %s\n", c.slot, n, codes.c_str());
            }
            c.out_off += static_cast<std::size_t>(n);
        }
        if (c.fd < 0) return;
        if (c.eom_end > 0 && c.out_off >= c.eom_end) {
            c.t_eom = now_ns();
            c.eom_end = 0;
        }
        set_want_out(c, false);
        if (c.out_off == c.out.size()) {
            c.out.clear();
            c.out_off = c.flush_mark = 0;
        } else if (c.out_off > 1024 * 1024) {
            c.out.erase(0, c.out_off);
            c.flush_mark -= c.out_off;
            if (c.eom_end > 0) c.eom_end -= c.out_off;
            c.out_off = 0;
        }
    }

    void on_writable(Conn& c) {
        if (c.connecting) {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) {
                fail(c, fmt::format("connect to {}: {}", spec_.target.spec, std::strerror(err)));
                return;
            }
            set_want_out(c, false);
            connected(c);
            return;
        }
        write_some(c);
        // Body chunks were held back while the socket was full.
        if (c.fd >= 0 && c.awaiting == 0 && c.busy && c.step == Step::body &&
            c.out.size() - c.out_off < kMaxPending)
            advance(c);
    }

    // -- input -------------------------------------------------------------------------------------

    void on_readable(Conn& c) {
        char buf[65536];
        for (;;) {
            ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
            if (n > 0) {
                c.in.append(buf, static_cast<std::size_t>(n));
                if (static_cast<std::size_t>(n) < sizeof buf) break;
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) break;
            // EOF or error.
            if (c.busy || c.awaiting != 0) {
                fail(c, n == 0 ? "the filter closed the connection"
                               : fmt::format("read: {}", std::strerror(errno)));
            } else {
                close_conn(c);  // an idle session the filter dropped: open a fresh one later
                if (spec_.persistent && !stop_new_) retry(c, 0);
            }
            return;
        }
        std::uint32_t gen = c.gen;
        std::size_t used = 0;
        while (c.fd >= 0 && c.gen == gen) {
            char code = 0;
            std::string_view data;
            long n = take_packet(std::string_view(c.in).substr(used), code, data);
            if (n == 0) break;
            if (n < 0) {
                fail(c, "reply packet with a bad length");
                return;
            }
            used += static_cast<std::size_t>(n);
            on_packet(c, code, data);
        }
        if (c.fd >= 0 && c.gen == gen) c.in.erase(0, used);
    }

    void on_packet(Conn& c, char code, std::string_view data) {
        if (trace_)
            std::fprintf(stderr, "[%d] < '%c' %zu bytes (awaiting '%c')\n", c.slot, code, data.size(),
                         c.awaiting ? c.awaiting : '-');
        if (c.awaiting == 0) {
            fail(c, fmt::format("unexpected reply '{}' with no command outstanding", code));
            return;
        }
        std::int64_t now = now_ns();
        if (code == reply::progress) {  // the filter asks for more time: the command timer restarts
            c.deadline = now + static_cast<std::int64_t>(spec_.reply_timeout_s * 1e9);
            return;
        }
        char what = c.awaiting;
        if (what == cmd::optneg) {
            if (code != cmd::optneg) {
                fail(c, fmt::format("expected the OPTNEG reply, got '{}'", code));
                return;
            }
            std::string err;
            auto n = parse_optneg(data, err);
            if (!n) {
                fail(c, err);
                return;
            }
            c.neg = *n;
            res_.negotiation = *n;
            c.negotiated = true;
            c.awaiting = 0;
            c.step = Step::connect;
            advance(c);
            return;
        }
        if (what == cmd::eob) {
            if (is_modification(code)) {
                auto m = parse_modification(code, data);
                if (!m) {
                    fail(c, fmt::format("malformed modification '{}'", code));
                    return;
                }
                c.mods.push_back(std::move(*m));
                return;
            }
            if (!is_decision(code) || code == reply::skip) {
                fail(c, fmt::format("reply '{}' is not valid at end of message", code));
                return;
            }
        } else if (!is_decision(code)) {
            fail(c, fmt::format("reply '{}' is not valid for command '{}'", code, what));
            return;
        }
        if (code == reply::replycode && !valid_replycode(data)) {
            fail(c, "malformed REPLYCODE (Postfix refuses it)");
            return;
        }
        if (code != reply::replycode && !data.empty()) {
            fail(c, fmt::format("reply '{}' followed by data", code));
            return;
        }
        c.awaiting = 0;
        decided(c, what, code, data);
    }

    static std::string verdict(char code, std::string_view data) {
        switch (code) {
            case reply::accept:
            case reply::cont:
                return "accept";
            case reply::reject:
                return "reject";
            case reply::tempfail:
                return "tempfail";
            case reply::discard:
                return "discard";
            case reply::replycode:
                return !data.empty() && data[0] == '4' ? "tempfail" : "reject";
            case reply::shutdown:
                return "shutdown";
            case reply::conn_fail:
                return "conn_fail";
            default:
                return std::string(1, code);
        }
    }

    void decided(Conn& c, char what, char code, std::string_view data) {
        if (what == cmd::eob) {
            finish_message(c, verdict(code, data));
            return;
        }
        if (code == reply::skip) {
            if (what != cmd::body || !c.neg.has(proto::skip)) {
                fail(c, "SKIP outside the body");
                return;
            }
            c.body_skipped = true;
            advance(c);
            return;
        }
        if (code == reply::cont) {
            advance(c);
            return;
        }
        // Anything else ends the message (or the session) early, as Postfix would.
        const char* stage = what == cmd::connect ? "connect"
                            : what == cmd::helo  ? "helo"
                            : what == cmd::mail  ? "mail"
                            : what == cmd::rcpt  ? "rcpt"
                            : what == cmd::data  ? "data"
                                                 : "content";
        if (what == cmd::connect || what == cmd::helo) {
            // The session is refused (or accepted without further filtering): Postfix stops talking
            // to this filter for the session.
            if (c.busy) {
                std::string outcome = verdict(code, data) + "@" + stage;
                close_conn(c);
                finish_after_close(c, outcome);
            } else {
                close_conn(c);
            }
            if (spec_.persistent && !stop_new_) retry(c);
            return;
        }
        finish_message(c, verdict(code, data) + "@" + stage);
    }

    void finish_after_close(Conn& c, const std::string& outcome) {
        std::int64_t now = now_ns();
        ++completed_total_;
        last_done_ = now;
        if (measured(c)) {
            res_.txn_ns.push_back(now - (open_loop_ ? c.t_due : c.t_first));
            ++res_.outcomes[outcome];
        }
        count_finished(c, now);
        c.busy = false;
        --busy_;
        free_.push_back(c.slot);
    }

    // -- the session script ------------------------------------------------------------------------

    std::optional<std::string_view> macro_value(const Conn& c, char command, std::string_view name) {
        const Client* cl = spec_.clients.empty() ? nullptr : &spec_.clients[c.client];
        bool envelope = command == cmd::mail || command == cmd::rcpt || command == cmd::data;
        if (name == "j" || name == "{daemon_name}") return Corpus::kOurHost;
        if (name == "{daemon_addr}") return "127.0.0.1";
        if (name == "{daemon_port}") return "25";
        if (name == "v") return kPostfixVersionMacro;
        if (cl != nullptr) {
            if (name == "_") {
                scratch_macro_ = cl->name + " [" + cl->ip + "]";
                return scratch_macro_;
            }
            if (name == "{client_addr}") return cl->ip;
            if (name == "{client_name}" || name == "{client_ptr}") return cl->name;
            if (name == "{client_port}") {
                scratch_macro_ = std::to_string(c.client_port);
                return scratch_macro_;
            }
        }
        if (name == "i") {
            if (c.qid_visible) return c.queue_id;
            return std::nullopt;
        }
        if (c.msg != nullptr && envelope) {
            if (name == "{mail_addr}") return c.msg->mail_from;
            if (name == "{mail_host}") return domain_of(c.msg->mail_from);
            if (name == "{mail_mailer}" || name == "{rcpt_mailer}") return "smtp";
            if (command != cmd::mail) {
                if (name == "{rcpt_addr}") return c.msg->rcpt;
                if (name == "{rcpt_host}") return domain_of(c.msg->rcpt);
            }
        }
        return std::nullopt;  // {auth_*}, TLS: inbound mail over plain SMTP
    }

    void put_macros(Conn& c, char command) {
        int stage = stage_of(command);
        const auto& names = stage >= 0 && c.neg.symlists[static_cast<std::size_t>(stage)]
                                ? *c.neg.symlists[static_cast<std::size_t>(stage)]
                                : postfix_default_macros(stage);
        scratch_.assign(1, command);
        for (const auto& n : names) {
            auto v = macro_value(c, command, n);
            if (!v) continue;
            scratch_ += n;
            scratch_ += '\0';
            scratch_ += *v;
            scratch_ += '\0';
        }
        put_packet(c.out, cmd::macro, scratch_);
    }

    // Sends one event the Postfix way; true when we now wait for its reply.
    bool event(Conn& c, char command, std::string_view payload, std::uint32_t skip_flag,
               std::uint32_t nr_flag) {
        bool skipped = skip_flag != 0 && c.neg.has(skip_flag);
        bool macros_anyway = command == cmd::connect || command == cmd::helo || command == cmd::mail ||
                             command == cmd::rcpt || command == cmd::data || command == cmd::unknown;
        if (!skipped || macros_anyway) put_macros(c, command);
        if (skipped) return false;
        put_packet(c.out, command, payload);
        if (nr_flag != 0 && c.neg.has(nr_flag)) {
            if (c.out.size() - c.flush_mark >= kChunk) flush(c);  // a full body chunk goes out at once
            return false;
        }
        await(c, command);
        return true;
    }

    void await(Conn& c, char command) {
        c.awaiting = command;
        c.deadline = now_ns() + static_cast<std::int64_t>(spec_.reply_timeout_s * 1e9);
        flush(c);
    }

    void advance(Conn& c) {
        std::uint32_t gen = c.gen;
        while (c.fd >= 0 && c.gen == gen && c.awaiting == 0) {
            switch (c.step) {
                case Step::optneg:
                    put_optneg(c.out);
                    c.step = Step::connect;
                    await(c, cmd::optneg);
                    return;
                case Step::connect: {
                    const Client& cl = spec_.clients[c.client];
                    payload_ = cl.name;
                    payload_ += '\0';
                    payload_ += cl.ip.find(':') == std::string::npos ? '4' : '6';
                    std::uint16_t port = htons(c.client_port);
                    payload_.append(reinterpret_cast<const char*>(&port), 2);
                    payload_ += cl.ip;
                    payload_ += '\0';
                    c.step = Step::helo;
                    if (event(c, cmd::connect, payload_, proto::noconnect, proto::nr_conn)) return;
                    break;
                }
                case Step::helo: {
                    payload_ = spec_.clients[c.client].name;
                    payload_ += '\0';
                    c.step = Step::idle;
                    if (event(c, cmd::helo, payload_, proto::nohelo, proto::nr_helo)) return;
                    break;
                }
                case Step::idle:
                    if (!c.busy) return;
                    c.step = Step::mail;
                    break;
                case Step::mail: {
                    c.hdr_i = 0;
                    c.body_off = 0;
                    c.body_skipped = false;
                    c.qid_visible = false;
                    c.queue_id = fmt::format("{:011X}", (qid_seed_++ * 0x9E3779B97F4A7C15ull) >> 20);
                    payload_ = "<" + c.msg->mail_from + ">";
                    payload_ += '\0';
                    payload_ += fmt::format("SIZE={}", c.msg->raw.size());
                    payload_ += '\0';
                    c.step = Step::rcpt;
                    if (event(c, cmd::mail, payload_, proto::nomail, proto::nr_mail)) return;
                    break;
                }
                case Step::rcpt:
                    payload_ = "<" + c.msg->rcpt + ">";
                    payload_ += '\0';
                    c.step = Step::data;
                    if (event(c, cmd::rcpt, payload_, proto::norcpt, proto::nr_rcpt)) return;
                    break;
                case Step::data:
                    // The queue file (and its id) exists once a recipient was accepted.
                    c.qid_visible = true;
                    c.step = Step::headers;
                    if (event(c, cmd::data, {}, proto::nodata, proto::nr_data)) return;
                    // smtpd hands the session to cleanup here: what is buffered goes out now.
                    flush(c);
                    break;
                case Step::headers: {
                    if (c.hdr_i >= c.msg->headers.size()) {
                        c.step = Step::eoh;
                        break;
                    }
                    const auto& h = c.msg->headers[c.hdr_i++];
                    std::string_view value = h.value;
                    if (!c.neg.has(proto::hdr_leadspc) && !value.empty() && value[0] == ' ')
                        value.remove_prefix(1);
                    payload_ = h.name;
                    payload_ += '\0';
                    payload_ += value;
                    payload_ += '\0';
                    if (event(c, cmd::header, payload_, proto::nohdrs, proto::nr_hdr)) return;
                    break;
                }
                case Step::eoh:
                    c.step = Step::body;
                    if (event(c, cmd::eoh, {}, proto::noeoh, proto::nr_eoh)) return;
                    break;
                case Step::body: {
                    if (c.body_skipped || c.neg.has(proto::nobody) || c.body_off >= c.msg->body.size()) {
                        c.step = Step::eom;
                        break;
                    }
                    if (c.out.size() - c.out_off >= kMaxPending) return;  // resumed when writable
                    std::string_view chunk = std::string_view(c.msg->body).substr(c.body_off, kChunk);
                    c.body_off += chunk.size();
                    if (event(c, cmd::body, chunk, proto::nobody, proto::nr_body)) return;
                    break;
                }
                case Step::eom:
                    put_macros(c, cmd::eob);
                    put_packet(c.out, cmd::eob);
                    c.eom_end = c.out.size();
                    await(c, cmd::eob);
                    return;
            }
        }
    }

    const LoadSpec& spec_;
    LoadResult res_;
    int ep_ = -1;
    std::vector<Conn> conns_;
    std::vector<int> free_;
    std::deque<std::int64_t> backlog_;
    std::vector<std::pair<std::int64_t, int>> retries_;
    bool count_mode_ = false, open_loop_ = false;
    std::int64_t interval_ns_ = 0, next_due_ = 0, t0_ = 0;
    std::int64_t window_start_ = 0, window_end_ = 0, window_t_ = 0, drain_deadline_ = 0, last_done_ = 0;
    bool window_open_ = false, window_closed_ = false, stop_new_ = false, done_ = false;
    std::uint64_t next_seq_ = 0, issued_due_ = 0, corpus_rr_ = 0, completed_total_ = 0, qid_seed_ = 1;
    std::uint32_t port_rr_ = 0;
    int busy_ = 0;
    bool trace_ = std::getenv("VIGIL_BENCH_TRACE") != nullptr;  // packets and writes on stderr
    std::string scratch_, scratch_macro_;
    std::string payload_;  // the event being sent (put_macros uses scratch_ meanwhile)
};

}  // namespace

std::optional<Target> parse_target(const std::string& spec) {
    Target t;
    t.spec = spec;
    auto colon = spec.find(':');
    if (colon == std::string::npos) return std::nullopt;
    std::string transport = spec.substr(0, colon), rest = spec.substr(colon + 1);
    if (transport == "unix" || transport == "local") {
        sockaddr_un un{};
        if (rest.empty() || rest.size() >= sizeof un.sun_path) return std::nullopt;
        un.sun_family = AF_UNIX;
        std::memcpy(un.sun_path, rest.data(), rest.size());
        std::memcpy(&t.addr, &un, sizeof un);
        t.len = sizeof un;
        t.family = AF_UNIX;
        return t;
    }
    if (transport != "inet" && transport != "inet6") return std::nullopt;
    std::string host, port;
    if (auto at = rest.find('@'); at != std::string::npos) {
        port = rest.substr(0, at);
        host = rest.substr(at + 1);
    } else if (auto c = rest.rfind(':'); c != std::string::npos) {
        host = rest.substr(0, c);
        port = rest.substr(c + 1);
    } else {
        return std::nullopt;
    }
    if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
    if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5)
        return std::nullopt;
    auto p = static_cast<std::uint16_t>(std::stoi(port));
    sockaddr_in in4{};
    sockaddr_in6 in6{};
    if (inet_pton(AF_INET, host.c_str(), &in4.sin_addr) == 1) {
        in4.sin_family = AF_INET;
        in4.sin_port = htons(p);
        std::memcpy(&t.addr, &in4, sizeof in4);
        t.len = sizeof in4;
        t.family = AF_INET;
        return t;
    }
    if (inet_pton(AF_INET6, host.c_str(), &in6.sin6_addr) == 1) {
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(p);
        std::memcpy(&t.addr, &in6, sizeof in6);
        t.len = sizeof in6;
        t.family = AF_INET6;
        return t;
    }
    return std::nullopt;  // host names are not resolved: the benchmark runs on loopback only
}

LoadResult run_load(const LoadSpec& spec) {
    if (spec.corpus.empty() || spec.clients.empty() || spec.connections < 1) {
        LoadResult r;
        r.errors = 1;
        r.first_error = "nothing to send (empty corpus, no clients or no connections)";
        return r;
    }
    Engine e(spec);
    return e.run();
}

std::int64_t percentile(const std::vector<std::int64_t>& sorted, double p) {
    if (sorted.empty()) return 0;
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
    if (rank < 1) rank = 1;
    if (rank > sorted.size()) rank = sorted.size();
    return sorted[rank - 1];
}

}  // namespace vigil::bench
