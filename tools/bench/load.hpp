#pragma once
// The load generator: many milter connections driven by one epoll loop, each a Postfix-like session
// (milter_wire.hpp). Closed loop (each connection sends its next message as soon as the last one is
// answered) or open loop (messages are due at a fixed rate whatever the filter does; a message that
// finds no free connection waits, and its latency counts from when it was due, so a stall in the filter
// shows up in the percentiles instead of silently lowering the offered load).
#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tools/bench/corpus.hpp"
#include "tools/bench/milter_wire.hpp"

namespace vigil::bench {

struct Target {
    std::string spec;  // as given: inet:PORT@HOST or unix:/path
    int family = AF_UNSPEC;
    sockaddr_storage addr{};
    socklen_t len = 0;
    bool inet() const { return family == AF_INET || family == AF_INET6; }
};
std::optional<Target> parse_target(const std::string& spec);

struct LoadSpec {
    Target target;
    int connections = 8;
    bool persistent = true;  // false: one SMTP session (and filter connection) per message
    double rate = 0;         // > 0: open loop at this many messages per second
    // The window: by time, or (messages > 0) by count; warm-up messages are sent but not measured.
    double warmup_s = 1, duration_s = 5;
    std::uint64_t warmup_messages = 0, messages = 0;
    bool nodelay = true;          // TCP_NODELAY on our side (see main.cpp: real Postfix leaves Nagle on)
    double reply_timeout_s = 30;  // Postfix's milter_command_timeout
    std::vector<const Message*> corpus;  // sent round robin
    std::vector<Client> clients;         // connection i is client i % size
    bool capture = false;                // keep each message's modifications (sanity checks)
    std::function<void()> on_window_start, on_window_end;
};

struct LoadResult {
    std::uint64_t completed = 0;  // messages finished inside the window
    double window_s = 0;
    std::vector<std::int64_t> txn_ns;  // due (open loop) or first byte (closed loop) to final EOM reply
    std::vector<std::int64_t> eom_ns;  // end-of-message written to final reply
    std::map<std::string, std::uint64_t> outcomes;  // "accept", "reject@rcpt", ...
    std::uint64_t errors = 0;
    std::string first_error;
    std::size_t max_backlog = 0;  // open loop: most messages ever waiting for a connection
    std::uint64_t reconnects = 0;
    // Messages finished inside the window, by connection slot: how evenly the filter served them.
    std::vector<std::uint64_t> per_connection;
    // Messages begun before the window and still unanswered at its end (in no latency figure), and the
    // longest such wait so far.
    std::uint64_t starved = 0;
    std::int64_t starved_longest_ns = 0;
    Negotiation negotiation;                      // what the filter asked for (last connection)
    std::vector<std::vector<Modification>> mods;  // capture: by corpus index, the last one seen
    std::vector<char> answered;                   // capture: by corpus index, got an EOM reply
    double msgs_per_s() const { return window_s > 0 ? static_cast<double>(completed) / window_s : 0; }
};

LoadResult run_load(const LoadSpec& spec);

// Nearest-rank percentile of sorted values (p in 0..100).
std::int64_t percentile(const std::vector<std::int64_t>& sorted, double p);

}  // namespace vigil::bench
