#include <catch2/catch.hpp>

#include "auth/authentication_results.hpp"

using namespace vigil::auth;

TEST_CASE("Authentication-Results values", "[auth][ar]") {
    CHECK(format_authentication_results("mx.example.org", {}) == " mx.example.org; none");
    CHECK(format_authentication_results("mx.example.org", {"spf=pass smtp.mailfrom=example.net"}) ==
          " mx.example.org; spf=pass smtp.mailfrom=example.net");
    auto folded = format_authentication_results(
        "mx.example.org", {"iprev=pass policy.iprev=192.0.2.1", "spf=pass smtp.mailfrom=example.net",
                           "dkim=pass header.d=example.net header.s=sel header.a=rsa-sha256 header.b=abcdefgh"});
    CHECK(folded.find("\r\n\t") != std::string::npos);
    // Every physical line within 78 columns (the first carries "Authentication-Results:").
    std::size_t start = 0, line = 0;
    while (start <= folded.size()) {
        auto end = folded.find("\r\n", start);
        auto len = (end == std::string::npos ? folded.size() : end) - start + (line == 0 ? 23 : 7);
        CHECK(len <= 78);
        if (end == std::string::npos) break;
        start = end + 2;
        ++line;
    }
}

TEST_CASE("the authserv-id an existing field claims", "[auth][ar]") {
    CHECK(claimed_authserv_id(" mx.example.org; spf=pass") == "mx.example.org");
    CHECK(claimed_authserv_id("MX.Example.ORG;none") == "mx.example.org");
    CHECK(claimed_authserv_id(" (comment (nested)) mx.example.org 1; none") == "mx.example.org");
    CHECK(claimed_authserv_id(" \"mx.example.org\"; none") == "mx.example.org");
    CHECK(claimed_authserv_id("\r\n\tmx.example.org;") == "mx.example.org");
    CHECK_FALSE(claimed_authserv_id(""));
    CHECK_FALSE(claimed_authserv_id(" (unclosed comment mx.example.org; none"));
    CHECK_FALSE(claimed_authserv_id(" ; spf=pass"));
    CHECK_FALSE(claimed_authserv_id(" \"unterminated"));
}
