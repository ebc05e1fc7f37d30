#include <catch2/catch.hpp>

#include "auth/dkim/dkim_fixture.hpp"
#include "auth/dkim/keys.hpp"
#include "doctor/checks.hpp"
#include "doctor_fixture.hpp"

using namespace vigil;
using namespace vigil::test::doctor;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

const auto ip10 = *core::IpAddress::parse("192.0.2.10");
const auto ip11 = *core::IpAddress::parse("192.0.2.11");

struct Fixture {
    dns::FakeResolver f;
    doctor::Probe probe{f};
};

}  // namespace

TEST_CASE("SPF: one valid record authorising every sending IP, ending in -all", "[doctor][spf]") {
    Fixture t;
    txt(t.f, "example.test", {"v=spf1 ip4:192.0.2.10 a:mx.example.test -all", "google-site-verification=x"});
    addr(t.f, "mx.example.test", {"192.0.2.11"});
    auto out = doctor::check_spf(t.probe, "example.test", {ip10, ip11}, "mx.example.test");
    INFO(dump(out));
    REQUIRE(out.size() == 4);
    CHECK(count(out, Level::ok) == 4);
    CHECK(out[0].reason == "one valid SPF record: 1 of 10 DNS-querying terms, 0 of 2 void lookups");
    CHECK(out[1].reason == "ends in -all");
    CHECK(out[2].reason == "192.0.2.10 is authorised (spf=pass by ip4:192.0.2.10)");
    CHECK(out[3].reason == "192.0.2.11 is authorised (spf=pass by a:mx.example.test)");
}

TEST_CASE("SPF: eleven DNS-querying terms is a fail that shows the count", "[doctor][spf]") {
    Fixture t;
    std::string rec = "v=spf1 ip4:192.0.2.10";
    for (int i = 1; i <= 11; ++i) {
        rec += " include:i" + std::to_string(i) + ".example.test";
        txt(t.f, "i" + std::to_string(i) + ".example.test", {"v=spf1 -all"});
    }
    txt(t.f, "example.test", {rec + " -all"});
    auto out = doctor::check_spf(t.probe, "example.test", {ip10, ip11}, "mx.example.test");
    INFO(dump(out));
    REQUIRE(out.size() == 4);
    CHECK(out[0].level == Level::fail);
    CHECK_THAT(out[0].reason, Contains("more than 10 DNS-querying terms (11 of 10 DNS-querying terms"));
    CHECK_THAT(out[0].fix, Contains("example.test. IN TXT \"v=spf1 ip4:192.0.2.10 ip4:192.0.2.11 -all\""));
    // An IP matched before the limit is reached still passes, as at a receiver...
    CHECK(out[2].level == Level::ok);
    // ...the other hits the limit.
    CHECK(out[3].level == Level::fail);
    CHECK_THAT(out[3].reason, Contains("192.0.2.11 cannot be authorised"));
    CHECK_FALSE(t.f.was_queried("i12.example.test", dns::RrType::txt));
}

TEST_CASE("SPF: +all, ?all and no all are warnings whose fix ends the record in -all", "[doctor][spf]") {
    Fixture t;
    txt(t.f, "plus.test", {"v=spf1 ip4:192.0.2.10 +all"});
    auto plus = doctor::check_spf(t.probe, "plus.test", {ip10}, "mx.test");
    INFO(dump(plus));
    auto ending = with(plus, "ends in");
    REQUIRE(ending.size() == 1);
    CHECK(ending[0].level == Level::warn);
    CHECK_THAT(ending[0].reason, Contains("every host on the internet may send as plus.test"));
    CHECK(ending[0].fix == "Replace it with: plus.test. IN TXT \"v=spf1 ip4:192.0.2.10 -all\"");

    txt(t.f, "open.test", {"v=spf1 ip4:192.0.2.10"});
    auto none = doctor::check_spf(t.probe, "open.test", {ip10}, "mx.test");
    auto no_all = with(none, "no all term");
    REQUIRE(no_all.size() == 1);
    CHECK(no_all[0].level == Level::warn);
    CHECK(no_all[0].fix == "Replace it with: open.test. IN TXT \"v=spf1 ip4:192.0.2.10 -all\"");

    txt(t.f, "soft.test", {"v=spf1 ip4:192.0.2.10 ~all"});
    CHECK(with(doctor::check_spf(t.probe, "soft.test", {ip10}, "mx.test"), "ends in ~all").at(0).level ==
          Level::ok);
}

