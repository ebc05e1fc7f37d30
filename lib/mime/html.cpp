#include "mime/html.hpp"

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/xmlerror.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "mime/charset.hpp"
#include "mime/mime_limits.hpp"
#include "mime/url.hpp"

namespace vigil::mime {

namespace {

bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}
char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

bool istarts(std::string_view s, std::size_t at, std::string_view prefix) {
    if (s.size() - at < prefix.size()) return false;
    for (std::size_t k = 0; k < prefix.size(); ++k)
        if (lower(s[at + k]) != prefix[k]) return false;
    return true;
}

constexpr std::string_view replacement = "\xEF\xBF\xBD";

// s appended with each byte in `special` replaced by its entity (NUL by U+FFFD); plain runs in bulk.
void append_escaped(std::string& out, std::string_view s, std::string_view special) {
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t j = i;
        while (j < s.size() && s[j] != '\0' && special.find(s[j]) == std::string_view::npos) ++j;
        out.append(s.data() + i, j - i);
        if (j == s.size()) break;
        switch (s[j]) {
            case '\0':
                out += replacement;
                break;
            case '"':
                out += "&quot;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
        }
        i = j + 1;
    }
}

void append_text(std::string& out, std::string_view s) {
    if (std::memchr(s.data(), '\0', s.size()) == nullptr) {
        out.append(s);
        return;
    }
    append_escaped(out, s, {});
}

// Inline formatting elements are renamed ("vx" + name) before libxml2 sees them. libxml2's HTML 4
// tree rules close <font>, <b>, <i> (and more) when a block such as <center>, <p> or <table> starts
// inside them; browsers (HTML5) keep them open, so white text in <font color=white><center>..</center>
// on a black cell would look hidden to us and visible to the reader. libxml2 never auto-closes an
// element it does not know, and the renderer strips the prefix again.
bool formatting_element(std::string_view n) {
    static constexpr std::array<std::string_view, 13> names = {
        "font", "b", "i", "u", "s", "strike", "big", "small", "tt", "span", "em", "strong", "basefont"};
    return std::find(names.begin(), names.end(), n) != names.end();
}
constexpr std::string_view renamed_prefix = "vx";

// The rest of the guard: one pass, output linear in the input (quoting expands a value at most 6x).
class Guard {
  public:
    Guard(std::string_view in, std::string& out) : in_(in), out_(out) {}

    bool run() {
        const std::size_t n = in_.size();
        std::size_t i = 0;
        while (i < n) {
            const void* lt = std::memchr(in_.data() + i, '<', n - i);
            std::size_t next = lt ? static_cast<std::size_t>(static_cast<const char*>(lt) - in_.data()) : n;
            append_text(out_, in_.substr(i, next - i));
            i = next;
            if (i >= n) break;
            char c = i + 1 < n ? in_[i + 1] : '\0';
            if (is_alpha(c)) {
                if (++tags_ > limits::max_html_tags) return false;
                i = start_tag(i);
            } else if (c == '/') {
                if (i + 2 < n && is_alpha(in_[i + 2])) {
                    if (++tags_ > limits::max_html_tags) return false;
                    i = end_tag(i);
                } else {
                    i = skip_to_gt(i + 2);  // "</>" or a bogus comment
                }
            } else if (c == '!') {
                if (istarts(in_, i, "<!--")) {
                    // The next "-->" is remembered: many unterminated "<!--" cost one search.
                    if (comment_end_ != std::string_view::npos && comment_end_ < i + 4)
                        comment_end_ = in_.find("-->", i + 4);
                    std::size_t close = comment_end_;
                    if (close == std::string_view::npos) {
                        out_ += "&lt;";  // unterminated: text, as far as libxml2 is concerned too
                        i += 1;
                    } else {
                        // '<' escaped inside, so that wherever libxml2 thinks the comment ends no
                        // unguarded tag follows.
                        out_ += "<!--";
                        append_escaped(out_, in_.substr(i + 4, close - i - 4), "<");
                        out_ += "-->";
                        i = close + 3;
                    }
                } else {
                    i = skip_to_gt(i + 2);  // doctype, CDATA, bogus comment: nothing visible
                }
            } else if (c == '?') {
                i = skip_to_gt(i + 2);
            } else {
                out_ += "&lt;";
                i += 1;
            }
        }
        return true;
    }

