#include <catch2/catch.hpp>
#include <string>

#include "fakes/fake_resolver.hpp"
#include "report/dmarc_mail.hpp"

using namespace vigil;

namespace {

// Stands in for the Public Suffix List: the last two labels.
std::string last_two_labels(std::string_view d) {
    auto last = d.rfind('.');
    if (last == std::string_view::npos || last == 0) return std::string(d);
    auto prev = d.rfind('.', last - 1);
    return std::string(prev == std::string_view::npos ? d : d.substr(prev + 1));
}

auto deadline() {
    return std::chrono::steady_clock::now() + std::chrono::seconds(2);
}

std::string base64_decode(std::string_view in) {
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+')
            v = 62;
        else if (c == '/')
            v = 63;
        else
            continue;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    return out;
}

}  // namespace

TEST_CASE("dmarc report mail: rua= mailto URIs and their size limits", "[report][dmarc]") {
    auto u = report::parse_mailto("mailto:dmarc@Example.COM");
    REQUIRE(u);
    CHECK(u->address == "dmarc@Example.COM");
    CHECK(u->domain == "example.com");
    CHECK_FALSE(u->max_bytes);
    u = report::parse_mailto("MAILTO:agg@example.net!10m");
    REQUIRE(u);
    CHECK(u->address == "agg@example.net");
    CHECK(*u->max_bytes == 10ull * 1024 * 1024);
    CHECK(*report::parse_mailto("mailto:a@example.net!50")->max_bytes == 50);
    CHECK(*report::parse_mailto("mailto:a@example.net!2k")->max_bytes == 2048);
    CHECK(*report::parse_mailto("mailto:a@example.net!1g")->max_bytes == 1ull << 30);
    CHECK(report::parse_mailto("mailto:dmarc%2Breports@example.net")->address == "dmarc+reports@example.net");

    CHECK_FALSE(report::parse_mailto("https://example.net/dmarc"));
    CHECK_FALSE(report::parse_mailto("mailto:a@example.net!10x"));
    CHECK_FALSE(report::parse_mailto("mailto:a@example.net!"));
    CHECK_FALSE(report::parse_mailto("mailto:a@example.net?subject=x"));
    CHECK_FALSE(report::parse_mailto("mailto:noatsign.example.net"));
    CHECK_FALSE(report::parse_mailto("mailto:a@nodot"));
    CHECK_FALSE(report::parse_mailto("mailto:a b@example.net"));
    CHECK_FALSE(report::parse_mailto("mailto:a@example.net%0ABcc:x@evil.example"));
    CHECK_FALSE(report::parse_mailto("mailto:a,b@example.net"));
    // An address that would read as a sendmail option.
    CHECK_FALSE(report::parse_mailto("mailto:-oQ/tmp@example.net"));
    CHECK_FALSE(report::parse_mailto("mailto:a@" + std::string(600, 'x') + ".net"));
}

TEST_CASE("dmarc report mail: the authorizing record starts with v=DMARC1", "[report][dmarc]") {
    CHECK(report::starts_with_dmarc1("v=DMARC1"));
    CHECK(report::starts_with_dmarc1("v=DMARC1;"));
    CHECK(report::starts_with_dmarc1("  V = DMARC1 ; rua=mailto:x@y.example"));
    CHECK_FALSE(report::starts_with_dmarc1("v=DMARC10"));
    CHECK_FALSE(report::starts_with_dmarc1("v=dmarc1"));
    CHECK_FALSE(report::starts_with_dmarc1("v=spf1 -all"));
    CHECK_FALSE(report::starts_with_dmarc1("x=1; v=DMARC1"));
    CHECK_FALSE(report::starts_with_dmarc1(""));
}