TEST_CASE("SPF: a sending IP the record does not name is a fail with the record that names it",
          "[doctor][spf]") {
    Fixture t;
    txt(t.f, "example.test", {"v=spf1 ip4:192.0.2.10 include:_spf.mailer.test ~all"});
    txt(t.f, "_spf.mailer.test", {"v=spf1 ip4:198.51.100.0/24 -all"});
    auto out = doctor::check_spf(t.probe, "example.test", {ip10, ip11}, "mx.test");
    INFO(dump(out));
    auto bad = with(out, "192.0.2.11 is not authorised");
    REQUIRE(bad.size() == 1);
    CHECK(bad[0].level == Level::fail);
    CHECK_THAT(bad[0].reason, Contains("spf=softfail by ~all"));
    CHECK(bad[0].fix ==
          "Publish: example.test. IN TXT \"v=spf1 ip4:192.0.2.10 include:_spf.mailer.test ip4:192.0.2.11 "
          "~all\"");
}

TEST_CASE("SPF: no record, two records, a broken record", "[doctor][spf]") {
    Fixture t;
    t.f.set_status("none.test", dns::RrType::txt, dns::Status::nodata);
    auto none = doctor::check_spf(t.probe, "none.test", {ip10}, "mx.test");
    REQUIRE(none.size() == 1);
    CHECK(none[0].level == Level::fail);
    CHECK(none[0].fix == "Publish: none.test. IN TXT \"v=spf1 ip4:192.0.2.10 -all\"");

    txt(t.f, "two.test", {"v=spf1 -all", "v=spf1 ip4:192.0.2.10 -all"});
    auto two = doctor::check_spf(t.probe, "two.test", {ip10}, "mx.test");
    REQUIRE(two.size() == 1);
    CHECK(two[0].level == Level::fail);
    CHECK_THAT(two[0].reason, StartsWith("2 SPF records"));

    txt(t.f, "bad.test", {"v=spf1 ip4:192.0.2.300 -all"});
    auto bad = doctor::check_spf(t.probe, "bad.test", {ip10}, "mx.test");
    REQUIRE(bad.size() == 1);
    CHECK(bad[0].level == Level::fail);
    CHECK_THAT(bad[0].reason, Contains("does not parse"));
}

TEST_CASE("suggested SPF keeps other terms and puts new IPs before all or redirect", "[doctor][spf]") {
    auto v4 = *core::IpAddress::parse("192.0.2.1");
    auto v6 = *core::IpAddress::parse("2001:db8::1");
    CHECK(doctor::suggested_spf("", {v4, v6}) == "v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 -all");
    CHECK(doctor::suggested_spf("v=spf1 mx ~all", {v4}) == "v=spf1 mx ip4:192.0.2.1 ~all");
    CHECK(doctor::suggested_spf("v=spf1 ip4:192.0.2.1/32 ?all", {v4}) == "v=spf1 ip4:192.0.2.1/32 -all");
    CHECK(doctor::suggested_spf("v=spf1 redirect=_spf.example.test", {v4}) ==
          "v=spf1 ip4:192.0.2.1 redirect=_spf.example.test");
}

namespace {

using test::dkim::make_key;

doctor::Selector selector_of(const test::dkim::TestKey& k) {
    return {k.signing->selector, k.signing};
}

}  // namespace

