#include <catch2/catch.hpp>

#include <string>

#include "auth/dmarc/dmarc_limits.hpp"
#include "auth/dmarc/record.hpp"

using namespace vigil::auth::dmarc;
using Catch::Matchers::Contains;

TEST_CASE("dmarc record: every tag parsed, defaults otherwise", "[dmarc][record]") {
    auto r = parse_record(
        "v=DMARC1; p=reject; sp=quarantine; np=reject; adkim=s; aspf=s; pct=25; "
        "rua=mailto:agg@example.com!10m, mailto:other@example.net; ruf=mailto:f@example.com; fo=1:d; "
        "ri=3600");
    REQUIRE(r.ok());
    CHECK(r.status == RecordStatus::ok);
    const auto& rec = *r.record;
    CHECK(rec.p == Policy::reject);
    CHECK(rec.sp == Policy::quarantine);
    CHECK(rec.np == Policy::reject);
    CHECK(rec.adkim == AlignMode::strict);
    CHECK(rec.aspf == AlignMode::strict);
    CHECK(rec.pct == 25);
    REQUIRE(rec.rua.size() == 2);
    CHECK(rec.rua[0].uri == "mailto:agg@example.com");
    CHECK(rec.rua[0].max_bytes == 10ULL * 1024 * 1024);
    CHECK(rec.rua[1].uri == "mailto:other@example.net");
    CHECK_FALSE(rec.rua[1].max_bytes);
    REQUIRE(rec.ruf.size() == 1);
    CHECK(rec.fo == "1:d");
    CHECK(rec.ri == 3600);
    CHECK_FALSE(rec.p_defaulted);
    CHECK(rec.ignored.empty());

    auto m = parse_record("v=DMARC1; p=none");
    REQUIRE(m.ok());
    CHECK(m.record->p == Policy::none);
    CHECK_FALSE(m.record->sp);
    CHECK_FALSE(m.record->np);
    CHECK(m.record->adkim == AlignMode::relaxed);
    CHECK(m.record->aspf == AlignMode::relaxed);
    CHECK(m.record->pct == 100);
    CHECK(m.record->fo == "0");
    CHECK(m.record->ri == 86400);
    CHECK(m.record->subdomain_policy() == Policy::none);
}

TEST_CASE("dmarc record: sp and np fall back to the next policy up", "[dmarc][record]") {
    auto a = parse_record("v=DMARC1; p=reject");
    REQUIRE(a.ok());
    CHECK(a.record->subdomain_policy() == Policy::reject);
    CHECK(a.record->nonexistent_policy() == Policy::reject);
    auto b = parse_record("v=DMARC1; p=reject; sp=none");
    REQUIRE(b.ok());
    CHECK(b.record->nonexistent_policy() == Policy::none);
    auto c = parse_record("v=DMARC1; p=none; sp=none; np=reject");
    REQUIRE(c.ok());
    CHECK(c.record->subdomain_policy() == Policy::none);
    CHECK(c.record->nonexistent_policy() == Policy::reject);
}

TEST_CASE("dmarc record: v=DMARC1 must come first, exactly", "[dmarc][record]") {
    CHECK(parse_record("").status == RecordStatus::not_dmarc);
    CHECK(parse_record("   ").status == RecordStatus::not_dmarc);
    CHECK(parse_record("v=spf1 -all").status == RecordStatus::not_dmarc);
    CHECK(parse_record("p=reject; v=DMARC1").status == RecordStatus::not_dmarc);
    CHECK(parse_record("v=DMARC2; p=reject").status == RecordStatus::not_dmarc);
    // The value is a case-sensitive literal in the ABNF (%x44 %x4d ...); the tag name is not.
    CHECK(parse_record("v=dmarc1; p=reject").status == RecordStatus::not_dmarc);
    CHECK(parse_record("V=DMARC1; p=reject").ok());
    CHECK(parse_record("v = DMARC1 ;p = reject ;").ok());
    CHECK(parse_record("v=DMARC1x; p=reject").status == RecordStatus::not_dmarc);
    CHECK_FALSE(parse_record("v=spf1").error.empty());
    CHECK(is_dmarc_record("v=DMARC1"));
    CHECK_FALSE(is_dmarc_record("xv=DMARC1"));
}

TEST_CASE("dmarc record: policy values any case, never abbreviated", "[dmarc][record]") {
    auto r = parse_record("v=DMARC1;\tP=Reject;SP=QUARANTINE");
    REQUIRE(r.ok());
    CHECK(r.record->p == Policy::reject);
    CHECK(r.record->sp == Policy::quarantine);
    for (const char* bad : {"v=DMARC1; p=r", "v=DMARC1; p=n", "v=DMARC1; p=bob", "v=DMARC1; p=", "v=DMARC1",
                            "v=DMARC1; pct=100", "v=DMARC1; p=none; sp=bob", "v=DMARC1; p=reject; p=none",
                            "v=DMARC1; p=reject; p=reject"}) {
        INFO(bad);
        auto x = parse_record(bad);
        CHECK_FALSE(x.ok());
        CHECK(x.status == RecordStatus::invalid);
        CHECK_FALSE(x.error.empty());
    }
    CHECK_THAT(parse_record("v=DMARC1; p=reject; p=none").error, Contains("duplicate p="));
    CHECK_THAT(parse_record("v=DMARC1; p=r").error, Contains("invalid p= value 'r'"));
    CHECK_THAT(parse_record("v=DMARC1; pct=100").error, Contains("no p= tag"));
}

