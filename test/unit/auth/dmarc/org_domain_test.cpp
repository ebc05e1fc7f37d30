#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "auth/dmarc/dmarc_limits.hpp"
#include "auth/dmarc/org_domain.hpp"

using namespace vigil::auth::dmarc;

TEST_CASE("normalize_domain: case, trailing dot, U-labels, and what is refused", "[dmarc][org]") {
    CHECK(normalize_domain("Mail.EXAMPLE.com").name == "mail.example.com");
    CHECK(normalize_domain("example.com.").name == "example.com");
    CHECK(normalize_domain("b\xc3\xbc"
                           "cher.example")
              .name == "xn--bcher-kva.example");
    CHECK(normalize_domain("B\xc3\x9c"
                           "CHER.example")
              .name == "xn--bcher-kva.example");
    CHECK(normalize_domain("XN--BCHER-KVA.example").name == "xn--bcher-kva.example");
    CHECK(normalize_domain("_dmarc.example.com").ok());
    for (const char* bad : {"", ".", "example..com", ".example.com", "example.com..", "exa mple.com",
                            "a@b.com", "example.com/", "\xff\xfe.com"}) {
        INFO(bad);
        auto n = normalize_domain(bad);
        CHECK_FALSE(n.ok());
        for (char c : n.error) CHECK((c >= 0x20 && c < 0x7f));
    }
    CHECK_FALSE(normalize_domain(std::string(64, 'a') + ".com").ok());
    CHECK(normalize_domain(std::string(63, 'a') + ".com").ok());
    std::string long_name;
    while (long_name.size() < 260) long_name += "abcdefghi.";
    long_name += "com";
    CHECK_FALSE(normalize_domain(long_name).ok());
    CHECK_FALSE(normalize_domain(std::string(100000, 'a')).ok());
}

TEST_CASE("organizational domain from Debian's Public Suffix List", "[dmarc][org]") {
    auto psl = PublicSuffixList::system();
    REQUIRE(psl);
    CHECK(psl->organizational_domain("example.com") == "example.com");
    CHECK(psl->organizational_domain("a.b.mail.example.com") == "example.com");
    CHECK(psl->organizational_domain("x.com") == "x.com");
    CHECK(psl->organizational_domain("mail.example.co.uk") == "example.co.uk");
    CHECK(psl->organizational_domain("co.uk") == "co.uk");  // a suffix is its own
    CHECK(psl->organizational_domain("com") == "com");
    // Wildcard rule *.ck with the exception !www.ck.
    CHECK(psl->organizational_domain("a.b.foo.ck") == "b.foo.ck");
    CHECK(psl->organizational_domain("a.www.ck") == "www.ck");
    // Private section: blogspot.com names are separate organizations.
    CHECK(psl->organizational_domain("alice.blogspot.com") == "alice.blogspot.com");
    // Unknown TLDs fall under the implicit "*" rule.
    CHECK(psl->organizational_domain("a.b.example.invalidtld") == "example.invalidtld");
    // IDN: the rule for ایران.ir written in UTF-8 matches the A-label form.
    CHECK(psl->organizational_domain("a.b.c.xn--mgba3a4f16a.ir") == "c.xn--mgba3a4f16a.ir");
    // Case-insensitive, U-labels converted, through the convenience wrapper.
    CHECK(organizational_domain(*psl, "A.B.Example.CO.UK") == "example.co.uk");
    CHECK(organizational_domain(*psl, "a.b.c.\xd8\xa7\xdb\x8c\xd8\xb1\xd8\xa7\xd9\x86.ir") ==
          "c.xn--mgba3a4f16a.ir");
    CHECK(organizational_domain(*psl,
                                "mail.b\xc3\xbc"
                                "cher.de") == "xn--bcher-kva.de");
    CHECK(organizational_domain(*psl, "bad..name").empty());
    // Loaded once.
    CHECK(PublicSuffixList::system() == psl);
}

TEST_CASE("organizational domain: an injected list", "[dmarc][org]") {
    char path[] = "/tmp/vigil-psl-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    {
        std::ofstream out(path);
        out << "// test list\ntest\nco.test\n*.wild.test\n!ok.wild.test\n";
    }
    auto psl = PublicSuffixList::load_file(path);
    std::remove(path);
    REQUIRE(psl);
    CHECK(psl->organizational_domain("a.b.example.test") == "example.test");
    CHECK(psl->organizational_domain("a.example.co.test") == "example.co.test");
    CHECK(psl->organizational_domain("a.b.x.wild.test") == "b.x.wild.test");
    CHECK(psl->organizational_domain("a.ok.wild.test") == "ok.wild.test");
    CHECK_FALSE(PublicSuffixList::load_file("/nonexistent/list.dat"));
}

TEST_CASE("organizational_domain: remembered answers stay right past the cache's size", "[dmarc][org]") {
    auto list = PublicSuffixList::system();
    REQUIRE(list);
    for (int round = 0; round < 2; ++round) {
        for (std::size_t i = 0; i < limits::max_cached_org_domains + 10; ++i) {
            auto name = "h" + std::to_string(i) + (i % 2 ? ".example.co.uk" : ".example.com");
            auto org = list->organizational_domain(name);
            if (org != (i % 2 ? "example.co.uk" : "example.com")) FAIL(name << " -> " << org);
        }
    }
    CHECK(list->organizational_domain("co.uk") == "co.uk");
    CHECK(list->organizational_domain("co.uk") == "co.uk");
}
