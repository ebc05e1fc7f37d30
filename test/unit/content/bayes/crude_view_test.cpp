// The stopgap raw-message view that feeds `vigil learn` and the evaluation until mime::parse().
#include <catch2/catch.hpp>

#include <string>

#include "content/bayes/crude_view.hpp"

using namespace vigil;
using vigil::content::bayes::crude_parse;
namespace crude_limits = vigil::content::bayes::crude_limits;

TEST_CASE("crude view: headers, encoded words, the mbox line", "[bayes]") {
    auto m = crude_parse(
        "From someone@example.com Mon Jun 24 17:53:33 2002\n"
        "From: =?UTF-8?B?SsO8cmdlbg==?= <j@example.com>\n"
        "Subject: =?iso-8859-1?Q?Gr=FC=DFe?= aus\n"
        "  Berlin\n"
        "\n"
        "Hallo\n");
    REQUIRE(m.headers.size() == 2);
    CHECK(m.headers[0].name == "From");
    CHECK(m.headers[0].value == "Jürgen <j@example.com>");
    CHECK(m.subject == "Grüße aus  Berlin");
    REQUIRE(m.parts.size() == 1);
    CHECK(m.parts[0].content_type == "text/plain");
    CHECK(m.parts[0].is_text);
    CHECK(m.parts[0].decoded == "Hallo\n");
}

TEST_CASE("crude view: multipart, transfer encodings, charsets, HTML, URLs", "[bayes]") {
    auto m = crude_parse(
        "Content-Type: multipart/alternative; boundary=\"XX\"\n"
        "\n"
        "preamble\n"
        "--XX\n"
        "Content-Type: text/plain; charset=iso-8859-1\n"
        "Content-Transfer-Encoding: quoted-printable\n"
        "\n"
        "Caf=E9 soft=\n"
        "break, see www.Example.com/a.\n"
        "--XX\n"
        "Content-Type: text/html\n"
        "Content-Transfer-Encoding: base64\n"
        "\n"
        // <p>Buy&nbsp;<a href="http://Shop.Example.NET/x">now</a><script>hidden()</script></p>
        "PHA+QnV5Jm5ic3A7PGEgaHJlZj0iaHR0cDovL1Nob3AuRXhhbXBsZS5ORVQveCI+bm93PC9hPjxzY3Jp\n"
        "cHQ+aGlkZGVuKCk8L3NjcmlwdD48L3A+\n"
        "--XX\n"
        "Content-Type: application/pdf; name=\"doc.pdf\"\n"
        "Content-Transfer-Encoding: base64\n"
        "\n"
        "JVBERi0=\n"
        "--XX--\n"
        "epilogue\n");
    REQUIRE(m.parts.size() == 3);
    CHECK(m.parts[0].decoded == "Café softbreak, see www.Example.com/a.\n");
    CHECK(m.parts[0].charset == "iso-8859-1");
    CHECK(m.parts[1].is_html);
    CHECK(m.parts[1].visible.find("Buy") != std::string::npos);
    CHECK(m.parts[1].visible.find("now") != std::string::npos);
    CHECK(m.parts[1].visible.find("hidden") == std::string::npos);
    CHECK(m.parts[1].visible.find('<') == std::string::npos);
    CHECK_FALSE(m.parts[2].is_text);
    CHECK(m.parts[2].attachment);
    CHECK(m.parts[2].filename == "doc.pdf");
    CHECK(m.parts[2].decoded_size == 5);  // "%PDF-"
    REQUIRE(m.urls.size() == 2);
    CHECK(m.urls[0].url == "http://www.Example.com/a");
    CHECK(m.urls[0].host == "www.example.com");
    CHECK(m.urls[1].url == "http://Shop.Example.NET/x");
    CHECK(m.urls[1].host == "shop.example.net");
    CHECK(m.urls[1].source == mime::UrlSource::html_href);
    CHECK(m.urls[1].part == 1);
}

TEST_CASE("crude view: malformed input is bounded, never fatal", "[bayes]") {
    // No final boundary, bad base64 characters, an unterminated encoded word.
    auto m = crude_parse(
        "Subject: =?utf-8?q?broken\n"
        "Content-Type: multipart/mixed; boundary=B\n\n"
        "--B\nContent-Transfer-Encoding: base64\n\naGVs!!bG8=\n--B\nContent-Type: text/plain\n\nlast");
    REQUIRE(m.parts.size() == 2);
    CHECK(m.parts[0].decoded == "hello");
    CHECK(m.parts[1].decoded == "last");
    CHECK(m.subject == "=?utf-8?q?broken");
    // Nesting deeper than max_depth stops splitting; more parts than max_parts are dropped.
    std::string deep;
    for (std::size_t i = 0; i < crude_limits::max_depth + 5; ++i)
        deep += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\n\n--b" +
                std::to_string(i) + "\n";
    deep += "\ninner\n";
    auto d = crude_parse(deep);
    CHECK(d.parts.size() == 1);
    std::string many = "Content-Type: multipart/mixed; boundary=Z\n\n";
    for (std::size_t i = 0; i < crude_limits::max_parts + 50; ++i) many += "--Z\n\npart\n";
    CHECK(crude_parse(many).parts.size() == crude_limits::max_parts);
    // URL-dense text stays linear and bounded.
    std::string urls;
    for (int i = 0; i < 5000; ++i) urls += "http://h" + std::to_string(i) + ".example/ ";
    urls += std::string(100000, 'h') + "http";
    CHECK(crude_parse("\n" + urls).urls.size() == crude_limits::max_urls);
    // Empty and header-only input.
    CHECK(crude_parse("").parts.size() == 1);
    CHECK(crude_parse("From: a@b\n").headers.size() == 1);
}
