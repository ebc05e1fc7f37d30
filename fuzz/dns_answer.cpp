// DNS answers as a server (any server, on the path or not) sends them: wire-format names, the rdata of
// every record type we read, whole answers with many records, and libunbound's result structure as
// the resolver maps it. libunbound checks the packet's framing; the record data inside is ours to decode.
#include <fuzzer/FuzzedDataProvider.h>
#include <unbound.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/printable.hpp"
#include "dns/dns_limits.hpp"
#include "dns/rdata.hpp"
#include "dns/resolver.hpp"
#include "dns/unbound_resolver.hpp"
#include "fuzz_check.hpp"

using namespace vigil::dns;

namespace {

constexpr RrType types[] = {RrType::a,  RrType::ns,  RrType::cname, RrType::soa,   RrType::ptr,
                            RrType::mx, RrType::txt, RrType::aaaa,  RrType::dnskey};

bool printable_ascii(std::string_view s) {
    for (unsigned char c : s) {
        if (c < 0x20 || c > 0x7e) return false;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    // Any 16-bit value, to reach the "not one of RrType's values" path too.
    const auto raw_type =
        static_cast<RrType>(in.ConsumeBool() ? in.ConsumeIntegral<std::uint16_t>()
                                             : static_cast<std::uint16_t>(in.PickValueInArray(types)));
    const int rcode = in.ConsumeIntegralInRange(0, 23);
    const bool validating = in.ConsumeBool(), secure = in.ConsumeBool(), bogus = in.ConsumeBool();
    const int ttl = in.ConsumeIntegral<int>();
    std::string canonname = in.ConsumeRandomLengthString(300);
    std::string why_bogus = in.ConsumeRandomLengthString(300);
    std::vector<std::string> rdatas;
    for (int n = in.ConsumeIntegralInRange(0, 110); n > 0 && in.remaining_bytes() > 0; --n) {
        rdatas.push_back(in.ConsumeRandomLengthString(600));
    }

    for (const auto& rd : rdatas) {
        std::size_t pos = 0;
        std::string name, error;
        if (decode_wire_name(rd, pos, name, error)) {
            FUZZ_CHECK(pos <= rd.size());
            FUZZ_CHECK(name.size() <= 4 * limits::max_wire_name_length);
        } else {
            FUZZ_CHECK(!error.empty());
        }
        Record r;
        error.clear();
        if (!decode_rdata(raw_type, rd, r, error)) FUZZ_CHECK(!error.empty() && printable_ascii(error));
        // Each input also as a whole DNS message (the doctor's RRSIG walk over answer_packet).
        std::vector<Signature> sigs;
        error.clear();
        if (find_signatures(rd, raw_type, sigs, error)) {
            FUZZ_CHECK(sigs.size() <= limits::max_records_per_answer);
        } else {
            FUZZ_CHECK(sigs.empty() && !error.empty());
        }
    }

    std::vector<std::string_view> views(rdatas.begin(), rdatas.end());
    std::vector<Record> records;
    std::string detail;
    if (decode_answer_records(raw_type, "owner.example", views, records, detail)) {
        FUZZ_CHECK(records.size() <= limits::max_records_per_answer);
    }

    // The same data as libunbound hands it over.
    std::vector<char*> data_ptrs;
    std::vector<int> lens;
    for (auto& rd : rdatas) {
        data_ptrs.push_back(rd.data());
        lens.push_back(static_cast<int>(rd.size()));
    }
    data_ptrs.push_back(nullptr);
    std::string qname = "query.example.";
    ub_result res{};
    res.qname = qname.data();
    res.qtype = static_cast<int>(raw_type);
    res.qclass = 1;
    res.data = data_ptrs.data();
    res.len = lens.data();
    res.canonname = canonname.empty() ? nullptr : canonname.data();
    res.rcode = rcode;
    res.havedata = rdatas.empty() ? 0 : 1;
    res.nxdomain = rcode == 3;
    res.secure = secure;
    res.bogus = bogus;
    res.why_bogus = why_bogus.empty() ? nullptr : why_bogus.data();
    res.ttl = ttl;
    auto a = detail::answer_from_unbound(0, &res, raw_type, validating);
    FUZZ_CHECK(printable_ascii(a.detail));
    FUZZ_CHECK(a.records.size() <= limits::max_records_per_answer);
    FUZZ_CHECK(a.ttl <= limits::max_ttl);
    FUZZ_CHECK(a.ok() == !a.records.empty());
    (void)to_string(a.status);
    return 0;
}
