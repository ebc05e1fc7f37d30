#include "mime/parse.hpp"

#include <cctype>
#include <cstring>
#include <deque>
#include <optional>
#include <unordered_set>

#include "mime/charset.hpp"
#include "mime/header_decode.hpp"
#include "mime/html.hpp"
#include "mime/mime_limits.hpp"
#include "mime/transfer_decode.hpp"
#include "mime/url.hpp"

namespace vigil::mime {

namespace {

struct Field {
    std::string_view name;
    std::string_view value;  // raw, after the colon, continuation lines included
};

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
        if (x != y) return false;
    }
    return true;
}

const Field* find_field(const std::vector<Field>& fields, std::string_view name) {
    for (const auto& f : fields)
        if (iequals(f.name, name)) return &f;
    return nullptr;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

std::string lower(std::string_view s) {
    std::string r(s);
    for (auto& c : r)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    return r;
}

// End of the line starting at i (index of '\n', or s.size()).
std::size_t line_end(std::string_view s, std::size_t i) {
    const void* p = std::memchr(s.data() + i, '\n', s.size() - i);
    return p ? static_cast<std::size_t>(static_cast<const char*>(p) - s.data()) : s.size();
}

struct Entity {
    std::vector<Field> fields;
    std::string_view body;
    bool too_many_fields = false;
};

// A MIME part's header block and body. A line that is neither a field nor a continuation ends the
// header block and starts the body (as Postfix does for messages); so does the empty line.
Entity split_entity(std::string_view s) {
    Entity e;
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t end = line_end(s, i);
        std::string_view line = s.substr(i, end - i);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        std::size_t next = end < s.size() ? end + 1 : end;
        if (line.empty()) {
            e.body = s.substr(next);
            return e;
        }
        if (line.front() == ' ' || line.front() == '\t') {
            if (e.fields.empty()) {  // a continuation with nothing to continue: body
                e.body = s.substr(i);
                return e;
            }
            if (!e.too_many_fields) {
                auto& v = e.fields.back().value;
                v = std::string_view(v.data(),
                                     static_cast<std::size_t>(s.data() + i + line.size() - v.data()));
            }
            i = next;
            continue;
        }
        std::size_t colon = line.find(':');
        bool name_ok = colon != std::string_view::npos && colon > 0;
        for (std::size_t k = 0; name_ok && k < colon; ++k) {
            auto c = static_cast<unsigned char>(line[k]);
            if (c <= 32 || c >= 127) name_ok = k > 0 && trim(line.substr(k, colon - k)).empty();
        }
        if (!name_ok) {
            e.body = s.substr(i);
            return e;
        }
        if (e.fields.size() < limits::max_part_headers) {
            e.fields.push_back({trim(line.substr(0, colon)), line.substr(colon + 1)});
        } else {
            e.too_many_fields = true;
        }
        i = next;
    }
    e.body = s.substr(s.size());
    return e;
}

struct Split {
    std::vector<std::string_view> parts;
    bool found_delimiter = false;
    bool found_close = false;
    bool too_many = false;
};

// Body parts of a multipart (RFC 2046 §5.1.1): delimiter lines "--boundary" with optional trailing
// white space, the close delimiter "--boundary--"; the line break before a delimiter belongs to it.
// Line by line, so the cost is linear whatever the boundary looks like.
Split split_multipart(std::string_view body, std::string_view boundary, std::size_t max_parts) {
    Split sp;
    std::size_t i = 0;
    std::size_t part_start = std::string_view::npos;
    while (i < body.size()) {
        std::size_t end = line_end(body, i);
        std::string_view line = body.substr(i, end - i);
        std::size_t next = end < body.size() ? end + 1 : end;
        if (line.size() >= 2 + boundary.size() && line[0] == '-' && line[1] == '-' &&
            line.compare(2, boundary.size(), boundary) == 0) {
            std::string_view rest = line.substr(2 + boundary.size());
            bool close = rest.size() >= 2 && rest[0] == '-' && rest[1] == '-';
            // After a close delimiter anything goes (mail readers ignore it: "--b--</BODY></HTML>");
            // after a plain one only white space, so that "--b2" is not a delimiter of "b".
            if (close || trim(rest).empty()) {
                sp.found_delimiter = true;
                if (part_start != std::string_view::npos) {
                    std::size_t part_end = i;
                    if (part_end > part_start && body[part_end - 1] == '\n') --part_end;
                    if (part_end > part_start && body[part_end - 1] == '\r') --part_end;
                    if (sp.parts.size() >= max_parts) {
                        sp.too_many = true;
                        return sp;
                    }
                    sp.parts.push_back(body.substr(part_start, part_end - part_start));
                }
                if (close) {
                    sp.found_close = true;
                    return sp;
                }
                part_start = next;
            }
        }
        i = next;
    }
    if (part_start != std::string_view::npos) {
        if (sp.parts.size() >= max_parts) {
            sp.too_many = true;
            return sp;
        }
        sp.parts.push_back(body.substr(std::min(part_start, body.size())));
    }
    return sp;
}

