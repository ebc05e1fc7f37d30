// vigil-test-dns: a small authoritative DNS server with fault injection, for integration tests.
// See `vigil-test-dns --help` and DESIGN.md ("integration tests use a real DNS server").
#include <cstdio>
#include <exception>
#include <string>

#include "options.hpp"
#include "responder.hpp"
#include "server.hpp"

int main(int argc, char** argv) {
    using namespace vigil::test_dns;
    Options options;
    std::string error;
    if (!parse_options(argc, argv, options, error)) {
        std::fprintf(stderr, "vigil-test-dns: %s\n%s", error.c_str(), usage_text().c_str());
        return 2;
    }
    if (options.help) {
        std::fputs(usage_text().c_str(), stdout);
        return 0;
    }
    try {
        Responder responder(options);
        Server server(responder, options);
        // Test harnesses block on this line; it must not sit in a pipe buffer.
        std::printf("port %u\n", static_cast<unsigned>(server.port()));
        std::fflush(stdout);
        server.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vigil-test-dns: %s\n", e.what());
        return 1;
    }
    return 0;
}
