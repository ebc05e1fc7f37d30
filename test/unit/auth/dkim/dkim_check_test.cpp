#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "auth/dkim/dkim_check.hpp"
#include "auth/dkim/dkim_fixture.hpp"
#include "check/config_reader.hpp"
#include "core/limits.hpp"
#include "dns/cache.hpp"
#include "engine/config.hpp"
#include "engine/replay.hpp"
#include "engine/session.hpp"
#include "fakes.hpp"
#include "fakes/fake_resolver.hpp"

using namespace vigil;
using namespace vigil::test::dkim;

namespace {

struct TempKeyFile {
    std::string path;
    TempKeyFile(const std::string& pem, mode_t mode) {
        char tmpl[] = "/tmp/vigil-dkim-test-XXXXXX";
        int fd = mkstemp(tmpl);
        REQUIRE(fd >= 0);
        path = tmpl;
        REQUIRE(write(fd, pem.data(), pem.size()) == static_cast<ssize_t>(pem.size()));
        close(fd);
        chmod(path.c_str(), mode);
    }
    ~TempKeyFile() { std::remove(path.c_str()); }
};

const std::string message =
    "From: Joe <joe@example.com>\r\nTo: b@example.org\r\nSubject: hello\r\n\r\nHello.\r\n";

std::shared_ptr<const engine::Config> config_with(const std::string& dkim) {
    return engine::load_config_string(
        "[server]\nauthserv_id = \"mx.test\"\nhostname = \"mx.ours.test\"\n"
        "[checks.dkim]\nenabled = true\n" +
            dkim,
        "test.conf");
}

engine::ReplayResult run(const std::shared_ptr<const engine::Config>& cfg, dns::Resolver* resolver,
                         std::string_view msg, const std::string& ip, dns::CachingResolver* cache = nullptr) {
    vigil::test::FakeClock clock;
    engine::Session s(cfg, engine::Services{&clock, resolver, cache});
    engine::ReplayInput in;
    in.ip = core::IpAddress::parse(ip);
    in.mail_from = "joe@example.com";
    in.rcpts = {"b@example.org"};
    in.message = msg;
    return engine::replay(s, in);
}

bool has(const core::Verdict& v, std::string_view name) {
    for (const auto& s : v.symbols) {
        if (s.name == name) return true;
    }
    return false;
}

}  // namespace

