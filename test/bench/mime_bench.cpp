// The MIME layer's cost and a corpus run.
//
//   vigil-mime-bench [--iterations N] [--gmime] FILE...   CPU µs per mime::parse() of each file
//   vigil-mime-bench --synthetic [--iterations N] [--gmime]
//                                      the same for a 4 KiB plain message and a 100 KiB multipart one
//   vigil-mime-bench --corpus DIR      parse every file under DIR once: parts, URLs, guessed charsets,
//                                      anomalies, CPU time in total and per message
//   vigil-mime-bench --dump FILE       what mime::parse makes of one message
//   vigil-mime-bench --corpus DIR --html-compare
//                                      the HTML parts found there through three HTML parsers: libxml2's
//                                      SAX parser alone, gumbo (tree + walk), and mime::render_html
//   vigil-mime-bench --html-patho      inputs that make HTML parsers super-linear, at two sizes each
//   vigil-mime-bench --ucsdet FILE...  ICU's charset detector on the first 4 KiB of each file (the
//                                      guess mime::to_utf8 does not use)
//
// --gmime also times GMime 3 (parse, every header value, every text part's text in UTF-8: the work
// mime::parse would have left over if GMime did the MIME part), to keep the choice in
// docs/content-mime.md checkable. Files are read as messages (a leading mbox "From " line is
// dropped) and split into header fields and a CRLF body the way the MTA hands them over.
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/message.hpp"
#include "mime/parse.hpp"

#ifdef VIGIL_HAVE_GMIME
#include <gmime/gmime.h>
#endif
#ifdef VIGIL_HAVE_GUMBO
#include <gumbo.h>
#endif
#include <libxml/HTMLparser.h>
#ifdef VIGIL_HAVE_ICU_I18N
#include <unicode/ucsdet.h>
#endif

#include "mime/html.hpp"

using namespace vigil;

namespace {

double thread_cpu() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string raw = ss.str();
    if (raw.rfind("From ", 0) == 0) {
        auto nl = raw.find('\n');
        raw.erase(0, nl == std::string::npos ? raw.size() : nl + 1);
    }
    return raw;
}

struct Input {
    std::string name;
    std::string raw;  // as read (for GMime), CRLF
    core::ParsedMessage msg;
};

Input make_input(std::string name, const std::string& raw) {
    Input in;
    in.name = std::move(name);
    in.msg = core::parse_message(raw);
    // GMime gets the same bytes the MTA would have: header block + CRLF body.
    for (const auto& h : in.msg.headers) in.raw += h.name + ":" + h.value + "\r\n";
    in.raw += "\r\n" + in.msg.body;
    return in;
}

std::string synthetic_plain() {
    std::string m =
        "Received: from mail.example.com (mail.example.com [192.0.2.1]) by mx.example.net\r\n"
        "From: Joe <joe@example.com>\r\nTo: Suzie <suzie@example.net>\r\nSubject: benchmark message\r\n"
        "Date: Fri, 11 Jul 2003 21:00:37 -0700\r\nMessage-ID: <1@example.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n";
    while (m.size() < 4096) m += "The quick brown fox jumps over the lazy dog, again and again.  \r\n";
    return m.substr(0, 4094) + "\r\n";
}

// 100 KiB: multipart/mixed { multipart/alternative { text/plain QP latin-1 with URLs, text/html with
// 250 links }, a 40 KB base64 attachment }.
std::string synthetic_multipart() {
    std::string h =
        "Received: from mail.example.com (mail.example.com [192.0.2.1]) by mx.example.net\r\n"
        "From: Joe <joe@example.com>\r\nTo: Suzie <suzie@example.net>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n"
        "Date: Fri, 11 Jul 2003 21:00:37 -0700\r\nMessage-ID: <1@example.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n";
    std::string txt, html = "<html><head><style>p{color:red}</style></head><body>";
    for (int i = 0; i < 300; ++i)
        txt += "Line " + std::to_string(i) + " of the text part, see http://www" + std::to_string(i % 7) +
               ".example.com/path/" + std::to_string(i) + " for more =E9t=E9.\r\n";
    for (int i = 0; i < 250; ++i)
        html += "<p>Paragraph " + std::to_string(i) + " with <a href=\"http://www" + std::to_string(i % 7) +
                ".example.com/path/" + std::to_string(i) +
                "\">a link</a> and <b>bold</b> text &amp; entities.</p>\r\n";
    html += "</body></html>";
    static const char* b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string att;
    unsigned x = 12345;
    for (int line = 0; line < 700; ++line) {
        for (int k = 0; k < 76; ++k) {
            x = x * 1103515245u + 12345u;
            att.push_back(b64[(x >> 16) & 63]);
        }
        att += "\r\n";
    }
    return h + "--b1\r\nContent-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n--b2\r\n" +
           "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: "
           "quoted-printable\r\n\r\n" +
           txt + "\r\n--b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html +
           "\r\n--b2--\r\n--b1\r\n" +
           "Content-Type: application/octet-stream; name=x.bin\r\nContent-Transfer-Encoding: base64\r\n" +
           "Content-Disposition: attachment; filename=x.bin\r\n\r\n" + att + "--b1--\r\n";
}

