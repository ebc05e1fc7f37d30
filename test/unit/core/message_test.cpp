#include <catch2/catch.hpp>

#include <string>

#include "core/envelope.hpp"
#include "core/limits.hpp"
#include "core/message.hpp"
#include "core/printable.hpp"

using namespace vigil::core;

TEST_CASE("parse_message splits header fields and body like an MTA", "[core][message]") {
    auto m = parse_message("From: a@example.com\nSubject: hello\n  world\nX-Empty:\n\nbody line\nsecond\n");
    REQUIRE(m.headers.size() == 3);
    CHECK(m.headers[0].name == "From");
    CHECK(m.headers[0].value == " a@example.com");
    CHECK(m.headers[1].value == " hello\r\n  world");
    CHECK(m.headers[2].value.empty());
    CHECK(m.body == "body line\r\nsecond\r\n");
}

TEST_CASE("parse_message: white space before the colon is a field, as Postfix's is_header() has it",
          "[core][message]") {
    auto m = parse_message("From : a@example.com\nX-Spam-Flag\t :NO\nSubject: s\n\nbody\n");
    REQUIRE(m.headers.size() == 3);
    // The name as Postfix hands it to a milter: without the white space; the value after the colon.
    CHECK(m.headers[0].name == "From");
    CHECK(m.headers[0].value == " a@example.com");
    CHECK(m.headers[1].name == "X-Spam-Flag");
    CHECK(m.headers[1].value == "NO");
    CHECK(m.headers[2].name == "Subject");
    CHECK(m.body == "body\r\n");

    SECTION("white space inside the name is not a field: the body starts there") {
        auto b = parse_message("From: a@example.com\nNot A: field\nX: y\n\nbody\n");
        REQUIRE(b.headers.size() == 1);
        CHECK(b.body == "Not A: field\r\nX: y\r\n\r\nbody\r\n");
    }
    SECTION("white space and no colon, or only white space before it, is not a field") {
        CHECK(parse_message("From \nX: y\n").headers.empty());
        CHECK(parse_message("From \t\n").headers.empty());
        CHECK(parse_message(" : y\n").headers.empty());
        CHECK(parse_message(":y\n").headers.empty());
    }
    SECTION("control and 8-bit bytes in the name are not a field") {
        CHECK(parse_message("Fr\x7fom: a\n").headers.empty());
        CHECK(parse_message("Fr\xc3\xb6m: a\n").headers.empty());
        CHECK(parse_message("Fr\x01om : a\n").headers.empty());
    }
    SECTION("a folded value after 'Name :' is continued") {
        auto f = parse_message("Subject :  one\n two\n\n");
        REQUIRE(f.headers.size() == 1);
        CHECK(f.headers[0].value == "  one\r\n two");
    }
}

TEST_CASE("parse_message survives hostile input", "[core][message]") {
    SECTION("no header at all: everything is body") {
        auto m = parse_message("just text\nmore\n");
        CHECK(m.headers.empty());
        CHECK(m.body == "just text\r\nmore\r\n");
    }
    SECTION("empty input") {
        auto m = parse_message("");
        CHECK(m.headers.empty());
        CHECK(m.body.empty());
    }
    SECTION("body without a final line ending is kept as is") {
        auto m = parse_message("A: b\r\n\r\nno newline");
        CHECK(m.body == "no newline");
    }
    SECTION("NUL bytes and 8-bit bytes pass through") {
        std::string raw("X: a\0b\xff\n\nbo\0dy", 14);
        auto m = parse_message(raw);
        REQUIRE(m.headers.size() == 1);
        CHECK(m.headers[0].value == std::string(" a\0b\xff", 5));
        CHECK(m.body == std::string("bo\0dy", 5));
    }
    SECTION("white space before the colon is the obsolete syntax, as Postfix reads it") {
        auto m = parse_message("From : a@example.com\nSubject\t:x\n :not a field\n\nbody\n");
        REQUIRE(m.headers.size() == 2);
        CHECK(m.headers[0].name == "From");
        CHECK(m.headers[0].value == " a@example.com");
        CHECK(m.headers[1].name == "Subject");
        CHECK(m.headers[1].value == "x\r\n :not a field");
        auto lead = parse_message(" :x\nA: b\n");
        CHECK(lead.headers.empty());
        auto inner = parse_message("Fr om: x\n\n");
        CHECK(inner.headers.empty());
    }
    SECTION("a continuation line before any field starts the body") {
        auto m = parse_message(" leading space\nA: b\n");
        CHECK(m.headers.empty());
    }
}

TEST_CASE("Message keeps header fields within the caps", "[core][message]") {
    Message m;
    for (std::size_t i = 0; i < limits::max_header_fields + 10; ++i) m.add_header("X-N", " v");
    CHECK(m.headers().size() == limits::max_header_fields);
    CHECK(m.header_fields_seen() == limits::max_header_fields + 10);
    CHECK(m.headers_truncated());

    Message big;
    std::string huge(limits::max_header_bytes + 1, 'a');
    CHECK_FALSE(big.add_header("Subject", huge));
    CHECK(big.headers_truncated());
    CHECK(big.add_header("From", " a@b"));
    CHECK(big.find("from") != nullptr);
    CHECK(big.count("FROM") == 1);
}

