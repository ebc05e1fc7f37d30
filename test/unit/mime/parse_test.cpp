#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "mime/mime_limits.hpp"
#include "mime_test_util.hpp"

using namespace vigil;
using mime::Anomaly;
using test::parse_raw;

TEST_CASE("a plain message is one text part", "[mime]") {
    auto pm = parse_raw("From: a@example.com\nSubject: hello\n\nline one\nline two\n");
    REQUIRE(pm.parts.size() == 1);
    const auto& p = pm.parts[0];
    CHECK(p.content_type == "text/plain");
    CHECK(p.is_text);
    CHECK_FALSE(p.is_html);
    CHECK(p.depth == 0);
    CHECK(p.decoded == "line one\nline two\n");
    CHECK(p.text_for_body() == p.decoded);
    CHECK(p.visible.empty());
    CHECK(p.charset_used == "us-ascii");
    CHECK_FALSE(p.charset_guessed);
    CHECK(pm.subject == "hello");
    CHECK(pm.anomalies == 0);
    REQUIRE(pm.headers.size() == 2);
    CHECK(pm.headers[0].name == "From");
    CHECK(pm.headers[0].raw == "a@example.com");
    CHECK(pm.headers[0].value == "a@example.com");
}

TEST_CASE("nested multiparts give leaf parts in document order with their depth", "[mime]") {
    auto pm = parse_raw(
        "Content-Type: multipart/mixed; boundary=\"outer\"\n\n"
        "preamble is ignored\n"
        "--outer\n"
        "Content-Type: multipart/alternative; boundary=inner\n\n"
        "--inner\n"
        "Content-Type: text/plain; charset=utf-8\n\n"
        "plain text\n"
        "--inner\n"
        "Content-Type: text/html\n\n"
        "<p>html text</p>\n"
        "--inner--\n"
        "--outer\n"
        "Content-Type: application/pdf; name=\"doc.pdf\"\n"
        "Content-Disposition: attachment; filename=\"doc.pdf\"\n"
        "Content-Transfer-Encoding: base64\n\n"
        "JVBERi0xLjQK\n"
        "--outer--\n"
        "epilogue is ignored\n");
    REQUIRE(pm.parts.size() == 3);
    CHECK(pm.parts[0].content_type == "text/plain");
    CHECK(pm.parts[0].depth == 2);
    CHECK(pm.parts[0].decoded == "plain text");
    CHECK(pm.parts[1].is_html);
    CHECK(pm.parts[1].visible == "html text");
    CHECK(pm.parts[1].text_for_body() == "html text");
    CHECK(pm.parts[2].content_type == "application/pdf");
    CHECK(pm.parts[2].attachment);
    CHECK(pm.parts[2].filename == "doc.pdf");
    CHECK(pm.parts[2].depth == 1);
    CHECK(pm.parts[2].decoded_size == 9);  // "%PDF-1.4\n"
    CHECK(pm.parts[2].decoded.empty());    // non-text content is not kept
    CHECK_FALSE(pm.has(Anomaly::bad_boundary));
}

TEST_CASE("a boundary that is a prefix of another does not split the inner part", "[mime]") {
    auto pm = parse_raw(
        "Content-Type: multipart/mixed; boundary=b\n\n"
        "--b\n"
        "Content-Type: multipart/alternative; boundary=b2\n\n"
        "--b2\n\nfirst\n--b2\n\nsecond\n--b2--\n"
        "--b\n\nthird\n--b--\n");
    REQUIRE(pm.parts.size() == 3);
    CHECK(pm.parts[0].decoded == "first");
    CHECK(pm.parts[1].decoded == "second");
    CHECK(pm.parts[2].decoded == "third");
    CHECK(pm.anomalies == 0);
}

TEST_CASE("delimiter lines may carry trailing white space", "[mime]") {
    auto pm = parse_raw("Content-Type: multipart/mixed; boundary=x\n\n--x  \n\none\n--x--\t\n");
    REQUIRE(pm.parts.size() == 1);
    CHECK(pm.parts[0].decoded == "one");
    CHECK(pm.anomalies == 0);
}

TEST_CASE("a missing final boundary keeps the parts and is flagged", "[mime]") {
    auto pm = parse_raw("Content-Type: multipart/mixed; boundary=x\n\n--x\n\none\n--x\n\ntwo\n");
    REQUIRE(pm.parts.size() == 2);
    CHECK(pm.parts[1].decoded == "two\n");
    CHECK(pm.has(Anomaly::bad_boundary));
}