#ifdef VIGIL_HAVE_GMIME
std::size_t gmime_once(const std::string& raw) {
    std::size_t total = 0;
    GMimeStream* s = g_mime_stream_mem_new_with_buffer(raw.data(), raw.size());
    GMimeParser* p = g_mime_parser_new_with_stream(s);
    GMimeMessage* m = g_mime_parser_construct_message(p, nullptr);
    if (m) {
        GMimeHeaderList* hl = g_mime_object_get_header_list(GMIME_OBJECT(m));
        int c = g_mime_header_list_get_count(hl);
        for (int j = 0; j < c; ++j) {
            const char* v = g_mime_header_get_value(g_mime_header_list_get_header_at(hl, j));
            if (v) total += std::strlen(v);
        }
        g_mime_message_foreach(
            m,
            [](GMimeObject*, GMimeObject* part, gpointer data) {
                if (GMIME_IS_TEXT_PART(part)) {
                    char* t = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
                    if (t) {
                        *static_cast<std::size_t*>(data) += std::strlen(t);
                        g_free(t);
                    }
                }
            },
            &total);
        g_object_unref(m);
    }
    g_object_unref(p);
    g_object_unref(s);
    return total;
}
#endif

void bench(const std::vector<Input>& inputs, int iterations, bool gmime) {
    std::size_t sink = 0;
    double sum = 0;
    for (const auto& in : inputs) {
        for (int k = 0; k < std::min(iterations, 50); ++k)
            sink += mime::parse(in.msg.headers, in.msg.body).parts.size();
        double t0 = thread_cpu();
        for (int k = 0; k < iterations; ++k) sink += mime::parse(in.msg.headers, in.msg.body).parts.size();
        double us = (thread_cpu() - t0) / iterations * 1e6;
        sum += us;
        std::printf("mime::parse  %8.2f us/msg  %7zu bytes  %s\n", us, in.raw.size(), in.name.c_str());
        // The share of it that is HTML rendering (guard + libxml2 + visible text + links).
        auto once = mime::parse(in.msg.headers, in.msg.body);
        std::vector<std::string> html;
        for (const auto& p : once.parts)
            if (p.is_html) html.push_back(p.decoded);
        if (!html.empty()) {
            t0 = thread_cpu();
            for (int k = 0; k < iterations; ++k)
                for (const auto& h : html) sink += mime::render_html(h, 1 << 24).visible.size();
            std::printf("  of which render_html %8.2f us/msg\n", (thread_cpu() - t0) / iterations * 1e6);
        }
#ifdef VIGIL_HAVE_GMIME
        if (gmime) {
            for (int k = 0; k < std::min(iterations, 50); ++k) sink += gmime_once(in.raw);
            t0 = thread_cpu();
            for (int k = 0; k < iterations; ++k) sink += gmime_once(in.raw);
            double gus = (thread_cpu() - t0) / iterations * 1e6;
            std::printf("gmime 3      %8.2f us/msg  %7zu bytes  %s\n", gus, in.raw.size(), in.name.c_str());
        }
#else
        if (gmime) std::printf("(built without gmime-3.0: no comparison)\n");
#endif
    }
    if (inputs.size() > 1)
        std::printf("mean %.2f us/msg over %zu messages\n", sum / inputs.size(), inputs.size());
    if (sink == 42) std::printf(" ");
}

// ---------------------------------------------------------------------------------------------
// HTML parser comparison (docs/content-mime.md, "HTML parser")

void sax_start(void* ctx, const xmlChar*, const xmlChar**) {
    ++*static_cast<std::size_t*>(ctx);
}
void sax_chars(void* ctx, const xmlChar*, int len) {
    *static_cast<std::size_t*>(ctx) += static_cast<std::size_t>(len);
}
void sax_quiet(void*, const char*, ...) {}

