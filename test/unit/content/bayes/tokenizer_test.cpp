#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "bayes_test_support.hpp"
#include "content/bayes/bayes_limits.hpp"
#include "content/bayes/token_hash.hpp"
#include "content/bayes/tokenizer.hpp"

using namespace vigil;
using namespace vigil::content::bayes;
using vigil::test::bayes::body_only;
using vigil::test::bayes::message;

namespace {

std::vector<std::string> texts_of(const Tokenizer& t, const mime::ParsedMessage& m) {
    std::vector<std::string> texts;
    t.tokenize_with_text(m, texts);
    return texts;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

std::vector<std::string> with_prefix(const std::vector<std::string>& v, const std::string& prefix) {
    std::vector<std::string> out;
    for (const auto& s : v)
        if (s.rfind(prefix, 0) == 0) out.push_back(s);
    return out;
}

}  // namespace

TEST_CASE("SipHash-1-3 matches the reference implementation", "[bayes]") {
    // Python 3.11 hashes bytes with SipHash-1-3; with PYTHONHASHSEED=0 its key is all zeros:
    //   PYTHONHASHSEED=0 python3 -c 'print(hex(hash(b"abc") & (2**64-1)))'
    HashKey zero{0, 0};
    CHECK(siphash13(zero, "abc") == 0xc03bc3a0042630f2ULL);
    CHECK(siphash13(zero, "hello world, this is longer") == 0xcfa8d92e81d367b9ULL);
    // The key matters.
    CHECK(siphash13(default_hash_key, "abc") != siphash13(zero, "abc"));
}

TEST_CASE("pair hashes depend on order and distance", "[bayes]") {
    auto a = siphash13(default_hash_key, "cheap"), b = siphash13(default_hash_key, "meds");
    CHECK(pair_hash(a, b, 1) != pair_hash(b, a, 1));
    CHECK(pair_hash(a, b, 1) != pair_hash(a, b, 2));
    CHECK(pair_hash(a, b, 1) == pair_hash(a, b, 1));
}

TEST_CASE("case folding covers Latin, Greek, Cyrillic and fullwidth forms", "[bayes]") {
    CHECK(detail::fold_case("HeLLo") == "hello");
    CHECK(detail::fold_case("ÀÉÎÕÜ") == "àéîõü");
    CHECK(detail::fold_case("ŁÓDŹ") == "łódź");
    CHECK(detail::fold_case("ΣΟΦΙΑ") == "σοφια");
    CHECK(detail::fold_case("ПРИВЕТ Ёж") == "привет ёж");
    CHECK(detail::fold_case("ＦＲＥＥ") == "free");
    // Invalid UTF-8 passes through byte for byte.
    CHECK(detail::fold_case("A\xff\xc3") == "a\xff\xc3");
}

TEST_CASE("words are split, stripped and bounded as SpamAssassin does", "[bayes]") {
    using V = std::vector<std::string>;
    CHECK(detail::words("Hello, World!! it's 'quoted' ok.") == V{"hello", "world!!", "it's", "quoted"});
    // Runs of dots or dashes split; the separators and short words go.
    CHECK(detail::words("wait...what--now a-b") == V{"wait", "what", "now", "a-b"});
    // $, @, * stay inside: "$31,000,000", addresses and v*agra are useful tokens.
    CHECK(detail::words("win $31,000,000 at me@example.com v*agra") ==
          V{"win", "$31,000,000", "me@example.com", "v*agra"});
    // Longer than 15 code points: "sk:" and the first 7.
    CHECK(detail::words("supercalifragilistic") == V{"sk:superca"});
    // 15 exactly stays whole; 2 code points are too short; 3 accented letters are enough.
    CHECK(detail::words("abcdefghijklmno xy été") == V{"abcdefghijklmno", "été"});
    // Invisible characters inside a word are dropped, not split on; NBSP separates.
    CHECK(detail::words("V\u200Biagra cheap\u00A0pills") == V{"viagra", "cheap", "pills"});
    // General punctuation (curly quotes, dashes) separates.
    CHECK(detail::words("\u201Cfree\u201D\u2014now") == V{"free", "now"});
}

TEST_CASE("long runs of non-Latin letters become code point pairs", "[bayes]") {
    // 16 CJK characters without spaces: too long for a word, tokenized as overlapping pairs.
    std::string cjk = "中文垃圾邮件测试文本这是一个很长的句子";
    auto w = detail::words(cjk);
    REQUIRE(w.size() >= 10);
    CHECK(w[0] == "8:中文");
    CHECK(w[1] == "8:文垃");
}

TEST_CASE("shapes collapse letters and digits", "[bayes]") {
    CHECK(detail::shape("200206211845.g5LIjNm13088") == "9.a9a9");
    CHECK(detail::shape("Sat, 18 Aug 2001 02:33:22 -0500") == "a, 9 a 9 9:9:9 -9");
}

TEST_CASE("the tokenizer reads sender-side header fields", "[bayes]") {
    Tokenizer t;
    auto m = message(
        {{"From", "\"Cheap Meds\" <sales@mail.pharmacy.co.uk>"},
         {"Reply-To", "x@other.example"},
         {"Subject", "Buy now"},
         {"Content-Type", "multipart/alternative; boundary=\"----=_NextPart_000_0001\"; charset=UTF-8"},
         {"Content-Transfer-Encoding", "Quoted-Printable"},
         {"X-Mailer", "Microsoft Outlook Express 6.00"},
         {"X-Priority", "1"},
         {"Message-ID", "<ABC123.def@bulk.mailer.example>"},
         {"Date", "Mon, 1 Jul 2002 10:00:00 -1600"},
         {"Delivered-To", "victim@example.org"},
         {"Return-Path", "<bounce@example.net>"}},
        "hello there");
    auto v = texts_of(t, m);
    CHECK(has(v, "Hf:pharmacy.co.uk"));  // registrable domain through the Public Suffix List
    CHECK(has(v, "Hf:h:mail.pharmacy.co.uk"));
    CHECK(has(v, "Hfn:cheap"));
    CHECK(has(v, "Hfn:meds"));
    CHECK(has(v, "Hr:other.example"));
    CHECK(has(v, "S:buy"));
    CHECK(has(v, "Hct:multipart/alternative"));
    CHECK(has(v, "Hcs:utf-8"));
    CHECK(has(v, "Hcb:----=_a_9_9"));
    CHECK(has(v, "Hte:quoted-printable"));
    CHECK(has(v, "Hxm:microsoft"));
    CHECK(has(v, "Hp:x-priority=1"));
    CHECK(has(v, "Hmd:mailer.example"));
    CHECK(has(v, "Hms:a9.a"));
    CHECK(has(v, "Hdz:-1600"));
    // Fields the receiving side writes are never read.
    for (const auto& s : v) {
        CHECK(s.find("victim") == std::string::npos);
        CHECK(s.find("bounce") == std::string::npos);
    }
    // Subject words are words too.
    CHECK(has(v, "buy"));
    CHECK(has(v, "hello"));
    // Missing fields are a feature.
    auto bare = texts_of(t, body_only("hi there"));
    CHECK(has(bare, "Hf:none"));
    CHECK(has(bare, "Hmi:none"));
    CHECK(has(bare, "Hct:none"));
}

TEST_CASE("Received tokens come only when enabled, from the sender's end of the chain", "[bayes]") {
    auto m =
        message({{"Received", "from mx.ours.example (mx.ours.example [192.0.2.1]) by inner.ours.example"},
                 {"Received",
                  "from helo.spammer.example (dsl-203-0-113-7.isp.example [203.0.113.7]) by "
                  "mx.ours.example with ESMTP id 1"}},
                "text");
    Tokenizer off;
    CHECK(with_prefix(texts_of(off, m), "Hr").empty() == true);
    TokenizerOptions o;
    o.received = true;
    Tokenizer on(o);
    auto v = texts_of(on, m);
    CHECK(has(v, "Hrh:spammer.example"));
    CHECK(has(v, "Hrr:isp.example"));
    CHECK(has(v, "Hri:203.0"));
    CHECK(has(v, "Hri:203.0.113"));
    CHECK(has(v, "Hrd:addr-in-name"));
    CHECK(has(v, "Hrw:esmtp"));
    CHECK(on.id() != off.id());
}

TEST_CASE("URL tokens: host, registrable domain, path words", "[bayes]") {
    auto m = body_only("see link");
    mime::Url u;
    u.url = "http://www.shop.example.co.uk/cheap-pills/order.php?ref=spam123";
    u.host = "www.shop.example.co.uk";
    m.urls.push_back(u);
    mime::Url ip;
    ip.url = "http://192.0.2.7/x";
    ip.host = "192.0.2.7";
    ip.host_is_ip = true;
    ip.display_mismatch = true;
    m.urls.push_back(ip);
    auto v = texts_of(Tokenizer(), m);
    CHECK(has(v, "Ud:example.co.uk"));
    CHECK(has(v, "Ud:h:www.shop.example.co.uk"));
    CHECK(has(v, "Up:cheap"));
    CHECK(has(v, "Up:pills"));
    CHECK(has(v, "Up:order"));
    CHECK(has(v, "Up:php"));
    CHECK(has(v, "Up:ref"));
    CHECK(has(v, "Up:spam123"));
    CHECK(has(v, "Ui:ip"));
    CHECK(has(v, "Um:mismatch"));
}

TEST_CASE("MIME structure tokens", "[bayes]") {
    auto m = body_only("text");
    mime::Part a;
    a.content_type = "application/octet-stream";
    a.filename = "Invoice.PDF.EXE";
    a.attachment = true;
    m.parts.push_back(a);
    m.parts[0].charset = "windows-1252";
    auto v = texts_of(Tokenizer(), m);
    CHECK(has(v, "Mt:text/plain"));
    CHECK(has(v, "Mt:application/octet-stream"));
    CHECK(has(v, "Mc:windows-1252"));
    CHECK(has(v, "Mx:exe"));
}

TEST_CASE("tokens are distinct hashes of their text", "[bayes]") {
    Tokenizer t;
    std::vector<std::string> texts;
    auto list = t.tokenize_with_text(body_only("free free FREE Free money"), texts);
    CHECK(std::count(texts.begin(), texts.end(), "free") == 1);
    std::set<std::uint64_t> hashes;
    for (std::size_t i = 0; i < list.tokens.size(); ++i) {
        CHECK(list.tokens[i].hash == siphash13(default_hash_key, texts[i]));
        hashes.insert(list.tokens[i].hash);
    }
    CHECK(hashes.size() == list.tokens.size());
    // The same message gives the same tokens; tokenize() and tokenize_with_text() agree.
    auto again = t.tokenize(body_only("free free FREE Free money"));
    REQUIRE(again.tokens.size() == list.tokens.size());
    for (std::size_t i = 0; i < again.tokens.size(); ++i) CHECK(again.tokens[i].hash == list.tokens[i].hash);
}

TEST_CASE("OSB pairs: each word with the words before it, by distance", "[bayes]") {
    TokenizerOptions o;
    o.osb_pairs = true;
    o.headers = o.mime_structure = o.urls = false;
    Tokenizer t(o);
    std::vector<std::string> texts;
    auto list = t.tokenize_with_text(body_only("alpha beta gamma"), texts);
    // 3 words, pairs alpha-beta (1), beta-gamma (1), alpha-gamma (2).
    REQUIRE(list.tokens.size() == 6);
    CHECK(has(texts, "alpha ~1 beta"));
    CHECK(has(texts, "beta ~1 gamma"));
    CHECK(has(texts, "alpha ~2 gamma"));
    for (std::size_t i = 0; i < texts.size(); ++i) {
        if (texts[i] == "alpha ~2 gamma") {
            CHECK(list.tokens[i].distance == 2);
            CHECK(list.tokens[i].hash ==
                  pair_hash(siphash13(default_hash_key, "alpha"), siphash13(default_hash_key, "gamma"), 2));
        }
        if (texts[i] == "alpha") CHECK(list.tokens[i].distance == 0);
    }
    // At most osb_window - 1 words back.
    auto many = t.tokenize_with_text(body_only("one two three four five six"), texts);
    CHECK(has(texts, "two ~4 six"));
    CHECK_FALSE(has(texts, "one ~5 six"));
    o.pair_distance = 1;
    Tokenizer bigrams(o);
    bigrams.tokenize_with_text(body_only("alpha beta gamma"), texts);
    CHECK(texts.size() == 5);
    CHECK_FALSE(has(texts, "alpha ~2 gamma"));
    (void)many;
}

TEST_CASE("a message is cut at max_tokens_per_message distinct tokens", "[bayes]") {
    std::string body;
    for (std::size_t i = 0; i < limits::max_tokens_per_message + 500; ++i)
        body += "word" + std::to_string(i) + " ";
    auto list = Tokenizer().tokenize(message({{"From", "a@example.com"}}, body));
    CHECK(list.truncated);
    CHECK(list.tokens.size() == limits::max_tokens_per_message);
    // Header tokens come first, so the cut takes body words, not the From domain.
    std::vector<std::string> texts;
    Tokenizer().tokenize_with_text(message({{"From", "a@example.com"}}, body), texts);
    CHECK(has(texts, "Hf:example.com"));
}

TEST_CASE("text beyond max_text_bytes is not read", "[bayes]") {
    std::string body(limits::max_text_bytes, 'x');
    body += " tailword";
    auto texts = texts_of(Tokenizer(), body_only(body));
    CHECK_FALSE(has(texts, "tailword"));
    CHECK(Tokenizer().tokenize(body_only(body)).truncated);
}

TEST_CASE("malformed input tokenizes without failing", "[bayes]") {
    Tokenizer t;
    mime::ParsedMessage empty;
    auto e = t.tokenize(empty);
    CHECK_FALSE(e.truncated);
    CHECK(e.tokens.size() <= 8);  // only "missing field" features
    std::string junk;
    for (int i = 0; i < 4096; ++i) junk += static_cast<char>(i * 7 % 256);
    auto m = message({{"From", junk},
                      {"Message-ID", junk},
                      {"Date", junk},
                      {"Content-Type", junk},
                      {"X-Mailer", std::string(100000, 'a')}},
                     junk);
    mime::Url u;
    u.url = junk;
    u.host = junk;
    m.urls.push_back(u);
    auto list = t.tokenize(m);
    CHECK(list.tokens.size() > 0);
    CHECK(list.tokens.size() <= limits::max_tokens_per_message);
    // Truncated UTF-8 at the very end, lone continuation bytes, overlong forms.
    CHECK_NOTHROW(t.tokenize(body_only("abc\xe2\x82")));
    CHECK_NOTHROW(t.tokenize(body_only("\x80\x80\x80 \xc0\xaf \xed\xa0\x80 \xf5\x80\x80\x80")));
}

TEST_CASE("the tokenizer id names the options", "[bayes]") {
    TokenizerOptions o;
    Tokenizer a(o);
    o.urls = false;
    Tokenizer b(o);
    CHECK(a.id() != b.id());
    CHECK(a.id().find("siphash13") != std::string::npos);
    CHECK(Tokenizer().id() == a.id());
}
