#include <catch2/catch.hpp>

#include <string>

#include "auth/dkim/canon.hpp"

using namespace vigil::auth::dkim;

namespace {
std::string body(Canon c, std::string_view in, std::size_t chunk = 1 << 20) {
    BodyCanonicalizer b(c);
    std::string out;
    auto sink = [&](std::string_view s) { out.append(s); };
    for (std::size_t i = 0; i < in.size(); i += chunk) b.feed(in.substr(i, chunk), sink);
    b.finish(sink);
    return out;
}
}  // namespace

TEST_CASE("dkim canon: RFC 6376 section 3.4.5 example", "[dkim][canon]") {
    CHECK(canon_header(Canon::relaxed, "A", " X\r\n") == "a:X\r\n");
    CHECK(canon_header(Canon::relaxed, "A", " X") == "a:X\r\n");
    CHECK(canon_header(Canon::relaxed, "B", " Y\t\r\n\tZ  ") == "b:Y Z\r\n");
    CHECK(canon_header(Canon::simple, "B", " Y\t\r\n\tZ  ") == "B: Y\t\r\n\tZ  \r\n");
    std::string_view in = " C \r\nD \t E\r\n\r\n\r\n";
    CHECK(body(Canon::relaxed, in) == " C\r\nD E\r\n");
    CHECK(body(Canon::simple, in) == " C \r\nD \t E\r\n");
}

TEST_CASE("dkim canon: empty bodies, missing final CRLF, bare CR", "[dkim][canon]") {
    CHECK(body(Canon::simple, "") == "\r\n");
    CHECK(body(Canon::relaxed, "") == "");
    CHECK(body(Canon::simple, "\r\n\r\n") == "\r\n");
    CHECK(body(Canon::relaxed, "  \r\n\t\r\n") == "");
    CHECK(body(Canon::simple, "abc") == "abc\r\n");
    CHECK(body(Canon::relaxed, "abc  ") == "abc\r\n");
    CHECK(body(Canon::simple, "a\rb\r\n") == "a\rb\r\n");
    CHECK(body(Canon::simple, "a\r") == "a\r\r\n");
}

TEST_CASE("dkim canon: any chunking gives the same output", "[dkim][canon]") {
    std::string in = "Hi.\r\n\r\nWe lost   the game.\t \r\n  Are you\r\nhungry yet?\r\n\r\n \r\n\r\n";
    for (auto c : {Canon::simple, Canon::relaxed}) {
        auto whole = body(c, in);
        for (std::size_t chunk : {1u, 2u, 3u, 7u}) CHECK(body(c, in, chunk) == whole);
    }
}

TEST_CASE("dkim canon: body hashes with l= snapshots", "[dkim][canon]") {
    std::string in = "line one\r\nline two\r\n\r\n";
    BodyHashes h;
    REQUIRE(h.register_need(Canon::simple, HashAlg::sha256, std::nullopt));
    REQUIRE(h.register_need(Canon::simple, HashAlg::sha256, 5));
    REQUIRE(h.register_need(Canon::simple, HashAlg::sha256, 0));
    REQUIRE(h.register_need(Canon::simple, HashAlg::sha256, 1000));
    for (char c : in) h.feed(std::string_view(&c, 1));
    h.finish();
    CHECK(h.result(Canon::simple, HashAlg::sha256, std::nullopt) == digest(HashAlg::sha256, "line one\r\nline two\r\n"));
    CHECK(h.result(Canon::simple, HashAlg::sha256, 5) == digest(HashAlg::sha256, "line "));
    CHECK(h.result(Canon::simple, HashAlg::sha256, 0) == digest(HashAlg::sha256, ""));
    CHECK(h.result(Canon::simple, HashAlg::sha256, 20) == digest(HashAlg::sha256, "line one\r\nline two\r\n"));
    CHECK_FALSE(h.result(Canon::simple, HashAlg::sha256, 1000).has_value());
    CHECK(h.canonical_length(Canon::simple) == 20);
}

TEST_CASE("dkim canon: caps on hashing contexts and snapshots", "[dkim][canon]") {
    BodyHashes h;
    for (std::uint64_t l = 1; l <= 8; ++l) CHECK(h.register_need(Canon::relaxed, HashAlg::sha256, l));
    CHECK_FALSE(h.register_need(Canon::relaxed, HashAlg::sha256, 9));
    CHECK(h.register_need(Canon::relaxed, HashAlg::sha256, 3));  // already there
}
