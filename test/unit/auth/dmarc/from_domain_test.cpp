#include <catch2/catch.hpp>

#include <string>

#include "auth/dmarc/from_domain.hpp"

using namespace vigil::auth::dmarc;

namespace {

FromDomain one(std::string_view v) {
    return extract_from_domain({v});
}

}  // namespace

TEST_CASE("from domain: one mailbox in its usual shapes", "[dmarc][from]") {
    for (const char* v :
         {" joe@Example.COM", " Joe Johnson <joe@example.com>", " \"Johnson, Joe\" <joe@example.com>",
          " (Joe Johnson) joe@example.com", " joe@example.com (Joe)", "\t<joe@example.com>\r\n",
          " =?utf-8?q?J=C3=B6e?= <joe@example.com>", " \"joe smith\"@example.com",
          " Joe\r\n\t<joe@example.com>", " (a (nested) comment) <joe @ example . com>",
          " Dr. J. Johnson <joe@example.com>", " <@relay.example,@r2.example:joe@example.com>",
          " Friends: joe@example.com;", " joe@example.com,", " ,joe@example.com"}) {
        INFO(v);
        auto f = one(v);
        CHECK(f.status == FromStatus::ok);
        CHECK(f.domain == "example.com");
    }
}

TEST_CASE("from domain: UTF-8 (RFC 6532) is kept for the normaliser", "[dmarc][from]") {
    auto f =
        one(" J\xc3\xb6rg <j\xc3\xb6rg@B\xc3\xbc"
            "cher.example>");
    REQUIRE(f.ok());
    CHECK(f.domain ==
          "b\xc3\xbc"
          "cher.example");
}

TEST_CASE("from domain: field count", "[dmarc][from]") {
    CHECK(extract_from_domain({}).status == FromStatus::no_from);
    CHECK(extract_from_domain({" a@example.com", " a@example.com"}).status == FromStatus::several_fields);
    CHECK(extract_from_domain({" a@example.com", " b@example.net"}).status == FromStatus::several_fields);
}

TEST_CASE("from domain: several addresses are their own outcome", "[dmarc][from]") {
    for (const char* v :
         {" joe@example.com, ace@example.net", " Joe <joe@example.com>, ace@example.com",
          " G: a@example.com, b@example.com;", " G: a@example.com;, b@example.com", " a@example.com, <>"}) {
        INFO(v);
        CHECK(one(v).status == FromStatus::several_addresses);
    }
}

TEST_CASE("from domain: no domain", "[dmarc][from]") {
    for (const char* v : {"", " ", " (only a comment)", " undisclosed-recipients:;", " <>", " Name <>",
                          " joe@[192.0.2.1]", " MAILER-DAEMON", " ,,"}) {
        INFO(v);
        auto f = one(v);
        CHECK(f.status == FromStatus::no_domain);
        CHECK(f.domain.empty());
    }
}

TEST_CASE("from domain: unparsable", "[dmarc][from][malformed]") {
    for (const char* v : {" <<<><joe@example.com>>>",
                          " Mail From:<joe@example.com>",
                          " From: Davide D'Marco <user@example.com>",
                          " \"Johnson, Joe <joe@example.com>\" joe@example.com",
                          " Joe Johnson joe@example.com",
                          " joe@example.com>",
                          " <joe@example.com",
                          " joe@",
                          " @example.com",
                          " joe@example..com",
                          " joe@.example.com",
                          " joe@example.com.",
                          " \"unterminated <joe@example.com>",
                          " (open <joe@example.com>",
                          " joe@example.com joe@example.net",
                          " a\\b@example.com",
                          " joe@exa\x01mple.com",
                          " <joe@example.com> trailing",
                          " G: a@example.com",
                          " G: H: a@example.com;;",
                          " joe@[192.0.2.1"}) {
        INFO(v);
        auto f = one(v);
        CHECK(f.status == FromStatus::unparsable);
        CHECK_FALSE(f.detail.empty());
        for (char c : f.detail) CHECK((c >= 0x20 && c < 0x7f));
    }
}

TEST_CASE("from domain: hostile sizes stay bounded", "[dmarc][from][malformed]") {
    std::string many;
    for (int i = 0; i < 1000; ++i)
        many += (i ? ", " : " ") + std::string("u") + std::to_string(i) + "@example.com";
    auto f = one(many);
    CHECK(f.status == FromStatus::several_addresses);
    CHECK(f.detail == "1000 addresses");

    std::string deep = " " + std::string(10000, '(') + "x" + std::string(10000, ')') + " joe@example.com";
    CHECK(one(deep).status == FromStatus::unparsable);
    std::string ok_depth = " " + std::string(30, '(') + std::string(30, ')') + " joe@example.com";
    CHECK(one(ok_depth).status == FromStatus::ok);

    CHECK(one(" joe@example.com (" + std::string(70000, 'x') + ")").status == FromStatus::unparsable);
    CHECK(one(" joe@example.com (" + std::string(60000, 'x') + ")").status == FromStatus::ok);
    CHECK(one(" \"" + std::string(100, '\\')).status == FromStatus::unparsable);
    std::string nul(" joe@exa\0mple.com", 17);
    CHECK(one(nul).status == FromStatus::unparsable);
}
