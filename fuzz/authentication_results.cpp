// Authentication-Results: the resinfo texts checks hand in carry peer and DNS bytes. Whatever they
// hold, the field is printable ASCII folded with CRLF TAB, no line passes 998 bytes, it still names
// our authserv-id, and reading a written resinfo back writes it the same way again.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "auth/authentication_results.hpp"
#include "fuzz_check.hpp"

using namespace vigil;

namespace {

// max_line: 998 for the field (RFC 5322); a resinfo on one line may be longer.
void check_field(const std::string& v, std::size_t max_line = 998) {
    std::size_t line = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
        auto c = static_cast<unsigned char>(v[i]);
        if (c == '\r') {
            FUZZ_CHECK(i + 2 < v.size() && v[i + 1] == '\n' && v[i + 2] == '\t');
            i += 2;
            line = 1;
            continue;
        }
        FUZZ_CHECK(c >= 0x20 && c < 0x7f);
        FUZZ_CHECK(++line <= max_line);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    std::vector<std::string> resinfos;
    while (in.remaining_bytes() > 0 && resinfos.size() < 80)
        resinfos.push_back(in.ConsumeRandomLengthString(2000));

    auto field = auth::format_authentication_results("mx.example.org", resinfos);
    check_field(field);
    FUZZ_CHECK(auth::claimed_authserv_id(field) == std::string("mx.example.org"));

    for (const auto& text : resinfos) {
        auto v = auth::ar_value(text);
        check_field(v);
        FUZZ_CHECK(!v.empty());
        if (auto r = auth::parse_resinfo(text)) {
            auto once = auth::resinfo_text(*r);
            check_field(once, std::numeric_limits<std::size_t>::max());
            auto again = auth::parse_resinfo(once);
            FUZZ_CHECK(again.has_value());
            FUZZ_CHECK(auth::resinfo_text(*again) == once);
        }
    }
    return 0;
}
