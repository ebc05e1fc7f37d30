#include <catch2/catch.hpp>

#include <string>

#include "auth/spf/record.hpp"
#include "auth/spf/spf_limits.hpp"

using namespace vigil::auth::spf;

TEST_CASE("spf record: version selection", "[spf][record]") {
    CHECK(is_spf_record("v=spf1"));
    CHECK(is_spf_record("v=spf1 -all"));
    CHECK(is_spf_record("V=SPF1 -all"));
    CHECK_FALSE(is_spf_record("v=spf10 -all"));
    CHECK_FALSE(is_spf_record("v=spf1-all"));
    CHECK_FALSE(is_spf_record(" v=spf1 -all"));
    CHECK_FALSE(is_spf_record("v=spf"));
    CHECK_FALSE(is_spf_record(""));
}

TEST_CASE("spf record: mechanisms, qualifiers and cidr lengths", "[spf][record]") {
    auto p = parse_record(
        "v=spf1 +a mx:example.com/24//64 ~ptr ?include:_spf.example.net ip4:192.0.2.0/24 "
        "ip6:2001:db8::/32 exists:%{i}.x.example.org -all");
    REQUIRE(p.ok());
    const auto& m = p.record->mechanisms;
    REQUIRE(m.size() == 8);
    CHECK(m[0].kind == MechanismKind::a);
    CHECK(m[1].kind == MechanismKind::mx);
    CHECK(m[1].domain_spec == "example.com");
    CHECK(m[1].cidr4 == 24);
    CHECK(m[1].cidr6 == 64);
    CHECK(m[2].qualifier == Qualifier::softfail);
    CHECK(m[3].qualifier == Qualifier::neutral);
    CHECK(m[4].network->prefix() == 24);
    CHECK(m[5].network->prefix() == 32);
    CHECK(m[6].domain_spec == "%{i}.x.example.org");
    CHECK(m[7].qualifier == Qualifier::fail);
    CHECK(m[7].text == "-all");
}

TEST_CASE("spf record: a domain-spec may contain ':' and '/'", "[spf][record]") {
    auto p = parse_record("v=spf1 a:foo:bar/baz.example.com/24 -all");
    REQUIRE(p.ok());
    CHECK(p.record->mechanisms[0].domain_spec == "foo:bar/baz.example.com");
    CHECK(p.record->mechanisms[0].cidr4 == 24);
}

TEST_CASE("spf record: modifiers", "[spf][record]") {
    auto p = parse_record("v=spf1 redirect=_spf.example.com exp=explain.%{d} foo=bar%{d}");
    REQUIRE(p.ok());
    CHECK(*p.record->redirect == "_spf.example.com");
    CHECK(*p.record->exp == "explain.%{d}");
    CHECK_FALSE(parse_record("v=spf1 redirect=a.example.com redirect=b.example.com").ok());
    CHECK_FALSE(parse_record("v=spf1 exp=a.example.com exp=b.example.com").ok());
    CHECK_FALSE(parse_record("v=spf1 exp= -all").ok());
    CHECK_FALSE(parse_record("v=spf1 -redirect=a.example.com").ok());
    CHECK_FALSE(parse_record("v=spf1 1x=foo").ok());
    CHECK_FALSE(parse_record("v=spf1 -all exp=%{r}.example.com").ok());  // c, r, t only in exp text
}

TEST_CASE("spf record: malformed records are rejected whole", "[spf][record][malformed]") {
    const char* bad[] = {
        "v=spf1 a:museum",         // no dot before the top label
        "v=spf1 a:111.222.33.44",  // numeric top label
        "v=spf1 a/33",             // IPv4 length over 32
        "v=spf1 a//129",           // IPv6 length over 128
        "v=spf1 ip4:1.2.3.4/032",  // leading zero
        "v=spf1 ip4:1.2.3.4//32",
        "v=spf1 ip4:1.2.3",
        "v=spf1 ip4:01.2.3.4",
        "v=spf1 ip4:1.2.3.4:8080",
        "v=spf1 ip6::CAFE::BABE",
        "v=spf1 ip6:1.2.3.4",
        "v=spf1 include:",
        "v=spf1 include",
        "v=spf1 exists",
        "v=spf1 all:foo.example.com",
        "v=spf1 foo:bar.example.com",
        "v=spf1 a:%{x}.example.com",  // unknown macro letter
        "v=spf1 a:%{d.example.com",   // unterminated macro
        "v=spf1 a:foo%.example.com",  // bad escape
        "v=spf1 a:%",
        "v=spf1 -all\t",  // only SP separates terms
    };
    for (auto* r : bad) {
        INFO(r);
        auto p = parse_record(r);
        CHECK_FALSE(p.ok());
        CHECK_FALSE(p.error.empty());
    }
}

TEST_CASE("spf record: NUL and 8-bit bytes are syntax errors", "[spf][record][malformed]") {
    std::string nul = "v=spf1 a:foo";
    nul += '\0';
    nul += ".example.com -all";
    CHECK_FALSE(parse_record(nul).ok());
    CHECK_FALSE(parse_record("v=spf1 a:\xef\xbb\xbf"
                             "example.com -all")
                    .ok());
    CHECK_FALSE(parse_record("v=spf1 -all \xff").ok());
    auto p = parse_record(std::string("v=spf1 ip4:1.2.3.4 x=\x80"));
    CHECK_FALSE(p.ok());
    CHECK(p.error.find('\x80') == std::string::npos);  // errors are printable
}

TEST_CASE("spf record: size caps", "[spf][record][malformed]") {
    std::string many = "v=spf1";
    while (many.size() < limits::max_record_bytes - 8) many += " ?a";
    auto at_cap = parse_record(many);
    CHECK_FALSE(at_cap.ok());  // more than max_terms terms
    CHECK(at_cap.error.find("terms") != std::string::npos);

    std::string huge = "v=spf1 " + std::string(limits::max_record_bytes, 'a');
    CHECK_FALSE(parse_record(huge).ok());

    std::string fine = "v=spf1";
    for (int i = 0; i < 100; ++i) fine += " ip4:10.0.0." + std::to_string(i);
    CHECK(parse_record(fine + " -all").ok());
}

TEST_CASE("spf record: domain-spec grammar", "[spf][record]") {
    CHECK(valid_domain_spec("example.com"));
    CHECK(valid_domain_spec("example.com."));
    CHECK(valid_domain_spec("%{d}"));
    CHECK(valid_domain_spec("%{ir}.%{v}._spf.%{d2}"));
    CHECK(valid_domain_spec("foo.1-2"));
    CHECK_FALSE(valid_domain_spec(""));
    CHECK_FALSE(valid_domain_spec("com"));
    CHECK_FALSE(valid_domain_spec("example.123"));
    CHECK_FALSE(valid_domain_spec("example.com-"));
    CHECK_FALSE(valid_domain_spec("%{d}com"));
    CHECK(valid_explain_string("%{c} is not allowed, see %{r} at %{t}"));
    CHECK_FALSE(valid_explain_string("100%"));
}
