#pragma once
// HTML rendered to the text a reader sees, with libxml2's HTML parser (SAX, no tree): block elements
// become line breaks, script/style/head/title/template left out, text hidden by inline styles or
// legacy attributes left out and reported, entities decoded; link targets and the visible text of
// each <a> collected. See docs/content-mime.md for why libxml2 and not gumbo, and for the input
// guard that keeps libxml2 linear.
#include <string>
#include <string_view>
#include <vector>

#include "mime/parsed_message.hpp"

namespace vigil::mime {

struct HtmlLink {
    std::string url;  // absolute http/https/ftp (see html_url)
    UrlSource source = UrlSource::html_href;
    bool anchor = false;       // an <a> (or <area>) whose text is display_text
    std::string display_text;  // visible text inside the <a>, white space collapsed, bounded
};

struct HtmlText {
    std::string visible;
    std::vector<HtmlLink> links;  // document order; at most limits::max_urls
    bool hidden_text = false;     // some non-blank text was hidden
    bool truncated = false;       // an HTML cap was reached
    bool visible_cut = false;     // max_visible reached: later text dropped (links still collected)
};

// `html` must be valid UTF-8 (mime::to_utf8's output). `max_visible` bounds the visible text.
HtmlText render_html(std::string_view html, std::size_t max_visible);

// The input guard alone (exposed for tests): start tags re-emitted canonically (lowercase name,
// at most max_html_attributes attributes, values double-quoted and bounded), stray '<' escaped,
// comments kept with '<' escaped inside, doctypes and bogus comments dropped, NUL replaced.
std::string guard_html(std::string_view html, bool& truncated);

}  // namespace vigil::mime