    bool truncated() const { return truncated_; }

  private:
    std::size_t skip_to_gt(std::size_t i) {
        std::size_t gt = in_.find('>', i);
        return gt == std::string_view::npos ? in_.size() : gt + 1;
    }

    // HTML5 tag-name and attribute tokenisation; returns the index after the tag. A tag cut by the
    // end of input is dropped, as browsers do.
    std::size_t start_tag(std::size_t i) {
        const std::size_t n = in_.size();
        std::size_t j = i + 1;
        std::string name;
        while (j < n && !is_ws(in_[j]) && in_[j] != '/' && in_[j] != '>') {
            char c = lower(in_[j]);
            if (((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) && name.size() < 32) name.push_back(c);
            ++j;
        }
        if (formatting_element(name)) name.insert(0, renamed_prefix);
        std::string tag = "<" + name;
        attr_names_.clear();
        while (true) {
            while (j < n && (is_ws(in_[j]) || in_[j] == '/')) ++j;
            if (j >= n) return n;
            if (in_[j] == '>') {
                ++j;
                break;
            }
            std::size_t ns = j;
            if (in_[j] == '=') ++j;
            while (j < n && !is_ws(in_[j]) && in_[j] != '/' && in_[j] != '>' && in_[j] != '=') ++j;
            std::string_view aname = in_.substr(ns, j - ns);
            while (j < n && is_ws(in_[j])) ++j;
            std::optional<std::string_view> value;
            if (j < n && in_[j] == '=') {
                ++j;
                while (j < n && is_ws(in_[j])) ++j;
                if (j >= n) return n;
                if (in_[j] == '"' || in_[j] == '\'') {
                    std::size_t close = in_.find(in_[j], j + 1);
                    if (close == std::string_view::npos) return n;
                    value = in_.substr(j + 1, close - j - 1);
                    j = close + 1;
                } else if (in_[j] != '>') {
                    std::size_t vs = j;
                    while (j < n && !is_ws(in_[j]) && in_[j] != '>') ++j;
                    value = in_.substr(vs, j - vs);
                } else {
                    value = std::string_view();
                }
            }
            add_attribute(tag, aname, value);
        }
        tag.push_back('>');
        out_ += tag;
        return j;
    }

    void add_attribute(std::string& tag, std::string_view raw_name, std::optional<std::string_view> value) {
        if (attr_names_.size() >= limits::max_html_attributes) {
            truncated_ = true;
            return;
        }
        std::string name;
        for (char c : raw_name) {
            c = lower(c);
            if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == ':' ||
                c == '.') {
                if (name.size() < 64) name.push_back(c);
            }
        }
        if (name.empty() || !(is_alpha(name[0]) || name[0] == '_' || name[0] == ':')) return;
        // Duplicates: the first wins (HTML5 and libxml2 agree).
        if (std::find(attr_names_.begin(), attr_names_.end(), name) != attr_names_.end()) return;
        attr_names_.push_back(name);
        tag.push_back(' ');
        tag += name;
        if (!value) return;
        std::string_view v = *value;
        if (v.size() > limits::max_html_attribute_value) {
            v = utf8_prefix(v, limits::max_html_attribute_value);
            truncated_ = true;
        }
        tag += "=\"";
        append_escaped(tag, v, "\"<>");
        tag.push_back('"');
    }