TEST_CASE("Message captures every From field, also past the caps on kept fields", "[core][message][from]") {
    SECTION("a From after 5,000 other fields is not kept but captured") {
        Message m;
        for (std::size_t i = 0; i < limits::max_header_fields; ++i) m.add_header("X-Filler", " x");
        CHECK_FALSE(m.add_header("From", " Victim <ceo@victim.example>"));
        CHECK(m.headers_truncated());
        CHECK(m.find("From") == nullptr);
        CHECK(m.count("From") == 0);
        CHECK(m.from_fields_seen() == 1);
        REQUIRE(m.from_kept() == 1);
        CHECK(m.from_value(0) == " Victim <ceo@victim.example>");
        CHECK_FALSE(m.from_value_cut());
    }
    SECTION("one From before the fillers, one after: both, in order") {
        Message m;
        CHECK(m.add_header("From", " me@attacker.example"));
        for (std::size_t i = 0; i < limits::max_header_fields; ++i) m.add_header("X-Filler", " x");
        CHECK_FALSE(m.add_header("FROM", " ceo@victim.example"));
        CHECK(m.count("From") == 1);
        CHECK(m.from_fields_seen() == 2);
        REQUIRE(m.from_kept() == 2);
        CHECK(m.from_value(0) == " me@attacker.example");
        CHECK(m.from_value(1) == " ceo@victim.example");
        CHECK(m.from_value(2).empty());
    }
    SECTION("a From past the byte cap") {
        Message m;
        CHECK_FALSE(m.add_header("Subject", std::string(limits::max_header_bytes, 'a')));
        CHECK(m.add_header("X-Small", " fits"));
        CHECK_FALSE(
            m.add_header("From", " " + std::string(limits::max_header_bytes, 'b') + "@victim.example"));
        CHECK(m.from_fields_seen() == 1);
        CHECK(m.from_value(0).size() == limits::max_from_bytes);
        CHECK(m.from_value_cut());
    }
    SECTION("a kept From longer than the From cap is cut as well") {
        Message m;
        std::string v = " " + std::string(limits::max_from_bytes, 'c') + "@victim.example";
        CHECK(m.add_header("from", v));
        CHECK(m.find("From")->value == v);
        CHECK(m.from_value(0) == std::string_view(v).substr(0, limits::max_from_bytes));
        CHECK(m.from_value_cut());
    }
    SECTION("the first max_from_fields values are kept, every one is counted") {
        Message m;
        for (std::size_t i = 0; i < limits::max_from_fields + 3; ++i)
            m.add_header("From", " u" + std::to_string(i) + "@example.com");
        CHECK(m.from_fields_seen() == limits::max_from_fields + 3);
        CHECK(m.from_kept() == limits::max_from_fields);
        CHECK(m.from_value(limits::max_from_fields - 1) ==
              " u" + std::to_string(limits::max_from_fields - 1) + "@example.com");
        CHECK(m.from_value(limits::max_from_fields).empty());
    }
    SECTION("only fields named From count") {
        Message m;
        for (const char* name : {"From-X", "Fro", "XFrom", "Resent-From", "Sender", "From:"})
            m.add_header(name, " a@victim.example");
        CHECK(m.from_fields_seen() == 0);
        CHECK(m.from_kept() == 0);
        m.add_header("fRoM", " a@victim.example");
        CHECK(m.from_fields_seen() == 1);
        m.add_header("From \t", " b@victim.example");  // as the obsolete syntax writes it
        CHECK(m.from_fields_seen() == 2);
        CHECK(m.from_value(1) == " b@victim.example");
    }
    SECTION("a kept From keeps pointing at its field while more fields arrive") {
        Message m;
        m.add_header("From", " first@example.com");
        for (int i = 0; i < 2000; ++i) m.add_header("X-Grow", " x");  // the vector reallocates
        CHECK(m.from_value(0) == " first@example.com");
    }
}

TEST_CASE("printable() makes peer data safe for one log line", "[core][printable]") {
    CHECK(printable("plain") == "plain");
    CHECK(printable(std::string("a\nb\r\0c\\", 7)) == "a\\x0ab\\x0d\\x00c\\\\");
    CHECK(printable("\xff\x80") == "\\xff\\x80");
    auto cut = printable(std::string(1000, 'x'), 10);
    CHECK(cut == "xxxxxxxxxx...");
    CHECK(json_escape("q\"\\\n\x01\xe9") == "q\\\"\\\\\\n\\u0001\\u00e9");
}

TEST_CASE("json_escape keeps UTF-8 characters and escapes every other byte", "[core][printable]") {
    CHECK(json_escape("RFC 7489 \xc2\xa7 6.6.3") == "RFC 7489 \\u00a7 6.6.3");  // the § of doctor's reasons
    CHECK(json_escape("caf\xc3\xa9 \xe2\x82\xac") == "caf\\u00e9 \\u20ac");
    CHECK(json_escape("\xf0\x9f\x98\x80") == "\\ud83d\\ude00");  // above U+FFFF: a surrogate pair
    // Not UTF-8: each byte on its own, as before.
    CHECK(json_escape("\xc0\xaf") == "\\u00c0\\u00af");                        // overlong '/'
    CHECK(json_escape("\xed\xa0\x80") == "\\u00ed\\u00a0\\u0080");             // a surrogate
    CHECK(json_escape("\xe2\x82") == "\\u00e2\\u0082");                        // cut short
    CHECK(json_escape("\xf4\x90\x80\x80") == "\\u00f4\\u0090\\u0080\\u0080");  // above U+10FFFF
    CHECK(json_escape("\x7f") == "\\u007f");
}

TEST_CASE("envelope address helpers", "[core][envelope]") {
    CHECK(strip_angle_brackets("<a@b.example>") == "a@b.example");
    CHECK(strip_angle_brackets("<>") == "");
    CHECK(strip_angle_brackets("<a@b> SIZE=100") == "a@b");
    CHECK(strip_angle_brackets("a@b SIZE=1") == "a@b");
    CHECK(address_domain("User@Example.COM") == "example.com");
    CHECK(address_domain("nodomain") == "");
}
