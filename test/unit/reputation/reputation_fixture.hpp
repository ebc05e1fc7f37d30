#pragma once
// Shared helpers of the reputation tests: run one SMTP dialogue through the real engine (Session via
// replay) with a FakeResolver, and look at what came out.
#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/verdict.hpp"
#include "engine/config.hpp"
#include "engine/replay.hpp"
#include "engine/session.hpp"
#include "fakes.hpp"
#include "fakes/fake_resolver.hpp"

namespace vigil::test {

inline constexpr std::string_view test_message = "From: a@example.net\r\nSubject: test\r\n\r\nhello\r\n";

struct Dialogue {
    std::string ip = "203.0.113.9";
    std::string helo;
    std::string auth_user;
    std::vector<std::string> rcpts = {"b@example.org"};
};

// Every config of these tests names the authserv-id and host name, so results are predictable;
// `server` adds lines to that [server] table.
inline std::shared_ptr<const engine::Config> config(const std::string& body, const std::string& server = "") {
    return engine::load_config_string(
        "[server]\nauthserv_id = \"mx.test\"\nhostname = \"mx.ours.test\"\n" + server + body, "test.conf");
}

// `clock` null: a FakeClock (deadlines long past, so only ready answers count); otherwise e.g. the
// SystemClock for tests that measure real waiting.
inline engine::ReplayResult run(const std::shared_ptr<const engine::Config>& cfg, dns::Resolver* resolver,
                                const Dialogue& d = {}, const core::Clock* clock = nullptr) {
    FakeClock fake_clock;
    engine::Session s(cfg, engine::Services{clock ? clock : &fake_clock, resolver});
    engine::ReplayInput in;
    in.ip = core::IpAddress::parse(d.ip);
    in.helo = d.helo;
    in.mail_from = "a@example.net";
    in.auth_user = d.auth_user;
    in.rcpts = d.rcpts;
    in.message = test_message;
    return engine::replay(s, in);
}

inline const core::ScoredSymbol* find_symbol(const core::Verdict& v, std::string_view name) {
    for (const auto& s : v.symbols) {
        if (s.name == name) return &s;
    }
    return nullptr;
}

inline bool has_symbol(const core::Verdict& v, std::string_view name) {
    return find_symbol(v, name) != nullptr;
}

// Symbols whose name starts with `prefix`, sorted, for "exactly these" assertions.
inline std::vector<std::string> symbols_with(const core::Verdict& v, std::string_view prefix) {
    std::vector<std::string> out;
    for (const auto& s : v.symbols) {
        if (s.name.rfind(prefix, 0) == 0) out.push_back(s.name);
    }
    std::sort(out.begin(), out.end());
    return out;
}

inline std::vector<std::string> options_of(const core::Verdict& v, std::string_view name) {
    const auto* s = find_symbol(v, name);
    return s ? s->options : std::vector<std::string>{};
}

inline std::string auth_results(const core::Verdict& v) {
    for (const auto& e : v.edits) {
        if (e.name == "Authentication-Results" && e.kind == core::HeaderEdit::Kind::insert_top)
            return e.value;
    }
    return {};
}

inline std::string report_of(const core::Verdict& v, std::string_view key) {
    std::string out;
    for (const auto& [k, json] : v.reports) {
        if (k == key) out += json;
    }
    return out;
}

inline dns::Answer answer_of(std::vector<dns::Record> records, std::uint32_t ttl = 300) {
    dns::Answer a;
    a.status = dns::Status::answer;
    a.ttl = ttl;
    a.records = std::move(records);
    return a;
}

// Releases a held lookup `delay` after it was issued, from another thread (a server that answers
// late, but within the budget).
class LateRelease {
  public:
    LateRelease(dns::FakeResolver& fake, std::string name, dns::RrType type, std::chrono::milliseconds delay)
        : thread_([&fake, name, type, delay] {
              auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
              while (!fake.was_queried(name, type) && std::chrono::steady_clock::now() < give_up) {
                  std::this_thread::sleep_for(std::chrono::milliseconds(1));
              }
              std::this_thread::sleep_for(delay);
              fake.release(name, type);
          }) {}
    ~LateRelease() { thread_.join(); }
    LateRelease(const LateRelease&) = delete;
    LateRelease& operator=(const LateRelease&) = delete;

  private:
    std::thread thread_;
};

}  // namespace vigil::test