TEST_CASE("a message cut by the scan cap does not flag its missing final boundary", "[mime]") {
    auto pm = parse_raw("Content-Type: multipart/mixed; boundary=x\n\n--x\n\none\n--x\n\ntwo\n", true);
    CHECK(pm.has(Anomaly::message_truncated));
    CHECK_FALSE(pm.has(Anomaly::bad_boundary));
    REQUIRE(pm.parts.size() == 2);
}

TEST_CASE("a multipart without a boundary parameter is read as text", "[mime]") {
    auto pm = parse_raw("Content-Type: multipart/mixed\n\n--x\n\nhidden spam text\n--x--\n");
    REQUIRE(pm.parts.size() == 1);
    CHECK(pm.parts[0].content_type == "text/plain");
    CHECK(pm.parts[0].decoded.find("hidden spam text") != std::string::npos);
    CHECK(pm.has(Anomaly::bad_boundary));
}

TEST_CASE("a multipart whose boundary never occurs is read as text", "[mime]") {
    auto pm =
        parse_raw("Content-Type: multipart/mixed; boundary=nothere\n\nBuy now at http://spam.example/\n");
    REQUIRE(pm.parts.size() == 1);
    CHECK(pm.has(Anomaly::bad_boundary));
    CHECK(test::has_host(pm, "spam.example"));
}

TEST_CASE("an over-long boundary is not one", "[mime]") {
    std::string b(mime::limits::max_boundary + 1, 'q');
    auto pm =
        parse_raw("Content-Type: multipart/mixed; boundary=" + b + "\n\n--" + b + "\n\nx\n--" + b + "--\n");
    CHECK(pm.has(Anomaly::bad_boundary));
    REQUIRE(pm.parts.size() == 1);
}

TEST_CASE("message/rfc822 parts are parsed into their own parts", "[mime]") {
    auto pm = parse_raw(
        "Content-Type: multipart/mixed; boundary=x\n\n"
        "--x\n\nforwarded below\n"
        "--x\n"
        "Content-Type: message/rfc822\n\n"
        "From: inner@example.org\n"
        "Subject: inner\n"
        "Content-Type: text/html; charset=iso-8859-1\n"
        "Content-Transfer-Encoding: quoted-printable\n\n"
        "<b>caf=E9</b> <a href=3D\"http://inner.example/\">x</a>\n"
        "--x--\n");
    REQUIRE(pm.parts.size() == 2);
    CHECK(pm.parts[1].depth == 2);
    CHECK(pm.parts[1].is_html);
    CHECK(pm.parts[1].visible == "caf\xC3\xA9 x");
    CHECK(test::has_host(pm, "inner.example"));
    CHECK(pm.anomalies == 0);
}

TEST_CASE("a base64-encoded message/rfc822 is decoded and parsed", "[mime]") {
    // "Subject: s\r\n\r\nhello http://b64.example/\r\n"
    auto pm = parse_raw(
        "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n"
        "U3ViamVjdDogcw0KDQpoZWxsbyBodHRwOi8vYjY0LmV4YW1wbGUvDQo=\n");
    REQUIRE(pm.parts.size() == 1);
    CHECK(pm.parts[0].decoded == "hello http://b64.example/\n");
    CHECK(test::has_host(pm, "b64.example"));
}

TEST_CASE("multipart/digest parts default to message/rfc822", "[mime]") {
    auto pm = parse_raw(
        "Content-Type: multipart/digest; boundary=d\n\n"
        "--d\n\nSubject: one\n\nfirst message\n"
        "--d--\n");
    REQUIRE(pm.parts.size() == 1);
    CHECK(pm.parts[0].decoded == "first message");
    CHECK(pm.parts[0].depth == 2);
}

TEST_CASE("a part header block without a blank line still separates from the body", "[mime]") {
    auto pm = parse_raw(
        "Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\nno blank line "
        "here\n--x--\n");
    REQUIRE(pm.parts.size() == 1);
    CHECK(pm.parts[0].decoded == "no blank line here");
}

TEST_CASE("an unparsable Content-Type is text/plain, its charset still read", "[mime]") {
    auto pm = parse_raw("Content-Type: garbage; charset=iso-8859-1\n\ncaf\xE9\n");
    REQUIRE(pm.parts.size() == 1);
    CHECK(pm.parts[0].content_type == "text/plain");
    CHECK(pm.parts[0].charset == "iso-8859-1");
    CHECK(pm.parts[0].decoded == "caf\xC3\xA9\n");
}

