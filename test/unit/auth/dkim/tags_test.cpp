#include <catch2/catch.hpp>

#include "auth/dkim/tags.hpp"

using namespace vigil::auth::dkim;

TEST_CASE("dkim tags: well-formed lists, folding and trailing semicolon", "[dkim][tags]") {
    auto t = parse_tag_list(" v=1; a=rsa-sha256;\r\n\td=example.com ;h = from : to;b=abc\r\n def ; ");
    REQUIRE(t.ok());
    REQUIRE(t.tags.size() == 5);
    CHECK(t.find("v")->value == "1");
    CHECK(t.find("d")->value == "example.com");
    CHECK(t.find("h")->value == "from : to");
    CHECK(t.find("b")->value == "abc\r\n def");
    CHECK(strip_fws(t.find("b")->value) == "abcdef");
    CHECK(t.find("x") == nullptr);
    CHECK(parse_tag_list("").ok());
    CHECK(parse_tag_list("a=").ok());
}

TEST_CASE("dkim tags: malformed lists are errors, not crashes", "[dkim][tags]") {
    CHECK_FALSE(parse_tag_list("v=1; v=1").ok());         // duplicate
    CHECK_FALSE(parse_tag_list("v=1;; a=b").ok());        // empty spec in the middle
    CHECK_FALSE(parse_tag_list("1v=1").ok());             // name must start with a letter
    CHECK_FALSE(parse_tag_list("v").ok());                // no '='
    CHECK_FALSE(parse_tag_list("v=1; a=\x01").ok());      // control byte
    CHECK_FALSE(parse_tag_list("v=1; a=\xc3\xa9").ok());  // 8-bit byte
    CHECK_FALSE(parse_tag_list(std::string(20000, 'a')).ok());
    std::string many;
    for (int i = 0; i < 100; ++i) many += "t" + std::to_string(i) + "=x;";
    CHECK_FALSE(parse_tag_list(many).ok());
}

TEST_CASE("dkim tags: raw offsets of values", "[dkim][tags]") {
    std::string_view text = "a=1; b= xyz ;c=2";
    auto t = parse_tag_list(text);
    REQUIRE(t.ok());
    const auto* b = t.find("b");
    CHECK(text.substr(b->raw_begin, b->raw_end - b->raw_begin) == " xyz ");
}

TEST_CASE("dkim tags: value checks agree with the grammar, byte by byte", "[dkim][tags]") {
    for (int u = 0; u < 256; ++u) {
        auto c = static_cast<char>(u);
        bool valchar = u >= 0x21 && u <= 0x7e && c != ';';
        bool fws = c == ' ' || c == '\t' || c == '\r' || c == '\n';
        for (std::size_t at : {0u, 1u, 17u, 40u}) {
            std::string value(41, 'v');
            value[at] = c;
            const std::string text = "a=1; b=" + value + "; c=2";  // the tags are views into it
            auto t = parse_tag_list(text);
            INFO("byte " << u << " at " << at);
            if (c == ';') {
                CHECK_FALSE(t.ok());  // "vvv" after the ';' is a tag without '='
            } else if (valchar || fws) {
                REQUIRE(t.ok());
                REQUIRE(t.find("b"));
                auto expected = value;  // FWS around the value is not part of it
                while (!expected.empty() && is_fws(expected.back())) expected.pop_back();
                std::size_t lead = 0;
                while (lead < expected.size() && is_fws(expected[lead])) ++lead;
                CHECK(t.find("b")->value == expected.substr(lead));
                CHECK(t.find("c")->value == "2");
            } else {
                CHECK_FALSE(t.ok());
                CHECK(t.error.find("invalid byte in value of tag 'b'") != std::string::npos);
            }
        }
    }
}