    std::size_t end_tag(std::size_t i) {
        const std::size_t n = in_.size();
        std::size_t j = i + 2;
        std::string name;
        while (j < n && !is_ws(in_[j]) && in_[j] != '/' && in_[j] != '>') {
            char c = lower(in_[j]);
            if (((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) && name.size() < 32) name.push_back(c);
            ++j;
        }
        // Attributes on an end tag are ignored, but tokenised the same way (quotes hide a '>').
        while (j < n && in_[j] != '>') {
            if ((in_[j] == '"' || in_[j] == '\'') && j > 0 && in_[j - 1] == '=') {
                std::size_t close = in_.find(in_[j], j + 1);
                if (close == std::string_view::npos) return n;
                j = close + 1;
                continue;
            }
            ++j;
        }
        if (j >= n) return n;
        if (formatting_element(name)) name.insert(0, renamed_prefix);
        out_ += "</";
        out_ += name;
        out_ += '>';
        return j + 1;
    }

    std::string_view in_;
    std::string& out_;
    std::size_t comment_end_ = 0;  // next "-->" at or after the last search (npos: none left)
    std::size_t tags_ = 0;
    bool truncated_ = false;
    std::vector<std::string> attr_names_;
};

// ---------------------------------------------------------------------------------------------
// Rendering

enum ElementFlags : std::uint8_t {
    el_block = 1,   // starts and ends a line
    el_skip = 2,    // content never shown
    el_cell = 4,    // table cell: separated by a space
    el_pre = 8,     // white space kept
    el_break = 16,  // <br>
};

std::uint8_t element_flags(std::string_view n) {
    static constexpr std::array<std::string_view, 44> blocks = {
        "p",        "div",     "li",         "ul",     "ol",      "dl",      "dt",       "dd",     "h1",
        "h2",       "h3",      "h4",         "h5",     "h6",      "table",   "tr",       "tbody",  "thead",
        "tfoot",    "caption", "blockquote", "hr",     "address", "article", "aside",    "center", "dir",
        "fieldset", "figure",  "figcaption", "footer", "form",    "header",  "hgroup",   "main",   "menu",
        "nav",      "section", "legend",     "option", "body",    "html",    "frameset", "details"};
    if (n == "br") return el_break;
    if (n == "td" || n == "th") return el_cell;
    if (n == "pre" || n == "textarea" || n == "listing" || n == "xmp" || n == "plaintext")
        return el_pre | el_block;
    if (n == "script" || n == "style" || n == "head" || n == "title" || n == "template" || n == "iframe" ||
        n == "noembed" || n == "object" || n == "applet" || n == "frame" || n == "svg" || n == "math")
        return el_skip;
    for (auto b : blocks)
        if (n == b) return el_block;
    return 0;
}

constexpr std::int32_t no_color = -1;

std::int32_t named_color(std::string_view n) {
    struct C {
        std::string_view name;
        std::int32_t rgb;
    };
    static constexpr std::array<C, 22> colors = {
        {{"black", 0x000000},      {"white", 0xFFFFFF},    {"red", 0xFF0000},    {"green", 0x008000},
         {"blue", 0x0000FF},       {"yellow", 0xFFFF00},   {"silver", 0xC0C0C0}, {"gray", 0x808080},
         {"grey", 0x808080},       {"maroon", 0x800000},   {"purple", 0x800080}, {"fuchsia", 0xFF00FF},
         {"lime", 0x00FF00},       {"olive", 0x808000},    {"navy", 0x000080},   {"teal", 0x008080},
         {"aqua", 0x00FFFF},       {"orange", 0xFFA500},   {"snow", 0xFFFAFA},   {"ivory", 0xFFFFF0},
         {"whitesmoke", 0xF5F5F5}, {"lightgrey", 0xD3D3D3}}};
    for (const auto& c : colors)
        if (c.name == n) return c.rgb;
    return no_color;
}

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// A CSS or legacy-attribute colour, lowercase input: #rgb, #rrggbb, rrggbb, rgb(r,g,b), a name.
std::int32_t parse_color(std::string_view v) {
    while (!v.empty() && is_ws(v.front())) v.remove_prefix(1);
    while (!v.empty() && is_ws(v.back())) v.remove_suffix(1);
    if (v.empty()) return no_color;
    if (v.substr(0, 4) == "rgb(" || v.substr(0, 5) == "rgba(") {
        std::array<int, 3> ch{};
        std::size_t k = v.find('(') + 1;
        for (int c = 0; c < 3; ++c) {
            while (k < v.size() && (is_ws(v[k]) || v[k] == ',')) ++k;
            int val = 0;
            bool any = false;
            while (k < v.size() && v[k] >= '0' && v[k] <= '9') {
                val = std::min(val * 10 + (v[k] - '0'), 1000);
                any = true;
                ++k;
            }
            if (!any) return no_color;
            if (k < v.size() && v[k] == '%') {
                val = val * 255 / 100;
                ++k;
            }
            while (k < v.size() && v[k] != ',' && v[k] != ')' && !is_ws(v[k])) ++k;  // decimals
            ch[c] = std::min(val, 255);
        }
        return (ch[0] << 16) | (ch[1] << 8) | ch[2];
    }
    std::string_view h = v.front() == '#' ? v.substr(1) : v;
    bool all_hex = !h.empty() && std::all_of(h.begin(), h.end(), [](char c) { return hex(c) >= 0; });
    if (all_hex && h.size() == 6) {
        std::int32_t rgb = 0;
        for (char c : h) rgb = (rgb << 4) | hex(c);
        return rgb;
    }
    if (all_hex && h.size() == 3) {
        std::int32_t rgb = 0;
        for (char c : h) rgb = (rgb << 8) | (hex(c) * 17);
        return rgb;
    }
    return named_color(v);
}

bool near_color(std::int32_t a, std::int32_t b) {
    if (a == no_color || b == no_color) return false;
    int d = 0;
    for (int shift = 0; shift <= 16; shift += 8) d += std::abs(((a >> shift) & 0xFF) - ((b >> shift) & 0xFF));
    // Same colour, or so close no reader tells them apart (#fefefe on white).
    return d <= 24;
}

// A CSS length: value and unit ("px", "pt", "em", "%", ""). False when not a number.
bool css_length(std::string_view v, double& num, std::string_view& unit) {
    while (!v.empty() && is_ws(v.front())) v.remove_prefix(1);
    std::size_t k = 0;
    if (k < v.size() && (v[k] == '-' || v[k] == '+')) ++k;
    std::size_t digits = k;
    while (k < v.size() && ((v[k] >= '0' && v[k] <= '9') || v[k] == '.')) ++k;
    if (k == digits) return false;
    std::string s(v.substr(0, k));
    num = std::strtod(s.c_str(), nullptr);
    unit = v.substr(k);
    while (!unit.empty() && is_ws(unit.back())) unit.remove_suffix(1);
    return true;
}

struct Style {
    bool hidden = false;
    std::int32_t color = no_color;
    std::int32_t bg = no_color;
    bool bg_image = false;  // a background picture: the colour under the text is unknown
};

// The inline style attribute, lowercase.
void apply_css(std::string_view css, Style& st) {
    bool zero_size = false, overflow_hidden = false;
    while (!css.empty()) {
        std::size_t semi = css.find(';');
        std::string_view decl = css.substr(0, semi);
        css = semi == std::string_view::npos ? std::string_view() : css.substr(semi + 1);
        std::size_t colon = decl.find(':');
        if (colon == std::string_view::npos) continue;
        std::string_view prop = decl.substr(0, colon), val = decl.substr(colon + 1);
        while (!prop.empty() && is_ws(prop.front())) prop.remove_prefix(1);
        while (!prop.empty() && is_ws(prop.back())) prop.remove_suffix(1);
        if (auto imp = val.find('!'); imp != std::string_view::npos) val = val.substr(0, imp);
        while (!val.empty() && is_ws(val.front())) val.remove_prefix(1);
        while (!val.empty() && is_ws(val.back())) val.remove_suffix(1);
        double num = 0;
        std::string_view unit;
        if (prop == "display") {
            if (val == "none") st.hidden = true;
        } else if (prop == "visibility") {
            if (val == "hidden" || val == "collapse") st.hidden = true;
        } else if (prop == "opacity") {
            if (css_length(val, num, unit) && num <= 0.05) st.hidden = true;
        } else if (prop == "font-size") {
            if (css_length(val, num, unit)) {
                if ((unit.empty() || unit == "px" || unit == "pt") && num <= 1) st.hidden = true;
                if ((unit == "em" || unit == "rem") && num <= 0.1) st.hidden = true;
                if (unit == "%" && num <= 10) st.hidden = true;
            }
        } else if (prop == "color") {
            if (auto c = parse_color(val); c != no_color) st.color = c;
        } else if (prop == "background-image") {
            if (val.find("url(") != std::string_view::npos) st.bg_image = true;
        } else if (prop == "background-color" || prop == "background") {
            if (val.find("url(") != std::string_view::npos) st.bg_image = true;
            // "background" may hold an image or several words: the first colour-looking word.
            std::size_t k = 0;
            while (k < val.size()) {
                std::size_t e = val.find(' ', k);
                std::string_view w =
                    val.substr(k, e == std::string_view::npos ? std::string_view::npos : e - k);
                if (w.substr(0, 3) == "rgb") w = val.substr(k, val.find(')', k) - k + 1);
                if (auto c = parse_color(w); c != no_color) {
                    st.bg = c;
                    break;
                }
                if (e == std::string_view::npos) break;
                k = e + 1;
            }
        } else if (prop == "height" || prop == "width" || prop == "max-height" || prop == "max-width") {
            if (css_length(val, num, unit) && num <= 0) zero_size = true;
        } else if (prop == "overflow" || prop == "overflow-x" || prop == "overflow-y") {
            if (val == "hidden" || val == "clip") overflow_hidden = true;
        } else if (prop == "text-indent" || prop == "left" || prop == "top" || prop == "margin-left" ||
                   prop == "margin-top") {
            // Moved far off the page.
            if (css_length(val, num, unit) && num <= -1000 && (unit == "px" || unit == "pt"))
                st.hidden = true;
        }
    }
    if (zero_size && overflow_hidden) st.hidden = true;
}

struct Frame {
    std::string name;
    std::uint8_t flags = 0;
    bool hidden = false;
    bool skip = false;
    bool pre = false;
    std::int32_t color = 0x000000;
    std::int32_t bg = 0xFFFFFF;
    int link = -1;  // index in links of the <a> this text belongs to
};

class Renderer {
  public:
    Renderer(std::size_t max_visible) : max_visible_(max_visible) {
        Frame root;
        stack_.push_back(root);
    }

