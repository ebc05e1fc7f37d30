#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "auth/authentication_results.hpp"
#include "auth/authentication_results_limits.hpp"

using namespace vigil;
using namespace vigil::auth;

namespace {

// Physical lines of a field value, the first one counted with "Authentication-Results:".
std::vector<std::size_t> line_widths(const std::string& value) {
    std::vector<std::size_t> widths;
    std::size_t start = 0;
    while (true) {
        auto end = value.find("\r\n", start);
        auto line = value.substr(start, (end == std::string::npos ? value.size() : end) - start);
        std::size_t cols = widths.empty() ? 23 : 0;
        for (char c : line) cols += c == '\t' ? 8 : 1;
        widths.push_back(cols);
        if (end == std::string::npos) break;
        start = end + 2;
    }
    return widths;
}

// Nothing but folds may break a line: every CR is CRLF followed by white space, no LF alone, no
// NUL, no byte outside printable ASCII.
bool only_folds(const std::string& v) {
    for (std::size_t i = 0; i < v.size(); ++i) {
        auto c = static_cast<unsigned char>(v[i]);
        if (c == '\r') {
            if (i + 2 >= v.size() || v[i + 1] != '\n' || (v[i + 2] != '\t' && v[i + 2] != ' ')) return false;
            i += 1;
        } else if (c == '\t') {
            if (i < 2 || v[i - 1] != '\n') return false;
        } else if (c < 0x20 || c >= 0x7f) {
            return false;
        }
    }
    return true;
}

}  // namespace

TEST_CASE("Authentication-Results: none, one line, and the folded layout", "[auth][ar]") {
    CHECK(format_authentication_results("mx.example.org", {}) == " mx.example.org; none");
    CHECK(format_authentication_results("mx.example.org", {"spf=pass smtp.mailfrom=example.net"}) ==
          " mx.example.org; spf=pass smtp.mailfrom=example.net");

    // Given in the order the checks might run; written in method order, each resinfo on its own line,
    // the dkim one continued between two properties.
    auto v = format_authentication_results(
        "mx.example.org",
        {"dkim=pass header.d=example.com header.i=@example.com header.s=sel2024 header.a=rsa-sha256 "
         "header.b=\"AbCdEfGh\"",
         "spf=pass (dnssec: secure) smtp.mailfrom=example.com", "iprev=pass policy.iprev=192.0.2.1",
         "dmarc=pass header.from=example.com policy.dmarc=reject", "spf=none smtp.helo=mx.example.com"});
    CHECK(v ==
          " mx.example.org;\r\n"
          "\tiprev=pass policy.iprev=192.0.2.1;\r\n"
          "\tspf=pass (dnssec: secure) smtp.mailfrom=example.com;\r\n"
          "\tspf=none smtp.helo=mx.example.com;\r\n"
          "\tdkim=pass header.d=example.com header.i=@example.com header.s=sel2024\r\n"
          "\theader.a=rsa-sha256 header.b=\"AbCdEfGh\";\r\n"  // quoted by the check: kept
          "\tdmarc=pass header.from=example.com policy.dmarc=reject");
    for (auto w : line_widths(v)) CHECK(w <= 78);
    CHECK(only_folds(v));

    SECTION("a short field that still does not fit on one line gets one line per resinfo") {
        CHECK(format_authentication_results("mx.example.org", {"spf=pass smtp.mailfrom=example.net",
                                                               "iprev=pass policy.iprev=192.0.2.1"}) ==
              " mx.example.org;\r\n\tiprev=pass policy.iprev=192.0.2.1;\r\n\tspf=pass "
              "smtp.mailfrom=example.net");
    }
}

TEST_CASE("Authentication-Results: method order iprev, spf, dkim, dmarc, then the rest as given",
          "[auth][ar]") {
    auto v = format_authentication_results(
        "a.example", {"x-one=pass", "dmarc=fail header.from=example.com", "dkim=none", "auth=pass",
                      "spf=fail smtp.mailfrom=example.com", "dkim=fail header.d=d1.example",
                      "iprev=fail policy.iprev=192.0.2.9", "spf=pass smtp.helo=h.example", "arc=none"});
    CHECK(v ==
          " a.example;\r\n\tiprev=fail policy.iprev=192.0.2.9;\r\n\tspf=fail smtp.mailfrom=example.com;\r\n"
          "\tspf=pass smtp.helo=h.example;\r\n\tdkim=none;\r\n\tdkim=fail header.d=d1.example;\r\n"
          "\tdmarc=fail header.from=example.com;\r\n\tx-one=pass;\r\n\tauth=pass;\r\n\tarc=none");
}

