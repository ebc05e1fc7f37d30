// Whole messages as a file or the MTA hands them over: header/body split, folding, the bounded
// header store and the From fields it captures past its caps, Authentication-Results fields we
// must recognise as forged (RFC 8601 §5), and the envelope and address strings from the SMTP dialogue.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/authentication_results.hpp"
#include "core/envelope.hpp"
#include "core/ip_address.hpp"
#include "core/limits.hpp"
#include "core/message.hpp"
#include "core/printable.hpp"
#include "fuzz_check.hpp"

using namespace vigil;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view raw(reinterpret_cast<const char*>(data), size);

    auto parsed = core::parse_message(raw);
    core::Message msg;
    for (const auto& h : parsed.headers) {
        // A field name as Postfix's is_header() takes it: printable ASCII, no ':' and no white space
        // (the white space Postfix allows before the colon is not part of the name).
        FUZZ_CHECK(!h.name.empty());
        for (char c : h.name) FUZZ_CHECK(c > 32 && c < 127 && c != ':');
        msg.add_header(h.name, h.value);
        (void)core::unfold(h.value);
        if (auto id = auth::claimed_authserv_id(h.value)) FUZZ_CHECK(id->size() <= h.value.size());
    }
    msg.add_body(parsed.body.size());
    FUZZ_CHECK(msg.headers().size() <= core::limits::max_header_fields);
    FUZZ_CHECK(msg.header_fields_seen() == parsed.headers.size());
    (void)msg.find("From");
    (void)msg.count("Received");
    // Every From field is counted and the first ones captured, kept in headers() or not.
    std::size_t froms = 0;
    for (const auto& h : parsed.headers) {
        if (!core::iequals(h.name, "From")) continue;
        if (froms < core::limits::max_from_fields) {
            FUZZ_CHECK(msg.from_value(froms) ==
                       std::string_view(h.value).substr(0, core::limits::max_from_bytes));
        }
        ++froms;
    }
    FUZZ_CHECK(msg.from_fields_seen() == froms);
    FUZZ_CHECK(msg.from_kept() == std::min(froms, core::limits::max_from_fields));
    FUZZ_CHECK(msg.count("From") <= froms);
    // Line endings are CRLF only after parsing.
    for (std::size_t i = 0; i < parsed.body.size(); ++i) {
        if (parsed.body[i] == '\n') FUZZ_CHECK(i > 0 && parsed.body[i - 1] == '\r');
    }

    // The same bytes as SMTP dialogue strings.
    (void)core::strip_angle_brackets(raw);
    (void)core::address_domain(raw);
    if (auto ip = core::IpAddress::parse(raw)) {
        auto again = core::IpAddress::parse(ip->to_string());
        FUZZ_CHECK(again && *again == *ip);
        (void)ip->reverse_labels();
    }
    for (bool strict : {true, false}) {
        if (auto net = core::Cidr::parse(raw, strict)) {
            auto again = core::Cidr::parse(net->to_string());
            FUZZ_CHECK(again && again->prefix() == net->prefix() && again->network() == net->network());
        }
    }
    auto p = core::printable(raw);
    FUZZ_CHECK(p.size() <= core::limits::max_log_field + 6);  // one escape past the cap, then "..."
    (void)auth::format_authentication_results("mx.example", {std::string(core::printable(raw, 64))});
    return 0;
}
