#include <catch2/catch.hpp>

#include <string>

#include "mime/header_decode.hpp"
#include "mime/transfer_decode.hpp"

using namespace vigil;

namespace {

std::string words(std::string_view s, bool* bad_out = nullptr) {
    bool bad = false;
    auto r = mime::decode_words(s, bad, 16 * 1024);
    if (bad_out) *bad_out = bad;
    return r;
}

}  // namespace

TEST_CASE("RFC 2047: B and Q encoded-words, any case", "[mime]") {
    CHECK(words("=?UTF-8?B?w6k=?=") == "\xC3\xA9");
    CHECK(words("=?iso-8859-1?q?caf=E9_au_lait?=") == "caf\xC3\xA9 au lait");
    CHECK(words("=?ISO-8859-1?Q?caf=e9?=") == "caf\xC3\xA9");  // lowercase hex
    CHECK(words("=?utf-8*fr?q?=C3=A9?=") == "\xC3\xA9");       // RFC 2231 language suffix
    CHECK(words("=?koi8-r?B?8NLJ18XU?=") == "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82");
}

TEST_CASE("RFC 2047: white space between adjacent encoded-words is dropped", "[mime]") {
    CHECK(words("=?utf-8?q?a?= =?utf-8?q?b?=") == "ab");
    CHECK(words("=?utf-8?q?a?=\r\n =?utf-8?q?b?=") == "ab");
    CHECK(words("=?utf-8?q?a?= x =?utf-8?q?b?=") == "a x b");
    CHECK(words("plain =?utf-8?q?a?= plain") == "plain a plain");
}

TEST_CASE("RFC 2047: a character split across two encoded-words survives", "[mime]") {
    // "é" (C3 A9) split: C3 in the first word, A9 in the second (base64 of each byte).
    CHECK(words("=?utf-8?B?w6k=?= =?utf-8?B?w6k=?=") == "\xC3\xA9\xC3\xA9");
    CHECK(words("=?utf-8?B?ww==?= =?utf-8?B?qQ==?=") == "\xC3\xA9");
    CHECK(words("=?utf-8?Q?=C3?= =?utf-8?Q?=A9t=C3=A9?=") == "\xC3\xA9t\xC3\xA9");
}

TEST_CASE("RFC 2047: encoded-words inside words and in quoted strings are decoded", "[mime]") {
    CHECK(words("\"=?utf-8?q?Jos=C3=A9?=\" <j@example.com>") == "\"Jos\xC3\xA9\" <j@example.com>");
    CHECK(words("abc=?utf-8?q?d?=ef") == "abcdef");
}

TEST_CASE("RFC 2047: malformed encoded-words are flagged and kept", "[mime]") {
    bool bad = false;
    CHECK(words("=?utf-8?x?abc?=", &bad) == "=?utf-8?x?abc?=");
    CHECK(bad);
    CHECK(words("=?utf-8?b?!!!!?=", &bad).empty());
    CHECK(bad);
    words("=?no-such-charset?q?caf=E9?=", &bad);
    CHECK(bad);
    words("=?utf-8?q?=FF=FE?=", &bad);  // not UTF-8
    CHECK(bad);
    // Not encoded-words at all: nothing to flag.
    CHECK(words("a =? b ?= c", &bad) == "a =? b ?= c");
    CHECK_FALSE(bad);
    CHECK(words("=?utf-8?q?unterminated", &bad) == "=?utf-8?q?unterminated");
    CHECK_FALSE(bad);
    CHECK(words("1+1=?", &bad) == "1+1=?");
}

TEST_CASE("raw 8-bit header text is read as UTF-8, else windows-1252", "[mime]") {
    CHECK(words("caf\xC3\xA9") == "caf\xC3\xA9");
    CHECK(words("caf\xE9") == "caf\xC3\xA9");
}

TEST_CASE("decoded header values are cut at a character boundary", "[mime]") {
    bool bad = false;
    auto r = mime::decode_words("\xC3\xA9\xC3\xA9\xC3\xA9", bad, 5);
    CHECK(r == "\xC3\xA9\xC3\xA9");
}

