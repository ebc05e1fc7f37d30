// The network side of vigil-test-dns: one UDP and one TCP socket on the same port, a single-threaded
// poll loop, and a timer queue so that a delayed answer never holds up any other query.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "options.hpp"
#include "responder.hpp"

namespace vigil::test_dns {

class Server {
  public:
    // Binds and listens (options.listen, port, log_file, tcp_idle_ms); throws std::runtime_error on
    // failure. Port 0 picks a port free for both UDP and TCP.
    Server(const Responder& responder, const Options& options);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    std::uint16_t port() const;

    // Serves until SIGTERM or SIGINT arrives.
    void run();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::test_dns
