#include <catch2/catch.hpp>

#include <string>

#include "mime/charset.hpp"
#include "mime_test_util.hpp"

using namespace vigil;
using mime::Anomaly;
using test::parse_raw;

TEST_CASE("declared charsets are converted to UTF-8", "[mime]") {
    CHECK(mime::to_utf8("caf\xE9", "iso-8859-1").text == "caf\xC3\xA9");
    CHECK(mime::to_utf8("\x80 5", "windows-1252").text == "\xE2\x82\xAC 5");
    // WHATWG: ISO-8859-1 is read as windows-1252 (its 0x80..0x9F are the 1252 punctuation).
    CHECK(mime::to_utf8("\x93hi\x94", "ISO-8859-1").text == "\xE2\x80\x9Chi\xE2\x80\x9D");
    auto koi = mime::to_utf8("\xF0\xD2\xC9\xD7\xC5\xD4", "koi8-r");
    CHECK(koi.text == "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82");  // Привет
    CHECK_FALSE(koi.bad);
    CHECK_FALSE(koi.guessed);
    CHECK(koi.used == "koi8-r");
    auto sjis = mime::to_utf8("\x82\xA0", "\"Shift_JIS\"");
    CHECK(sjis.text == "\xE3\x81\x82");                         // あ
    CHECK(mime::to_utf8("+AOk-", "utf-7").text == "\xC3\xA9");  // ASCII bytes, but not ASCII text
}