TEST_CASE("dmarc record: a bad p= with a usable rua= is p=none (RFC 7489 6.6.3)", "[dmarc][record]") {
    auto r = parse_record("v=DMARC1; p=bogus; sp=reject; np=reject; rua=mailto:d@example.com");
    REQUIRE(r.ok());
    CHECK(r.record->p == Policy::none);
    CHECK(r.record->p_defaulted);
    // "as if v=DMARC1; p=none was retrieved": nothing stricter survives.
    CHECK_FALSE(r.record->sp);
    CHECK_FALSE(r.record->np);
    CHECK(r.record->rua.size() == 1);
    auto s = parse_record("v=DMARC1; p=reject; sp=bogus; rua=mailto:d@example.com");
    REQUIRE(s.ok());
    CHECK(s.record->p == Policy::none);
    auto none = parse_record("v=DMARC1; rua=mailto:d@example.com");
    REQUIRE(none.ok());
    CHECK(none.record->p_defaulted);
    // An rua with no valid URI does not rescue it.
    CHECK_FALSE(parse_record("v=DMARC1; p=bogus; rua=not a uri").ok());
    CHECK_FALSE(parse_record("v=DMARC1; p=bogus; rua=").ok());
}

TEST_CASE("dmarc record: other invalid values fall back to the default (6.3)", "[dmarc][record]") {
    auto r =
        parse_record("v=DMARC1; p=quarantine; adkim=x; aspf=bob; pct=500; fo=2; rf=bob; ri=bob; np=maybe");
    REQUIRE(r.ok());
    CHECK(r.record->p == Policy::quarantine);
    CHECK(r.record->adkim == AlignMode::relaxed);
    CHECK(r.record->aspf == AlignMode::relaxed);
    CHECK(r.record->pct == 100);
    CHECK(r.record->fo == "0");
    CHECK(r.record->ri == 86400);
    CHECK_FALSE(r.record->np);
    CHECK(r.record->ignored == std::vector<std::string>{"adkim", "aspf", "pct", "fo", "rf", "ri", "np"});
    CHECK(parse_record("v=DMARC1; p=none; pct=0").record->pct == 0);
    CHECK(parse_record("v=DMARC1; p=none; pct=-1").record->pct == 100);
    CHECK(parse_record("v=DMARC1; p=none; pct=1000").record->pct == 100);
    CHECK(parse_record("v=DMARC1; p=none; ri=99999999999").record->ri == 86400);
}

TEST_CASE("dmarc record: unknown tags, empty parts and stray text are ignored", "[dmarc][record]") {
    auto r = parse_record("v=DMARC1;; p=reject; foo=bar; buzz=happy; ;noequals; =x;");
    REQUIRE(r.ok());
    CHECK(r.record->p == Policy::reject);
}

TEST_CASE("dmarc record: report URIs", "[dmarc][record]") {
    auto r = parse_record(
        "v=DMARC1; p=none; rua=mailto:a@example.com!50k,  https://r.example/x , mailto:b@example.com!1x, "
        "mailto:c@example.com!, mailto:bad@exa mple.com, nocolon, 1ab:x, mailto:e%2Cf@example.com");
    REQUIRE(r.ok());
    REQUIRE(r.record->rua.size() == 3);
    CHECK(r.record->rua[0].max_bytes == 50ULL * 1024);
    CHECK(r.record->rua[1].uri == "https://r.example/x");
    CHECK(r.record->rua[2].uri == "mailto:e%2Cf@example.com");
    CHECK(r.record->ignored == std::vector<std::string>{"rua"});
    CHECK(parse_record("v=DMARC1; p=none; rua=mailto:a@x!5t").record->rua[0].max_bytes ==
          5ULL * 1024 * 1024 * 1024 * 1024);
    CHECK(parse_record("v=DMARC1; p=none; rua=mailto:a@x!9999999999999").record->rua.empty());
    CHECK(parse_record("v=DMARC1; p=none; rua=mailto:a@x%zz").record->rua.empty());
}

TEST_CASE("dmarc record: hostile input stays bounded", "[dmarc][record][malformed]") {
    std::string many = "v=DMARC1; p=reject";
    for (int i = 0; i < 10000; ++i) many += "; t" + std::to_string(i) + "=x";
    auto r = parse_record(many);
    CHECK_FALSE(r.ok());
    CHECK(r.status == RecordStatus::invalid);

    std::string tags = "v=DMARC1; p=reject";
    for (std::size_t i = 0; i + 2 < limits::max_tags; ++i) tags += "; x=y";
    CHECK(parse_record(tags).ok());
    tags += "; x=y; x=y";
    CHECK_FALSE(parse_record(tags).ok());

    std::string uris = "v=DMARC1; p=none; rua=";
    for (int i = 0; i < 500; ++i)
        uris += (i ? "," : "") + std::string("mailto:") + std::to_string(i) + "@x.y";
    REQUIRE(uris.size() < limits::max_record_bytes);
    auto u = parse_record(uris);
    REQUIRE(u.ok());
    CHECK(u.record->rua.size() == limits::max_report_uris);

    CHECK_FALSE(parse_record("v=DMARC1; p=reject; x=" + std::string(limits::max_record_bytes, 'a')).ok());

    auto eight = parse_record("v=DMARC1; p=\xff\xfe; rua=mailto:\xc3\xa9@example.com");
    CHECK_FALSE(eight.ok());
    for (char c : eight.error) CHECK((c >= 0x20 && c < 0x7f));
    auto nul = parse_record(std::string("v=DMARC1; p=reject\0; x", 22));
    CHECK_FALSE(nul.ok());
}
