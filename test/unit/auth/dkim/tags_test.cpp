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
    CHECK_FALSE(parse_tag_list("v=1; v=1").ok());        // duplicate
    CHECK_FALSE(parse_tag_list("v=1;; a=b").ok());       // empty spec in the middle
    CHECK_FALSE(parse_tag_list("1v=1").ok());            // name must start with a letter
    CHECK_FALSE(parse_tag_list("v").ok());               // no '='
    CHECK_FALSE(parse_tag_list("v=1; a=\x01").ok());     // control byte
    CHECK_FALSE(parse_tag_list("v=1; a=\xc3\xa9").ok()); // 8-bit byte
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
