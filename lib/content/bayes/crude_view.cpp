#include "content/bayes/crude_view.hpp"

#include <iconv.h>
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/message.hpp"

namespace vigil::content::bayes {

namespace {

using core::HeaderField;

std::string lower(std::string_view s) {
    std::string o(s);
    for (auto& c : o)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    return o;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        auto b = static_cast<unsigned char>(s[i]);
        std::size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
        if (n == 0 || i + n > s.size()) return false;
        for (std::size_t k = 1; k < n; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
        i += n;
    }
    return true;
}

// Converts to UTF-8 with iconv; undeclared or unknown charsets: kept if valid UTF-8, else read as
// windows-1252 (what most undeclared 8-bit mail of the era is). `guessed` says whether it guessed.
std::string to_utf8(std::string_view s, std::string charset, bool& guessed) {
    guessed = false;
    charset = lower(trim(charset));
    if (charset.empty() || charset == "us-ascii" || charset == "utf-8" || charset == "utf8") {
        if (valid_utf8(s)) return std::string(s);
        charset = "windows-1252";
        guessed = true;
    }
    iconv_t cd = iconv_open("UTF-8//IGNORE", charset.c_str());
    if (cd == reinterpret_cast<iconv_t>(-1)) {
        guessed = true;
        if (valid_utf8(s)) return std::string(s);
        cd = iconv_open("UTF-8//IGNORE", "windows-1252");
        if (cd == reinterpret_cast<iconv_t>(-1)) return std::string(s);
    }
    std::string out(s.size() * 4 + 16, '\0');
    char* in = const_cast<char*>(s.data());
    std::size_t in_left = s.size();
    char* o = out.data();
    std::size_t out_left = out.size();
    while (in_left > 0) {
        std::size_t r = iconv(cd, &in, &in_left, &o, &out_left);
        if (r != static_cast<std::size_t>(-1)) break;
        // With //IGNORE glibc converts what it can and still reports EILSEQ at the end.
        if (in_left == 0) break;
        if (errno == EILSEQ || errno == EINVAL) {  // skip the bad byte
            ++in;
            --in_left;
            continue;
        }
        break;  // E2BIG cannot happen with 4x room; give up on anything else
    }
    iconv_close(cd);
    out.resize(out.size() - out_left);
    return out;
}

int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string decode_base64(std::string_view s) {
    std::string out;
    unsigned acc = 0;
    int bits = 0;
    for (char c : s) {
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+')
            v = 62;
        else if (c == '/')
            v = 63;
        else if (c == '=')
            break;
        else
            continue;
        acc = (acc << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xFF);
        }
        if (out.size() >= crude_limits::max_decoded_bytes) break;
    }
    return out;
}

std::string decode_qp(std::string_view s, bool header) {
    std::string out;
    for (std::size_t i = 0; i < s.size() && out.size() < crude_limits::max_decoded_bytes; ++i) {
        char c = s[i];
        if (header && c == '_') {
            out += ' ';
        } else if (c == '=' && i + 2 < s.size() && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out += static_cast<char>(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else if (c == '=' && i + 1 < s.size() && (s[i + 1] == '\r' || s[i + 1] == '\n')) {
            // soft line break
            ++i;
            if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
        } else {
            out += c;
        }
    }
    return out;
}

// RFC 2047 encoded words, each converted to UTF-8; the rest of the value as UTF-8 or windows-1252.
std::string decode_header(std::string_view v) {
    std::string out;
    std::size_t i = 0;
    bool last_was_word = false;
    while (i < v.size()) {
        auto start = v.find("=?", i);
        if (start == std::string_view::npos) break;
        auto q1 = v.find('?', start + 2);
        auto q2 = q1 == std::string_view::npos ? q1 : v.find('?', q1 + 1);
        auto end = q2 == std::string_view::npos ? q2 : v.find("?=", q2 + 1);
        if (end == std::string_view::npos) break;
        std::string_view between = v.substr(i, start - i);
        // White space between two encoded words is dropped (RFC 2047 section 6.2).
        if (!(last_was_word && trim(between).empty())) {
            bool g;
            out += to_utf8(between, "", g);
        }
        std::string charset(v.substr(start + 2, q1 - start - 2));
        charset = charset.substr(0, charset.find('*'));  // RFC 2231 language suffix
        char enc = static_cast<char>(v[q1 + 1] | 0x20);
        std::string_view text = v.substr(q2 + 1, end - q2 - 1);
        std::string raw = enc == 'b' ? decode_base64(text) : decode_qp(text, true);
        bool g;
        out += to_utf8(raw, charset, g);
        i = end + 2;
        last_was_word = true;
    }
    bool g;
    out += to_utf8(v.substr(std::min(i, v.size())), "", g);
    return out;
}

std::string_view find(const std::vector<HeaderField>& h, std::string_view name) {
    for (const auto& f : h)
        if (f.name.size() == name.size() && strncasecmp(f.name.c_str(), name.data(), name.size()) == 0)
            return f.value;
    return {};
}

std::string param(std::string_view value, std::string_view name) {
    std::string lv = lower(value);
    std::size_t pos = 0;
    while ((pos = lv.find(name, pos)) != std::string::npos) {
        std::size_t eq = pos + name.size();
        bool start_ok = pos == 0 || lv[pos - 1] == ';' || lv[pos - 1] == ' ' || lv[pos - 1] == '\t' ||
                        lv[pos - 1] == '\n';
        if (start_ok && eq < lv.size() && lv[eq] == '=') {
            std::size_t v = eq + 1;
            if (v < value.size() && value[v] == '"') {
                auto e = value.find('"', v + 1);
                return std::string(
                    value.substr(v + 1, (e == std::string_view::npos ? value.size() : e) - v - 1));
            }
            auto e = value.find_first_of("; \t\r\n", v);
            return std::string(value.substr(v, (e == std::string_view::npos ? value.size() : e) - v));
        }
        pos = eq;
    }
    return {};
}

void decode_entities(std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '&') {
            out += s[i];
            continue;
        }
        auto semi = s.find(';', i);
        if (semi == std::string::npos || semi - i > 10) {
            out += s[i];
            continue;
        }
        std::string ent = lower(std::string_view(s).substr(i + 1, semi - i - 1));
        std::string rep;
        if (ent == "nbsp")
            rep = " ";
        else if (ent == "amp")
            rep = "&";
        else if (ent == "lt")
            rep = "<";
        else if (ent == "gt")
            rep = ">";
        else if (ent == "quot")
            rep = "\"";
        else if (!ent.empty() && ent[0] == '#') {
            long cp = ent.size() > 1 && ent[1] == 'x' ? std::strtol(ent.c_str() + 2, nullptr, 16)
                                                      : std::strtol(ent.c_str() + 1, nullptr, 10);
            if (cp > 0 && cp < 0x110000 && !(cp >= 0xD800 && cp < 0xE000)) {
                auto c = static_cast<char32_t>(cp);
                if (c < 0x80) {
                    rep += static_cast<char>(c);
                } else if (c < 0x800) {
                    rep += static_cast<char>(0xC0 | (c >> 6));
                    rep += static_cast<char>(0x80 | (c & 0x3F));
                } else if (c < 0x10000) {
                    rep += static_cast<char>(0xE0 | (c >> 12));
                    rep += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
                    rep += static_cast<char>(0x80 | (c & 0x3F));
                } else {
                    rep += static_cast<char>(0xF0 | (c >> 18));
                    rep += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
                    rep += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
                    rep += static_cast<char>(0x80 | (c & 0x3F));
                }
            }
        } else {
            out += s[i];
            continue;
        }
        out += rep;
        i = semi;
    }
    s.swap(out);
}

struct Builder {
    mime::ParsedMessage msg;
    std::vector<std::pair<std::string, mime::UrlSource>> url_candidates;
    std::vector<std::size_t> url_parts;

