#include <catch2/catch.hpp>

#include <string>

#include "auth/dmarc/dmarc_limits.hpp"
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

namespace {

using Names = std::vector<std::string>;

FromDomains all(std::vector<std::string_view> values, std::size_t seen = 0, bool cut = false) {
    return from_domains(values, seen ? seen : values.size(), cut);
}

}  // namespace

TEST_CASE("from domains: a well-formed From is its one domain", "[dmarc][from][domains]") {
    auto f = all({" Alice <alice@Mail.Example.NET>"});
    CHECK(f.status == FromStatus::ok);
    CHECK(f.ok());
    CHECK(f.complete());
    CHECK(f.domains == Names{"mail.example.net"});
    // U-labels come out as the A-labels DNS is asked for.
    CHECK(all({" j\xc3\xb6rg@B\xc3\xbc"
               "cher.example"})
              .domains == Names{"xn--bcher-kva.example"});
}

TEST_CASE("from domains: every shape that hid a domain from DMARC gives it back",
          "[dmarc][from][domains][malformed]") {
    struct Case {
        const char* value;
        FromStatus status;
        Names domains;
    };
    for (const auto& c : std::vector<Case>{
             // trailing junk after the address
             {" Name <user@victim.example> x", FromStatus::unparsable, {"victim.example"}},
             {" <user@victim.example> trailing", FromStatus::unparsable, {"victim.example"}},
             // an unclosed comment, before or after the address, or an unclosed quote
             {" Name <user@victim.example> (unclosed", FromStatus::unparsable, {"victim.example"}},
             {" user@victim.example (unclosed", FromStatus::unparsable, {"victim.example"}},
             {" (unclosed <user@victim.example>", FromStatus::unparsable, {"victim.example"}},
             {" \"unclosed <user@victim.example>", FromStatus::unparsable, {"victim.example"}},
             // a trailing dot on the domain (one or more), a leading one
             {" Name <user@victim.example.>", FromStatus::unparsable, {"victim.example"}},
             {" user@victim.example.", FromStatus::unparsable, {"victim.example"}},
             {" user@victim.example...", FromStatus::unparsable, {"victim.example"}},
             {" user@.victim.example", FromStatus::unparsable, {"victim.example"}},
             // an unclosed or stray angle bracket
             {" <user@victim.example", FromStatus::unparsable, {"victim.example"}},
             {" user@victim.example>", FromStatus::unparsable, {"victim.example"}},
             {" <<<><user@victim.example>>>", FromStatus::unparsable, {"victim.example"}},
             // a display name before a bare address
             {" Name user@victim.example", FromStatus::unparsable, {"victim.example"}},
             // white space after the '@'
             {" Name <user@ victim.example> x", FromStatus::unparsable, {"victim.example"}},
             // a byte no domain has, right after the name; an empty label
             {" user@victim.example\xff", FromStatus::unparsable, {"victim.example"}},
             {" user@victim.example..x", FromStatus::unparsable, {"victim.example"}},
             {" user@victim.example\x01", FromStatus::unparsable, {"victim.example"}},
             // several addresses in one field: every domain
             {" user@victim.example, other@attacker.example",
              FromStatus::several_addresses,
              {"victim.example", "attacker.example"}},
             {" Other <other@attacker.example>, user@Victim.Example",
              FromStatus::several_addresses,
              {"attacker.example", "victim.example"}},
             {" G: a@victim.example, b@victim.example;", FromStatus::several_addresses, {"victim.example"}},
             {" <>, user@victim.example", FromStatus::several_addresses, {"victim.example"}},
             // a malformed value with several names: all of them, in order
             {" user@victim.example other@attacker.example",
              FromStatus::unparsable,
              {"victim.example", "attacker.example"}},
             {" \"a@quoted.example\"@victim.example x",
              FromStatus::unparsable,
              {"quoted.example", "victim.example"}},
         }) {
        INFO(c.value);
        auto f = all({c.value});
        CHECK(f.status == c.status);
        CHECK(f.domains == c.domains);
        CHECK(f.complete());
        CHECK_FALSE(f.ok());
    }
}

