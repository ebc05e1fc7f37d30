// Malformed-input tests for the rdata decoders (house rule 5): every length inside the data is hostile.
#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "dns/dns_limits.hpp"
#include "dns/rdata.hpp"

using namespace vigil::dns;
using namespace std::string_literals;

namespace {

Record decode_ok(RrType type, const std::string& rdata) {
    Record r;
    r.type = type;
    std::string error;
    INFO("rdata of " << rdata.size() << " bytes");
    REQUIRE(decode_rdata(type, rdata, r, error));
    CHECK(error.empty());
    return r;
}

std::string decode_error(RrType type, const std::string& rdata) {
    Record r;
    std::string error;
    CHECK_FALSE(decode_rdata(type, rdata, r, error));
    CHECK_FALSE(error.empty());
    return error;
}

}  // namespace

TEST_CASE("dns rdata: A and AAAA need exactly 4 and 16 bytes", "[dns]") {
    CHECK(decode_ok(RrType::a, "\xc0\x00\x02\x01"s).address->to_string() == "192.0.2.1");
    CHECK(
        decode_ok(RrType::aaaa, "\x20\x01\x0d\xb8"s + std::string(11, '\0') + "\x01"s).address->to_string() ==
        "2001:db8::1");
    decode_error(RrType::a, "");
    decode_error(RrType::a, "\x01\x02\x03"s);
    decode_error(RrType::a, "\x01\x02\x03\x04\x05"s);
    decode_error(RrType::aaaa, std::string(4, '\1'));
    decode_error(RrType::aaaa, std::string(17, '\1'));
}

TEST_CASE("dns rdata: TXT character-strings are split by their length octets", "[dns]") {
    Record one = decode_ok(RrType::txt, "\x0bv=spf1 -all"s);
    REQUIRE(one.txt.size() == 1);
    CHECK(one.txt[0] == "v=spf1 -all");

    Record multi = decode_ok(RrType::txt,
                             "\x03"
                             "abc"
                             "\x00"
                             "\x02"
                             "de"s);
    REQUIRE(multi.txt.size() == 3);
    CHECK(multi.txt[0] == "abc");
    CHECK(multi.txt[1].empty());
    CHECK(multi.txt[2] == "de");
    CHECK(multi.txt_joined() == "abcde");

    // Raw bytes are kept as they are, NUL and high bytes included.
    Record raw = decode_ok(RrType::txt, "\x03\x00\xff\x7f"s);
    CHECK(raw.txt[0] == "\x00\xff\x7f"s);

    Record full = decode_ok(RrType::txt, "\xff"s + std::string(255, 'x'));
    CHECK(full.txt[0].size() == 255);
}

TEST_CASE("dns rdata: TXT lengths that run past the data are malformed", "[dns]") {
    decode_error(RrType::txt, "");  // no character-string at all
    decode_error(RrType::txt,
                 "\x05"
                 "abc"s);  // claims 5, has 3
    decode_error(RrType::txt,
                 "\x03"
                 "abc"
                 "\x01"s);  // second string claims 1, has 0
    decode_error(RrType::txt, "\xff"s + std::string(254, 'x'));
}

TEST_CASE("dns rdata: names decode to lowercase text without the trailing dot", "[dns]") {
    Record ptr = decode_ok(RrType::ptr,
                           "\x04Mail\x07"
                           "Example\x03"
                           "com\x00"s);
    CHECK(ptr.target == "mail.example.com");
    Record cname = decode_ok(RrType::cname,
                             "\x01"
                             "a\x00"s);
    CHECK(cname.target == "a");
    Record ns = decode_ok(RrType::ns,
                          "\x02ns\x07"
                          "example\x00"s);
    CHECK(ns.target == "ns.example");

    Record mx = decode_ok(RrType::mx,
                          "\x00\x0a\x02mx\x07"
                          "example\x00"s);
    CHECK(mx.preference == 10);
    CHECK(mx.target == "mx.example");
    Record null_mx = decode_ok(RrType::mx, "\x00\x00\x00"s);  // RFC 7505 null MX: preference 0, "."
    CHECK(null_mx.preference == 0);
    CHECK(null_mx.target.empty());
}

TEST_CASE("dns rdata: bytes that text cannot carry are escaped - never passed through", "[dns]") {
    Record dot = decode_ok(RrType::ptr,
                           "\x05"
                           "a.b\\c\x07"
                           "example\x00"s);
    CHECK(dot.target == "a\\.b\\\\c.example");
    Record bin = decode_ok(RrType::ptr,
                           "\x03"
                           "a\x00z\x00"s);
    CHECK(bin.target == "a\\000z");
    Record high = decode_ok(RrType::ptr, "\x02\xc3\xbc\x00"s);
    CHECK(high.target == "\\195\\188");
    // Such a name can never be queried, so it cannot be mistaken for another one.
    CHECK_FALSE(normalize_query_name(dot.target).ok());
}

