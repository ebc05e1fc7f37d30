// The whole engine as the milter drives it: one SMTP connection (connect, HELO, MAIL, RCPT, header
// fields, end of headers, body chunks, end of message, abort) with every event, its order and its
// arguments taken from the fuzz input, and every DNS answer too — a permissive resolver answers any
// question from the input's own bytes (records of the asked type, NXDOMAIN, NODATA, SERVFAIL,
// timeout). Properties: no crash, no exception out of the session (the milter would turn one into
// the failure action: an internal error must not be reachable from peer input), a verdict that is
// one of the actions with a reply when it refuses, and one printable decision line.
#include <fuzzer/FuzzedDataProvider.h>

#include <unistd.h>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/dkim/crypto.hpp"
#include "core/clock.hpp"
#include "core/ip_address.hpp"
#include "core/limits.hpp"
#include "core/message.hpp"
#include "core/printable.hpp"
#include "dns/cache.hpp"
#include "dns/resolver.hpp"
#include "engine/config.hpp"
#include "engine/session.hpp"
#include "fuzz_check.hpp"
#include "report/decision_log.hpp"
#include "report/dmarc_store.hpp"

using namespace vigil;

namespace {

// Wall time fixed (signature t=/x= checks are then reproducible); deadlines on the real monotonic
// clock, which never matter because every answer is ready at once.
class FixedWallClock final : public core::Clock {
  public:
    std::chrono::system_clock::time_point now() const override {
        return std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
    }
    std::chrono::steady_clock::time_point monotonic() const override {
        return std::chrono::steady_clock::now();
    }
};

std::shared_ptr<const engine::Config> g_config;
std::string g_public_key_record;

// Answers every question from its own slice of the input. Unlike the unit-test fake, it never
// refuses a query: the engine may ask anything in any order. The same question gets the same answer.
class InputResolver final : public dns::Resolver {
  public:
    explicit InputResolver(std::string bytes)
        : bytes_(std::move(bytes)),
          in_(reinterpret_cast<const std::uint8_t*>(bytes_.data()), bytes_.size()) {}

    dns::Pending lookup(std::string_view name, dns::RrType type) override {
        auto q = dns::normalize_query_name(name);
        if (!q.ok()) return dns::Pending::of(dns::Answer::failure(dns::Status::malformed, q.error));
        auto key = std::make_pair(q.name, type);
        auto it = answers_.find(key);
        if (it == answers_.end()) it = answers_.emplace(key, make(q.name, type)).first;
        return dns::Pending::of(it->second);
    }

  private:
    std::string name_from_input(const std::string& asked) {
        switch (in_.ConsumeIntegralInRange(0, 4)) {
            case 0:
                return asked;
            case 1:
                return "mx.example.com";
            case 2:
                return "mail.example.net";
            case 3:
                return "";  // the root: a null MX
            default:
                return in_.ConsumeRandomLengthString(80);
        }
    }

    dns::Answer make(const std::string& name, dns::RrType type) {
        if (in_.remaining_bytes() == 0) return dns::Answer::failure(dns::Status::nxdomain, "");
        switch (in_.ConsumeIntegralInRange(0, 9)) {
            case 6:
                return dns::Answer::failure(dns::Status::nxdomain, "");
            case 7:
                return dns::Answer::failure(dns::Status::nodata, "");
            case 8:
                return dns::Answer::failure(dns::Status::servfail, "SERVFAIL");
            case 9:
                return dns::Answer::failure(dns::Status::timeout, "timed out");
            default:
                break;
        }
        dns::Answer a;
        a.status = dns::Status::answer;
        a.ttl = in_.ConsumeIntegralInRange<std::uint32_t>(0, 86400);
        for (int n = in_.ConsumeIntegralInRange(1, 4); n > 0; --n) {
            dns::Record r;
            r.type = type;
            r.name = name;
            switch (type) {
                case dns::RrType::a: {
                    std::array<std::uint8_t, 4> b{};
                    for (auto& x : b) x = in_.ConsumeIntegral<std::uint8_t>();
                    if (in_.ConsumeBool())
                        b = {127, 0, 0, in_.ConsumeIntegral<std::uint8_t>()};  // list codes
                    r.address = core::IpAddress::v4(b);
                    break;
                }
                case dns::RrType::aaaa: {
                    std::array<std::uint8_t, 16> b{};
                    for (auto& x : b) x = in_.ConsumeIntegral<std::uint8_t>();
                    r.address = core::IpAddress::v6(b);
                    break;
                }
                case dns::RrType::mx:
                    r.preference = in_.ConsumeIntegral<std::uint16_t>();
                    r.target = name_from_input(name);
                    break;
                case dns::RrType::txt: {
                    static const char* const prefixes[] = {"v=spf1 ",
                                                           "v=DKIM1; k=rsa; p=",
                                                           "v=DKIM1; k=ed25519; p=",
                                                           "v=DMARC1; p=",
                                                           "v=DMARC1; p=reject; rua=mailto:r@example.com; ",
                                                           ""};
                    std::string text =
                        in_.ConsumeBool() ? g_public_key_record : in_.PickValueInArray(prefixes);
                    text += in_.ConsumeRandomLengthString(400);
                    for (std::size_t i = 0; i < text.size() || i == 0; i += 255)
                        r.txt.push_back(text.substr(i, 255));
                    break;
                }
                default:
                    r.target = name_from_input(name);
                    break;
            }
            a.records.push_back(std::move(r));
        }
        return a;
    }