// "\r\n" and lone "\r" to "\n".
void normalize_newlines(std::string& s) {
    if (s.find('\r') == std::string::npos) return;
    std::size_t w = 0;
    for (std::size_t r = 0; r < s.size(); ++r) {
        char c = s[r];
        if (c == '\r') {
            if (r + 1 < s.size() && s[r + 1] == '\n') continue;
            c = '\n';
        }
        s[w++] = c;
    }
    s.resize(w);
}

// <meta charset="..."> or <meta http-equiv=Content-Type content="...; charset=..."> in the first
// kilobyte of an HTML part that declared no charset in its header.
std::string sniff_meta_charset(std::string_view html) {
    std::string head = lower(html.substr(0, 1024));
    std::size_t p = head.find("charset");
    while (p != std::string::npos) {
        std::size_t k = p + 7;
        while (k < head.size() && (head[k] == ' ' || head[k] == '=' || head[k] == '"' || head[k] == '\''))
            ++k;
        std::size_t s = k;
        while (k < head.size() && (std::isalnum(static_cast<unsigned char>(head[k])) || head[k] == '-' ||
                                   head[k] == '_' || head[k] == ':' || head[k] == '.'))
            ++k;
        if (k > s && head.rfind("<meta", p) != std::string::npos) return head.substr(s, k - s);
        p = head.find("charset", p + 7);
    }
    return {};
}

class Walker {
  public:
    Walker(ParsedMessage& pm, bool truncated) : pm_(pm), truncated_(truncated) {}

    void entity(const std::vector<Field>& fields, std::string_view body, int depth, bool at_end,
                bool digest_child) {
        if (depth > limits::max_depth) {
            pm_.add(Anomaly::too_deep);
            return;
        }
        if (++entities_ > limits::max_parts) {
            pm_.add(Anomaly::too_many_parts);
            return;
        }
        const Field* ct = find_field(fields, "Content-Type");
        MediaType mt;
        if (ct != nullptr) mt = parse_media_type(ct->value);
        if (!mt.valid) {
            // RFC 2045 §5.2: a missing or unparsable type is text/plain (message/rfc822 in a digest);
            // parameters that did parse (charset) still count.
            if (digest_child && ct == nullptr) {
                mt.type = "message";
                mt.subtype = "rfc822";
            } else {
                mt.type = "text";
                mt.subtype = "plain";
            }
        }
        const Field* cte_field = find_field(fields, "Content-Transfer-Encoding");
        std::string cte = cte_field ? parse_cte(cte_field->value) : std::string();

        if (mt.type == "multipart") {
            const std::string* boundary = mt.param("boundary");
            if (boundary != nullptr && !boundary->empty() && boundary->size() <= limits::max_boundary) {
                auto sp = split_multipart(body, *boundary, limits::max_parts);
                if (sp.too_many) pm_.add(Anomaly::too_many_parts);
                if (sp.found_delimiter) {
                    if (!sp.found_close && !sp.too_many && !(at_end && truncated_))
                        pm_.add(Anomaly::bad_boundary);
                    for (std::size_t k = 0; k < sp.parts.size(); ++k) {
                        if (entities_ >= limits::max_parts) {
                            pm_.add(Anomaly::too_many_parts);
                            break;
                        }
                        auto child = split_entity(sp.parts[k]);
                        if (child.too_many_fields) pm_.add(Anomaly::too_many_headers);
                        bool last_open = k + 1 == sp.parts.size() && !sp.found_close;
                        entity(child.fields, child.body, depth + 1, at_end && last_open,
                               mt.subtype == "digest");
                    }
                    return;
                }
            }
            // No usable boundary: the body is read as one text part, as mail readers show it.
            pm_.add(Anomaly::bad_boundary);
            mt.type = "text";
            mt.subtype = "plain";
            cte.clear();
        }
        if (mt.type == "message" && (mt.subtype == "rfc822" || mt.subtype == "global")) {
            std::string_view inner = body;
            if (cte == "base64" || cte == "quoted-printable") {
                // Not allowed by RFC 2046, but sent: decode, then parse what it holds.
                std::size_t budget = remaining_budget();
                auto d = cte == "base64" ? decode_base64(body, budget, at_end && truncated_)
                                         : decode_qp(body, budget);
                if (d.malformed) pm_.add(cte == "base64" ? Anomaly::bad_base64 : Anomaly::bad_qp);
                if (d.truncated) pm_.add(Anomaly::decoded_truncated);
                decoded_total_ += d.bytes.size();
                buffers_.push_back(std::move(d.bytes));
                inner = buffers_.back();
            }
            auto child = split_entity(inner);
            if (child.too_many_fields) pm_.add(Anomaly::too_many_headers);
            entity(child.fields, child.body, depth + 1, at_end, false);
            return;
        }
        leaf(fields, mt, cte, body, depth, at_end);
    }

