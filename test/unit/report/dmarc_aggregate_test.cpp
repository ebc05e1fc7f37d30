#include <zlib.h>

#include <catch2/catch.hpp>
#include <string>

#include "report/dmarc_aggregate.hpp"

using namespace vigil;
using report::AggregateRow;
using report::DmarcEvaluation;

namespace {

DmarcEvaluation row(std::string ip = "192.0.2.1") {
    DmarcEvaluation e;
    e.time = 100;
    e.policy_domain = "example.com";
    e.p = "reject";
    e.source_ip = std::move(ip);
    e.disposition = "reject";
    e.dkim_aligned = "fail";
    e.spf_aligned = "fail";
    e.header_from = "example.com";
    e.envelope_from = "example.net";
    e.envelope_to = "example.org";
    e.dkim = {{"example.net", "s1", "pass"}};
    e.spf = {{"example.net", "mfrom", "softfail"}};
    return e;
}

report::ReportMetadata meta() {
    report::ReportMetadata m;
    m.org_name = "Example Receiver";
    m.email = "postmaster@mx.example.org";
    m.report_id = "1700000000.abc@mx.example.org";
    m.begin = 1'700'000'000;
    m.end = 1'700'086'399;
    return m;
}

std::string gunzip(const std::string& gz) {
    z_stream zs{};
    REQUIRE(inflateInit2(&zs, 15 + 16) == Z_OK);
    std::string out(1 << 20, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
    zs.avail_in = static_cast<uInt>(gz.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    int rc = inflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    inflateEnd(&zs);
    REQUIRE(rc == Z_STREAM_END);
    return out;
}

std::size_t occurrences(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
    return n;
}

}  // namespace

TEST_CASE("dmarc report: XML escaping", "[report][dmarc]") {
    CHECK(report::xml_escape("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&apos;");
    CHECK(report::xml_escape("tab\tnl\ncr\r") == "tab\tnl\ncr\r");
    CHECK(report::xml_escape(std::string("nul\0x\x01\x1f\x7f", 8)) == "nul?x??\x7f");
    CHECK(report::xml_escape("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7") ==
          "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7");
    CHECK(report::xml_escape("\xff\xfe") == "??");
    CHECK(report::xml_escape("\xc0\xaf") == "??");       // overlong '/'
    CHECK(report::xml_escape("\xed\xa0\x80") == "???");  // a surrogate
    CHECK(report::xml_escape("\xc3") == "?");            // cut short
    CHECK(report::xml_escape("\xef\xbf\xbf") == "???");  // U+FFFF is not an XML character
}

TEST_CASE("dmarc report: source IPs in the form the RFC's schema accepts", "[report][dmarc]") {
    CHECK(report::report_ip("192.0.2.1") == "192.0.2.1");
    CHECK(report::report_ip("2001:db8::1") == "2001:db8:0:0:0:0:0:1");
    CHECK(report::report_ip("::ffff:192.0.2.9") == "192.0.2.9");
    CHECK(report::report_ip("::") == "0:0:0:0:0:0:0:0");
    CHECK(report::report_ip("not an ip") == "not an ip");
}

TEST_CASE("dmarc report: identical rows are merged, others kept in order", "[report][dmarc]") {
    auto a = row();
    auto b = row();
    b.time = 300;
    b.p = "none";  // the published policy does not split a row
    auto c = row("198.51.100.1");
    auto d = row();
    d.dkim[0].selector = "s2";
    auto e = row();
    e.reasons = {"forwarded"};
    auto v6a = row("2001:db8::1");
    auto v6b = row("2001:0db8:0:0::1");  // the same address written differently
    auto merged = report::merge_rows({{a, 2}, {c, 1}, {b, 5}, {d, 1}, {e, 1}, {v6a, 1}, {v6b, 1}});
    REQUIRE(merged.size() == 5);
    CHECK(merged[0].count == 7);
    CHECK(merged[0].evaluation.time == 300);
    CHECK(merged[1].evaluation.source_ip == "198.51.100.1");
    CHECK(merged[2].evaluation.dkim[0].selector == "s2");
    CHECK(merged[3].evaluation.reasons == std::vector<std::string>{"forwarded"});
    CHECK(merged[4].count == 2);
}

TEST_CASE("dmarc report: the Appendix C document", "[report][dmarc]") {
    auto policy = row();
    policy.sp = "";  // not published: the report states p for subdomains
    policy.adkim = "s";
    policy.pct = 20;
    policy.fo = "1";
    auto r1 = row();
    r1.header_from = "ex<ample>&.com";
    r1.reasons = {"local_policy", "made_up_reason"};
    r1.reason_comment = "forwarder list";
    auto r2 = row("2001:db8::5");
    r2.spf.clear();
    r2.dkim.clear();
    r2.disposition = "junk";  // not a DispositionType
    r2.envelope_to.clear();
    auto m = meta();
    m.extra_contact_info = "https://example.org/dmarc?a=1&b=2";
    auto xml = report::build_report_xml(m, policy, {{r1, 3}, {r1, 2}, {r2, 1}});

    CHECK(xml.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n  <version>1.0</version>\n",
                    0) == 0);
    CHECK(xml.find("<org_name>Example Receiver</org_name>") != std::string::npos);
    CHECK(xml.find("<extra_contact_info>https://example.org/dmarc?a=1&amp;b=2</extra_contact_info>") !=
          std::string::npos);
    CHECK(xml.find("<report_id>1700000000.abc@mx.example.org</report_id>") != std::string::npos);
    CHECK(xml.find("<begin>1700000000</begin>") != std::string::npos);
    CHECK(xml.find("<end>1700086399</end>") != std::string::npos);
    CHECK(xml.find("<adkim>s</adkim>") != std::string::npos);
    CHECK(xml.find("<p>reject</p>\n    <sp>reject</sp>") != std::string::npos);
    CHECK(xml.find("<pct>20</pct>") != std::string::npos);
    CHECK(xml.find("<fo>1</fo>") != std::string::npos);
    CHECK(xml.find("<np>") == std::string::npos);  // not in RFC 7489's schema
    CHECK(occurrences(xml, "<record>") == 2);
    CHECK(xml.find("<count>5</count>") != std::string::npos);
    CHECK(xml.find("<header_from>ex&lt;ample&gt;&amp;.com</header_from>") != std::string::npos);
    CHECK(xml.find("<type>local_policy</type>\n          <comment>forwarder list</comment>") !=
          std::string::npos);
    CHECK(xml.find("<type>other</type>\n          <comment>made_up_reason</comment>") != std::string::npos);
    CHECK(xml.find("<source_ip>2001:db8:0:0:0:0:0:5</source_ip>") != std::string::npos);
    CHECK(xml.find("<disposition>none</disposition>") != std::string::npos);
    // No SPF result recorded: the schema needs one; "none" for the MAIL FROM domain.
    CHECK(xml.find("<spf>\n        <domain>example.net</domain>\n        <scope>mfrom</scope>\n"
                   "        <result>none</result>") != std::string::npos);
    CHECK(occurrences(xml, "<envelope_to>") == 1);
    CHECK(xml.find("<selector>s1</selector>") != std::string::npos);
    CHECK(xml.find("</feedback>\n") == xml.size() - 12);
}

TEST_CASE("dmarc report: file names per RFC 7489 7.2.1.1", "[report][dmarc]") {
    CHECK(report::report_file_name("mx.example.org", "Example.COM", 1'700'000'000, 1'700'086'399) ==
          "mx.example.org!example.com!1700000000!1700086399.xml.gz");
    CHECK(report::report_file_name("mx.example.org", "example.com", 1, 2, "a1B2") ==
          "mx.example.org!example.com!1!2!a1B2.xml.gz");
    CHECK(report::report_file_name("mx.example.org", "../etc", 1, 2).empty());
    CHECK(report::report_file_name("mx.example.org", "a/b", 1, 2).empty());
    CHECK(report::report_file_name("", "example.com", 1, 2).empty());
    CHECK(report::report_file_name("mx.example.org", "example.com", 1, 2, "x!y").empty());
}

TEST_CASE("dmarc report: gzip round-trips", "[report][dmarc]") {
    std::string text = report::build_report_xml(meta(), row(), {{row(), 1}});
    auto gz = report::gzip_compress(text);
    REQUIRE(gz.size() > 18);
    CHECK(static_cast<unsigned char>(gz[0]) == 0x1f);
    CHECK(static_cast<unsigned char>(gz[1]) == 0x8b);
    CHECK(gunzip(gz) == text);
    CHECK(gunzip(report::gzip_compress("")).empty());
}

TEST_CASE("dmarc report: report-id templates and the Subject", "[report][dmarc]") {
    CHECK_FALSE(report::report_id_template_error("{begin}.{random}@{receiver}"));
    CHECK_FALSE(report::report_id_template_error("{domain}-{begin}-{end}"));
    CHECK(report::report_id_template_error(""));
    CHECK(report::report_id_template_error("{bogus}"));
    CHECK(report::report_id_template_error("{begin"));
    CHECK(report::report_id_template_error("a b"));
    CHECK(report::report_id_template_error("a@b@c"));
    CHECK(report::report_id_template_error("x>y"));
    CHECK(report::report_id_template_error("@x"));
    CHECK(report::expand_report_id("{domain}.{begin}-{end}.{random}@{receiver}", "example.com", 1, 2,
                                   "mx.test", "00ff") == "example.com.1-2.00ff@mx.test");
    auto r1 = report::random_hex();
    CHECK(r1.size() == 16);
    CHECK(r1 != report::random_hex());
    CHECK(report::report_subject("example.com", "mx.example.org", "42.abc") ==
          "Report Domain: example.com Submitter: mx.example.org Report-ID: <42.abc@mx.example.org>");
    CHECK(report::report_subject("example.com", "mx.example.org", "42@id.example") ==
          "Report Domain: example.com Submitter: mx.example.org Report-ID: <42@id.example>");
}
