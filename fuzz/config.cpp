// The configuration loader: an operator's typo must give a ConfigError listing the problem, never a
// crash or another exception (house rule 4: exceptions only at start-up and configuration load, and
// there only ConfigError). A configuration that loads must then be usable: one message goes through
// a session built on it (no resolver: every lookup fails as servfail).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/ip_address.hpp"
#include "engine/config.hpp"
#include "engine/session.hpp"
#include "fuzz_check.hpp"
#include "report/decision_log.hpp"

using namespace vigil;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    std::shared_ptr<const engine::Config> cfg;
    try {
        cfg = engine::load_config_string(text, "fuzz.conf");
    } catch (const check::ConfigError& e) {
        FUZZ_CHECK(std::string_view(e.what()).find("fuzz.conf") != std::string_view::npos);
        return 0;
    }
    for (const auto& c : cfg->checks) {
        for (const auto& s : c->symbols()) FUZZ_CHECK(cfg->symbol(s.name) != nullptr);
    }
    engine::Session s(cfg, engine::Services{});
    s.connect(core::IpAddress::parse("192.0.2.1"), "client.example");
    s.helo("client.example");
    s.mail("<a@example.com>");
    s.rcpt("<b@example.org>");
    s.header("From", " a@example.com");
    s.header("Subject", " XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X");
    s.end_of_headers();
    s.body("XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n");
    auto v = s.end_of_message();
    // The decision line must be one printable line whatever the configuration made of the verdict.
    for (auto f : {report::LogFormat::text, report::LogFormat::json}) {
        auto line = report::format_decision(f, s.envelope(), v, 0);
        FUZZ_CHECK(line.find('\n') == std::string::npos);
    }
    return 0;
}
