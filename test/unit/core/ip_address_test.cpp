#include <catch2/catch.hpp>

#include "core/ip_address.hpp"

using vigil::core::Cidr;
using vigil::core::IpAddress;

TEST_CASE("IP addresses parse and print", "[core][ip]") {
    CHECK(IpAddress::parse("192.0.2.1")->to_string() == "192.0.2.1");
    CHECK(IpAddress::parse("[192.0.2.1]")->to_string() == "192.0.2.1");
    CHECK(IpAddress::parse("2001:DB8::1")->to_string() == "2001:db8::1");
    CHECK(IpAddress::parse("IPv6:2001:db8::1")->to_string() == "2001:db8::1");
    for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", "::g", "example.com",
                            "1.2.3.4/24", "[1.2.3.4", "01234567890123456789012345678901234567890123456789"}) {
        INFO(bad);
        CHECK_FALSE(IpAddress::parse(bad));
    }
}

TEST_CASE("reverse labels for DNS lists and PTR", "[core][ip]") {
    CHECK(IpAddress::parse("192.0.2.1")->reverse_labels() == "1.2.0.192");
    CHECK(IpAddress::parse("2001:db8::1")->reverse_labels() ==
          "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2");
}

TEST_CASE("IPv4-mapped IPv6 is the IPv4 address it carries", "[core][ip]") {
    auto mapped = IpAddress::parse("::ffff:192.0.2.7");
    REQUIRE(mapped);
    CHECK(mapped->unmapped().is_v4());
    CHECK(mapped->unmapped().to_string() == "192.0.2.7");
    CHECK(Cidr::parse("192.0.2.0/24")->contains(*mapped));
    CHECK_FALSE(IpAddress::parse("2001:db8::1")->unmapped().is_v4());
}

TEST_CASE("CIDR parsing and matching", "[core][ip]") {
    auto net = Cidr::parse("10.0.0.0/8");
    REQUIRE(net);
    CHECK(net->contains(*IpAddress::parse("10.255.1.2")));
    CHECK_FALSE(net->contains(*IpAddress::parse("11.0.0.1")));
    CHECK_FALSE(net->contains(*IpAddress::parse("2001:db8::1")));
    CHECK(Cidr::parse("0.0.0.0/0")->contains(*IpAddress::parse("203.0.113.9")));
    CHECK(Cidr::parse("2001:db8::/33")->contains(*IpAddress::parse("2001:db8:7fff::1")));
    CHECK_FALSE(Cidr::parse("2001:db8::/33")->contains(*IpAddress::parse("2001:db8:8000::1")));
    CHECK(Cidr::parse("192.0.2.5")->prefix() == 32);
    CHECK_FALSE(Cidr::parse("10.0.0.1/8"));  // host bits set: an operator typo, not a network
    CHECK(Cidr::parse("10.0.0.1/8", false)->to_string() == "10.0.0.0/8");
    for (const char* bad : {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "::/129", "/8"}) {
        INFO(bad);
        CHECK_FALSE(Cidr::parse(bad));
    }
}