// libxml2's HTML parser on its own, SAX, no-op callbacks: its floor cost.
std::size_t libxml2_sax(const std::string& html) {
    std::size_t n = 0;
    htmlSAXHandler h;
    std::memset(&h, 0, sizeof h);
    h.startElement = sax_start;
    h.characters = sax_chars;
    h.error = h.warning = h.fatalError = sax_quiet;
    htmlParserCtxtPtr ctx = htmlCreatePushParserCtxt(&h, &n, nullptr, 0, nullptr, XML_CHAR_ENCODING_UTF8);
    htmlCtxtUseOptions(ctx,
                       HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET | HTML_PARSE_IGNORE_ENC);
    ctx->sax->error = ctx->sax->warning = ctx->sax->fatalError = sax_quiet;
    htmlParseChunk(ctx, html.data(), static_cast<int>(html.size()), 1);
    htmlFreeParserCtxt(ctx);
    return n;
}

#ifdef VIGIL_HAVE_GUMBO
std::size_t gumbo_walk(const GumboNode* node) {
    if (node->type == GUMBO_NODE_TEXT) return std::strlen(node->v.text.text);
    if (node->type != GUMBO_NODE_ELEMENT) return 0;
    std::size_t n = 1;
    const GumboVector& kids = node->v.element.children;
    for (unsigned i = 0; i < kids.length; ++i) n += gumbo_walk(static_cast<const GumboNode*>(kids.data[i]));
    return n;
}

std::size_t gumbo_once(const std::string& html) {
    GumboOutput* out = gumbo_parse_with_options(&kGumboDefaultOptions, html.data(), html.size());
    std::size_t n = gumbo_walk(out->root);
    gumbo_destroy_output(&kGumboDefaultOptions, out);
    return n;
}
#endif

struct ParserTimes {
    double libxml2 = 0, gumbo = 0, render = 0;
};

ParserTimes time_parsers(const std::string& html, bool with_gumbo) {
    ParserTimes t;
    std::size_t sink = 0;
    double t0 = thread_cpu();
    sink += libxml2_sax(html);
    t.libxml2 = thread_cpu() - t0;
#ifdef VIGIL_HAVE_GUMBO
    if (with_gumbo) {
        t0 = thread_cpu();
        sink += gumbo_once(html);
        t.gumbo = thread_cpu() - t0;
    }
#else
    (void)with_gumbo;
#endif
    t0 = thread_cpu();
    sink += mime::render_html(html, 1 << 24).visible.size();
    t.render = thread_cpu() - t0;
    if (sink == 42) std::printf(" ");
    return t;
}

void html_compare(const std::vector<std::string>& parts) {
    std::size_t bytes = 0;
    ParserTimes sum;
    for (const auto& h : parts) {
        bytes += h.size();
        for (int rep = 0; rep < 3; ++rep) {
            auto t = time_parsers(h, true);
            sum.libxml2 += t.libxml2 / 3;
            sum.gumbo += t.gumbo / 3;
            sum.render += t.render / 3;
        }
    }
    auto line = [&](const char* what, double secs) {
        std::printf("%-44s %8.1f ms  %6.1f MB/s  %7.1f us/part\n", what, secs * 1e3, bytes / secs / 1e6,
                    secs / parts.size() * 1e6);
    };
    std::printf("%zu HTML parts, %zu bytes (decoded, UTF-8)\n", parts.size(), bytes);
    line("libxml2 2.9 HTML parser, SAX, no-op", sum.libxml2);
#ifdef VIGIL_HAVE_GUMBO
    line("gumbo 0.10 (tree, then a walk)", sum.gumbo);
#else
    std::printf("(built without gumbo: no comparison)\n");
#endif
    line("mime::render_html (guard + libxml2 + render)", sum.render);
}

void html_patho() {
    struct Shape {
        const char* name;
        std::string (*make)(int);
    };
    static const Shape shapes[] = {
        {"attributes on one tag",
         [](int n) {
             std::string s = "<a";
             for (int i = 0; i < n; ++i) s += " a" + std::to_string(i) + "=x";
             return s + ">";
         }},
        {"unmatched end tags under open elements",
         [](int n) {
             std::string s;
             for (int i = 0; i < n; ++i) s += "<div>";
             for (int i = 0; i < n; ++i) s += "</span>";
             return s;
         }},
        {"nested elements",
         [](int n) {
             std::string s;
             for (int i = 0; i < n; ++i) s += "<div>";
             return s + "x";
         }},
        {"nested tables",
         [](int n) {
             std::string s = "<table>";
             for (int i = 0; i < n; ++i) s += "<tr><td><table>";
             return s;
         }},
        {"misnested formatting",
         [](int n) {
             std::string s;
             for (int i = 0; i < n; ++i) s += "<b><i>x</b></i>";
             return s;
         }},
    };
    std::printf("%-40s %6s %8s  %12s %12s %12s\n", "shape", "n", "bytes", "libxml2 ms", "gumbo ms",
                "render ms");
    for (const auto& sh : shapes) {
        for (int n : {5000, 10000}) {
            std::string html = sh.make(n);
            auto t = time_parsers(html, true);
            std::printf("%-40s %6d %8zu  %12.1f %12.1f %12.1f\n", sh.name, n, html.size(), t.libxml2 * 1e3,
                        t.gumbo * 1e3, t.render * 1e3);
        }
    }
}