TEST_CASE("filenames: RFC 2231, continuations, encoded-words, name= fallback", "[mime]") {
    auto pm = parse_raw(
        "Content-Type: multipart/mixed; boundary=x\n\n"
        "--x\nContent-Type: application/octet-stream\n"
        "Content-Disposition: attachment; filename*=utf-8''%E2%82%AC%20rates.xls\n\nA\n"
        "--x\nContent-Type: application/octet-stream\n"
        "Content-Disposition: attachment; filename*0=\"long\"; filename*1=\"name.zip\"\n\nA\n"
        "--x\nContent-Type: application/octet-stream; name=\"=?iso-8859-1?q?r=E9sum=E9.exe?=\"\n\nA\n"
        "--x\nContent-Type: image/gif; name=pic.gif\n\nA\n"
        "--x--\n");
    REQUIRE(pm.parts.size() == 4);
    CHECK(pm.parts[0].filename == "\xE2\x82\xAC rates.xls");
    CHECK(pm.parts[1].filename == "longname.zip");
    CHECK(pm.parts[2].filename == "r\xC3\xA9sum\xC3\xA9.exe");
    CHECK(pm.parts[3].filename == "pic.gif");
    CHECK(pm.parts[3].attachment);  // a filename on a non-text part
}

TEST_CASE("an inline text part with a filename is not an attachment", "[mime]") {
    auto pm = parse_raw("Content-Type: text/plain; name=notes.txt\nContent-Disposition: inline\n\nhi\n");
    REQUIRE(pm.parts.size() == 1);
    CHECK_FALSE(pm.parts[0].attachment);
    CHECK(pm.parts[0].filename == "notes.txt");
}

TEST_CASE("quoted-printable and base64 text parts are decoded; CRLF becomes LF", "[mime]") {
    auto pm = parse_raw(
        "Content-Type: multipart/mixed; boundary=x\n\n"
        "--x\nContent-Transfer-Encoding: quoted-printable\nContent-Type: text/plain; charset=utf-8\n\n"
        "soft=\nbreak caf=C3=A9\n"
        "--x\nContent-Transfer-Encoding: base64\nContent-Type: text/plain; charset=utf-8\n\n"
        "bGluZSBvbmUNCmxpbmUgdHdvDQo=\n"
        "--x--\n");
    REQUIRE(pm.parts.size() == 2);
    CHECK(pm.parts[0].decoded == "softbreak caf\xC3\xA9");
    CHECK(pm.parts[1].decoded == "line one\nline two\n");
    CHECK(pm.parts[1].decoded_size == 20);
    CHECK(pm.anomalies == 0);
}

TEST_CASE("malformed base64 is decoded leniently and flagged", "[mime]") {
    auto pm = parse_raw("Content-Transfer-Encoding: base64\n\naGVs!bG8g#d29y\nbGQ=\n");
    REQUIRE(pm.parts.size() == 1);
    CHECK(pm.parts[0].decoded == "hello world");
    CHECK(pm.has(Anomaly::bad_base64));
}

TEST_CASE("damaged base64 in an attachment is flagged too", "[mime]") {
    auto pm = parse_raw("Content-Type: application/zip\nContent-Transfer-Encoding: base64\n\nUEsD!!BBQ=\n");
    CHECK(pm.has(Anomaly::bad_base64));
    CHECK(pm.parts.at(0).decoded_size == 5);
}

TEST_CASE("base64 cut by the scan cap is not flagged", "[mime]") {
    // The final group has one character: damage in a whole message, the cut in a truncated one.
    auto cut = parse_raw("Content-Transfer-Encoding: base64\n\naGVsbG8gd29ybGQh\naGVsbG8gd", true);
    CHECK_FALSE(cut.has(Anomaly::bad_base64));
    CHECK(cut.parts.at(0).decoded == "hello world!hello ");
    auto whole = parse_raw("Content-Transfer-Encoding: base64\n\naGVsbG8gd29ybGQh\naGVsbG8gd");
    CHECK(whole.has(Anomaly::bad_base64));
}