TEST_CASE("dns rdata: malformed names are refused", "[dns]") {
    decode_error(RrType::ptr, "");                                        // nothing at all
    decode_error(RrType::ptr, "\x04mail"s);                               // no root label
    decode_error(RrType::ptr, "\x09mail"s);                               // label runs past the end
    decode_error(RrType::ptr, "\xc0\x0c"s);                               // compression pointer
    decode_error(RrType::ptr, "\x40"s + std::string(64, 'a') + "\x00"s);  // 0x40: reserved label type
    decode_error(RrType::ptr, "\x04mail\x00\x00"s);                       // trailing byte after the name
    decode_error(RrType::mx, "\x00"s);                                    // too short for preference + name
    decode_error(RrType::mx, "\x00\x0a"s);
    decode_error(RrType::mx, "\x00\x0a\x02mx"s);

    // 255 octets is the limit for a whole name: four labels of 63 plus root is 257.
    std::string long_name;
    for (int i = 0; i < 4; ++i) long_name += "\x3f"s + std::string(63, 'a');
    long_name += "\x00"s;
    decode_error(RrType::ptr, long_name);
    std::string max_name;
    for (int i = 0; i < 3; ++i) max_name += "\x3f"s + std::string(63, 'a');
    max_name += "\x3d"s + std::string(61, 'b') + "\x00"s;  // 3*64 + 62 + 1 = 255
    CHECK(decode_ok(RrType::ptr, max_name).target.size() == 253);
}

TEST_CASE("dns rdata: SOA keeps the primary server and checks the shape", "[dns]") {
    const std::string names =
        "\x02ns\x07"
        "example\x00"
        "\x04host\x07"
        "example\x00"s;
    Record soa = decode_ok(RrType::soa, names + std::string(20, '\1'));
    CHECK(soa.target == "ns.example");
    decode_error(RrType::soa, names + std::string(19, '\1'));
    decode_error(RrType::soa, names + std::string(21, '\1'));
    decode_error(RrType::soa,
                 "\x02ns\x07"
                 "example\x00"s);
}

TEST_CASE("dns rdata: unknown types are refused", "[dns]") {
    decode_error(static_cast<RrType>(99), "abc");
}

TEST_CASE("dns rdata: decode_wire_name leaves pos alone on failure and advances it on success", "[dns]") {
    const std::string wire =
        "\x01"
        "a\x00"
        "\x05"
        "b"s;
    std::size_t pos = 0;
    std::string out, error;
    REQUIRE(decode_wire_name(wire, pos, out, error));
    CHECK(out == "a");
    CHECK(pos == 3);
    std::size_t bad = 3;
    CHECK_FALSE(decode_wire_name(wire, bad, out, error));
    CHECK(bad == 3);
}

TEST_CASE("dns rdata: answers keep at most max_records_per_answer records", "[dns]") {
    std::vector<std::string> storage(limits::max_records_per_answer + 5, "\xc0\x00\x02\x01"s);
    std::vector<std::string_view> rdatas(storage.begin(), storage.end());
    std::vector<Record> records;
    std::string detail;
    REQUIRE(decode_answer_records(RrType::a, "many.example", rdatas, records, detail));
    CHECK(records.size() == limits::max_records_per_answer);
    CHECK(detail == "truncated to 100 records");
    CHECK(records.front().name == "many.example");
    CHECK(records.front().type == RrType::a);

    rdatas.resize(limits::max_records_per_answer);
    REQUIRE(decode_answer_records(RrType::a, "many.example", rdatas, records, detail));
    CHECK(records.size() == limits::max_records_per_answer);
    CHECK(detail.empty());
}

TEST_CASE("dns rdata: TXT answers over max_txt_bytes are malformed, not cut", "[dns]") {
    // Four 255-byte strings per record, so the total crosses 64 KiB before the record cap is reached.
    const std::string one = "\xff"s + std::string(255, 'x');
    std::string four = one + one + one + one;
    std::vector<std::string> big(limits::max_txt_bytes / (4 * 255) + 1, four);
    std::vector<std::string_view> rdatas(big.begin(), big.end());
    std::vector<Record> records;
    std::string detail;
    CHECK_FALSE(decode_answer_records(RrType::txt, "big.example", rdatas, records, detail));
    CHECK(records.empty());
    CHECK(detail.find("TXT data over") != std::string::npos);

    std::vector<std::string> exact(limits::max_txt_bytes / (4 * 255), four);
    std::vector<std::string_view> ok(exact.begin(), exact.end());
    CHECK(decode_answer_records(RrType::txt, "big.example", ok, records, detail));
}

TEST_CASE("dns rdata: one bad record makes the whole answer malformed", "[dns]") {
    std::vector<std::string> storage = {
        "\x03"
        "abc"s,
        "\x09"
        "abc"s};
    std::vector<std::string_view> rdatas(storage.begin(), storage.end());
    std::vector<Record> records;
    std::string detail;
    CHECK_FALSE(decode_answer_records(RrType::txt, "x.example", rdatas, records, detail));
    CHECK(records.empty());
    CHECK_FALSE(detail.empty());
}