TEST_CASE("ar_value: tokens and addresses bare, everything else quoted and printable", "[auth][ar]") {
    CHECK(ar_value("example.com") == "example.com");
    CHECK(ar_value("rsa-sha256") == "rsa-sha256");
    CHECK(ar_value("user@example.com") == "user@example.com");
    CHECK(ar_value("@example.com") == "@example.com");
    CHECK(ar_value("first.last+tag@sub.example.com") == "first.last+tag@sub.example.com");
    CHECK(ar_value("") == "\"\"");
    CHECK(ar_value("a b") == "\"a b\"");
    CHECK(ar_value("2001:db8::1") == "\"2001:db8::1\"");  // ':' is a tspecial, and not a domain
    CHECK(ar_value("[192.0.2.1]") == "\"[192.0.2.1]\"");
    CHECK(ar_value("AbC+/9=") == "\"AbC+/9=\"");
    CHECK(ar_value("a@b") == "\"a@b\"");  // one label is no domain-name
    CHECK(ar_value("a..b@example.com") == "\"a..b@example.com\"");
    // The worst bytes.
    CHECK(ar_value("a\"b") == "\"a\\\"b\"");
    CHECK(ar_value("a\\b") == "\"a\\\\b\"");
    CHECK(ar_value("(x);y=z") == "\"(x);y=z\"");
    CHECK(ar_value("a\r\nX-Injected: yes") == "\"a\\\\x0d\\\\x0aX-Injected: yes\"");
    CHECK(ar_value(std::string("a\0b", 3)) == "\"a\\\\x00b\"");
    CHECK(ar_value("caf\xc3\xa9.example") == "\"caf\\\\xc3\\\\xa9.example\"");
    CHECK(ar_value("tab\there") == "\"tab\\\\x09here\"");
    std::string domain;
    while (domain.size() < 1000) domain += "abcdefghi.";
    domain += "example";
    auto cut = ar_value(domain);
    CHECK(cut.size() == limits::max_value_length + 3);
    CHECK(cut == domain.substr(0, limits::max_value_length) + "...");
    // Never cut inside a \xNN; and a cut value, read again, stays as it is (323 bytes are kept).
    auto near = ar_value(std::string(318, 'a') + "\x01\x02");
    CHECK(near == std::string(318, 'a') + "...");
    CHECK(ar_value(std::string(318, 'a') + "...") == near);
    CHECK(ar_value(std::string(323, 'a')) == std::string(323, 'a'));
    CHECK(ar_value(std::string(324, 'a')) == std::string(320, 'a') + "...");
    std::string quotes(1000, '"');
    auto q = ar_value(quotes);
    CHECK(q.size() == 2 + 2 * limits::max_value_length + 3);
    CHECK(q.substr(q.size() - 4) == "...\"");
}