TEST_CASE("from domains: several From fields give the domains of all", "[dmarc][from][domains]") {
    auto f = all({" Me <me@attacker.example>", " Victim <ceo@victim.example>"});
    CHECK(f.status == FromStatus::several_fields);
    CHECK(f.detail == "2 From fields");
    CHECK(f.domains == Names{"attacker.example", "victim.example"});
    CHECK(f.complete());

    auto same = all({" a@victim.example", " b@VICTIM.example"});
    CHECK(same.status == FromStatus::several_fields);
    CHECK(same.domains == Names{"victim.example"});

    auto mixed = all({" a@attacker.example", " Name <user@victim.example> x"});
    CHECK(mixed.domains == Names{"attacker.example", "victim.example"});
}

TEST_CASE("from domains: no domain at all", "[dmarc][from][domains]") {
    auto none = all({});
    CHECK(none.status == FromStatus::no_from);
    CHECK(none.domains.empty());
    CHECK(none.complete());
    for (const char* v :
         {" <>", " MAILER-DAEMON", "", " joe@[192.0.2.1]", " undisclosed-recipients:;", " @", " (x"}) {
        INFO(v);
        auto f = all({v});
        CHECK_FALSE(f.ok());
        CHECK(f.domains.empty());
        CHECK(f.complete());
    }
}

TEST_CASE("from domains: what was not examined is said, never silently dropped",
          "[dmarc][from][domains][malformed]") {
    SECTION("more From fields than the message kept") {
        auto f = all({" a@victim.example"}, 17);
        CHECK(f.status == FromStatus::several_fields);
        CHECK_FALSE(f.complete());
        CHECK(f.incomplete == "17 From fields, only the first 1 examined");
        CHECK(f.domains == Names{"victim.example"});
    }
    SECTION("a value cut at its cap: never ok") {
        auto f = all({" a@victim.example"}, 1, true);
        CHECK_FALSE(f.ok());
        CHECK(f.status == FromStatus::unparsable);
        CHECK_FALSE(f.complete());
        CHECK(f.domains == Names{"victim.example"});
    }
    SECTION("distinct domains up to the cap, then incomplete") {
        std::string v;
        for (std::size_t i = 0; i < limits::max_from_domains; ++i)
            v += (i ? ", u@d" : " u@d") + std::to_string(i) + ".example";
        auto full = all({v});
        CHECK(full.domains.size() == limits::max_from_domains);
        CHECK(full.complete());
        auto over = all({v + ", u@victim.example"});
        CHECK(over.domains.size() == limits::max_from_domains);
        CHECK_FALSE(over.complete());
        CHECK(over.incomplete == "more than 8 From domains");
        // The same in a value only the lenient reading takes.
        auto lenient = all({v + ", u@victim.example x y"});
        CHECK_FALSE(lenient.complete());
    }
    SECTION("spellings of one name count once: they cannot push another one out") {
        std::string v = " x";
        for (int i = 0; i < 200; ++i) v += i % 2 ? " @dup.example" : " @DUP.Example.";
        v += " <user@victim.example> junk";
        auto f = all({v});
        CHECK(f.domains == Names{"dup.example", "victim.example"});
        CHECK(f.complete());
    }
}

TEST_CASE("from domains: hostile values stay bounded", "[dmarc][from][domains][malformed]") {
    // 128 KiB of '@': the lenient reading stops at its cap, and says so.
    auto ats = all({" " + std::string(128 * 1024, '@')});
    CHECK(ats.domains.empty());
    CHECK_FALSE(ats.complete());
    CHECK(ats.incomplete == "a malformed From with more than 256 '@'");
    std::string many;
    for (std::size_t i = 0; i < limits::max_from_scan_ats; ++i) many += " @a";
    auto one = all({many});
    CHECK(one.domains == Names{"a"});
    CHECK(one.complete());
    CHECK_FALSE(all({many + " @a"}).complete());
    // Longer than the strict parser reads: the lenient reading still finds the name.
    auto longer = all({" user@victim.example (" + std::string(70000, 'x') + ")"});
    CHECK(longer.status == FromStatus::unparsable);
    CHECK(longer.domains == Names{"victim.example"});
    // A name too long for DNS is no name; the usable one after it still counts.
    auto toolong = all({" a@" + std::string(300, 'x') + ".example b@victim.example"});
    CHECK(toolong.domains == Names{"victim.example"});
}