    void start(const xmlChar* xname, const xmlChar** atts) {
        std::string_view name = reinterpret_cast<const char*>(xname);
        const Frame& parent = stack_.back();
        Frame f;
        f.name.assign(name);  // as libxml2 reports it, to match its end event
        if (name.substr(0, renamed_prefix.size()) == renamed_prefix)
            name.remove_prefix(renamed_prefix.size());
        f.flags = element_flags(name);
        f.hidden = parent.hidden;
        f.skip = parent.skip || (f.flags & el_skip);
        f.pre = parent.pre || (f.flags & el_pre);
        f.color = parent.color;
        f.bg = parent.bg;
        f.link = parent.link;
        Style st;
        std::string_view href, style;
        bool has_href = false;
        for (int k = 0; atts != nullptr && atts[k] != nullptr; k += 2) {
            std::string_view an = reinterpret_cast<const char*>(atts[k]);
            std::string_view av = atts[k + 1] ? reinterpret_cast<const char*>(atts[k + 1]) : "";
            if (an == "style") {
                style = av;
            } else if (an == "hidden") {
                st.hidden = true;
            } else if (an == "href") {
                href = av;
                has_href = true;
            } else if (an == "src" || (an == "action" && name == "form") || (an == "background")) {
                add_link(av, an == "action" ? UrlSource::html_href : UrlSource::html_src, false);
                if (an == "background") st.bg_image = true;
            } else if (an == "color" && (name == "font" || name == "basefont")) {
                if (auto c = parse_color(lowercase(av)); c != no_color) st.color = c;
            } else if (an == "bgcolor") {
                if (auto c = parse_color(lowercase(av)); c != no_color) st.bg = c;
            } else if (an == "text" && name == "body") {
                if (auto c = parse_color(lowercase(av)); c != no_color) st.color = c;
            }
        }
        if (!style.empty()) apply_css(lowercase(style), st);
        if (st.hidden) f.hidden = true;
        if (st.bg != no_color) f.bg = st.bg;
        if (st.bg_image) f.bg = no_color;  // until a descendant sets a colour again
        if (st.color != no_color) f.color = st.color;
        if (has_href) {
            if (name == "base") {
                if (auto u = html_url(href, {}); u && url_host(*u)) base_ = *u;
            } else {
                bool anchor = name == "a" || name == "area";
                int idx = add_link(href, UrlSource::html_href, anchor);
                if (name == "a" && idx >= 0) f.link = idx;
            }
        }
        if (f.flags & el_break) {
            if (!f.skip && !f.hidden) newline(false);
        } else if (f.flags & el_block) {
            if (!f.skip) newline(true);
        } else if (f.flags & el_cell) {
            space_ = true;
        }
        stack_.push_back(std::move(f));
    }

