#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "mime/mime_limits.hpp"
#include "mime/url.hpp"
#include "mime_test_util.hpp"

using namespace vigil;
using test::parse_raw;

namespace {

std::vector<std::string> urls_in(std::string_view text) {
    std::vector<std::string> out;
    mime::find_text_urls(text, [&](std::string_view u) {
        out.emplace_back(u);
        return true;
    });
    return out;
}

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("text URLs: scheme forms, with sentence punctuation trimmed", "[mime]") {
    CHECK(urls_in("see http://example.com/a?b=c&d=e#f.") == V{"http://example.com/a?b=c&d=e#f"});
    CHECK(urls_in("HTTPS://Example.COM/X, and ftp://files.example.org/pub") ==
          V{"HTTPS://Example.COM/X", "ftp://files.example.org/pub"});
    CHECK(urls_in("(http://example.com/x)") == V{"http://example.com/x"});
    CHECK(urls_in("http://en.example.org/wiki/Foo_(bar)") == V{"http://en.example.org/wiki/Foo_(bar)"});
    CHECK(urls_in("<http://example.com/>") == V{"http://example.com/"});
    CHECK(urls_in("\"http://example.com/q\"") == V{"http://example.com/q"});
    CHECK(urls_in("url:http://example.com/") == V{"http://example.com/"});
    CHECK(urls_in("http://localhost:8080/") == V{"http://localhost:8080/"});
}

TEST_CASE("text URLs: www. and ftp. forms get a scheme", "[mime]") {
    CHECK(urls_in("go to www.example.com now") == V{"http://www.example.com"});
    CHECK(urls_in("go to WWW.Example.com/path.") == V{"http://WWW.Example.com/path"});
    CHECK(urls_in("ftp.example.org/pub") == V{"ftp://ftp.example.org/pub"});
    CHECK(urls_in("www.example").empty());  // one label after www.: not a host
}

TEST_CASE("text URLs: bare domain with a path when the suffix is public", "[mime]") {
    CHECK(urls_in("visit example.com/offer today") == V{"http://example.com/offer"});
    CHECK(urls_in("shop.example.co.uk/x") == V{"http://shop.example.co.uk/x"});
    CHECK(urls_in("example.com without a path").empty());
    CHECK(urls_in("and/or 1.5/2 file.txt/x readme.notatld/y").empty());
}

TEST_CASE("text URLs: e-mail addresses are not URLs", "[mime]") {
    CHECK(urls_in("write to joe@example.com or joe@www.example.com.").empty());
    CHECK(urls_in("mailto:joe@example.com").empty());
    CHECK(urls_in("joe@example.com/path").empty());
    CHECK(urls_in("http://user@example.com/") == V{"http://user@example.com/"});
}

TEST_CASE("text URLs: next to CJK text and non-breaking spaces", "[mime]") {
    CHECK(urls_in("\xE8\xAF\xB7\xE8\xAE\xBF\xE9\x97\xAEhttp://example.cn/\xE3\x80\x82") ==
          V{"http://example.cn/"});
    CHECK(urls_in("see\xC2\xA0www.example.com\xC2\xA0now") == V{"http://www.example.com"});
}

TEST_CASE("text URLs: nothing in ordinary prose", "[mime]") {
    CHECK(urls_in("It was 3 p.m. on Jan. 5th, i.e. too late. Version 1.2.3 works: yes.").empty());
    CHECK(urls_in("").empty());
    CHECK(urls_in("...").empty());
    CHECK(urls_in("http://").empty());
}

TEST_CASE("hosts: lowercase, user info and port dropped, escapes undone", "[mime]") {
    auto h = mime::url_host("http://www.PayPal.com@Evil.Example:8080/login");
    REQUIRE(h);
    CHECK(h->host == "evil.example");
    CHECK_FALSE(h->is_ip);
    CHECK(mime::url_host("http://%65vil.example/")->host == "evil.example");
    CHECK(mime::url_host("https://example.com./")->host == "example.com");
    CHECK(mime::url_host("http:\\\\back.example\\x")->host == "back.example");
    CHECK_FALSE(mime::url_host("mailto:x@example.com"));
    CHECK_FALSE(mime::url_host("http:///"));
    CHECK_FALSE(mime::url_host("http://bad host/"));
}

TEST_CASE("hosts: IDNs become A-labels", "[mime]") {
    CHECK(mime::url_host("http://b\xC3\xBC"
                         "cher.example/")
              ->host == "xn--bcher-kva.example");
    CHECK(mime::url_host("http://B\xC3\x9C"
                         "CHER.example/")
              ->host == "xn--bcher-kva.example");
    // U+3002 ideographic full stop separates labels.
    CHECK(mime::url_host("http://example\xE3\x80\x82"
                         "com/")
              ->host == "example.com");
}

TEST_CASE("hosts: IP obfuscations are normalised", "[mime]") {
    auto check_ip = [](const char* url, const char* ip) {
        INFO(url);
        auto h = mime::url_host(url);
        REQUIRE(h);
        CHECK(h->host == ip);
        CHECK(h->is_ip);
    };
    check_ip("http://192.168.1.1/", "192.168.1.1");
    check_ip("http://3232235777/", "192.168.1.1");
    check_ip("http://0xC0A80101/", "192.168.1.1");
    check_ip("http://0300.0250.01.01/", "192.168.1.1");
    check_ip("http://0xc0.168.0x1.1/", "192.168.1.1");
    check_ip("http://192.168.257/", "192.168.1.1");
    check_ip("http://127.1/", "127.0.0.1");
    check_ip("http://[2001:DB8::1]:80/", "2001:db8::1");
    CHECK_FALSE(mime::url_host("http://1.2.3.4.5/")->is_ip);  // five parts: a name
    CHECK_FALSE(mime::url_host("http://256.1.1.1/")->is_ip);  // not an address
    CHECK_FALSE(mime::url_host("http://09.1.1.1/")->is_ip);   // 9 is not octal
    CHECK_FALSE(mime::url_host("http://[not-ip]/"));
}

TEST_CASE("registrable domains and hosts named by link text", "[mime]") {
    CHECK(mime::registrable_domain("a.b.example.co.uk") == "example.co.uk");
    CHECK(mime::registrable_domain("192.0.2.1") == "192.0.2.1");
    CHECK(mime::host_named_by("Click https://www.bank.example/login now") == "www.bank.example");
    CHECK(mime::host_named_by(" PayPal.com ") == "paypal.com");
    CHECK(mime::host_named_by("Click here").empty());
    CHECK(mime::host_named_by("joe@example.com").empty());
    CHECK(mime::host_named_by("10.0.0.1") == "10.0.0.1");
}

TEST_CASE("URLs in a message: de-duplicated, in order, with their part and source", "[mime]") {
    auto pm = parse_raw(
        "Content-Type: multipart/alternative; boundary=x\n\n"
        "--x\n\nhttp://one.example/ http://two.example/ http://one.example/\n"
        "--x\nContent-Type: text/html\n\n"
        "<a href=\"http://two.example/\">two</a><img src=\"http://img.example/i.png\"> "
        "http://three.example/\n"
        "--x--\n");
    REQUIRE(pm.urls.size() == 4);
    CHECK(pm.urls[0].url == "http://one.example/");
    CHECK(pm.urls[0].part == 0);
    CHECK(pm.urls[0].source == mime::UrlSource::text);
    CHECK(pm.urls[1].url == "http://two.example/");
    CHECK(pm.urls[1].part == 0);
    CHECK(pm.urls[2].url == "http://img.example/i.png");
    CHECK(pm.urls[2].source == mime::UrlSource::html_src);
    CHECK(pm.urls[2].part == 1);
    CHECK(pm.urls[3].url == "http://three.example/");
    CHECK(pm.urls[3].part == 1);
}

TEST_CASE("cap: a URL longer than max_url is not kept", "[mime]") {
    std::string longurl = "http://long.example/" + std::string(mime::limits::max_url, 'a');
    auto pm = parse_raw("Content-Type: text/plain\n\n" + longurl + " http://short.example/\n");
    REQUIRE(pm.urls.size() == 1);
    CHECK(pm.urls[0].host == "short.example");
    // In HTML the guard cuts the attribute value first (html_truncated); the host survives the cut.
    auto html = parse_raw("Content-Type: text/html\n\n<a href=\"" + longurl + "\">x</a>");
    CHECK(html.has(mime::Anomaly::html_truncated));
    REQUIRE(html.urls.size() == 1);
    CHECK(html.urls[0].host == "long.example");
    CHECK(html.urls[0].url.size() <= mime::limits::max_url);
}

TEST_CASE("cap: a header value is cut at max_header_value", "[mime]") {
    std::vector<core::HeaderField> h = {
        {"Subject", " " + std::string(mime::limits::max_header_value + 100, 's')}};
    auto pm = mime::parse(h, "");
    CHECK(pm.subject.size() == mime::limits::max_header_value);
    CHECK(pm.headers.at(0).raw.size() == mime::limits::max_header_value + 100);
}