TEST_CASE("DKIM: keys published and matching the private keys, both algorithms", "[doctor][dkim]") {
    Fixture t;
    auto rsa = make_key(auth::dkim::KeyType::rsa, "example.test", "r1");
    auto ed = make_key(auth::dkim::KeyType::ed25519, "example.test", "e1");
    txt(t.f, "r1._domainkey.example.test", {rsa.record});
    txt(t.f, "e1._domainkey.example.test", {ed.record});
    auto out = doctor::check_dkim(t.probe, "example.test", {selector_of(rsa), selector_of(ed)});
    INFO(dump(out));
    REQUIRE(out.size() == 2);
    CHECK(count(out, Level::ok) == 2);
    CHECK(out[0].reason == "selector r1: RSA-2048 key published, matches <generated>");
    CHECK(out[1].reason == "selector e1: Ed25519 key published, matches <generated>");
}

TEST_CASE("DKIM: missing, revoked and mismatching keys fail with the record made from the private key",
          "[doctor][dkim]") {
    Fixture t;
    auto mine = make_key(auth::dkim::KeyType::ed25519, "example.test", "mine");
    auto other = make_key(auth::dkim::KeyType::ed25519, "example.test", "mine");
    auto revoked = make_key(auth::dkim::KeyType::ed25519, "example.test", "old");
    auto missing = make_key(auth::dkim::KeyType::ed25519, "example.test", "new");
    txt(t.f, "mine._domainkey.example.test", {other.record});
    txt(t.f, "old._domainkey.example.test", {"v=DKIM1; k=ed25519; p="});
    t.f.set_status("new._domainkey.example.test", dns::RrType::txt, dns::Status::nxdomain);
    auto out = doctor::check_dkim(t.probe, "example.test",
                                  {selector_of(mine), selector_of(revoked), selector_of(missing)});
    INFO(dump(out));
    REQUIRE(out.size() == 3);
    CHECK(count(out, Level::fail) == 3);
    CHECK_THAT(out[0].reason, Contains("does not match the private key <generated>"));
    // The fix is exactly the record `vigil dkim keygen` prints for the key on disk.
    auto expected = [](const test::dkim::TestKey& k) {
        return auth::dkim::key_txt_record(k.signing->selector, "example.test", k.signing->type,
                                          auth::dkim::public_key_b64(k.signing->key.get(), k.signing->type));
    };
    CHECK(out[0].fix == "Publish (from <generated>): " + expected(mine));
    CHECK_THAT(out[0].fix, Contains("mine._domainkey.example.test. IN TXT ( \"v=DKIM1; k=ed25519; p="));
    CHECK_THAT(out[1].reason, Contains("revoked"));
    CHECK_THAT(out[1].fix, StartsWith("Publish (from <generated>): " + expected(revoked)));
    CHECK_THAT(out[2].reason, Contains("no key published at new._domainkey.example.test (nxdomain)"));
    CHECK(out[2].fix == "Publish (from <generated>): " + expected(missing));
}

TEST_CASE("DKIM: a 1024-bit RSA key and a single algorithm are warnings", "[doctor][dkim]") {
    Fixture t;
    auto weak = make_key(auth::dkim::KeyType::rsa, "example.test", "weak", 1024);
    txt(t.f, "weak._domainkey.example.test", {weak.record});
    auto out = doctor::check_dkim(t.probe, "example.test", {selector_of(weak)});
    INFO(dump(out));
    REQUIRE(out.size() == 2);
    CHECK(out[0].level == Level::warn);
    CHECK_THAT(out[0].reason, Contains("RSA-1024 key is weak"));
    CHECK_THAT(out[0].fix, Contains("vigil dkim keygen --domain example.test"));
    CHECK(out[1].level == Level::warn);
    CHECK_THAT(out[1].reason, StartsWith("only RSA keys are published"));
    CHECK_THAT(out[1].fix, Contains("--type ed25519"));

    auto none = doctor::check_dkim(t.probe, "example.test", {});
    REQUIRE(none.size() == 1);
    CHECK(none[0].level == Level::warn);
}