    void end(const xmlChar* xname) {
        std::string_view name = reinterpret_cast<const char*>(xname);
        // libxml2 balances its events; match by name anyway so a surprise cannot unbalance ours.
        for (std::size_t k = stack_.size(); k-- > 1;) {
            if (stack_[k].name == name) {
                bool block = (stack_[k].flags & el_block) && !stack_[k].skip;
                bool cell = stack_[k].flags & el_cell;
                stack_.resize(k);
                if (block) newline(true);
                if (cell) space_ = true;
                return;
            }
        }
    }

    void text(const xmlChar* ch, int len) {
        const Frame& f = stack_.back();
        if (f.skip || len <= 0) return;
        std::string_view s(reinterpret_cast<const char*>(ch), static_cast<std::size_t>(len));
        bool invisible = f.hidden || near_color(f.color, f.bg);
        if (invisible) {
            if (!blank(s)) out_.hidden_text = true;
            return;
        }
        if (f.link >= 0) append_link_text(out_.links[static_cast<std::size_t>(f.link)].display_text, s);
        if (f.pre) {
            for (char c : s) {
                if (c == '\r') continue;
                put(c);
            }
            space_ = false;
            return;
        }
        // Runs of visible characters are appended whole; white space (and &nbsp;) collapses.
        std::size_t k = 0;
        while (k < s.size()) {
            char c = s[k];
            if (is_ws(c)) {
                space_ = true;
                ++k;
                continue;
            }
            if (c == '\xC2' && k + 1 < s.size() && s[k + 1] == '\xA0') {
                space_ = true;  // &nbsp;: a space for rules and tokens
                k += 2;
                continue;
            }
            std::size_t e = k + 1;
            while (e < s.size() && !is_ws(s[e]) &&
                   !(s[e] == '\xC2' && e + 1 < s.size() && s[e + 1] == '\xA0'))
                ++e;
            if (space_ && !out_.visible.empty() && out_.visible.back() != '\n') put(' ');
            space_ = false;
            put_run(s.substr(k, e - k));
            k = e;
        }
    }

