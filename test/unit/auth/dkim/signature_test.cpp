#include <catch2/catch.hpp>

#include <optional>
#include <string>

#include "auth/dkim/keys.hpp"
#include "auth/dkim/signature.hpp"
#include "test_random.hpp"

using namespace vigil::auth::dkim;

namespace {
const std::string good =
    " v=1; a=rsa-sha256; c=relaxed/simple; d=Example.COM; s=sel; t=100; x=200; l=10;\r\n"
    "\th=From : To; i=joe@mail.example.com; q=dns/txt; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n"
    "\tb=AAAA\r\n\t BBBB; z=unknown";
std::string with(std::string from, std::string to) {
    auto s = good;
    auto p = s.find(from);
    REQUIRE(p != std::string::npos);
    return s.replace(p, from.size(), to);
}
}  // namespace

TEST_CASE("dkim signature: every tag read", "[dkim][signature]") {
    auto p = parse_signature(good);
    REQUIRE(p.sig);
    CHECK(p.detail.empty());
    const auto& s = *p.sig;
    CHECK(s.domain == "example.com");
    CHECK(s.selector == "sel");
    CHECK(s.header_canon == Canon::relaxed);
    CHECK(s.body_canon == Canon::simple);
    CHECK(s.signed_headers == std::vector<std::string>{"from", "to"});
    CHECK(s.length == 10u);
    CHECK(s.timestamp == 100);
    CHECK(s.expiry == 200);
    CHECK(s.identity == "joe@mail.example.com");
    CHECK(s.b_text == "AAAABBBB");
    CHECK(s.sig.size() == 6);
    CHECK(good.substr(s.b_begin, s.b_end - s.b_begin) == "AAAA\r\n\t BBBB");
}