TEST_CASE("DMARC: no record is a fail with a record to start from", "[doctor][dmarc]") {
    Fixture t;
    t.f.set_status("_dmarc.example.test", dns::RrType::txt, dns::Status::nxdomain);
    auto out = doctor::check_dmarc(t.probe, "example.test", {"example.test"});
    INFO(dump(out));
    REQUIRE(out.size() == 1);
    CHECK(out[0].level == Level::fail);
    CHECK_THAT(
        out[0].fix,
        Contains("_dmarc.example.test. IN TXT \"v=DMARC1; p=none; rua=mailto:dmarc-reports@example.test\""));
}

TEST_CASE("DMARC: p=none without rua is a warning; rua to another organization needs its consent",
          "[doctor][dmarc]") {
    Fixture t;
    txt(t.f, "_dmarc.example.test", {"v=DMARC1; p=none"});
    auto none = doctor::check_dmarc(t.probe, "example.test", {"example.test"});
    INFO(dump(none));
    REQUIRE(none.size() == 2);
    CHECK(none[0].level == Level::warn);
    CHECK_THAT(none[0].reason, StartsWith("p=none without rua"));
    CHECK(none[0].fix ==
          "Ask for aggregate reports, then tighten the policy once they show only your own mail: "
          "_dmarc.example.test. IN TXT \"v=DMARC1; p=none; rua=mailto:dmarc-reports@example.test\"");
    CHECK(none[1].level == Level::ok);
    CHECK(none[1].reason == "DKIM d=example.test aligns with From example.test (adkim=r)");

    txt(t.f, "_dmarc.other.test",
        {"v=DMARC1; p=reject; adkim=s; "
         "rua=mailto:a@reports.test,mailto:b@ok-reports.test,mailto:c@other.test"});
    t.f.set_status("other.test._report._dmarc.reports.test", dns::RrType::txt, dns::Status::nxdomain);
    txt(t.f, "other.test._report._dmarc.ok-reports.test", {"v=DMARC1"});
    auto rej = doctor::check_dmarc(t.probe, "other.test", {"mail.other.test", "other.test"});
    INFO(dump(rej));
    REQUIRE(rej.size() == 5);
    CHECK(rej[0].level == Level::ok);
    CHECK(rej[0].reason == "p=reject");
    CHECK(rej[1].level == Level::warn);
    CHECK(rej[1].fix ==
          "Have the operator of reports.test publish: other.test._report._dmarc.reports.test. IN TXT "
          "\"v=DMARC1\"");
    CHECK(rej[2].level == Level::ok);
    CHECK(rej[3].level == Level::fail);  // adkim=s: a subdomain's key does not align
    CHECK_THAT(rej[3].reason,
               StartsWith("DKIM d=mail.other.test does not align with From other.test (adkim=s)"));
    CHECK(rej[4].level == Level::ok);
    // c@other.test is the domain's own: no authorisation lookup.
    CHECK_FALSE(t.f.was_queried("other.test._report._dmarc.other.test", dns::RrType::txt));
}

TEST_CASE("DMARC: the organizational domain's record applies to a subdomain", "[doctor][dmarc]") {
    Fixture t;
    t.f.set_status("_dmarc.news.example.test", dns::RrType::txt, dns::Status::nxdomain);
    txt(t.f, "_dmarc.example.test", {"v=DMARC1; p=quarantine; rua=mailto:d@example.test"});
    auto out = doctor::check_dmarc(t.probe, "news.example.test", {"example.test"});
    INFO(dump(out));
    REQUIRE(out.size() == 2);
    CHECK(out[0].level == Level::ok);
    CHECK(out[0].reason == "p=quarantine (from the organizational domain example.test)");
    CHECK(out[1].level == Level::ok);  // relaxed: example.test aligns with news.example.test
}