    HtmlText finish() {
        while (!out_.visible.empty() && (out_.visible.back() == '\n' || out_.visible.back() == ' '))
            out_.visible.pop_back();
        for (auto& l : out_.links) {
            while (!l.display_text.empty() && l.display_text.back() == ' ') l.display_text.pop_back();
        }
        return std::move(out_);
    }

    void mark_truncated() { out_.truncated = true; }

  private:
    static bool blank(std::string_view s) {
        for (std::size_t k = 0; k < s.size(); ++k) {
            if (is_ws(s[k])) continue;
            if (s[k] == '\xC2' && k + 1 < s.size() && s[k + 1] == '\xA0') {
                ++k;
                continue;
            }
            return false;
        }
        return true;
    }

    static std::string lowercase(std::string_view s) {
        std::string r(s);
        for (auto& c : r) c = lower(c);
        return r;
    }

    int add_link(std::string_view value, UrlSource source, bool anchor) {
        if (out_.links.size() >= limits::max_urls) {
            out_.truncated = true;
            return -1;
        }
        auto u = html_url(value, base_);
        if (!u) return -1;
        HtmlLink l;
        l.url = std::move(*u);
        l.source = source;
        l.anchor = anchor;
        out_.links.push_back(std::move(l));
        return static_cast<int>(out_.links.size() - 1);
    }

    static void append_link_text(std::string& t, std::string_view s) {
        for (std::size_t k = 0; k < s.size() && t.size() < limits::max_link_text; ++k) {
            char c = s[k];
            if (is_ws(c)) {
                if (!t.empty() && t.back() != ' ') t.push_back(' ');
            } else {
                t.push_back(c);
            }
        }
        if (t.size() >= limits::max_link_text) t.resize(utf8_prefix(t, limits::max_link_text).size());
    }