TEST_CASE("dmarc report mail: the external destination check of RFC 7489 7.1", "[report][dmarc]") {
    dns::FakeResolver dns;  // throws on any lookup not programmed below
    SECTION("same organizational domain: no lookup") {
        auto c = report::check_external_destination(dns, deadline(), "mail.example.com",
                                                    "reports.example.com", last_two_labels);
        CHECK(c.result == report::Authorization::same_organization);
        CHECK(dns.queries().empty());
    }
    SECTION("authorized by a v=DMARC1 record") {
        dns.set_records("example.com._report._dmarc.reports.example.net", dns::RrType::txt,
                        {dns::fake::txt("example.com._report._dmarc.reports.example.net", {"v=DMARC1"})});
        auto c = report::check_external_destination(dns, deadline(), "Example.com", "reports.example.net",
                                                    last_two_labels);
        CHECK(c.result == report::Authorization::authorized);
        CHECK(c.query == "example.com._report._dmarc.reports.example.net");
    }
    SECTION("a TXT record that is not v=DMARC1 does not authorize") {
        dns.set_records("example.com._report._dmarc.example.net", dns::RrType::txt,
                        {dns::fake::txt("example.com._report._dmarc.example.net", {"v=spf1 -all"})});
        auto c = report::check_external_destination(dns, deadline(), "example.com", "example.net",
                                                    last_two_labels);
        CHECK(c.result == report::Authorization::refused);
    }
    SECTION("NXDOMAIN and NODATA refuse") {
        dns.set_status("example.com._report._dmarc.example.net", dns::RrType::txt, dns::Status::nxdomain);
        CHECK(
            report::check_external_destination(dns, deadline(), "example.com", "example.net", last_two_labels)
                .result == report::Authorization::refused);
        dns.set_status("example.com._report._dmarc.example.net", dns::RrType::txt, dns::Status::nodata);
        CHECK(
            report::check_external_destination(dns, deadline(), "example.com", "example.net", last_two_labels)
                .result == report::Authorization::refused);
    }
    SECTION("SERVFAIL and timeout are temporary") {
        dns.set_status("example.com._report._dmarc.example.net", dns::RrType::txt, dns::Status::servfail);
        auto c = report::check_external_destination(dns, deadline(), "example.com", "example.net",
                                                    last_two_labels);
        CHECK(c.result == report::Authorization::temperror);
        CHECK(c.detail.find("servfail") != std::string::npos);
        dns.set_status("example.com._report._dmarc.example.net", dns::RrType::txt, dns::Status::timeout);
        CHECK(
            report::check_external_destination(dns, deadline(), "example.com", "example.net", last_two_labels)
                .result == report::Authorization::temperror);
    }
    SECTION("a name too long to ask for is refused without a lookup") {
        std::string longname(120, 'a');
        longname += ".example.com";
        std::string rua = std::string(120, 'b') + ".example.net";
        auto c = report::check_external_destination(dns, deadline(), longname, rua, last_two_labels);
        CHECK(c.result == report::Authorization::refused);
        CHECK(dns.queries().empty());
    }
}

TEST_CASE("dmarc report mail: the MIME message", "[report][dmarc]") {
    report::ReportMessage m;
    m.from = "dmarc-reports@mx.example.org";
    m.to = "agg@example.com";
    m.subject = "Report Domain: example.com Submitter: mx.example.org Report-ID: <1.a@mx.example.org>";
    m.submitter = "mx.example.org";
    m.file_name = "mx.example.org!example.com!1!2.xml.gz";
    m.gzip = std::string("\x1f\x8b\x08\x00 binary \xff\x00 data", 20);
    m.text = "hello";
    m.date = 1'700'000'000;
    auto msg = report::build_report_message(m);
    CHECK(msg.find("From: dmarc-reports@mx.example.org\n") == 0);
    CHECK(msg.find("\nTo: agg@example.com\n") != std::string::npos);
    CHECK(msg.find("\nSubject: " + m.subject + "\n") != std::string::npos);
    CHECK(msg.find("\nDate: Tue, 14 Nov 2023 22:13:20 +0000\n") != std::string::npos);
    CHECK(msg.find("\nMessage-ID: <1700000000.") != std::string::npos);
    CHECK(msg.find("\nMIME-Version: 1.0\n") != std::string::npos);
    CHECK(msg.find("\r") == std::string::npos);
    auto ct = msg.find("Content-Type: multipart/mixed; boundary=\"");
    REQUIRE(ct != std::string::npos);
    auto b0 = ct + 41;
    auto boundary = msg.substr(b0, msg.find('"', b0) - b0);
    CHECK(msg.find("\n--" + boundary + "\nContent-Type: text/plain") != std::string::npos);
    auto att = msg.find("Content-Type: application/gzip; name=\"" + m.file_name + "\"\n");
    REQUIRE(att != std::string::npos);
    CHECK(msg.find("Content-Disposition: attachment; filename=\"" + m.file_name + "\"\n") !=
          std::string::npos);
    auto body = msg.find("\n\n", att) + 2;
    auto end = msg.find("\n--" + boundary + "--\n", body);
    REQUIRE(end != std::string::npos);
    CHECK(base64_decode(msg.substr(body, end - body)) == m.gzip);
}

TEST_CASE("dmarc report mail: base64 lines", "[report][dmarc]") {
    CHECK(report::base64_encode("", 76).empty());
    CHECK(report::base64_encode("f", 0) == "Zg==");
    CHECK(report::base64_encode("fo", 0) == "Zm8=");
    CHECK(report::base64_encode("foo", 0) == "Zm9v");
    auto long_text = report::base64_encode(std::string(300, 'x'), 76);
    CHECK(long_text.find('\n') == 76);
    CHECK(long_text.back() == '\n');
    CHECK(base64_decode(long_text) == std::string(300, 'x'));
}