TEST_CASE("UTF-8 validation is strict", "[mime]") {
    CHECK(mime::valid_utf8("plain ascii"));
    CHECK(mime::valid_utf8("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"));
    CHECK_FALSE(mime::valid_utf8("\xC0\xAF"));          // overlong
    CHECK_FALSE(mime::valid_utf8("\xED\xA0\x80"));      // surrogate
    CHECK_FALSE(mime::valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
    CHECK_FALSE(mime::valid_utf8("abc\xE2\x82"));       // cut sequence
    CHECK(mime::utf8_prefix("a\xE2\x82\xAC", 3) == "a");
    CHECK(mime::utf8_prefix("a\xE2\x82\xAC", 4) == "a\xE2\x82\xAC");
}

TEST_CASE("a missing charset on 8-bit text is guessed: UTF-8 first", "[mime]") {
    auto pm = parse_raw("Content-Type: text/plain\n\ncaf\xC3\xA9 cr\xC3\xA8me\n");
    const auto& p = pm.parts.at(0);
    CHECK(p.charset.empty());
    CHECK(p.charset_guessed);
    CHECK(p.charset_used == "utf-8");
    CHECK(p.decoded == "caf\xC3\xA9 cr\xC3\xA8me\n");
    CHECK_FALSE(pm.has(Anomaly::bad_charset));  // missing is not wrong
}

TEST_CASE("a missing charset on Latin text falls back to windows-1252", "[mime]") {
    auto pm = parse_raw("Content-Type: text/plain\n\nVoil\xE0 un caf\xE9 \x80 2\n");
    const auto& p = pm.parts.at(0);
    CHECK(p.charset_guessed);
    CHECK(p.charset_used == "windows-1252");
    CHECK(p.decoded == "Voil\xC3\xA0 un caf\xC3\xA9 \xE2\x82\xAC 2\n");
}

TEST_CASE("a missing charset on CJK text is guessed from its byte structure", "[mime]") {
    // GB2312: 你好世界，欢迎光临我们的网站
    std::string gb =
        "\xC4\xE3\xBA\xC3\xCA\xC0\xBD\xE7\xA3\xAC\xBB\xB6\xD3\xAD\xB9\xE2\xC1\xD9\xCE\xD2\xC3\xC7\xB5\xC4\xCD"
        "\xF8\xD5\xBE";
    auto r = mime::to_utf8(gb, "");
    CHECK(r.guessed);
    CHECK(r.used == "gb18030");
    CHECK(r.text.rfind("\xE4\xBD\xA0\xE5\xA5\xBD", 0) == 0);  // 你好
    // EUC-KR: 안녕하세요 여러분 감사합니다
    std::string kr =
        "\xBE\xC8\xB3\xE7\xC7\xCF\xBC\xBC\xBF\xE4 \xBF\xA9\xB7\xAF\xBA\xD0 "
        "\xB0\xA8\xBB\xE7\xC7\xD5\xB4\xCF\xB4\xD9";
    auto k = mime::to_utf8(kr, "");
    CHECK(k.used == "euc-kr");
    CHECK(k.text.rfind("\xEC\x95\x88\xEB\x85\x95", 0) == 0);  // 안녕
    // Shift_JIS: こんにちは世界
    std::string sj = "\x82\xB1\x82\xF1\x82\xC9\x82\xBF\x82\xCD\x90\xA2\x8A\x45";
    auto j = mime::to_utf8(sj, "");
    CHECK(j.used == "shift_jis");
    CHECK(j.text.rfind("\xE3\x81\x93\xE3\x82\x93", 0) == 0);  // こん
}

TEST_CASE("a missing charset on Cyrillic text tells KOI8-R from windows-1251", "[mime]") {
    // "привет мир как дела" in each
    std::string koi = "\xD0\xD2\xC9\xD7\xC5\xD4 \xCD\xC9\xD2 \xCB\xC1\xCB \xC4\xC5\xCC\xC1";
    std::string cp = "\xEF\xF0\xE8\xE2\xE5\xF2 \xEC\xE8\xF0 \xEA\xE0\xEA \xE4\xE5\xEB\xE0";
    auto a = mime::to_utf8(koi, "");
    auto b = mime::to_utf8(cp, "");
    CHECK(a.used == "koi8-r");
    CHECK(b.used == "windows-1251");
    CHECK(a.text == b.text);
}

TEST_CASE("a lying UTF-8 label on Latin-1 text is noticed and guessed", "[mime]") {
    auto pm = parse_raw("Content-Type: text/plain; charset=utf-8\n\nd\xE9j\xE0 vu, tr\xE8s cher\n");
    const auto& p = pm.parts.at(0);
    CHECK(pm.has(Anomaly::bad_charset));
    CHECK(p.charset == "utf-8");
    CHECK(p.charset_guessed);
    CHECK(p.charset_used == "windows-1252");
    CHECK(p.decoded == "d\xC3\xA9j\xC3\xA0 vu, tr\xC3\xA8s cher\n");
}

TEST_CASE("UTF-8 with one broken byte stays UTF-8 with a replacement character", "[mime]") {
    auto r = mime::to_utf8("caf\xC3\xA9 cr\xC3\xA8me \xFF ok", "utf-8");
    CHECK(r.bad);
    CHECK_FALSE(r.guessed);
    CHECK(r.used == "utf-8");
    CHECK(r.text == "caf\xC3\xA9 cr\xC3\xA8me \xEF\xBF\xBD ok");
}

TEST_CASE("a lying legacy label on UTF-8 text is noticed", "[mime]") {
    auto pm = parse_raw("Content-Type: text/plain; charset=iso-8859-1\n\ncaf\xC3\xA9 cr\xC3\xA8me\n");
    const auto& p = pm.parts.at(0);
    CHECK(pm.has(Anomaly::bad_charset));
    CHECK(p.charset_guessed);
    CHECK(p.charset_used == "utf-8");
    CHECK(p.decoded == "caf\xC3\xA9 cr\xC3\xA8me\n");
}

TEST_CASE("8-bit text labelled US-ASCII is a lie", "[mime]") {
    auto r = mime::to_utf8("na\xEFve", "us-ascii");
    CHECK(r.bad);
    CHECK(r.guessed);
    CHECK(r.text == "na\xC3\xAFve");
}

TEST_CASE("an unknown charset name is flagged and the text guessed", "[mime]") {
    auto pm = parse_raw("Content-Type: text/plain; charset=x-no-such-charset\n\ncaf\xE9\n");
    CHECK(pm.has(Anomaly::bad_charset));
    CHECK(pm.parts.at(0).charset_guessed);
    CHECK(pm.parts.at(0).decoded == "caf\xC3\xA9\n");
    auto junk = mime::to_utf8("abc", "utf-8\" onload=\"x");
    CHECK(junk.bad);
}

TEST_CASE("text invalid in a declared multi-byte charset is flagged", "[mime]") {
    // Mostly valid Shift_JIS with a stray lead byte at the end.
    auto r = mime::to_utf8(
        "\x82\xA0\x82\xA2\x82\xA4\x82\xA6\x82\xA8\x82\xA0\x82\xA2\x82\xA4\x82\xA6\x82\xA8 \x82", "shift_jis");
    CHECK(r.bad);
    CHECK(mime::valid_utf8(r.text));
}

TEST_CASE("an HTML part without a header charset uses its meta charset", "[mime]") {
    auto pm = parse_raw(
        "Content-Type: text/html\n\n<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; "
        "charset=koi8-r\"></head><body>\xF0\xD2\xC9\xD7\xC5\xD4</body></html>\n");
    const auto& p = pm.parts.at(0);
    CHECK(p.charset_used == "koi8-r");
    CHECK(p.visible == "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82");
}