TEST_CASE("malformed quoted-printable is kept literally and flagged", "[mime]") {
    auto pm = parse_raw("Content-Transfer-Encoding: quoted-printable\n\n100=% off =ZZ now=3D\n");
    REQUIRE(pm.parts.size() == 1);
    CHECK(pm.parts[0].decoded == "100=% off =ZZ now=\n");
    CHECK(pm.has(Anomaly::bad_qp));
}

TEST_CASE("an unknown transfer encoding is read as 8bit", "[mime]") {
    auto pm = parse_raw("Content-Transfer-Encoding: x-weird\n\nplain words\n");
    CHECK(pm.parts.at(0).decoded == "plain words\n");
}

TEST_CASE("headers: RFC 2047 decoded, folding removed, raw kept", "[mime]") {
    auto pm = parse_raw(
        "Subject: =?utf-8?B?w6ljb2xl?= =?utf-8?Q?_d'=C3=A9t=C3=A9?=\n"
        "X-Folded: first\n\tsecond\n"
        "\n"
        "body\n");
    CHECK(pm.subject ==
          "\xC3\xA9"
          "cole d'\xC3\xA9t\xC3\xA9");
    REQUIRE(pm.headers.size() == 2);
    CHECK(pm.headers[1].raw == "first\r\n\tsecond");
    CHECK(pm.headers[1].value == "first\tsecond");
    CHECK(pm.anomalies == 0);
}

TEST_CASE("a malformed encoded-word in a header is flagged and left as is", "[mime]") {
    auto pm = parse_raw("Subject: =?utf-8?X?abc?= and =?utf-8?B?###?=\n\nbody\n");
    CHECK(pm.has(Anomaly::bad_header_encoding));
    CHECK(pm.subject.find("=?utf-8?X?abc?=") != std::string::npos);
}

TEST_CASE("cap: parts", "[mime]") {
    std::string m = "Content-Type: multipart/mixed; boundary=x\n\n";
    for (std::size_t i = 0; i < mime::limits::max_parts + 10; ++i) m += "--x\n\npart\n";
    m += "--x--\n";
    auto pm = parse_raw(m);
    CHECK(pm.has(Anomaly::too_many_parts));
    CHECK(pm.parts.size() < mime::limits::max_parts);
    CHECK(pm.parts.size() >= mime::limits::max_parts - 1);
    CHECK(pm.parts.back().decoded == "part");
}

TEST_CASE("cap: nesting depth", "[mime]") {
    std::string m = "Content-Type: multipart/mixed; boundary=b0\n\n";
    const int levels = mime::limits::max_depth + 5;
    for (int i = 1; i <= levels; ++i)
        m += "--b" + std::to_string(i - 1) + "\nContent-Type: multipart/mixed; boundary=b" +
             std::to_string(i) + "\n\n";
    m += "--b" + std::to_string(levels) + "\n\ndeep text\n";
    auto pm = parse_raw(m, true);
    CHECK(pm.has(Anomaly::too_deep));
    CHECK(pm.parts.empty());  // the only text is below the cap
}

TEST_CASE("cap: message/rfc822 nesting", "[mime]") {
    std::string m;
    for (int i = 0; i < mime::limits::max_depth + 3; ++i) m += "Content-Type: message/rfc822\n\n";
    m += "Subject: x\n\ninnermost\n";
    auto pm = parse_raw(m);
    CHECK(pm.has(Anomaly::too_deep));
}

TEST_CASE("cap: decoded bytes per part", "[mime]") {
    std::string m =
        "Content-Type: text/plain\n\n" + std::string(mime::limits::max_part_decoded_bytes + 100, 'a');
    auto pm = parse_raw(m);
    CHECK(pm.has(Anomaly::decoded_truncated));
    CHECK(pm.parts.at(0).decoded.size() == mime::limits::max_part_decoded_bytes);
}

TEST_CASE("cap: decoded bytes in total", "[mime]") {
    std::string m = "Content-Type: multipart/mixed; boundary=x\n\n";
    const std::size_t per = mime::limits::max_part_decoded_bytes - 10;
    const std::size_t n = mime::limits::max_decoded_bytes / per + 2;
    for (std::size_t i = 0; i < n; ++i) m += "--x\n\n" + std::string(per, 'a') + "\n";
    m += "--x--\n";
    auto pm = parse_raw(m);
    CHECK(pm.has(Anomaly::decoded_truncated));
    std::size_t total = 0;
    for (const auto& p : pm.parts) total += p.decoded.size() + p.visible.size();
    CHECK(total <= mime::limits::max_decoded_bytes);
    CHECK(pm.parts.size() == n);  // parts past the cap are still listed
}