    void add_url(std::string u, mime::UrlSource src, std::size_t part) {
        if (url_candidates.size() >= crude_limits::max_urls) return;
        url_candidates.emplace_back(std::move(u), src);
        url_parts.push_back(part);
    }

    void scan_text_urls(std::string_view t, std::size_t part) {
        std::string lt = lower(t);
        std::size_t pos = 0;
        // The next "http" and "www." at or after pos, each searched again only once passed (two
        // fresh searches per step would be quadratic in text full of one and free of the other).
        std::size_t h = lt.find("http"), w = lt.find("www.");
        while (pos < lt.size()) {
            if (h != std::string::npos && h < pos) h = lt.find("http", pos);
            if (w != std::string::npos && w < pos) w = lt.find("www.", pos);
            std::size_t s = std::min(h, w);
            if (s == std::string::npos) break;
            bool ok = false;
            if (s == h) ok = lt.compare(s, 7, "http://") == 0 || lt.compare(s, 8, "https://") == 0;
            if (s == w) ok = s == 0 || !std::isalnum(static_cast<unsigned char>(lt[s - 1]));
            if (!ok) {
                pos = s + 1;
                continue;
            }
            std::size_t e = s;
            while (e < t.size() && !std::isspace(static_cast<unsigned char>(t[e])) && t[e] != '"' &&
                   t[e] != '\'' && t[e] != '<' && t[e] != '>' && t[e] != ')' && t[e] != ']')
                ++e;
            std::string u(t.substr(s, e - s));
            while (!u.empty() && (u.back() == '.' || u.back() == ',' || u.back() == ';')) u.pop_back();
            add_url(u, mime::UrlSource::text, part);
            pos = e;
        }
    }