TEST_CASE("unfolding", "[mime]") {
    CHECK(mime::unfold_value("a\r\n b") == "a b");
    CHECK(mime::unfold_value("a\n\tb") == "a\tb");
    CHECK(mime::unfold_value("a\r\nb") == "a b");
}

TEST_CASE("Content-Type parsing is lenient", "[mime]") {
    auto a = mime::parse_media_type(" Text/HTML; Charset=\"UTF-8\"; boundary=abc");
    CHECK(a.valid);
    CHECK(a.full() == "text/html");
    REQUIRE(a.param("charset"));
    CHECK(*a.param("charset") == "UTF-8");
    CHECK(*a.param("boundary") == "abc");
    auto b = mime::parse_media_type("multipart/mixed (comment);\r\n\tboundary = \"with \\\"quote\"");
    CHECK(b.full() == "multipart/mixed");
    CHECK(*b.param("boundary") == "with \"quote");
    auto c = mime::parse_media_type("text/plain charset=us-ascii");  // missing ';'
    CHECK(c.full() == "text/plain");
    CHECK(*c.param("charset") == "us-ascii");
    auto d = mime::parse_media_type("nonsense");
    CHECK_FALSE(d.valid);
    auto e = mime::parse_media_type("text/plain; charset=a; charset=b");
    CHECK(*e.param("charset") == "a");  // the first wins
    auto f = mime::parse_media_type("application/x; name*0*=utf-8''%C3%A9; name*1=\".txt\"");
    CHECK(*f.param("name") == "\xC3\xA9.txt");
}

TEST_CASE("Content-Disposition and Content-Transfer-Encoding", "[mime]") {
    auto d = mime::parse_disposition("Attachment; filename=\"a b.zip\"");
    CHECK(d.kind == "attachment");
    CHECK(*d.param("filename") == "a b.zip");
    CHECK(mime::parse_cte(" Base64 (comment)") == "base64");
    CHECK(mime::parse_cte("\"Quoted-Printable\"") == "quoted-printable");
}

TEST_CASE("base64 decoding", "[mime]") {
    CHECK(mime::decode_base64("aGVsbG8=", 100).bytes == "hello");
    CHECK(mime::decode_base64("aGVsbG8", 100).bytes == "hello");  // missing padding: fine
    CHECK_FALSE(mime::decode_base64("aGVsbG8", 100).malformed);
    CHECK(mime::decode_base64("aGVs\r\nbG8=\r\n", 100).bytes == "hello");
    auto bad = mime::decode_base64("aGVs*bG8=", 100);
    CHECK(bad.bytes == "hello");
    CHECK(bad.malformed);
    CHECK(mime::decode_base64("aGVsbG8=x", 100).malformed);     // a lone character after padding
    CHECK(mime::decode_base64("aGVsbA===", 100).malformed);     // too much padding
    CHECK(mime::decode_base64("QQ==QQ==", 100).bytes == "AA");  // concatenated blocks
    auto cut = mime::decode_base64("aGVsbG8gd29ybGQ=", 6);
    CHECK(cut.truncated);
    CHECK(cut.bytes == "hello ");  // whole groups only
    bool damaged = false;
    CHECK(mime::base64_decoded_size("aGVs\r\nbG8=", damaged) == 5);
    CHECK_FALSE(damaged);
    CHECK(mime::base64_decoded_size("aGVs!bG8=", damaged) == 5);
    CHECK(damaged);
}

TEST_CASE("quoted-printable decoding", "[mime]") {
    CHECK(mime::decode_qp("a=3Db", 100).bytes == "a=b");
    CHECK(mime::decode_qp("soft=\r\nbreak", 100).bytes == "softbreak");
    CHECK(mime::decode_qp("soft=  \r\nbreak", 100).bytes == "softbreak");  // white space after '='
    CHECK(mime::decode_qp("soft=\nbreak", 100).bytes == "softbreak");
    CHECK(mime::decode_qp("end=", 100).bytes == "end");
    auto bad = mime::decode_qp("a=Gb=", 100);
    CHECK(bad.bytes == "a=Gb");
    CHECK(bad.malformed);
    CHECK(mime::decode_qp("=e9", 100).bytes == "\xE9");
    CHECK(mime::decode_qp("abcdef", 3).truncated);
}
