// DKIM-Signature values and the tag-list grammar under them (RFC 6376 §3.2, §3.5): what a sender
// writes in the DKIM-Signature field reaches these parsers unfiltered.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "auth/dkim/dkim_limits.hpp"
#include "auth/dkim/signature.hpp"
#include "auth/dkim/tags.hpp"
#include "fuzz_check.hpp"

using namespace vigil::auth::dkim;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);

    auto tags = parse_tag_list(text);
    if (tags.ok()) {
        FUZZ_CHECK(tags.tags.size() <= limits::max_tags);
        for (const auto& t : tags.tags) {
            // Views must point into the input and the raw offsets must describe the value's span.
            FUZZ_CHECK(t.name.data() >= text.data() &&
                       t.name.data() + t.name.size() <= text.data() + text.size());
            FUZZ_CHECK(t.raw_begin <= t.raw_end && t.raw_end <= text.size());
            (void)strip_fws(t.value);
        }
    }

    for (bool sha1 : {false, true}) {
        auto parsed = parse_signature(text, SignaturePolicy{sha1});
        if (parsed.sig) {
            const auto& s = *parsed.sig;
            FUZZ_CHECK(s.b_begin <= s.b_end && s.b_end <= text.size());
            FUZZ_CHECK(valid_domain(s.domain));
            FUZZ_CHECK(s.signed_headers.size() <= limits::max_signed_header_names);
            // The header hash input for a message made only of the signature itself.
            std::vector<HeaderRef> headers{{"DKIM-Signature", text}};
            (void)header_hash_input(headers, s.header_canon, s.signed_headers, "DKIM-Signature", text,
                                    s.b_begin, s.b_end);
        } else {
            FUZZ_CHECK(!parsed.detail.empty());
        }
    }
    return 0;
}