    // Visible text of HTML: tags become spaces, script/style/comments dropped, entities decoded;
    // href/src attribute URLs collected.
    std::string html_visible(std::string_view html, std::size_t part) {
        std::string out;
        std::string lh = lower(html);
        std::size_t i = 0;
        while (i < html.size()) {
            if (html[i] != '<') {
                out += html[i++];
                continue;
            }
            if (lh.compare(i, 4, "<!--") == 0) {
                auto e = lh.find("-->", i + 4);
                i = e == std::string::npos ? html.size() : e + 3;
                continue;
            }
            auto e = lh.find('>', i);
            if (e == std::string::npos) break;
            std::string_view tag = std::string_view(lh).substr(i, e - i + 1);
            for (const char* attr : {"href", "src"}) {
                auto a = tag.find(attr);
                while (a != std::string_view::npos) {
                    std::size_t v = a + std::strlen(attr);
                    while (v < tag.size() && tag[v] == ' ') ++v;
                    if (v < tag.size() && tag[v] == '=' &&
                        (a == 0 || tag[a - 1] == ' ' || tag[a - 1] == '\n')) {
                        ++v;
                        while (v < tag.size() && tag[v] == ' ') ++v;
                        char q = v < tag.size() && (tag[v] == '"' || tag[v] == '\'') ? tag[v] : 0;
                        if (q) ++v;
                        std::size_t ve = v;
                        while (ve < tag.size() && (q ? tag[ve] != q : (tag[ve] != ' ' && tag[ve] != '>')))
                            ++ve;
                        std::string u(html.substr(i + v, ve - v));
                        std::string lu = lower(u);
                        if (lu.rfind("http://", 0) == 0 || lu.rfind("https://", 0) == 0 ||
                            lu.rfind("www.", 0) == 0)
                            add_url(u,
                                    attr[0] == 'h' ? mime::UrlSource::html_href : mime::UrlSource::html_src,
                                    part);
                        break;
                    }
                    a = tag.find(attr, a + 1);
                }
            }
            bool script = tag.rfind("<script", 0) == 0, style = tag.rfind("<style", 0) == 0;
            i = e + 1;
            if (script || style) {
                auto close = lh.find(script ? "</script" : "</style", i);
                i = close == std::string::npos ? html.size() : close;
            }
            out += ' ';
        }
        decode_entities(out);
        return out;
    }

    void leaf(const std::vector<HeaderField>& headers, std::string_view body, int depth) {
        if (msg.parts.size() >= crude_limits::max_parts) return;
        mime::Part p;
        std::string ct(trim(find(headers, "Content-Type")));
        std::string type = lower(trim(std::string_view(ct).substr(0, ct.find(';'))));
        p.content_type = type.empty() ? "text/plain" : type;
        p.charset = lower(param(ct, "charset"));
        std::string cd(find(headers, "Content-Disposition"));
        p.filename = decode_header(param(cd, "filename"));
        if (p.filename.empty()) p.filename = decode_header(param(ct, "name"));
        p.depth = depth;
        p.encoded_size = body.size();
        std::string cte = lower(trim(find(headers, "Content-Transfer-Encoding")));
        std::string decoded = cte == "base64" ? decode_base64(body)
                              : cte == "quoted-printable"
                                  ? decode_qp(body, false)
                                  : std::string(body.substr(0, crude_limits::max_decoded_bytes));
        p.decoded_size = decoded.size();
        p.is_text = p.content_type.rfind("text/", 0) == 0 || p.content_type == "message/rfc822";
        p.attachment = lower(cd).rfind("attachment", 0) == 0 || (!p.is_text && !p.filename.empty());
        if (p.is_text && !p.attachment) {
            // CRLF to LF: the text as a reader sees it.
            decoded.erase(std::remove(decoded.begin(), decoded.end(), '\r'), decoded.end());
            p.decoded = to_utf8(decoded, p.charset, p.charset_guessed);
            p.is_html = p.content_type == "text/html";
            std::size_t index = msg.parts.size();
            if (p.is_html) {
                p.visible = html_visible(p.decoded, index);
                scan_text_urls(p.visible, index);
            } else {
                scan_text_urls(p.decoded, index);
            }
        } else {
            p.is_text = false;
        }
        msg.parts.push_back(std::move(p));
    }

