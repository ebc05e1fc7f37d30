// Command line of vigil-test-dns, the authoritative DNS server that integration tests run.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vigil::test_dns {

// What a fault rule does to a matching query.
enum class FaultKind { kTimeout, kServfail, kRefused, kTruncate, kWrongId, kMalformed };

// A rule as typed: the name pattern ("name", "*.suffix" or "*", optionally "/TYPE") is kept as text because
// only the responder, which owns the DNS codec, can turn it into a name and a type.
struct FaultRule {
    FaultKind kind;
    std::string pattern;
};

struct ValueRule {
    std::string pattern;
    std::uint32_t value;
};

struct Options {
    std::string listen = "127.0.0.1";
    std::uint16_t port = 0;
    std::vector<std::string> zone_files;
    std::uint32_t delay_ms = 0;
    std::vector<ValueRule> delays;         // NAME=MS
    std::vector<ValueRule> ttl_overrides;  // NAME=SECONDS
    std::vector<FaultRule> faults;
    std::optional<std::uint32_t> udp_max;
    std::string log_file;
    std::uint32_t tcp_idle_ms = 10'000;
    bool help = false;
};

// Fills `out` from argv. On failure returns false and sets `error` to a one-line message.
bool parse_options(int argc, char** argv, Options& out, std::string& error);

std::string usage_text();

}  // namespace vigil::test_dns
