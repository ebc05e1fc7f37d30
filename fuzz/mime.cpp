// The MIME layer: a whole message through mime::parse (as found, and as if cut by the scan cap),
// with the properties every content check relies on; and the same bytes through the pieces that
// also see untrusted strings on their own (header words, HTML, URLs, charsets).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>

#include "core/message.hpp"
#include "fuzz_check.hpp"
#include "mime/charset.hpp"
#include "mime/header_decode.hpp"
#include "mime/html.hpp"
#include "mime/mime_limits.hpp"
#include "mime/parse.hpp"
#include "mime/url.hpp"

using namespace vigil;

namespace {

void check(const mime::ParsedMessage& pm) {
    namespace lim = mime::limits;
    FUZZ_CHECK(pm.headers.size() <= lim::max_headers);
    for (const auto& h : pm.headers) {
        FUZZ_CHECK(mime::valid_utf8(h.value));
        FUZZ_CHECK(h.value.size() <= lim::max_header_value);
    }
    FUZZ_CHECK(mime::valid_utf8(pm.subject));
    FUZZ_CHECK(pm.parts.size() <= lim::max_parts);
    std::size_t total = 0;
    for (const auto& p : pm.parts) {
        FUZZ_CHECK(p.depth >= 0 && p.depth <= lim::max_depth);
        FUZZ_CHECK(mime::valid_utf8(p.decoded));
        FUZZ_CHECK(mime::valid_utf8(p.visible));
        FUZZ_CHECK(mime::valid_utf8(p.filename));
        FUZZ_CHECK(p.decoded.find('\r') == std::string::npos);
        FUZZ_CHECK(p.decoded.size() <= lim::max_part_decoded_bytes);
        FUZZ_CHECK(p.is_text || p.decoded.empty());
        FUZZ_CHECK(p.is_html || p.visible.empty());
        FUZZ_CHECK(!p.content_type.empty() && p.content_type.find('/') != std::string::npos);
        total += p.decoded.size() + p.visible.size();
    }
    FUZZ_CHECK(total <= lim::max_decoded_bytes);
    FUZZ_CHECK(pm.urls.size() <= lim::max_urls);
    std::unordered_set<std::string> seen;
    for (const auto& u : pm.urls) {
        FUZZ_CHECK(seen.insert(u.url).second);
        FUZZ_CHECK(!u.host.empty());
        FUZZ_CHECK(u.part < pm.parts.size());
        FUZZ_CHECK(u.url.size() <= lim::max_url);
        FUZZ_CHECK(u.display_text.size() <= lim::max_link_text);
        FUZZ_CHECK(!u.display_mismatch || pm.has(mime::Anomaly::html_link_mismatch));
        FUZZ_CHECK(mime::url_host(u.url).has_value());
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view raw(reinterpret_cast<const char*>(data), size);
    auto msg = core::parse_message(raw);
    check(mime::parse(msg.headers, msg.body, false));
    check(mime::parse(msg.headers, msg.body, true));

    bool bad = false;
    auto words = mime::decode_words(raw, bad, 4096);
    FUZZ_CHECK(mime::valid_utf8(words) && words.size() <= 4096);
    (void)mime::parse_media_type(raw);
    auto text = mime::to_utf8(raw, size > 0 && (data[0] & 1) ? "gb18030" : "");
    FUZZ_CHECK(mime::valid_utf8(text.text));
    auto html = mime::render_html(text.text, 64 * 1024);
    FUZZ_CHECK(mime::valid_utf8(html.visible) && html.visible.size() <= 64 * 1024);
    mime::find_text_urls(text.text, [](std::string_view u) {
        FUZZ_CHECK(u.size() <= mime::limits::max_url + 8);
        (void)mime::url_host(u);
        return true;
    });
    (void)mime::host_named_by(text.text);
    return 0;
}