TEST_CASE("dkim check: signs outbound mail, verifies it inbound through the engine", "[dkim][check]") {
    auto g = generate_key(KeyType::ed25519, 0);
    TempKeyFile f(g.private_pem, 0600);
    auto g2 = generate_key(KeyType::rsa, 2048);
    TempKeyFile f2(g2.private_pem, 0600);
    auto cfg =
        config_with("[[checks.dkim.key]]\ndomain = \"example.com\"\nselector = \"ed\"\nfile = \"" + f.path +
                    "\"\n[[checks.dkim.key]]\ndomain = \"example.com\"\nselector = \"rsa\"\nfile = \"" +
                    f2.path + "\"\n");
    dns::FakeResolver none;
    auto out = run(cfg, &none, message, "127.0.0.1");  // trusted network: outbound
    REQUIRE_FALSE(out.refused_at);
    std::string signed_msg;
    for (const auto& e : out.verdict.edits) {
        if (e.kind == core::HeaderEdit::Kind::insert_top && e.name == "DKIM-Signature")
            signed_msg = e.name + ":" + e.value + "\r\n" + signed_msg;  // each goes on top
    }
    REQUIRE(signed_msg.find("s=ed;") != std::string::npos);
    CHECK(signed_msg.find("s=ed;") < signed_msg.find("s=rsa;"));  // configured order on top
    CHECK(has(out.verdict, "DKIM_SIGNED"));
    CHECK(none.queries().empty());
    signed_msg += message;

    dns::FakeResolver fake;
    fake.set_records(
        "ed._domainkey.example.com", dns::RrType::txt,
        {dns::fake::txt("ed._domainkey.example.com", {"v=DKIM1; k=ed25519; p=" + g.public_b64})});
    fake.set_records(
        "rsa._domainkey.example.com", dns::RrType::txt,
        {dns::fake::txt("rsa._domainkey.example.com",
                        {"v=DKIM1; k=rsa; p=" + g2.public_b64.substr(0, 200), g2.public_b64.substr(200)})});
    auto in = run(cfg, &fake, signed_msg, "203.0.113.9");
    REQUIRE_FALSE(in.refused_at);
    CHECK(has(in.verdict, "DKIM_ALLOW"));
    CHECK_FALSE(has(in.verdict, "DKIM_REJECT"));
    std::string ar;
    for (const auto& e : in.verdict.edits) {
        if (e.name == "Authentication-Results") {
            ar = core::unfold(e.value);
            std::replace(ar.begin(), ar.end(), '\t', ' ');
        }
    }
    INFO(ar);
    CHECK(ar.find("dkim=pass header.d=example.com header.i=@example.com header.s=ed header.a=ed25519-sha256 "
                  "header.b=\"") != std::string::npos);
    CHECK(ar.find("header.s=rsa header.a=rsa-sha256") != std::string::npos);
    std::string report;
    for (const auto& [k, j] : in.verdict.reports) {
        if (k == "dkim") report = j;
    }
    CHECK(report.rfind("{\"signatures\":[{\"result\":\"pass\",\"domain\":\"example.com\",\"selector\":\"ed\","
                       "\"algorithm\":\"ed25519-sha256\",\"detail\":\"\"}",
                       0) == 0);

    // Tampered: DKIM_REJECT.
    auto bad = signed_msg;
    bad[bad.size() - 4] = 'X';
    auto r = run(cfg, &fake, bad, "203.0.113.9");
    CHECK(has(r.verdict, "DKIM_REJECT"));
    CHECK_FALSE(has(r.verdict, "DKIM_ALLOW"));
}

TEST_CASE("dkim check: past the header-field cap nothing is signed and nothing passes", "[dkim][check]") {
    auto g = generate_key(KeyType::ed25519, 0);
    TempKeyFile f(g.private_pem, 0600);
    auto cfg = config_with("[[checks.dkim.key]]\ndomain = \"example.com\"\nselector = \"ed\"\nfile = \"" +
                           f.path + "\"\n");
    std::string filler;
    for (std::size_t i = 0; i < core::limits::max_header_fields; ++i)
        filler += "X-Filler: " + std::to_string(i) + "\r\n";
    // The From (and so the whole message) sits at the top; the filler pushes the rest past the cap.
    std::string big = "From: Joe <joe@example.com>\r\n" + filler + "Subject: late\r\n\r\nHello.\r\n";

    dns::FakeResolver none;
    auto out = run(cfg, &none, big, "127.0.0.1");
    REQUIRE_FALSE(out.refused_at);
    CHECK(has(out.verdict, "DKIM_SIGN_ERROR"));
    CHECK_FALSE(has(out.verdict, "DKIM_SIGNED"));
    CHECK(std::none_of(out.verdict.edits.begin(), out.verdict.edits.end(),
                       [](const core::HeaderEdit& e) { return e.name == "DKIM-Signature"; }));
    REQUIRE(out.verdict.warnings.size() == 1);
    CHECK(out.verdict.warnings[0].find("was not signed") != std::string::npos);

    // Inbound, a signature made over a message that large is neutral, never pass or fail.
    auto small = run(cfg, &none, message, "127.0.0.1");
    std::string sig;
    for (const auto& e : small.verdict.edits) {
        if (e.name == "DKIM-Signature") sig = "DKIM-Signature:" + e.value + "\r\n";
    }
    REQUIRE_FALSE(sig.empty());
    dns::FakeResolver fake;
    fake.set_records(
        "ed._domainkey.example.com", dns::RrType::txt,
        {dns::fake::txt("ed._domainkey.example.com", {"v=DKIM1; k=ed25519; p=" + g.public_b64})});
    auto in = run(cfg, &fake, sig + big, "203.0.113.9");
    CHECK(has(in.verdict, "DKIM_NEUTRAL"));
    CHECK_FALSE(has(in.verdict, "DKIM_ALLOW"));
    CHECK_FALSE(has(in.verdict, "DKIM_REJECT"));
}

