#include <catch2/catch.hpp>

#include <string>

#include "auth/spf/macro.hpp"
#include "auth/spf/spf_limits.hpp"

using namespace vigil::auth::spf;
using vigil::core::IpAddress;

namespace {

// The RFC 7208 §7.4 example context.
MacroContext example(const IpAddress& ip) {
    MacroContext m;
    m.local_part = "strong-bad";
    m.sender_domain = "email.example.com";
    m.domain = "email.example.com";
    m.helo = "mx.example.org";
    m.ip = ip;
    m.receiver = "mx.example.net";
    m.timestamp = 1234;
    return m;
}

std::string x(std::string_view spec, bool explanation = false) {
    auto ctx = example(*IpAddress::parse("192.0.2.3"));
    auto r = expand_macros(spec, ctx, explanation);
    return r.ok() ? r.value : "ERROR: " + r.error;
}

}  // namespace

TEST_CASE("spf macros: RFC 7208 section 7.4 examples", "[spf][macro]") {
    CHECK(x("%{s}") == "strong-bad@email.example.com");
    CHECK(x("%{o}") == "email.example.com");
    CHECK(x("%{d}") == "email.example.com");
    CHECK(x("%{d4}") == "email.example.com");
    CHECK(x("%{d3}") == "email.example.com");
    CHECK(x("%{d2}") == "example.com");
    CHECK(x("%{d1}") == "com");
    CHECK(x("%{dr}") == "com.example.email");
    CHECK(x("%{d2r}") == "example.email");
    CHECK(x("%{l}") == "strong-bad");
    CHECK(x("%{l-}") == "strong.bad");
    CHECK(x("%{lr}") == "strong-bad");
    CHECK(x("%{lr-}") == "bad.strong");
    CHECK(x("%{l1r-}") == "strong");
    CHECK(x("%{ir}.%{v}._spf.%{d2}") == "3.2.0.192.in-addr._spf.example.com");
    CHECK(x("%{lr-}.lp._spf.%{d2}") == "bad.strong.lp._spf.example.com");
    CHECK(x("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}") == "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
    CHECK(x("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}") == "3.2.0.192.in-addr.strong.lp._spf.example.com");
    CHECK(x("%{d2}.trusted-domains.example.net") == "example.com.trusted-domains.example.net");
    CHECK(x("%%%_%-") == "% %20");
    CHECK(x("%{S}") == "strong-bad%40email.example.com");
}

TEST_CASE("spf macros: IPv6", "[spf][macro]") {
    auto ctx = example(*IpAddress::parse("2001:db8::cb01"));
    auto r = expand_macros("%{ir}.%{v}._spf.%{d2}", ctx);
    REQUIRE(r.ok());
    CHECK(r.value == "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
}

TEST_CASE("spf macros: c, r, t only in explanations", "[spf][macro]") {
    CHECK(x("%{c}").starts_with("ERROR"));
    CHECK(x("%{c} via %{r} at %{t}", true) == "192.0.2.3 via mx.example.net at 1234");
    CHECK(x("a b").starts_with("ERROR"));
    CHECK(x("a b", true) == "a b");
}

TEST_CASE("spf macros: malformed macros are errors, never crashes", "[spf][macro][malformed]") {
    for (auto bad : {"%", "%{", "%{d", "%{d0}", "%{x}", "%{d2r", "%{d*}", "%a", "%{}", "%{dd}"}) {
        INFO(bad);
        CHECK(x(bad).starts_with("ERROR"));
    }
    std::string nul("a\0b", 3);
    CHECK(x(nul).starts_with("ERROR"));
    CHECK(x("\x80").starts_with("ERROR"));
}

TEST_CASE("spf macros: every expansion is bounded", "[spf][macro][malformed]") {
    // 450 characters of macros, each expanding the longest value.
    std::string spec;
    while (spec.size() < 450) spec += "%{s}";
    std::string local(limits::max_expansion_bytes / 2, 'l');
    auto ctx = example(*IpAddress::parse("192.0.2.3"));
    ctx.local_part = local;
    auto r = expand_macros(spec, ctx);
    CHECK_FALSE(r.ok());
    CHECK(r.value.empty());

    // A huge DIGIT means "all parts"; it does not overflow.
    CHECK(x("%{d99999999999999999999999}") == "email.example.com");
    CHECK(x("%{d129}") == "email.example.com");
}

TEST_CASE("spf macros: long domains lose labels on the left", "[spf][macro]") {
    auto ctx = example(*IpAddress::parse("192.0.2.3"));
    std::string d;
    for (int i = 0; i < 30; ++i) d += "abcdefghi.";
    d += "example.com";
    ctx.domain = d;
    auto r = expand_domain("%{d}", ctx);
    REQUIRE(r.ok());
    CHECK(r.value.size() <= limits::max_domain_length);
    CHECK(r.value.ends_with(".example.com"));
    CHECK(r.value.starts_with("abcdefghi."));
}

TEST_CASE("spf macros: %{p} is asked for at most once per expansion", "[spf][macro]") {
    auto ctx = example(*IpAddress::parse("192.0.2.3"));
    int calls = 0;
    ctx.validated_ptr = [&] {
        ++calls;
        return std::string("mx.example.com");
    };
    auto r = expand_macros("%{p}.%{p}.%{p2}", ctx);
    REQUIRE(r.ok());
    CHECK(r.value == "mx.example.com.mx.example.com.example.com");
    CHECK(calls == 1);
}
