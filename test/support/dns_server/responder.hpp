// Turns one DNS query into the messages to send back: zone lookup plus the configured faults.
// Pure with respect to I/O and time: the server decides when and where the bytes go.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "options.hpp"

namespace vigil::test_dns {

enum class Transport { kUdp, kTcp };

// One message to send, `delay_ms` after the query arrived.
struct Send {
    std::uint32_t delay_ms = 0;
    std::vector<std::uint8_t> bytes;
};

struct Reply {
    bool is_query = false;  // false: not a parseable DNS query; send nothing
    std::string qname;      // printable and bounded, "-" when unknown
    std::string qtype;
    std::string action;  // answer, nodata, nxdomain, refused, servfail, timeout, truncated, ...
    std::vector<Send> sends;
};

class Responder {
  public:
    // Loads the zone files and compiles the name patterns. Throws std::runtime_error whose message is
    // ready for the user ("file:line: reason").
    explicit Responder(const Options& options);
    ~Responder();
    Responder(const Responder&) = delete;
    Responder& operator=(const Responder&) = delete;

    Reply respond(std::span<const std::uint8_t> query, Transport transport) const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::test_dns