  private:
    std::size_t remaining_budget() const {
        return decoded_total_ >= limits::max_decoded_bytes ? 0 : limits::max_decoded_bytes - decoded_total_;
    }

    void leaf(const std::vector<Field>& fields, const MediaType& mt, const std::string& cte,
              std::string_view body, int depth, bool at_end) {
        Part p;
        p.content_type = mt.full();
        if (const std::string* cs = mt.param("charset")) p.charset = lower(trim(*cs));
        p.depth = depth;
        p.encoded_size = body.size();
        Disposition disp;
        if (const Field* cd = find_field(fields, "Content-Disposition")) disp = parse_disposition(cd->value);
        const std::string* fname = disp.param("filename");
        if (fname == nullptr) fname = mt.param("name");
        if (fname != nullptr) {
            bool bad = false;
            p.filename = decode_words(unfold_value(*fname), bad, 1024);
            if (bad) pm_.add(Anomaly::bad_header_encoding);
        }
        p.is_text = mt.type == "text";
        p.is_html = p.is_text && (mt.subtype == "html" || mt.subtype == "xhtml");
        p.attachment = disp.kind == "attachment" || (!p.filename.empty() && !p.is_text);
        const std::size_t index = pm_.parts.size();
        bool may_be_cut = at_end && truncated_;

        if (!p.is_text) {
            // Content not kept: only its size (and damage, which is cheap to see on the way).
            if (cte == "base64") {
                bool bad = false;
                p.decoded_size = base64_decoded_size(body, bad);
                if (bad) pm_.add(Anomaly::bad_base64);
            } else if (cte == "quoted-printable") {
                auto d = decode_qp(body, limits::max_part_decoded_bytes);
                if (d.malformed) pm_.add(Anomaly::bad_qp);
                p.decoded_size = d.bytes.size();
            } else {
                p.decoded_size = body.size();
            }
            pm_.parts.push_back(std::move(p));
            return;
        }

        std::size_t budget = std::min(limits::max_part_decoded_bytes, remaining_budget());
        bool cut = false;
        std::string bytes;
        if (cte == "base64") {
            auto d = decode_base64(body, budget, may_be_cut);
            if (d.malformed) pm_.add(Anomaly::bad_base64);
            cut = d.truncated;
            bytes = std::move(d.bytes);
        } else if (cte == "quoted-printable") {
            auto d = decode_qp(body, budget);
            if (d.malformed) pm_.add(Anomaly::bad_qp);
            cut = d.truncated;
            bytes = std::move(d.bytes);
        } else {
            // 7bit, 8bit, binary, and unknown encodings (read as 8bit, as mail readers do).
            if (body.size() > budget) cut = true;
            bytes.assign(body.substr(0, budget));
        }
        p.decoded_size = bytes.size();
        std::string declared = p.charset;
        if (declared.empty() && p.is_html) declared = sniff_meta_charset(bytes);
        auto text = to_utf8(bytes, declared, true);
        bytes.clear();
        bytes.shrink_to_fit();
        p.charset_used = std::move(text.used);
        p.charset_guessed = text.guessed;
        if (text.bad) pm_.add(Anomaly::bad_charset);
        normalize_newlines(text.text);
        if (text.text.size() > budget) {
            text.text.resize(utf8_prefix(text.text, budget).size());
            cut = true;
        }
        p.decoded = std::move(text.text);
        decoded_total_ += p.decoded.size();
        if (cut) pm_.add(Anomaly::decoded_truncated);

        std::vector<HtmlLink> links;
        if (p.is_html) {
            std::size_t vis_budget = std::min(limits::max_part_decoded_bytes, remaining_budget());
            auto h = render_html(p.decoded, vis_budget);
            if (h.hidden_text) pm_.add(Anomaly::html_hidden_text);
            if (h.truncated) pm_.add(Anomaly::html_truncated);
            if (h.visible_cut) pm_.add(Anomaly::decoded_truncated);
            p.visible = std::move(h.visible);
            decoded_total_ += p.visible.size();
            links = std::move(h.links);
        }
        pm_.parts.push_back(std::move(p));
        const Part& stored = pm_.parts.back();
        for (auto& l : links) add_url(l.url, l.source, index, l.anchor ? &l.display_text : nullptr);
        find_text_urls(stored.text_for_body(), [&](std::string_view u) {
            add_url(std::string(u), UrlSource::text, index, nullptr);
            return !pm_.has(Anomaly::too_many_urls);
        });
    }

