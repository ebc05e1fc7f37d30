#pragma once
// Messages for the MIME tests written the way they arrive: a raw message split by the MTA-side
// splitter (LF converted to CRLF), then mime::parse.
#include <algorithm>
#include <string>
#include <string_view>

#include "core/message.hpp"
#include "mime/parse.hpp"

namespace vigil::test {

inline mime::ParsedMessage parse_raw(std::string_view raw, bool truncated = false) {
    auto m = core::parse_message(raw);
    return mime::parse(m.headers, m.body, truncated);
}

inline const mime::Url* find_url(const mime::ParsedMessage& pm, std::string_view url) {
    auto it = std::find_if(pm.urls.begin(), pm.urls.end(), [&](const mime::Url& u) { return u.url == url; });
    return it == pm.urls.end() ? nullptr : &*it;
}

inline bool has_host(const mime::ParsedMessage& pm, std::string_view host) {
    return std::any_of(pm.urls.begin(), pm.urls.end(), [&](const mime::Url& u) { return u.host == host; });
}

}  // namespace vigil::test