TEST_CASE("dkim check: parsed keys are cached with their TTL; DNS failure is temperror", "[dkim][check]") {
    auto k = make_key(KeyType::ed25519, "example.com", "ed");
    auto signed_msg = sign_message(message, {k.signing}, SignParams{});
    auto cfg = config_with("trusted_signers = [\"Example.com\"]\n");
    auto fake = std::make_shared<dns::FakeResolver>();
    fake->set_records("ed._domainkey.example.com", dns::RrType::txt,
                      {dns::fake::txt("ed._domainkey.example.com", {k.record})}, 300);
    vigil::test::FakeClock clock;
    dns::CachingResolver cache(fake, clock);
    for (int i = 0; i < 3; ++i) {
        auto r = run(cfg, &cache, signed_msg, "203.0.113.9", &cache);
        CHECK(has(r.verdict, "DKIM_ALLOW"));
        CHECK(has(r.verdict, "DKIM_TRUSTED"));
    }
    CHECK(fake->count("ed._domainkey.example.com", dns::RrType::txt) == 1);
    CHECK(cache.stats().parsed_hits == 2);

    dns::FakeResolver failing;
    failing.set_status("ed._domainkey.example.com", dns::RrType::txt, dns::Status::servfail);
    auto r = run(cfg, &failing, signed_msg, "203.0.113.9");
    CHECK(has(r.verdict, "DKIM_TEMPERROR"));
    auto none = run(cfg, &failing, message, "203.0.113.9");
    CHECK(has(none.verdict, "DKIM_NONE"));
}

TEST_CASE("dkim check: key file errors are config errors with file:line", "[dkim][check]") {
    auto g = generate_key(KeyType::ed25519, 0);
    TempKeyFile loose(g.private_pem, 0644);
    auto conf =
        "[[checks.dkim.key]]\ndomain = \"example.com\"\nselector = \"s\"\nfile = \"" + loose.path + "\"\n";
    try {
        config_with(conf);
        FAIL("loose key file accepted");
    } catch (const check::ConfigError& e) {
        std::string what = e.what();
        INFO(what);
        CHECK(what.find("test.conf:9:") != std::string::npos);
        CHECK(what.find("readable by group or others") != std::string::npos);
    }
    CHECK_THROWS_AS(config_with("[[checks.dkim.key]]\ndomain = \"example.com\"\nselector = \"s\"\nfile = "
                                "\"/nonexistent/k.pem\"\n"),
                    check::ConfigError);
    TempKeyFile junk("-----BEGIN PRIVATE KEY-----\nAAAA\n", 0600);
    CHECK_THROWS_AS(config_with("[[checks.dkim.key]]\ndomain = \"example.com\"\nselector = \"s\"\nfile = \"" +
                                junk.path + "\"\n"),
                    check::ConfigError);
    CHECK_THROWS_AS(config_with("sign_headers = [\"subject\"]\n"), check::ConfigError);
}

TEST_CASE("dkim check: signing table maps From domains to signing keys", "[dkim][check]") {
    DkimOptions o;
    auto k = make_key(KeyType::ed25519, "example.com", "ed");
    o.keys.push_back(k.signing);
    o.rules.push_back({"*.example.org", "example.com"});
    DkimCheck c(o);
    CHECK(c.keys_for("example.com").size() == 1);
    CHECK(c.keys_for("mail.example.org").size() == 1);
    CHECK(c.keys_for("example.org").size() == 1);
    CHECK(c.keys_for("badexample.org").empty());
    CHECK(c.keys_for("other.net").empty());
    CHECK(from_domain(" Joe <Joe@Example.COM>") == "example.com");
    CHECK(from_domain(" joe@example.com") == "example.com");
    CHECK(from_domain(" nobody") == "");
}
