#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "auth/dkim/canon.hpp"
#include "test_random.hpp"

using namespace vigil::auth::dkim;

std::string testing_escape(std::string_view s) {
    std::string out;
    for (char ch : s)
        out += ch == '\r' ? "\\r" : ch == '\n' ? "\\n" : ch == '\t' ? "\\t" : std::string(1, ch);
    return out;
}

namespace {
std::string body(Canon c, std::string_view in, std::size_t chunk = 1 << 20) {
    BodyCanonicalizer b(c);
    std::string out;
    auto sink = [&](std::string_view s) { out.append(s); };
    for (std::size_t i = 0; i < in.size(); i += chunk) b.feed(in.substr(i, chunk), sink);
    b.finish(sink);
    return out;
}
}  // namespace

TEST_CASE("dkim canon: RFC 6376 section 3.4.5 example", "[dkim][canon]") {
    CHECK(canon_header(Canon::relaxed, "A", " X\r\n") == "a:X\r\n");
    CHECK(canon_header(Canon::relaxed, "A", " X") == "a:X\r\n");
    CHECK(canon_header(Canon::relaxed, "B", " Y\t\r\n\tZ  ") == "b:Y Z\r\n");
    CHECK(canon_header(Canon::simple, "B", " Y\t\r\n\tZ  ") == "B: Y\t\r\n\tZ  \r\n");
    std::string_view in = " C \r\nD \t E\r\n\r\n\r\n";
    CHECK(body(Canon::relaxed, in) == " C\r\nD E\r\n");
    CHECK(body(Canon::simple, in) == " C \r\nD \t E\r\n");
}

TEST_CASE("dkim canon: empty bodies, missing final CRLF, bare CR", "[dkim][canon]") {
    CHECK(body(Canon::simple, "") == "\r\n");
    CHECK(body(Canon::relaxed, "") == "");
    CHECK(body(Canon::simple, "\r\n\r\n") == "\r\n");
    CHECK(body(Canon::relaxed, "  \r\n\t\r\n") == "");
    CHECK(body(Canon::simple, "abc") == "abc\r\n");
    CHECK(body(Canon::relaxed, "abc  ") == "abc\r\n");
    CHECK(body(Canon::simple, "a\rb\r\n") == "a\rb\r\n");
    CHECK(body(Canon::simple, "a\r") == "a\r\r\n");
}

TEST_CASE("dkim canon: any chunking gives the same output", "[dkim][canon]") {
    std::string in = "Hi.\r\n\r\nWe lost   the game.\t \r\n  Are you\r\nhungry yet?\r\n\r\n \r\n\r\n";
    for (auto c : {Canon::simple, Canon::relaxed}) {
        auto whole = body(c, in);
        for (std::size_t chunk : {1u, 2u, 3u, 7u}) CHECK(body(c, in, chunk) == whole);
    }
}

TEST_CASE("dkim canon: body hashes with l= snapshots", "[dkim][canon]") {
    std::string in = "line one\r\nline two\r\n\r\n";
    BodyHashes h;
    REQUIRE(h.register_need(Canon::simple, HashAlg::sha256, std::nullopt));
    REQUIRE(h.register_need(Canon::simple, HashAlg::sha256, 5));
    REQUIRE(h.register_need(Canon::simple, HashAlg::sha256, 0));
    REQUIRE(h.register_need(Canon::simple, HashAlg::sha256, 1000));
    for (char c : in) h.feed(std::string_view(&c, 1));
    h.finish();
    CHECK(h.result(Canon::simple, HashAlg::sha256, std::nullopt) ==
          digest(HashAlg::sha256, "line one\r\nline two\r\n"));
    CHECK(h.result(Canon::simple, HashAlg::sha256, 5) == digest(HashAlg::sha256, "line "));
    CHECK(h.result(Canon::simple, HashAlg::sha256, 0) == digest(HashAlg::sha256, ""));
    CHECK(h.result(Canon::simple, HashAlg::sha256, 20) ==
          digest(HashAlg::sha256, "line one\r\nline two\r\n"));
    CHECK_FALSE(h.result(Canon::simple, HashAlg::sha256, 1000).has_value());
    CHECK(h.canonical_length(Canon::simple) == 20);
}

TEST_CASE("dkim canon: caps on hashing contexts and snapshots", "[dkim][canon]") {
    BodyHashes h;
    for (std::uint64_t l = 1; l <= 8; ++l) CHECK(h.register_need(Canon::relaxed, HashAlg::sha256, l));
    CHECK_FALSE(h.register_need(Canon::relaxed, HashAlg::sha256, 9));
    CHECK(h.register_need(Canon::relaxed, HashAlg::sha256, 3));  // already there
}

namespace {
// RFC 6376 §3.4.3/§3.4.4 written the plain way, over the whole body, as the reference the
// streaming canonicaliser must agree with.
std::string reference_body(Canon c, std::string_view in) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (true) {
        auto pos = in.find("\r\n", start);
        if (pos == std::string_view::npos) break;
        lines.emplace_back(in.substr(start, pos - start));
        start = pos + 2;
    }
    if (start < in.size()) lines.emplace_back(in.substr(start));
    if (c == Canon::relaxed) {
        for (auto& l : lines) {
            std::string out;
            bool wsp = false;
            for (char ch : l) {
                if (ch == ' ' || ch == '\t') {
                    wsp = true;
                    continue;
                }
                if (wsp) out.push_back(' ');
                wsp = false;
                out.push_back(ch);
            }
            l = out;
        }
    }
    while (!lines.empty() && lines.back().empty()) lines.pop_back();
    if (lines.empty()) return c == Canon::simple ? "\r\n" : "";
    std::string out;
    for (auto& l : lines) out += l + "\r\n";
    return out;
}
}  // namespace