TEST_CASE("Authentication-Results: check texts are rewritten safely", "[auth][ar]") {
    SECTION("an unquoted CRLF cannot start a header field") {
        auto v = format_authentication_results("mx", {"spf=pass smtp.helo=a\r\nX-Injected: yes"});
        CHECK(v == " mx; spf=pass smtp.helo=a");
    }
    SECTION("a quoted value with every bad byte keeps them escaped, and formatting is stable") {
        std::string raw = std::string("q\"b\\s(p)\r\n\0\xff", 12);
        auto once = format_authentication_results("mx", {"spf=pass smtp.helo=" + ar_value(raw)});
        const std::string text = "spf=pass smtp.helo=\"q\\\"b\\\\s(p)\\\\x0d\\\\x0a\\\\x00\\\\xff\"";
        CHECK(once == " mx;\r\n\t" + text);  // 79 columns on one line: folded
        CHECK(only_folds(once));
        // What a reader gets back parses to the same text again.
        auto r = parse_resinfo(text);
        REQUIRE(r);
        CHECK(r->properties.at(0).value == "q\"b\\s(p)\\x0d\\x0a\\x00\\xff");
        CHECK(format_authentication_results("mx", {text}) == once);
    }
    SECTION("an IPv6 policy.iprev is quoted") {
        CHECK(format_authentication_results("mx", {"iprev=pass policy.iprev=2001:db8::1"}) ==
              " mx; iprev=pass policy.iprev=\"2001:db8::1\"");
    }
    SECTION("comments: parentheses, backslashes and control bytes escaped") {
        CHECK(format_authentication_results("mx", {"dkim=fail (a(b)c\x01) header.d=example.com"}) ==
              " mx; dkim=fail (a\\(b\\)c\\\\x01) header.d=example.com");
        // An unterminated comment ends with the text.
        CHECK(format_authentication_results("mx", {"spf=pass (oops smtp.mailfrom=example.com"}) ==
              " mx; spf=pass (oops smtp.mailfrom=example.com)");
    }
    SECTION("reason is a value too") {
        CHECK(format_authentication_results("mx", {"dkim=fail reason=\"bad sig\" header.d=example.com"}) ==
              " mx; dkim=fail reason=\"bad sig\" header.d=example.com");
    }
    SECTION("resinfos without method=result are dropped, properties without ptype.property too") {
        CHECK(format_authentication_results("mx", {"sp f=pass", "=pass", "spf", "spf=", "s\xff=pass"}) ==
              " mx; none");
        CHECK(
            format_authentication_results("mx", {"SPF=Pass smtp.MailFrom=example.com junk x=y .a=b a.=c"}) ==
            " mx; spf=pass smtp.mailfrom=example.com");
        CHECK(format_authentication_results("mx", {"dkim/1=pass header.d=example.com"}) ==
              " mx; dkim/1=pass header.d=example.com");
    }
    SECTION("bounded: resinfos, properties, comments") {
        std::vector<std::string> many(200, "dkim=none");
        auto v = format_authentication_results("mx", many);
        std::size_t n = 0;
        for (auto p = v.find("dkim=none"); p != std::string::npos; p = v.find("dkim=none", p + 1)) ++n;
        CHECK(n == limits::max_resinfos);
        std::string props = "dkim=pass";
        for (int i = 0; i < 40; ++i) props += " (c) header.x" + std::to_string(i) + "=v";
        auto r = parse_resinfo(props);
        REQUIRE(r);
        CHECK(r->properties.size() == limits::max_properties);
        CHECK(r->comments.size() == limits::max_comments);
    }
    SECTION("a 1000-character domain cannot make a line past 998 bytes") {
        std::string domain;
        while (domain.size() < 1000) domain += "abcdefghi.";
        auto v = format_authentication_results(
            "mx", {"spf=pass smtp.mailfrom=" + ar_value(domain), "dkim=pass header.d=" + domain});
        for (auto w : line_widths(v)) CHECK(w < 400);
        CHECK(only_folds(v));
    }
}

TEST_CASE("the DNSSEC comment follows the result", "[auth][ar]") {
    CHECK(dnssec_comment(dns::Dnssec::secure) == " (dnssec: secure)");
    CHECK(dnssec_comment(dns::Dnssec::bogus) == " (dnssec: bogus)");
    CHECK(dnssec_comment(dns::Dnssec::insecure).empty());
    CHECK(dnssec_comment(dns::Dnssec::unchecked).empty());
    auto r = parse_resinfo("dkim=fail (dnssec: secure) (body hash did not verify) header.d=example.com");
    REQUIRE(r);
    CHECK(r->comments == std::vector<std::string>{"dnssec: secure", "body hash did not verify"});
    CHECK(resinfo_text(*r) == "dkim=fail (dnssec: secure) (body hash did not verify) header.d=example.com");
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
    // Our own output is recognised as ours (so a copy of it arriving again would be removed).
    auto ours = format_authentication_results(
        "mx.example.org", {"spf=pass smtp.mailfrom=example.net", "iprev=pass policy.iprev=192.0.2.1"});
    CHECK(claimed_authserv_id(ours) == "mx.example.org");
}