TEST_CASE("cap: header fields", "[mime]") {
    std::vector<core::HeaderField> h;
    for (std::size_t i = 0; i < mime::limits::max_headers + 5; ++i) h.push_back({"X-N", " v"});
    auto pm = mime::parse(h, "body\r\n");
    CHECK(pm.has(Anomaly::too_many_headers));
    CHECK(pm.headers.size() == mime::limits::max_headers);
    REQUIRE(pm.parts.size() == 1);  // the checks still get the body
}

TEST_CASE("cap: header fields of a MIME part", "[mime]") {
    std::string m = "Content-Type: multipart/mixed; boundary=x\n\n--x\n";
    for (std::size_t i = 0; i < mime::limits::max_part_headers + 5; ++i) m += "X-N: v\n";
    m += "\nbody text\n--x--\n";
    auto pm = parse_raw(m);
    CHECK(pm.has(Anomaly::too_many_headers));
    CHECK(pm.parts.at(0).decoded == "body text");
}

TEST_CASE("cap: URLs", "[mime]") {
    std::string m = "Content-Type: text/plain\n\n";
    for (std::size_t i = 0; i < mime::limits::max_urls + 20; ++i)
        m += "http://h" + std::to_string(i) + ".example.com/\n";
    auto pm = parse_raw(m);
    CHECK(pm.has(Anomaly::too_many_urls));
    CHECK(pm.urls.size() == mime::limits::max_urls);
}

TEST_CASE("a header-only message has an empty text part", "[mime]") {
    auto pm = parse_raw("Subject: nothing\n");
    REQUIRE(pm.parts.size() == 1);
    CHECK(pm.parts[0].decoded.empty());
}

TEST_CASE("a message body with LF-only line ends parses too", "[mime]") {
    std::vector<core::HeaderField> h = {{"Content-Type", " multipart/mixed; boundary=x"}};
    auto pm = mime::parse(h, "--x\n\none\n--x\nContent-Type: text/html\n\n<p>two</p>\n--x--\n");
    REQUIRE(pm.parts.size() == 2);
    CHECK(pm.parts[1].visible == "two");
    CHECK(pm.anomalies == 0);
}

TEST_CASE("inputs built to be quadratic stay fast", "[mime]") {
    // Each of these once scanned the rest of the input per occurrence. Generous bound for the
    // sanitizer build; in a release build each takes milliseconds.
    auto seconds = [](const std::vector<core::HeaderField>& h, const std::string& body) {
        auto t0 = std::chrono::steady_clock::now();
        (void)mime::parse(h, body);
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    std::string words;
    for (int i = 0; i < 200000; ++i) words += "=?a?q?b ";
    CHECK(seconds({{"Subject", " " + words}}, "x\r\n") < 2.0);
    std::string comments;
    for (int i = 0; i < 100000; ++i) comments += "<!--";
    CHECK(seconds({{"Content-Type", " text/html"}}, comments) < 2.0);
    std::string parens;
    for (int i = 0; i < 200; ++i) parens += "http://x.example/" + std::string(4000, ')') + " ";
    CHECK(seconds({}, parens) < 2.0);
    std::string dashes;
    for (int i = 0; i < 100000; ++i)
        dashes += "--bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbx\r\n";
    CHECK(seconds({{"Content-Type", " multipart/mixed; boundary=" + std::string(70, 'b')}}, dashes) < 2.0);
    std::string dots(1 << 20, '.');
    CHECK(seconds({}, dots) < 2.0);
}

TEST_CASE("parse_raw skips an mbox From line and splits the header as the MTA does", "[mime]") {
    auto with = mime::parse_raw(
        "From someone@example.com Mon Jan  1 00:00:00 2024\nFrom: a@example.com\n"
        "Subject: hi\n\nbody\n");
    auto without = mime::parse_raw("From: a@example.com\nSubject: hi\n\nbody\n");
    REQUIRE(with.headers.size() == 2);
    CHECK(with.headers[0].name == "From");
    CHECK(with.subject == "hi");
    REQUIRE(with.parts.size() == 1);
    CHECK(with.parts[0].decoded == "body\n");
    CHECK(with.parts[0].decoded == without.parts[0].decoded);
    CHECK(mime::parse_raw("From nobody").headers.empty());
}
