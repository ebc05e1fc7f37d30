// DNSKEY rdata and the RRSIGs found in a whole answer message (what `vigil doctor` reads to see whether
// a zone is signed when no validator is there): well-formed input, and hostile lengths and names.
#include <catch2/catch.hpp>

#include <unbound.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dns/dns_limits.hpp"
#include "dns/rdata.hpp"
#include "dns/unbound_resolver.hpp"

using namespace vigil::dns;
using namespace std::string_literals;

namespace {

std::string u16(unsigned v) {
    return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)};
}
std::string u32(std::uint32_t v) {
    return u16(v >> 16) + u16(v & 0xffff);
}

const std::string qname =
    "\x07"
    "example\x04test\x00"s;

std::string rrsig(unsigned covered, std::uint8_t alg, std::uint32_t expiration, std::uint32_t inception,
                  unsigned tag) {
    return u16(covered) + std::string{static_cast<char>(alg), 2} + u32(300) + u32(expiration) +
           u32(inception) + u16(tag) + qname + std::string(64, 's');
}

// One record of the answer section, owner compressed to the question name.
std::string rr(unsigned type, const std::string& rdata) {
    return "\xc0\x0c"s + u16(type) + u16(1) + u32(300) + u16(static_cast<unsigned>(rdata.size())) + rdata;
}

std::string message(const std::vector<std::string>& answers) {
    std::string m = u16(0x1234) + u16(0x8180) + u16(1) + u16(static_cast<unsigned>(answers.size())) + u16(0) +
                    u16(0) + qname + u16(48) + u16(1);
    for (const auto& a : answers) m += a;
    return m;
}

const std::string dnskey = u16(257) + "\x03\x0d"s + std::string(32, 'k');

}  // namespace

TEST_CASE("DNSKEY rdata: flags and algorithm, protocol 3, a key", "[dns][rdata]") {
    Record r;
    std::string error;
    REQUIRE(decode_rdata(RrType::dnskey, dnskey, r, error));
    CHECK(r.flags == 257);
    CHECK(r.algorithm == 13);
    CHECK_FALSE(decode_rdata(RrType::dnskey, u16(256) + "\x03\x0d"s, r, error));  // no key
    CHECK_THAT(error, Catch::Matchers::Contains("too short"));
    CHECK_FALSE(decode_rdata(RrType::dnskey, u16(256) + "\x02\x0d"s + "k", r, error));
    CHECK_THAT(error, Catch::Matchers::Contains("protocol"));
    CHECK(to_string(RrType::dnskey) == "DNSKEY");
    CHECK(is_known_type(RrType::dnskey));
}

TEST_CASE("find_signatures: the RRSIGs over the asked type, their times and key tags", "[dns][rdata]") {
    std::vector<Signature> sigs;
    std::string error;
    const auto m = message({rr(48, dnskey), rr(46, rrsig(48, 15, 2'000'000'000, 1'900'000'000, 4242)),
                            rr(46, rrsig(1, 13, 5, 6, 7)),           // covers A: not ours
                            rr(46, u16(48) + std::string(10, 'x')),  // too short to read: skipped
                            rr(46, rrsig(48, 13, 3'000'000'000u, 2'900'000'000u, 99))});
    REQUIRE(find_signatures(m, RrType::dnskey, sigs, error));
    REQUIRE(sigs.size() == 2);
    CHECK(sigs[0].algorithm == 15);
    CHECK(sigs[0].key_tag == 4242);
    CHECK(sigs[0].expiration == 2'000'000'000u);
    CHECK(sigs[0].inception == 1'900'000'000u);
    CHECK(sigs[1].expiration == 3'000'000'000u);
    CHECK(sigs[1].key_tag == 99);

    REQUIRE(find_signatures(message({rr(48, dnskey)}), RrType::dnskey, sigs, error));
    CHECK(sigs.empty());
}

TEST_CASE("find_signatures: cut and malformed messages are errors, never reads past the end",
          "[dns][rdata]") {
    std::vector<Signature> sigs;
    std::string error;
    const auto good = message({rr(48, dnskey), rr(46, rrsig(48, 13, 2, 1, 3))});
    for (std::size_t cut = 0; cut < good.size(); ++cut) {
        INFO("cut at " << cut);
        error.clear();
        CHECK_FALSE(find_signatures(good.substr(0, cut), RrType::dnskey, sigs, error));
        CHECK_FALSE(error.empty());
    }
    CHECK_FALSE(find_signatures(good.substr(0, 11), RrType::dnskey, sigs, error));
    CHECK(error == "message shorter than its header");
    // A reserved label type (0x40) in the question name.
    auto bad = good;
    bad[12] = '\x47';
    CHECK_FALSE(find_signatures(bad, RrType::dnskey, sigs, error));
    // An answer count larger than what is there.
    bad = good;
    bad[7] = 3;
    CHECK_FALSE(find_signatures(bad, RrType::dnskey, sigs, error));
    CHECK(sigs.empty());
}

TEST_CASE("find_signatures: at most max_records_per_answer signatures", "[dns][rdata]") {
    std::vector<std::string> answers;
    for (unsigned i = 0; i < limits::max_records_per_answer + 20; ++i)
        answers.push_back(rr(46, rrsig(48, 13, 2, 1, i)));
    std::vector<Signature> sigs;
    std::string error;
    REQUIRE(find_signatures(message(answers), RrType::dnskey, sigs, error));
    CHECK(sigs.size() == limits::max_records_per_answer);
    CHECK(sigs.back().key_tag == limits::max_records_per_answer - 1);
}

TEST_CASE("dns unbound result: a DNSKEY answer carries the RRSIGs of its answer packet, nothing else does",
          "[dns]") {
    std::string owner = "example.test.";
    std::string key = dnskey;
    char* data[] = {key.data(), nullptr};
    int len[] = {static_cast<int>(key.size())};
    std::string packet = message({rr(48, dnskey), rr(46, rrsig(48, 15, 2'000'000'000, 1'900'000'000, 4242))});
    ub_result r{};
    r.qname = owner.data();
    r.data = data;
    r.len = len;
    r.havedata = 1;
    r.answer_packet = packet.data();
    r.answer_len = static_cast<int>(packet.size());
    Answer a = detail::answer_from_unbound(0, &r, RrType::dnskey, false);
    REQUIRE(a.ok());
    CHECK(a.dnssec == Dnssec::unchecked);
    REQUIRE(a.records.size() == 1);
    CHECK(a.records[0].algorithm == 13);
    REQUIRE(a.signatures.size() == 1);
    CHECK(a.signatures[0].key_tag == 4242);

    // A broken packet leaves the records alone and shows no signatures.
    r.answer_len = 20;
    a = detail::answer_from_unbound(0, &r, RrType::dnskey, false);
    CHECK(a.ok());
    CHECK(a.signatures.empty());

    // Other types are not scanned, even with an RRSIG over them in the packet.
    std::string address = "\xc0\x00\x02\x01"s;
    data[0] = address.data();
    len[0] = 4;
    packet = message({rr(1, address), rr(46, rrsig(1, 13, 2, 1, 7))});
    r.answer_packet = packet.data();
    r.answer_len = static_cast<int>(packet.size());
    a = detail::answer_from_unbound(0, &r, RrType::a, false);
    CHECK(a.ok());
    CHECK(a.signatures.empty());
}