TEST_CASE("dkim canon: random bodies and chunkings agree with the plain reference", "[dkim][canon]") {
    vigil::test::Lcg next(12345);
    const char alphabet[] = {'a', 'b', ' ', ' ', '\t', '\r', '\n', '\r'};
    for (int round = 0; round < 3000; ++round) {
        std::string in;
        auto len = next() % 48;
        for (std::uint32_t i = 0; i < len; ++i) in.push_back(alphabet[next() % sizeof alphabet]);
        std::size_t chunk = 1 + next() % 9;
        for (auto c : {Canon::simple, Canon::relaxed}) {
            INFO("canon " << to_string(c) << " chunk " << chunk << " input " << ::testing_escape(in));
            CHECK(body(c, in, chunk) == reference_body(c, in));
            CHECK(body(c, in) == reference_body(c, in));
        }
    }
}

// The relaxed body scan works 16 bytes at a time with a one-byte look-ahead; these inputs are long
// enough to cross many block boundaries (the test above stays under one block), with text mostly
// ordinary so that blocks are skipped whole, and white space at every offset of a block.
TEST_CASE("dkim canon: long bodies and chunkings agree with the plain reference", "[dkim][canon]") {
    vigil::test::Lcg next(4242);
    const char ordinary[] = {'a', 'b', 'c', '.', ':', '\x80', '\n'};
    const char special[] = {' ', ' ', '\t', '\r', '\n', '\r'};
    for (int round = 0; round < 2000; ++round) {
        std::string in;
        auto len = next() % 700;
        auto rate = 2 + next() % 30;  // one special byte in `rate`, on average
        for (std::uint32_t i = 0; i < len; ++i) {
            in.push_back(next() % rate == 0 ? special[next() % sizeof special]
                                            : ordinary[next() % sizeof ordinary]);
        }
        if (round % 3 == 0) {
            for (std::size_t i = 64; i < in.size(); i += 67)
                in.replace(i, 3, "  \r");  // trailing white space
        }
        std::size_t chunk = 1 + next() % 100;
        for (auto c : {Canon::simple, Canon::relaxed}) {
            INFO("canon " << to_string(c) << " chunk " << chunk << " input " << ::testing_escape(in));
            auto expected = reference_body(c, in);
            CHECK(body(c, in, chunk) == expected);
            CHECK(body(c, in) == expected);
        }
    }
}

TEST_CASE("dkim canon: the relaxed run ends exactly at the first byte that is not copied as is",
          "[dkim][canon]") {
    for (std::size_t n :
         {std::size_t{1}, std::size_t{16}, std::size_t{17}, std::size_t{40}, std::size_t{100}}) {
        std::string text(n, 'x');
        CHECK(BodyCanonicalizer::relaxed_run_end(text.data(), 0, n) == n);
        for (std::size_t at = 0; at < n; ++at) {
            INFO("n " << n << " at " << at);
            for (char stop : {'\r', '\t'}) {
                auto t = text;
                t[at] = stop;
                CHECK(BodyCanonicalizer::relaxed_run_end(t.data(), 0, n) == at);
            }
            // A single space before an ordinary byte is canonical already; before white space or CR
            // (or at the end of the chunk, where the next byte is unknown) it is not.
            auto single = text;
            single[at] = ' ';
            CHECK(BodyCanonicalizer::relaxed_run_end(single.data(), 0, n) == (at + 1 == n ? at : n));
            if (at + 1 < n) {
                for (char after : {' ', '\t', '\r'}) {
                    auto t = single;
                    t[at + 1] = after;
                    CHECK(BodyCanonicalizer::relaxed_run_end(t.data(), 0, n) == at);
                }
            }
            // The scan starts where it is told to.
            CHECK(BodyCanonicalizer::relaxed_run_end(text.data(), at, n) == n);
        }
    }
}

namespace {
// RFC 6376 §3.4.2 relaxed header canonicalisation, written the plain way.
std::string reference_header(std::string_view name, std::string_view value) {
    std::string out;
    for (char c : name) out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
    while (!out.empty() && (out.back() == ' ' || out.back() == '\t')) out.pop_back();
    out += ':';
    std::string unfolded;
    for (char c : value) {
        if (c != '\r' && c != '\n') unfolded.push_back(c);
    }
    std::string v;
    bool wsp = false;
    for (char c : unfolded) {
        if (c == ' ' || c == '\t') {
            wsp = true;
            continue;
        }
        if (wsp && !v.empty()) v.push_back(' ');
        wsp = false;
        v.push_back(c);
    }
    return out + v + "\r\n";
}
}  // namespace

TEST_CASE("dkim canon: relaxed header fields agree with the plain reference", "[dkim][canon]") {
    vigil::test::Lcg next(777);
    const char alphabet[] = {'a', 'B', ';', '=', ' ', ' ', '\t', '\r', '\n', 'z', 'Q', '\xc3'};
    for (int round = 0; round < 3000; ++round) {
        std::string name = round % 5 == 0 ? "Subject \t" : "DKIM-Signature";
        std::string value;
        auto len = next() % 200;
        for (std::uint32_t i = 0; i < len; ++i) value.push_back(alphabet[next() % sizeof alphabet]);
        INFO("value " << ::testing_escape(value));
        CHECK(canon_header(Canon::relaxed, name, value) == reference_header(name, value));
        std::string appended = "prefix";
        append_canon_header(appended, Canon::relaxed, name, value);
        CHECK(appended == "prefix" + reference_header(name, value));
    }
}