    void put_run(std::string_view run) {
        if (full_) return;
        if (out_.visible.size() + run.size() <= max_visible_) {
            out_.visible.append(run);
            return;
        }
        for (char c : run) put(c);
    }

    void put(char c) {
        if (full_) return;
        if (out_.visible.size() >= max_visible_) {
            // Cut at a character boundary.
            out_.visible.resize(utf8_prefix(out_.visible, max_visible_).size());
            full_ = true;
            out_.visible_cut = true;
            return;
        }
        out_.visible.push_back(c);
    }

    void newline(bool block) {
        space_ = false;
        auto& v = out_.visible;
        if (v.empty()) return;
        if (block && v.back() == '\n') return;
        if (v.size() >= 2 && v[v.size() - 1] == '\n' && v[v.size() - 2] == '\n') return;
        if (v.back() == ' ') v.pop_back();
        put('\n');
    }

    std::size_t max_visible_;
    std::vector<Frame> stack_;
    HtmlText out_;
    std::string base_;
    bool space_ = false;
    bool full_ = false;
};

struct SaxState {
    Renderer* r;
};

void on_start(void* user, const xmlChar* name, const xmlChar** atts) {
    static_cast<SaxState*>(user)->r->start(name, atts);
}
void on_end(void* user, const xmlChar* name) {
    static_cast<SaxState*>(user)->r->end(name);
}
// Past max_visible the parse goes on (bounded by the guard's caps) for the links.
void on_text(void* user, const xmlChar* ch, int len) {
    static_cast<SaxState*>(user)->r->text(ch, len);
}
void on_cdata(void*, const xmlChar*, int) {}  // script/style content
void on_message(void*, const char*, ...) {}
void on_generic_error(void*, const char*, ...) {}

// libxml2 needs xmlInitParser() once before parsers run on several threads; the C++ runtime runs
// this initialiser exactly once, whichever thread gets here first.
void init_libxml2() {
    static const bool done = [] {
        xmlInitParser();
        return true;
    }();
    (void)done;
}

}  // namespace

std::string guard_html(std::string_view html, bool& truncated) {
    std::string out;
    out.reserve(html.size() + html.size() / 8 + 16);
    Guard g(html, out);
    if (!g.run()) truncated = true;
    if (g.truncated()) truncated = true;
    return out;
}

HtmlText render_html(std::string_view html, std::size_t max_visible) {
    init_libxml2();
    bool truncated = false;
    if (html.size() > limits::max_html_bytes) {
        html = utf8_prefix(html, limits::max_html_bytes);
        truncated = true;
    }
    std::string guarded = guard_html(html, truncated);
    Renderer r(max_visible);
    if (truncated) r.mark_truncated();
    if (guarded.empty()) return r.finish();

    htmlSAXHandler sax;
    std::memset(&sax, 0, sizeof sax);
    sax.startElement = on_start;
    sax.endElement = on_end;
    sax.characters = on_text;
    sax.ignorableWhitespace = on_text;
    sax.cdataBlock = on_cdata;
    sax.warning = on_message;
    sax.error = on_message;
    sax.fatalError = on_message;
    // Errors raised without a parser context (encoding layer) go to this thread's generic handler,
    // which libxml2 keeps per thread; silence it for this thread (idempotent).
    xmlSetGenericErrorFunc(nullptr, on_generic_error);
    SaxState state{&r};
    htmlParserCtxtPtr ctx =
        htmlCreatePushParserCtxt(&sax, &state, nullptr, 0, nullptr, XML_CHAR_ENCODING_UTF8);
    if (ctx == nullptr) return r.finish();
    htmlCtxtUseOptions(ctx,
                       HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET | HTML_PARSE_IGNORE_ENC);
    // NOERROR clears the handlers; keep ours so nothing falls through to stderr.
    ctx->sax->warning = on_message;
    ctx->sax->error = on_message;
    ctx->sax->fatalError = on_message;
    // One chunk: libxml2 takes an int length (the guard's output is bounded well below INT_MAX).
    htmlParseChunk(ctx, guarded.data(), static_cast<int>(guarded.size()), 1);
    htmlFreeParserCtxt(ctx);
    return r.finish();
}

}  // namespace vigil::mime