int ucsdet_bench(const std::vector<std::string>& files) {
#ifdef VIGIL_HAVE_ICU_I18N
    for (const auto& f : files) {
        std::string data = read_file(f).substr(0, 4096);
        UErrorCode st = U_ZERO_ERROR;
        UCharsetDetector* d = ucsdet_open(&st);
        const int n = 200;
        const char* name = "?";
        double t0 = thread_cpu();
        for (int k = 0; k < n; ++k) {
            ucsdet_setText(d, data.data(), static_cast<int32_t>(data.size()), &st);
            const UCharsetMatch* m = ucsdet_detect(d, &st);
            if (m) name = ucsdet_getName(m, &st);
        }
        double us = (thread_cpu() - t0) / n * 1e6;
        ucsdet_close(d);
        std::printf("ucsdet %8.1f us  %5zu bytes  %.1f ns/byte  -> %s  %s\n", us, data.size(),
                    us * 1e3 / data.size(), name, f.c_str());
    }
    return 0;
#else
    (void)files;
    std::printf("built without icu-i18n\n");
    return 1;
#endif
}

const char* anomaly_name(int bit) {
    static const char* names[] = {"too_many_parts",    "too_deep",
                                  "decoded_truncated", "too_many_urls",
                                  "message_truncated", "bad_boundary",
                                  "bad_base64",        "bad_qp",
                                  "bad_charset",       "bad_header_encoding",
                                  "html_hidden_text",  "html_link_mismatch",
                                  "too_many_headers",  "html_truncated"};
    return bit < 14 ? names[bit] : "?";
}

int dump(const std::string& file) {
    auto raw = read_file(file);
    auto msg = core::parse_message(raw);
    auto pm = mime::parse(msg.headers, msg.body);
    std::printf("subject: %s\nanomalies:", pm.subject.c_str());
    for (int b = 0; b < 32; ++b)
        if (pm.anomalies & (1u << b)) std::printf(" %s", anomaly_name(b));
    std::printf("\n");
    for (std::size_t i = 0; i < pm.parts.size(); ++i) {
        const auto& p = pm.parts[i];
        std::printf("part %zu: %s depth %d charset '%s' read as '%s'%s%s%s encoded %zu decoded %zu\n", i,
                    p.content_type.c_str(), p.depth, p.charset.c_str(), p.charset_used.c_str(),
                    p.charset_guessed ? " (guessed)" : "", p.attachment ? " attachment" : "",
                    p.filename.empty() ? "" : (" filename '" + p.filename + "'").c_str(), p.encoded_size,
                    p.decoded_size);
        if (p.is_text) std::printf("---- text_for_body\n%s\n----\n", p.text_for_body().c_str());
    }
    for (const auto& u : pm.urls)
        std::printf("url %s host %s%s part %zu%s%s\n", u.url.c_str(), u.host.c_str(),
                    u.host_is_ip ? " (ip)" : "", u.part,
                    u.display_text.empty() ? "" : (" text '" + u.display_text + "'").c_str(),
                    u.display_mismatch ? " MISMATCH" : "");
    return 0;
}

