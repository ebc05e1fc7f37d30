// How a libunbound result becomes an Answer, with hand-built ub_result structs: DNSSEC flags, rcodes,
// TTL clamping and caps, without a DNS server.
#include <catch2/catch.hpp>

#include <unbound.h>

#include <climits>
#include <string>
#include <vector>

#include "dns/dns_limits.hpp"
#include "dns/unbound_resolver.hpp"

using namespace vigil::dns;
using namespace std::string_literals;

namespace {

// Owns the storage a ub_result points into; only the fields answer_from_unbound reads are set.
struct FakeResult {
    std::string qname = "Host.Example.";
    std::string canon;
    std::vector<std::string> rdata;
    std::vector<char*> data;
    std::vector<int> len;
    std::string why;
    ub_result result{};

    const ub_result* get() {
        data.clear();
        len.clear();
        for (auto& r : rdata) {
            data.push_back(r.data());
            len.push_back(static_cast<int>(r.size()));
        }
        data.push_back(nullptr);
        result.qname = qname.data();
        result.canonname = canon.empty() ? nullptr : canon.data();
        result.data = data.data();
        result.len = len.data();
        result.why_bogus = why.empty() ? nullptr : why.data();
        result.havedata = rdata.empty() ? 0 : 1;
        return &result;
    }
};

}  // namespace

TEST_CASE("dns unbound result: NOERROR with data is an answer with decoded records", "[dns]") {
    FakeResult f;
    f.rdata = {"\xc0\x00\x02\x01"s, "\xc0\x00\x02\x02"s};
    f.result.ttl = 300;
    Answer a = detail::answer_from_unbound(0, f.get(), RrType::a, true);
    CHECK(a.status == Status::answer);
    CHECK(a.dnssec == Dnssec::insecure);
    CHECK(a.ttl == 300);
    REQUIRE(a.records.size() == 2);
    CHECK(a.records[0].name == "host.example");
    CHECK(a.records[1].address->to_string() == "192.0.2.2");
    CHECK(a.detail.empty());
}

TEST_CASE("dns unbound result: the owner is the end of the CNAME chain", "[dns]") {
    FakeResult f;
    f.qname = "alias.example.";
    f.canon = "Real.Example.";
    f.rdata = {"\xc0\x00\x02\x01"s};
    Answer a = detail::answer_from_unbound(0, f.get(), RrType::a, false);
    REQUIRE(a.records.size() == 1);
    CHECK(a.records[0].name == "real.example");
    CHECK(a.dnssec == Dnssec::unchecked);
}

TEST_CASE("dns unbound result: rcodes map to distinct statuses", "[dns]") {
    FakeResult f;
    f.result.rcode = 0;
    CHECK(detail::answer_from_unbound(0, f.get(), RrType::mx, true).status == Status::nodata);
    f.result.rcode = 3;
    f.result.nxdomain = 1;
    f.result.ttl = 120;
    Answer nx = detail::answer_from_unbound(0, f.get(), RrType::mx, true);
    CHECK(nx.status == Status::nxdomain);
    CHECK(nx.ttl == 120);
    f.result.nxdomain = 0;
    for (auto [rcode, name] :
         {std::pair{2, "SERVFAIL"}, {5, "REFUSED"}, {1, "FORMERR"}, {4, "NOTIMP"}, {9, "RCODE 9"}}) {
        f.result.rcode = rcode;
        Answer a = detail::answer_from_unbound(0, f.get(), RrType::mx, true);
        CHECK(a.status == Status::servfail);
        CHECK(a.detail == name);
        CHECK(a.ttl == 0);
    }
    Answer err = detail::answer_from_unbound(UB_NOMEM, nullptr, RrType::mx, true);
    CHECK(err.status == Status::servfail);
    CHECK(err.detail == "libunbound: out of memory");
}

TEST_CASE("dns unbound result: DNSSEC secure, bogus (status kept, reason in detail) and unchecked", "[dns]") {
    FakeResult f;
    f.rdata = {"\x0bv=spf1 -all"s};
    f.result.ttl = 600;
    f.result.secure = 1;
    CHECK(detail::answer_from_unbound(0, f.get(), RrType::txt, true).dnssec == Dnssec::secure);
    CHECK(detail::answer_from_unbound(0, f.get(), RrType::txt, false).dnssec == Dnssec::unchecked);

    f.result.secure = 0;
    f.result.bogus = 1;
    f.why = "signature expired\n";
    Answer bogus = detail::answer_from_unbound(0, f.get(), RrType::txt, true);
    CHECK(bogus.status == Status::answer);
    CHECK(bogus.dnssec == Dnssec::bogus);
    CHECK(bogus.records.size() == 1);
    CHECK(bogus.detail == "DNSSEC bogus: signature expired\\x0a");  // printable

    f.rdata.clear();
    f.result.rcode = 3;
    Answer bogus_nx = detail::answer_from_unbound(0, f.get(), RrType::txt, true);
    CHECK(bogus_nx.status == Status::nxdomain);
    CHECK(bogus_nx.dnssec == Dnssec::bogus);
}

TEST_CASE("dns unbound result: TTLs are clamped", "[dns]") {
    FakeResult f;
    f.rdata = {"\xc0\x00\x02\x01"s};
    f.result.ttl = INT_MAX;
    CHECK(detail::answer_from_unbound(0, f.get(), RrType::a, false).ttl == limits::max_ttl);
    f.result.ttl = -5;
    CHECK(detail::answer_from_unbound(0, f.get(), RrType::a, false).ttl == limits::min_ttl);
}

TEST_CASE("dns unbound result: caps and bad rdata", "[dns]") {
    FakeResult f;
    f.rdata.assign(limits::max_records_per_answer + 20, "\xc0\x00\x02\x01"s);
    Answer many = detail::answer_from_unbound(0, f.get(), RrType::a, false);
    CHECK(many.status == Status::answer);
    CHECK(many.records.size() == limits::max_records_per_answer);
    CHECK(many.detail == "truncated to 100 records");

    f.rdata = {"\x0bv=spf1 -all"s, "\x20short"s};
    Answer bad = detail::answer_from_unbound(0, f.get(), RrType::txt, false);
    CHECK(bad.status == Status::malformed);
    CHECK(bad.records.empty());
    CHECK(bad.detail.find("TXT character-string") != std::string::npos);

    f.rdata = {"\x01\x02\x03"s};
    CHECK(detail::answer_from_unbound(0, f.get(), RrType::a, false).status == Status::malformed);
}