    void entity(const std::vector<HeaderField>& headers, std::string_view body, int depth) {
        std::string ct(find(headers, "Content-Type"));
        std::string type = lower(trim(std::string_view(ct).substr(0, ct.find(';'))));
        std::string boundary = param(ct, "boundary");
        if (type.rfind("multipart/", 0) != 0 || boundary.empty() ||
            depth >= static_cast<int>(crude_limits::max_depth)) {
            leaf(headers, body, depth);
            return;
        }
        std::string delim = "--" + boundary;
        std::vector<std::string_view> chunks;
        std::size_t pos = 0;
        std::size_t open = std::string_view::npos;
        while (pos <= body.size()) {
            auto nl = body.find('\n', pos);
            std::string_view line = body.substr(pos, (nl == std::string_view::npos ? body.size() : nl) - pos);
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            std::string_view rest =
                line.rfind(delim, 0) == 0 ? line.substr(delim.size()) : std::string_view("x");
            bool final = rest.rfind("--", 0) == 0;
            // "--b1" is not a delimiter of "b10": only white space or "--" may follow the boundary.
            if (final || trim(rest).empty()) {
                if (open != std::string_view::npos) chunks.push_back(body.substr(open, pos - open));
                open = final ? std::string_view::npos : (nl == std::string_view::npos ? body.size() : nl + 1);
                if (final) break;
            }
            if (nl == std::string_view::npos) break;
            pos = nl + 1;
        }
        if (open != std::string_view::npos && open < body.size()) chunks.push_back(body.substr(open));
        if (chunks.empty()) {
            leaf(headers, body, depth);
            return;
        }
        for (auto c : chunks) {
            if (msg.parts.size() >= crude_limits::max_parts) break;
            auto part = core::parse_message(c);
            // Inside a multipart the default type is text/plain (multipart/digest aside).
            entity(part.headers, part.body, depth + 1);
        }
    }
};

}  // namespace

mime::ParsedMessage crude_parse(std::string_view raw) {
    if (raw.rfind("From ", 0) == 0) {
        auto nl = raw.find('\n');
        raw = nl == std::string_view::npos ? std::string_view{} : raw.substr(nl + 1);
    }
    auto top = core::parse_message(raw);
    Builder b;
    for (const auto& h : top.headers) {
        mime::DecodedHeader d;
        d.name = h.name;
        std::string_view r = h.value;
        while (!r.empty() && (r.front() == ' ' || r.front() == '\t')) r.remove_prefix(1);
        d.raw = std::string(r);
        d.value = decode_header(core::unfold(h.value));
        b.msg.headers.push_back(std::move(d));
    }
    for (const auto& h : b.msg.headers) {
        if (h.name.size() == 7 && strncasecmp(h.name.c_str(), "subject", 7) == 0) {
            b.msg.subject = h.value;
            break;
        }
    }
    b.entity(top.headers, top.body, 0);
    // URLs: de-duplicated, host lowercased.
    for (std::size_t i = 0; i < b.url_candidates.size(); ++i) {
        auto& [u, src] = b.url_candidates[i];
        std::string url = lower(u).rfind("www.", 0) == 0 ? "http://" + u : u;
        if (std::any_of(b.msg.urls.begin(), b.msg.urls.end(), [&](const auto& x) { return x.url == url; }))
            continue;
        mime::Url out;
        out.url = url;
        auto s = url.find("://");
        std::size_t hs = s == std::string::npos ? 0 : s + 3;
        auto he = url.find_first_of("/?#:", hs);
        std::string host = lower(url.substr(hs, he == std::string::npos ? std::string::npos : he - hs));
        auto at = host.rfind('@');
        if (at != std::string::npos) host = host.substr(at + 1);
        out.host = host;
        out.host_is_ip = !host.empty() && host.find_first_not_of("0123456789.") == std::string::npos;
        out.source = src;
        out.part = b.url_parts[i];
        b.msg.urls.push_back(std::move(out));
    }
    return std::move(b.msg);
}

}  // namespace vigil::content::bayes