int corpus(const std::string& dir, int slowest, bool compare_html) {
    std::vector<std::string> files;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
        if (e.is_regular_file() && e.path().filename().string().front() != '.')
            files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    if (files.empty()) {
        std::printf("no files under %s\n", dir.c_str());
        return 1;
    }
    std::size_t parts = 0, text = 0, html = 0, urls = 0, url_ip = 0, mismatches = 0, guessed = 0, bytes = 0;
    std::size_t with_anomaly = 0, visible_bytes = 0, decoded_bytes = 0;
    std::map<int, std::size_t> anomalies;
    std::map<std::string, std::size_t> charsets;
    std::vector<std::pair<double, std::string>> times;
    std::vector<std::string> html_parts;
    double total = 0;
    for (const auto& f : files) {
        auto raw = read_file(f);
        auto msg = core::parse_message(raw);
        bytes += raw.size();
        double t0 = thread_cpu();
        auto pm = mime::parse(msg.headers, msg.body);
        double dt = thread_cpu() - t0;
        total += dt;
        times.emplace_back(dt, f);
        parts += pm.parts.size();
        for (const auto& p : pm.parts) {
            if (p.is_text) ++text;
            if (p.is_html) ++html;
            if (p.charset_guessed) {
                ++guessed;
                ++charsets[p.charset_used];
            }
            decoded_bytes += p.decoded.size();
            if (compare_html && p.is_html) html_parts.push_back(p.decoded);
            visible_bytes += p.visible.size();
        }
        urls += pm.urls.size();
        for (const auto& u : pm.urls) {
            if (u.host_is_ip) ++url_ip;
            if (u.display_mismatch) ++mismatches;
        }
        if (pm.anomalies) ++with_anomaly;
        for (int b = 0; b < 32; ++b)
            if (pm.anomalies & (1u << b)) ++anomalies[b];
    }
    std::sort(times.begin(), times.end());
    auto pct = [&](double q) {
        return times[std::min(times.size() - 1, static_cast<std::size_t>(q * times.size()))].first * 1e6;
    };
    std::printf("messages            %zu (%zu bytes)\n", files.size(), bytes);
    std::printf("parts               %zu (text %zu, html %zu)\n", parts, text, html);
    std::printf("text kept           decoded %zu bytes, html visible %zu bytes\n", decoded_bytes,
                visible_bytes);
    std::printf("urls                %zu (ip hosts %zu, link text mismatches %zu)\n", urls, url_ip,
                mismatches);
    std::printf("charsets guessed    %zu parts:", guessed);
    for (const auto& [cs, n] : charsets) std::printf(" %s %zu", cs.c_str(), n);
    std::printf("\nmessages with anomalies %zu:", with_anomaly);
    for (const auto& [b, n] : anomalies) std::printf(" %s %zu", anomaly_name(b), n);
    std::printf(
        "\ncpu                 total %.1f ms, per message mean %.1f us, p50 %.1f us, p99 %.1f us, max %.1f "
        "us\n",
        total * 1e3, total / files.size() * 1e6, pct(0.5), pct(0.99), times.back().first * 1e6);
    if (compare_html) html_compare(html_parts);
    for (int k = 0; k < slowest && k < static_cast<int>(times.size()); ++k) {
        const auto& t = times[times.size() - 1 - k];
        std::printf("slow  %8.1f us  %s\n", t.first * 1e6, t.second.c_str());
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    int iterations = 2000;
    bool gmime = false, synthetic = false, compare_html = false, html_patho_run = false, ucsdet_run = false;
    std::string corpus_dir;
    int slowest = 0;
    std::vector<std::string> files;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--iterations" && i + 1 < argc)
            iterations = std::max(1, std::atoi(argv[++i]));
        else if (a == "--gmime")
            gmime = true;
        else if (a == "--synthetic")
            synthetic = true;
        else if (a == "--corpus" && i + 1 < argc)
            corpus_dir = argv[++i];
        else if (a == "--slowest" && i + 1 < argc)
            slowest = std::atoi(argv[++i]);
        else if (a == "--html-compare")
            compare_html = true;
        else if (a == "--ucsdet")
            ucsdet_run = true;
        else if (a == "--html-patho")
            html_patho_run = true;
        else if (a == "--dump" && i + 1 < argc)
            return dump(argv[++i]);
        else if (!a.empty() && a[0] == '-') {
            std::fprintf(stderr,
                         "usage: %s [--iterations N] [--gmime] [--synthetic] [--corpus DIR [--slowest N]] "
                         "[--dump FILE] [--html-compare] [--html-patho] [--ucsdet] FILE...\n",
                         argv[0]);
            return 2;
        } else
            files.push_back(a);
    }
#ifdef VIGIL_HAVE_GMIME
    if (gmime) g_mime_init();
#endif
    if (ucsdet_run) return ucsdet_bench(files);
    if (html_patho_run) {
        html_patho();
        return 0;
    }
    if (!corpus_dir.empty()) return corpus(corpus_dir, slowest, compare_html);
    std::vector<Input> inputs;
    if (synthetic) {
        inputs.push_back(make_input("synthetic 4 KiB text/plain", synthetic_plain()));
        inputs.push_back(
            make_input("synthetic 100 KiB multipart (text, html, base64)", synthetic_multipart()));
    }
    for (const auto& f : files) inputs.push_back(make_input(f, read_file(f)));
    if (inputs.empty()) {
        std::fprintf(stderr, "nothing to measure: give files, --synthetic or --corpus DIR\n");
        return 2;
    }
    bench(inputs, iterations, gmime);
    return 0;
}