TEST_CASE("dkim signature: malformed signatures are permerror values", "[dkim][signature]") {
    auto perm = [](const std::string& v) {
        auto p = parse_signature(v);
        return !p.sig && p.error == Result::permerror && !p.detail.empty();
    };
    CHECK(perm(with("v=1", "v=2")));
    CHECK(perm(with("a=rsa-sha256", "a=rsa-md5")));
    CHECK(perm(with("h=From : To", "h=To : Subject")));  // h= without From
    CHECK(perm(with("h=From : To", "h=From :: To")));
    CHECK(perm(with("d=Example.COM", "d=legitimate.com(.attacker.com")));
    CHECK(perm(with("d=Example.COM", "d=Example. COM")));  // FWS inside a domain-name
    CHECK(perm(with("d=Example.COM", "d=Example\r\n\t.COM")));
    CHECK(perm(with("s=sel", "s=se l")));
    CHECK(perm(with("i=joe@mail.example.com", "i=joe@mail. example.com")));
    CHECK(perm(with("i=joe@mail.example.com", "i=joe@example.net")));
    CHECK(perm(with("b=AAAA", "b=AA*A")));                                            // base64 with junk
    CHECK(perm(with("bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "bh=AAAA")));  // wrong length
    CHECK(perm(with("l=10", "l=99999999999999999999999999")));                        // absurd l=
    CHECK(perm(with("l=10", "l=-1")));
    CHECK(perm(with("x=200", "x=50")));  // expires before it was made
    CHECK(perm(with("q=dns/txt", "q=http")));
    CHECK(perm(with("c=relaxed/simple", "c=fancy")));
    CHECK(perm(with("s=sel;", "")));             // missing s=
    CHECK(perm(with("v=1; a", "v=1; v=1; a")));  // duplicate tag
    std::string many = "h=from";
    for (int i = 0; i < 10000; ++i) many += ":x" + std::to_string(i);
    CHECK(perm(with("h=From : To", many)));
    // What could be read is still reported.
    auto p = parse_signature(with("v=1", "v=2"));
    CHECK(p.domain == "example.com");
    CHECK(p.selector == "sel");
}

TEST_CASE("dkim signature: rsa-sha1 is policy unless allowed", "[dkim][signature]") {
    auto v = with("a=rsa-sha256", "a=rsa-sha1");
    v = v.substr(0, v.find("bh=")) + "bh=2jmj7l5rSw0yVb/vlWAYkK/YBwk=;\r\n\tb=AAAA";
    auto p = parse_signature(v);
    CHECK(p.error == Result::policy);
    CHECK_FALSE(p.detail.empty());
    auto q = parse_signature(v, SignaturePolicy{true});
    CHECK(q.detail.empty());
    REQUIRE(q.sig);
    CHECK(q.sig->hash == HashAlg::sha1);
}

TEST_CASE("dkim key records", "[dkim][keys]") {
    auto k = parse_key_record(
        "v=DKIM1; k=ed25519; t=y:s; h=sha256; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    REQUIRE(k.key);
    CHECK(k.key->type == KeyType::ed25519);
    CHECK(k.key->testing);
    CHECK(k.key->strict);
    CHECK(k.key->public_key.size() == 32);
    CHECK(parse_key_record("p=").key->revoked);
    CHECK(parse_key_record("k=rsa; unknown=tag; p=").key);
    CHECK_FALSE(parse_key_record("k=rsa; v=DKIM1; p=").key);  // v= not first
    CHECK_FALSE(parse_key_record("v=DKIM2; p=").key);
    CHECK_FALSE(parse_key_record("v=DKIM1; k=dsa; p=").key);
    CHECK_FALSE(parse_key_record("v=DKIM1; k=rsa").key);  // no p=
    CHECK_FALSE(parse_key_record("v=DKIM1; p=AB*C").key);
    CHECK_FALSE(parse_key_record("v=DKIM1; s=other; p=").key);
    CHECK_FALSE(parse_key_record("v=DKIM1; p=; p=").key);
}

TEST_CASE("dkim keys: answers become distinct outcomes", "[dkim][keys]") {
    using vigil::dns::Answer;
    using vigil::dns::Status;
    CHECK(key_from_answer(Answer::failure(Status::nxdomain, "")).status == Result::permerror);
    CHECK(key_from_answer(Answer::failure(Status::nodata, "")).status == Result::permerror);
    CHECK(key_from_answer(Answer::failure(Status::servfail, "")).status == Result::temperror);
    CHECK(key_from_answer(Answer::failure(Status::timeout, "")).status == Result::temperror);
    Answer a;
    a.status = Status::answer;
    vigil::dns::Record r;
    r.type = vigil::dns::RrType::txt;
    r.txt = {"v=DKIM1; k=rsa; p=AAAA"};  // base64 fine, not a key
    a.records.push_back(r);
    auto o = key_from_answer(a);
    CHECK(o.status == Result::permerror);
    CHECK(o.detail.find("bad key") != std::string::npos);
    a.records[0].txt = {"v=DKIM1; k=ed25519; p=AAAA"};
    CHECK(key_from_answer(a).status == Result::permerror);
    a.records[0].txt = {"v=DKIM1; p="};
    auto revoked = key_from_answer(a);
    CHECK(revoked.status == Result::pass);
    CHECK(revoked.key->record.revoked);
}

TEST_CASE("dkim crypto: base64 is strict, private keys that are not keys", "[dkim][crypto]") {
    CHECK(base64_decode("QUJD") == std::string("ABC"));
    CHECK(base64_decode("QU JD\r\n") == std::string("ABC"));
    CHECK(base64_decode("QUI=") == std::string("AB"));
    CHECK_FALSE(base64_decode("QUI").has_value());
    CHECK_FALSE(base64_decode("QU=I").has_value());
    CHECK_FALSE(base64_decode("QU!I").has_value());
    CHECK_FALSE(parse_private_key("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n").key);
    CHECK_FALSE(parse_private_key("hello").key);
    CHECK_FALSE(parse_private_key("").key);
    auto g = generate_key(KeyType::ed25519, 0);
    REQUIRE(g.error.empty());
    auto truncated = g.private_pem.substr(0, g.private_pem.size() / 2);
    CHECK_FALSE(parse_private_key(truncated).key);
    CHECK(parse_private_key(g.private_pem).type == KeyType::ed25519);
    CHECK_FALSE(parse_public_key(KeyType::rsa, "garbage").key);
    CHECK_FALSE(parse_public_key(KeyType::ed25519, std::string(31, 'x')).key);
}

namespace {
// The decoder as first written (one character at a time, appending): the reference for the
// table-driven one that takes whole quanta at once.
std::optional<std::string> reference_base64(std::string_view text) {
    auto value = [](char c) {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::string out;
    unsigned acc = 0;
    int bits = 0, chars = 0, pad = 0;
    for (char c : text) {
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
        if (c == '=') {
            ++pad;
            ++chars;
            continue;
        }
        if (pad > 0) return std::nullopt;
        int v = value(c);
        if (v < 0) return std::nullopt;
        ++chars;
        acc = (acc << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    if (chars % 4 != 0 || pad > 2) return std::nullopt;
    return out;
}
}  // namespace

TEST_CASE("dkim crypto: base64 decoding agrees with the plain reference", "[dkim][crypto]") {
    vigil::test::Lcg next(99);
    const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char odd[] = {' ', '\t', '\r', '\n', '=', '=', '!', '-', '\0', '\xff'};
    int decoded = 0;
    for (int round = 0; round < 5000; ++round) {
        std::string text;
        auto len = next() % 120;
        auto rate = 1 + next() % 40;
        for (std::uint32_t i = 0; i < len; ++i) {
            text.push_back(next() % rate == 0 ? odd[next() % sizeof odd]
                                              : alphabet[next() % alphabet.size()]);
        }
        if (round % 4 == 0) text += std::string(next() % 3, '=');
        auto got = base64_decode(text);
        INFO("text " << text);
        CHECK(got == reference_base64(text));
        decoded += got.has_value();
    }
    CHECK(decoded > 200);  // the random inputs do reach the success path, not only the errors
    std::string folded = "QUJD\r\n\tREVG R0hJ\r\n SktM";
    CHECK(base64_decode(folded) == std::string("ABCDEFGHIJKL"));
}
