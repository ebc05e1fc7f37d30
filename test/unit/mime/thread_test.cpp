#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "mime_test_util.hpp"

using namespace vigil;

namespace {

// Messages that use every library parse() calls: libxml2 (HTML), ICU (koi8-r, a guessed GB18030),
// libidn2 (an IDN host), libpsl (bare domains, link mismatch).
std::vector<std::string> messages() {
    return {
        "Subject: =?koi8-r?B?8NLJ18XU?=\nContent-Type: multipart/alternative; boundary=x\n\n"
        "--x\nContent-Type: text/plain; charset=koi8-r\n\n\xF0\xD2\xC9\xD7\xC5\xD4 example.com/a\n"
        "--x\nContent-Type: text/html\n\n<p style=\"display:none\">hid</p>"
        "<a href=\"http://b\xC3\xBC"
        "cher.example/\">www.other.example</a>\n--x--\n",
        "Content-Type: "
        "text/plain\n\n\xC4\xE3\xBA\xC3\xCA\xC0\xBD\xE7\xA3\xAC\xBB\xB6\xD3\xAD\xB9\xE2\xC1\xD9 "
        "http://3232235777/\n",
        "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
        "PGI+Ym9sZDwvYj4gPGEgaHJlZj0iaHR0cDovL3guZXhhbXBsZS8iPng8L2E+\n",
    };
}

bool same(const mime::ParsedMessage& a, const mime::ParsedMessage& b) {
    if (a.anomalies != b.anomalies || a.subject != b.subject || a.parts.size() != b.parts.size() ||
        a.urls.size() != b.urls.size())
        return false;
    for (std::size_t i = 0; i < a.parts.size(); ++i)
        if (a.parts[i].decoded != b.parts[i].decoded || a.parts[i].visible != b.parts[i].visible ||
            a.parts[i].charset_used != b.parts[i].charset_used)
            return false;
    for (std::size_t i = 0; i < a.urls.size(); ++i)
        if (a.urls[i].url != b.urls[i].url || a.urls[i].host != b.urls[i].host ||
            a.urls[i].display_mismatch != b.urls[i].display_mismatch)
            return false;
    return true;
}

}  // namespace

TEST_CASE("parse() from several threads at once gives the single-threaded results", "[mime]") {
    auto msgs = messages();
    std::vector<mime::ParsedMessage> expected;
    for (const auto& m : msgs) expected.push_back(test::parse_raw(m));
    // The expected results are themselves right (so the comparison means something).
    REQUIRE(expected[0].parts.size() == 2);
    REQUIRE(expected[0].subject == "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82");
    REQUIRE(expected[0].has(mime::Anomaly::html_hidden_text));
    REQUIRE(expected[0].has(mime::Anomaly::html_link_mismatch));
    REQUIRE(expected[1].parts.at(0).charset_used == "gb18030");
    REQUIRE(expected[2].parts.at(0).visible == "bold x");

    std::atomic<int> mismatches{0};
    std::atomic<int> runs{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            for (int k = 0; k < 200; ++k) {
                std::size_t i = static_cast<std::size_t>(t + k) % msgs.size();
                if (!same(test::parse_raw(msgs[i]), expected[i])) ++mismatches;
                ++runs;
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK(runs == 1600);
    CHECK(mismatches == 0);
}