    std::string bytes_;
    FuzzedDataProvider in_;
    std::map<std::pair<std::string, dns::RrType>, dns::Answer> answers_;
};

// Takes the DMARC evaluations for aggregate reports and checks what a report would be made of.
class CheckingStore final : public report::DmarcStore {
  public:
    void record(const report::DmarcEvaluation& e) noexcept override {
        FUZZ_CHECK(e.disposition == "none" || e.disposition == "quarantine" || e.disposition == "reject");
        FUZZ_CHECK(!e.rua.empty() && !e.policy_domain.empty() && !e.header_from.empty());
        FUZZ_CHECK(e.pct >= 0 && e.pct <= 100);
    }
};

std::optional<core::IpAddress> client_ip(FuzzedDataProvider& in) {
    switch (in.ConsumeIntegralInRange(0, 4)) {
        case 0:
            return std::nullopt;  // local submission
        case 1:
            return core::IpAddress::parse("192.0.2.10");  // trusted network: outbound
        case 2: {
            std::array<std::uint8_t, 16> b{};
            for (auto& x : b) x = in.ConsumeIntegral<std::uint8_t>();
            return core::IpAddress::v6(b);
        }
        default: {
            std::array<std::uint8_t, 4> b{};
            for (auto& x : b) x = in.ConsumeIntegral<std::uint8_t>();
            return core::IpAddress::v4(b);
        }
    }
}

void check_verdict(const core::Verdict& v, const core::Envelope& env) {
    if (v.action == core::Action::reject || v.action == core::Action::tempfail)
        FUZZ_CHECK(v.reply.has_value());
    for (auto f : {report::LogFormat::text, report::LogFormat::json}) {
        auto line = report::format_decision(f, env, v, 0);
        for (unsigned char c : line) FUZZ_CHECK(c >= 0x20 && c < 0x7f);
    }
    // Every removal costs Postfix's cleanup a walk of the header: never more than the cap of one name.
    std::map<std::string, std::size_t> removals;
    for (const auto& e : v.edits) {
        if (e.kind == core::HeaderEdit::Kind::remove)
            FUZZ_CHECK(++removals[core::to_lower(e.name)] <= core::limits::max_removed_fields_per_name);
    }
    for (const auto& e : v.edits) {
        // A field we write must not smuggle a line break into the message (a changed field keeps the
        // value the MTA sent, which may be anything here).
        if (e.kind == core::HeaderEdit::Kind::change || e.kind == core::HeaderEdit::Kind::remove) continue;
        for (std::size_t i = 0; i < e.value.size(); ++i) {
            if (e.value[i] == '\n')
                FUZZ_CHECK(i > 0 && e.value[i - 1] == '\r' && i + 1 < e.value.size() &&
                           (e.value[i + 1] == ' ' || e.value[i + 1] == '\t'));
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    // A signing key for outbound mail, in a private file as the loader demands.
    auto key = auth::dkim::generate_key(auth::dkim::KeyType::ed25519, 0);
    if (!key.error.empty()) std::abort();
    char path[] = "/tmp/vigil-fuzz-key-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, key.private_pem.data(), key.private_pem.size()) !=
                      static_cast<ssize_t>(key.private_pem.size()))
        std::abort();
    close(fd);
    g_public_key_record = "v=DKIM1; k=ed25519; p=" + key.public_b64;
    const std::string text = std::string(R"([server]
hostname = "mx.vigil.test"
authserv_id = "mx.vigil.test"
trusted_networks = ["192.0.2.0/24"]
[dns]
stage_budget_ms = 50
[actions]
reject = 15.0
quarantine = 10.0
tempfail = 8.0
add_header = 6.0
[headers]
subject_tag = "[SPAM]"
always_add_score = true
[checks.gtube]
enabled = true
[checks.message_structure]
enabled = true
[checks.access]
enabled = true
[[checks.access.rule]]
match = "sender"
pattern = "@junk.test"
action = "score"
score = 7.0
[[checks.access.rule]]
match = "rcpt"
pattern = "blocked@example.org"
action = "reject"
[[checks.access.rule]]
match = "helo"
pattern = ".bad.test"
action = "tempfail"
[checks.iprev]
enabled = true
[checks.helo]
enabled = true
resolve = true
our_names = ["vigil.test"]
[checks.dnsbl]
enabled = true
[[checks.dnsbl.list]]
name = "block"
zone = "bl.example"
ipv6 = true
reject_codes = ["127.0.0.2"]
[checks.dnsbl.list.codes]
"127.0.0.3" = "RBL_BLOCK_THREE"
[[checks.dnsbl.list]]
name = "allow"
zone = "wl.example"
type = "allow"
[[checks.dnsbl.list]]
name = "bits"
zone = "bits.example"
bitmask = true
[checks.dnsbl.list.codes]
"4" = "RBL_BITS_FOUR"
[checks.spf]
enabled = true
helo_check = true
explanation = true
tempfail_on_temperror = true
[checks.dmarc]
enabled = true
bad_from = "strictest"
tempfail_on_temperror = true
[checks.dkim]
enabled = true
verify = true
sign = true
[[checks.dkim.key]]
domain = "example.com"
selector = "s1"
file = ")") + path + "\"\n";
    try {
        g_config = engine::load_config_string(text, "session-fuzz.conf");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "the fuzz configuration does not load: %s\n", e.what());
        std::abort();
    }
    unlink(path);  // the key is loaded now
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const FixedWallClock clock;
    static CheckingStore store;

    FuzzedDataProvider in(data, size);
    auto upstream = std::make_shared<InputResolver>(in.ConsumeRandomLengthString(2048));
    dns::CachingResolver cache(upstream, clock);
    engine::Services services;
    services.clock = &clock;
    services.resolver = &cache;
    services.cache = &cache;
    services.dmarc_store = &store;
    engine::Session s(g_config, services);

    auto str = [&](std::size_t max) { return in.ConsumeRandomLengthString(max); };
    int events = 0;
    while (in.remaining_bytes() > 0 && ++events < 200) {
        switch (in.ConsumeIntegralInRange(0, 11)) {
            case 0: {
                auto ip = client_ip(in);
                s.connect(ip, str(64), str(16), !ip);
                break;
            }
            case 1:
                s.helo(str(300));
                break;
            case 2: {
                auto from = str(300);
                bool auth = in.ConsumeBool();
                s.mail(from, auth ? str(32) : std::string(), auth ? "PLAIN" : "");
                break;
            }
            case 3:
                s.rcpt(str(300));
                break;
            case 4:
                s.set_queue_id(str(16));
                break;
            case 5: {
                auto name = str(64);
                s.header(name, str(2000));
                break;
            }
            case 6: {
                // A whole header block and body as a file would carry them (realistic field syntax).
                auto parsed = core::parse_message(str(8192));
                for (const auto& h : parsed.headers) s.header(h.name, h.value);
                s.end_of_headers();
                std::string_view body = parsed.body;
                while (!body.empty()) {
                    std::size_t n =
                        std::min<std::size_t>(body.size(), in.ConsumeIntegralInRange<std::size_t>(1, 4096));
                    s.body(body.substr(0, n));
                    body.remove_prefix(n);
                }
                break;
            }
            case 7:
                s.end_of_headers();
                break;
            case 8:
                s.body(str(4096));
                break;
            case 9:
            case 10: {
                auto v = s.end_of_message();
                check_verdict(v, s.envelope());
                s.reset_message();
                break;
            }
            default:
                s.reset_message();
                break;
        }
    }
    auto v = s.end_of_message();
    check_verdict(v, s.envelope());
    return 0;
}
