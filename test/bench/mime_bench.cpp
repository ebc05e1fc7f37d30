// The MIME layer's cost and a corpus run.
//
//   vigil-mime-bench [--iterations N] [--gmime] FILE...   CPU µs per mime::parse() of each file
//   vigil-mime-bench --synthetic [--iterations N] [--gmime]
//                                      the same for a 4 KiB plain message and a 100 KiB multipart one
//   vigil-mime-bench --corpus DIR      parse every file under DIR once: parts, URLs, guessed charsets,
//                                      anomalies, CPU time in total and per message
//   vigil-mime-bench --dump FILE       what mime::parse makes of one message
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

int corpus(const std::string& dir, int slowest) {
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
    for (int k = 0; k < slowest && k < static_cast<int>(times.size()); ++k) {
        const auto& t = times[times.size() - 1 - k];
        std::printf("slow  %8.1f us  %s\n", t.first * 1e6, t.second.c_str());
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    int iterations = 2000;
    bool gmime = false, synthetic = false;
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
        else if (a == "--dump" && i + 1 < argc)
            return dump(argv[++i]);
        else if (!a.empty() && a[0] == '-') {
            std::fprintf(stderr,
                         "usage: %s [--iterations N] [--gmime] [--synthetic] [--corpus DIR [--slowest N]] "
                         "[--dump FILE] FILE...\n",
                         argv[0]);
            return 2;
        } else
            files.push_back(a);
    }
#ifdef VIGIL_HAVE_GMIME
    if (gmime) g_mime_init();
#endif
    if (!corpus_dir.empty()) return corpus(corpus_dir, slowest);
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
