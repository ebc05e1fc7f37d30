#include <catch2/catch.hpp>

#include "auth/dmarc/alignment.hpp"

using namespace vigil::auth::dmarc;

namespace {
const PublicSuffixList& psl() {
    static auto list = PublicSuffixList::system();
    REQUIRE(list);
    return *list;
}
}  // namespace

TEST_CASE("alignment: relaxed compares organizational domains", "[dmarc][alignment]") {
    const auto r = AlignMode::relaxed;
    CHECK(aligned("example.com", "example.com", r, psl()));
    CHECK(aligned("mail.example.com", "example.com", r, psl()));
    CHECK(aligned("example.com", "bounce.example.com", r, psl()));
    CHECK(aligned("a.example.com", "b.example.com", r, psl()));
    CHECK(aligned("a.example.co.uk", "b.example.co.uk", r, psl()));
    CHECK_FALSE(aligned("example.co.uk", "other.co.uk", r, psl()));
    CHECK_FALSE(aligned("example.com", "example.net", r, psl()));
    CHECK_FALSE(aligned("alice.blogspot.com", "bob.blogspot.com", r, psl()));
}

TEST_CASE("alignment: libopendmarc's counter-cases (DESIGN.md)", "[dmarc][alignment]") {
    // A one-letter label under a public suffix is not a suffix match of another name.
    CHECK_FALSE(aligned("paypal.com", "x.com", AlignMode::relaxed, psl()));
    CHECK_FALSE(aligned("x.com", "paypal.com", AlignMode::relaxed, psl()));
    CHECK_FALSE(aligned("paypal.com", "l.com", AlignMode::relaxed, psl()));
    // Strict means the same name, not the same organization.
    CHECK_FALSE(aligned("a.example.com", "b.example.com", AlignMode::strict, psl()));
    CHECK_FALSE(aligned("example.com", "mail.example.com", AlignMode::strict, psl()));
    CHECK(aligned("Example.COM", "example.com.", AlignMode::strict, psl()));
}

TEST_CASE("alignment: case, IDN and malformed names", "[dmarc][alignment]") {
    CHECK(aligned("MAIL.Example.com", "example.COM", AlignMode::relaxed, psl()));
    CHECK(
        aligned("b\xc3\xbc"
                "cher.de",
                "xn--bcher-kva.de", AlignMode::strict, psl()));
    CHECK(aligned("mail.xn--bcher-kva.de",
                  "B\xc3\x9c"
                  "CHER.de",
                  AlignMode::relaxed, psl()));
    CHECK_FALSE(aligned(".example.com", "example.com", AlignMode::strict, psl()));
    CHECK_FALSE(aligned("example.com", "example..com", AlignMode::relaxed, psl()));
    CHECK_FALSE(aligned("", "", AlignMode::strict, psl()));
    CHECK_FALSE(aligned("com", "example.com", AlignMode::relaxed, psl()));
    auto a = author_domain(psl(), "Mail.Example.com");
    CHECK(a.name == "mail.example.com");
    CHECK(a.org == "example.com");
    CHECK(author_domain(psl(), "bad..name").name.empty());
}

TEST_CASE("alignment: relaxed without a list lookup only where it cannot change the answer",
          "[dmarc][alignment]") {
    const auto r = AlignMode::relaxed;
    // A name that merely ends in the same letters is not under the organizational domain.
    CHECK_FALSE(aligned("example.com", "notexample.com", r, psl()));
    CHECK_FALSE(aligned("mail.example.com", "badexample.com", r, psl()));
    CHECK(aligned("example.com", "a.b.example.com", r, psl()));
    CHECK(aligned("a.b.example.com", "example.com", r, psl()));
    // Under the author's organizational domain, but a public suffix of its own (private section).
    CHECK_FALSE(aligned("blogspot.com", "x.blogspot.com", r, psl()));
    CHECK(aligned("x.blogspot.com", "a.x.blogspot.com", r, psl()));
}
