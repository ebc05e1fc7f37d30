#include "options.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <string_view>

namespace vigil::test_dns {
namespace {

// Bounds keep a typo (an extra zero) from turning a test into an hour-long hang.
constexpr std::uint32_t kMaxDelayMs = 600'000;

bool parse_uint(std::string_view text, std::uint64_t max, std::uint64_t& out) {
    if (text.empty()) return false;
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value > max) return false;
    out = value;
    return true;
}

// Splits "PATTERN=NUMBER" at the last '=' so that a pattern can never swallow the number.
bool parse_value_rule(std::string_view text, std::uint64_t max, ValueRule& out) {
    auto eq = text.rfind('=');
    if (eq == std::string_view::npos || eq == 0) return false;
    std::uint64_t value = 0;
    if (!parse_uint(text.substr(eq + 1), max, value)) return false;
    out.pattern = std::string(text.substr(0, eq));
    out.value = static_cast<std::uint32_t>(value);
    return true;
}

struct FaultFlag {
    std::string_view flag;
    FaultKind kind;
};

constexpr FaultFlag kFaultFlags[] = {
    {"--timeout", FaultKind::kTimeout},  {"--servfail", FaultKind::kServfail},
    {"--refused", FaultKind::kRefused},  {"--truncate", FaultKind::kTruncate},
    {"--wrong-id", FaultKind::kWrongId}, {"--malformed", FaultKind::kMalformed},
};

constexpr std::string_view kValueFlags[] = {"--listen",   "--port",    "--zone",
                                            "--log",      "--udp-max", "--tcp-idle-ms",
                                            "--delay-ms", "--delay",   "--ttl-override"};

}  // namespace

std::string usage_text() {
    return R"(usage: vigil-test-dns [options]
Authoritative DNS server for integration tests. Serves the loaded zones over UDP and TCP on one port,
prints "port N" on stdout once listening, and runs until SIGTERM or SIGINT.

  --listen ADDR            address to listen on (default 127.0.0.1; IPv6 literals work too)
  --port N                 port for both UDP and TCP; 0 (default) picks a free one
  --zone FILE              RFC 1035 zone file; repeatable. The apex is the SOA owner, or without an SOA
                           the closest common ancestor of all owner names
  --log FILE               append "<proto> <qname> <qtype> <action>" for every query received
  --udp-max N              truncate UDP answers larger than N bytes (the client's limit, 512 or its
                           EDNS0 size, applies as well)
  --tcp-idle-ms N          close a TCP connection after N ms without traffic (default 10000)
  --delay-ms N             delay every answer by N ms
  --delay NAME=MS          delay answers for NAME by MS ms (overrides --delay-ms)
  --ttl-override NAME=S    answer NAME with TTL S on every record (0..4294967295)
  --timeout NAME           never answer NAME
  --servfail NAME          answer NAME with SERVFAIL
  --refused NAME           answer NAME with REFUSED
  --truncate NAME          over UDP answer NAME with TC=1 and no records; over TCP answer in full
  --wrong-id NAME          over UDP first send a bogus reply with ID+1, the real one 50 ms later
  --malformed NAME         reply with the right ID and a body cut short inside the answer section
  --help                   show this text

NAME is an owner name ("host.example.test"), "*.suffix" for every name strictly below suffix, or "*"
for every name, optionally followed by "/TYPE" ("host.example.test/TXT") to match only that qtype.
All fault options are repeatable; the first matching rule of each kind applies.
Precedence when several kinds match: timeout, malformed, servfail, refused, truncate, wrong-id.
)";
}

bool parse_options(int argc, char** argv, Options& out, std::string& error) {
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        std::string_view flag = arg;
        std::optional<std::string_view> inline_value;
        if (arg.starts_with("--")) {
            if (auto eq = arg.find('='); eq != std::string_view::npos) {
                flag = arg.substr(0, eq);
                inline_value = arg.substr(eq + 1);
            }
        }
        if (flag == "--help" || flag == "-h") {
            out.help = true;
            continue;
        }
        bool known = std::any_of(std::begin(kValueFlags), std::end(kValueFlags),
                                 [&](std::string_view f) { return f == flag; }) ||
                     std::any_of(std::begin(kFaultFlags), std::end(kFaultFlags),
                                 [&](const FaultFlag& f) { return f.flag == flag; });
        if (!known) {
            error = std::string("unknown option: ") + std::string(flag);
            return false;
        }
        std::string_view value;
        if (inline_value) {
            value = *inline_value;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            error = std::string("option ") + std::string(flag) + " needs a value";
            return false;
        }
        auto bad = [&](std::string_view what) {
            error = std::string("bad value for ") + std::string(flag) + ": '" + std::string(value) + "' (" +
                    std::string(what) + ")";
            return false;
        };

        std::uint64_t number = 0;
        if (flag == "--listen") {
            out.listen = std::string(value);
        } else if (flag == "--port") {
            if (!parse_uint(value, 65535, number)) return bad("expected 0..65535");
            out.port = static_cast<std::uint16_t>(number);
        } else if (flag == "--zone") {
            out.zone_files.emplace_back(value);
        } else if (flag == "--log") {
            out.log_file = std::string(value);
        } else if (flag == "--udp-max") {
            if (!parse_uint(value, 65535, number) || number < 12) return bad("expected 12..65535");
            out.udp_max = static_cast<std::uint32_t>(number);
        } else if (flag == "--tcp-idle-ms") {
            if (!parse_uint(value, kMaxDelayMs, number) || number == 0) return bad("expected 1..600000");
            out.tcp_idle_ms = static_cast<std::uint32_t>(number);
        } else if (flag == "--delay-ms") {
            if (!parse_uint(value, kMaxDelayMs, number)) return bad("expected 0..600000");
            out.delay_ms = static_cast<std::uint32_t>(number);
        } else if (flag == "--delay") {
            ValueRule rule;
            if (!parse_value_rule(value, kMaxDelayMs, rule)) return bad("expected NAME=MS, MS in 0..600000");
            out.delays.push_back(std::move(rule));
        } else if (flag == "--ttl-override") {
            ValueRule rule;
            if (!parse_value_rule(value, std::numeric_limits<std::uint32_t>::max(), rule)) {
                return bad("expected NAME=SECONDS, SECONDS in 0..4294967295");
            }
            out.ttl_overrides.push_back(std::move(rule));
        } else {
            for (const auto& f : kFaultFlags) {
                if (flag == f.flag) {
                    if (value.empty()) return bad("expected a name");
                    out.faults.push_back({f.kind, std::string(value)});
                    break;
                }
            }
        }
    }
    return true;
}

}  // namespace vigil::test_dns