    void add_url(const std::string& url, UrlSource source, std::size_t part, const std::string* display) {
        if (url.size() > limits::max_url) return;
        if (seen_.count(url)) return;
        if (pm_.urls.size() >= limits::max_urls) {
            pm_.add(Anomaly::too_many_urls);
            return;
        }
        auto host = url_host(url);
        if (!host) return;
        Url u;
        u.url = url;
        u.host = std::move(host->host);
        u.host_is_ip = host->is_ip;
        u.source = source;
        u.part = part;
        if (display != nullptr && !display->empty()) {
            u.display_text = *display;
            std::string named = host_named_by(*display);
            if (!named.empty() && named != u.host) {
                bool differ = u.host_is_ip || normalize_ipv4(named)
                                  ? true
                                  : registrable_domain(named) != registrable_domain(u.host);
                if (differ) {
                    u.display_mismatch = true;
                    pm_.add(Anomaly::html_link_mismatch);
                }
            }
        }
        seen_.insert(url);
        pm_.urls.push_back(std::move(u));
    }

    ParsedMessage& pm_;
    bool truncated_;
    std::size_t entities_ = 0;
    std::size_t decoded_total_ = 0;
    std::unordered_set<std::string> seen_;
    std::deque<std::string> buffers_;  // decoded message/rfc822 bodies that child views point into
};

}  // namespace

ParsedMessage parse(const std::vector<core::HeaderField>& headers, std::string_view body,
                    bool body_truncated) {
    ParsedMessage pm;
    if (body_truncated) pm.add(Anomaly::message_truncated);
    bool have_subject = false;
    std::vector<Field> fields;
    fields.reserve(std::min(headers.size(), limits::max_headers));
    pm.headers.reserve(std::min(headers.size(), limits::max_headers));
    for (const auto& h : headers) {
        if (pm.headers.size() >= limits::max_headers) {
            pm.add(Anomaly::too_many_headers);
            break;
        }
        std::string_view raw = h.value;
        while (!raw.empty() && (raw.front() == ' ' || raw.front() == '\t')) raw.remove_prefix(1);
        DecodedHeader d;
        d.name = h.name;
        d.raw.assign(raw);
        bool bad = false;
        d.value = std::string(trim(decode_words(unfold_value(raw), bad, limits::max_header_value)));
        if (bad) pm.add(Anomaly::bad_header_encoding);
        if (!have_subject && iequals(h.name, "Subject")) {
            pm.subject = d.value;
            have_subject = true;
        }
        pm.headers.push_back(std::move(d));
        fields.push_back({h.name, h.value});
    }
    Walker w(pm, body_truncated);
    w.entity(fields, body, 0, true, false);
    return pm;
}

ParsedMessage parse_raw(std::string_view raw) {
    if (raw.substr(0, 5) == "From ") {
        auto nl = raw.find('\n');
        raw = nl == std::string_view::npos ? std::string_view{} : raw.substr(nl + 1);
    }
    auto m = core::parse_message(raw);
    return parse(m.headers, m.body);
}

}  // namespace vigil::mime
