#include <catch2/catch.hpp>

#include "auth/dkim/dkim_fixture.hpp"

using namespace vigil::test::dkim;

namespace {
const std::string message =
    "Received: from a by b\r\n"
    "From: Joe <joe@example.com>\r\n"
    "To: Suzie <suzie@example.net>\r\n"
    "Subject: a subject that is\r\n\tfolded   with  spaces\r\n"
    "Date: Fri, 11 Jul 2003 21:00:37 -0700\r\n"
    "Message-ID: <1@example.com>\r\n"
    "\r\n"
    "Hi.  \r\n\r\nA line with trailing space \r\n\xe9\xe8 8-bit bytes\r\n\r\n\r\n";

struct Keys {
    TestKey rsa = make_key(KeyType::rsa, "example.com", "rsa");
    TestKey ed = make_key(KeyType::ed25519, "example.com", "ed");
    KeyTable table() const {
        return {{"rsa._domainkey.example.com", rsa.record}, {"ed._domainkey.example.com", ed.record}};
    }
};
const Keys& keys() {
    static Keys k;
    return k;
}

SignParams params(Canon h, Canon b) {
    SignParams p;
    p.header_canon = h;
    p.body_canon = b;
    p.timestamp = 1'700'000'000;
    return p;
}
}  // namespace

TEST_CASE("dkim verify: RSA and Ed25519 signatures pass in all four canonicalisations", "[dkim][verify]") {
    for (auto h : {Canon::simple, Canon::relaxed}) {
        for (auto b : {Canon::simple, Canon::relaxed}) {
            auto signed_msg = sign_message(message, {keys().rsa.signing, keys().ed.signing}, params(h, b));
            REQUIRE(signed_msg.rfind("DKIM-Signature:", 0) == 0);
            auto r = verify_message(signed_msg, keys().table());
            REQUIRE(r.size() == 2);
            CHECK(r[0].result == Result::pass);
            CHECK(r[0].algorithm == "rsa-sha256");
            CHECK(r[1].result == Result::pass);
            CHECK(r[1].algorithm == "ed25519-sha256");
            CHECK(r[0].detail.empty());
            // Chunked one byte at a time: same result.
            auto r1 = verify_message(signed_msg, keys().table(), {}, 1'700'000'000, 1);
            CHECK(r1[0].result == Result::pass);
            CHECK(r1[1].result == Result::pass);
        }
    }
}

TEST_CASE("dkim verify: one modified byte makes every signature fail", "[dkim][verify]") {
    auto signed_msg = sign_message(message, {keys().rsa.signing, keys().ed.signing},
                                   params(Canon::relaxed, Canon::relaxed));
    auto body_at = signed_msg.find("A line");
    auto b = signed_msg;
    b[body_at] = 'B';
    auto r = verify_message(b, keys().table());
    CHECK(r[0].result == Result::fail);
    CHECK(r[0].detail == "body hash did not verify");
    CHECK(r[1].result == Result::fail);
    auto h = signed_msg;
    h[h.find("Suzie")] = 'X';
    r = verify_message(h, keys().table());
    CHECK(r[0].result == Result::fail);
    CHECK(r[0].detail == "signature did not verify");
    CHECK(r[1].result == Result::fail);
    // An added (oversigned) Subject breaks it too.
    auto added = "Subject: another\r\n" + signed_msg;
    r = verify_message(added, keys().table());
    CHECK(r[0].result == Result::fail);
}

TEST_CASE("dkim verify: a failure under a testing key (t=y) is neutral, a pass stays pass",
          "[dkim][verify]") {
    auto table = keys().table();
    table["rsa._domainkey.example.com"] = "v=DKIM1; t=y; " + table["rsa._domainkey.example.com"].substr(9);
    auto signed_msg = sign_message(message, {keys().rsa.signing}, params(Canon::relaxed, Canon::relaxed));
    auto r = verify_message(signed_msg, table);
    REQUIRE(r.size() == 1);
    CHECK(r[0].result == Result::pass);
    CHECK(r[0].testing);
    auto broken = signed_msg;
    broken[broken.find("A line")] = 'B';
    r = verify_message(broken, table);
    CHECK(r[0].result == Result::neutral);
    CHECK(r[0].detail == "body hash did not verify (key in testing mode, t=y)");
    // Without t=y the same bytes fail.
    CHECK(verify_message(broken, keys().table())[0].result == Result::fail);
}

TEST_CASE("dkim verify: empty body, no final CRLF, long lines", "[dkim][verify]") {
    for (std::string body : {std::string(), std::string("no newline"), std::string(100000, 'x') + "\r\n",
                             std::string("\r\n\r\n")}) {
        auto raw = "From: joe@example.com\r\nSubject: x\r\n\r\n" + body;
        for (auto c : {Canon::simple, Canon::relaxed}) {
            auto s = sign_message(raw, {keys().ed.signing}, params(c, c));
            auto r = verify_message(s, keys().table());
            REQUIRE(r.size() == 1);
            CHECK(r[0].result == Result::pass);
        }
    }
}

TEST_CASE("dkim verify: key problems are permerror, DNS trouble temperror, policy refusals policy",
          "[dkim][verify]") {
    auto s = sign_message(message, {keys().rsa.signing}, params(Canon::relaxed, Canon::relaxed));
    CHECK(verify_message(s, {})[0].result == Result::permerror);  // no key
    CHECK(verify_message(s, {{"rsa._domainkey.example.com", "v=DKIM1; p="}})[0].detail ==
          "key revoked (empty p=)");
    CHECK(verify_message(s, {{"rsa._domainkey.example.com", keys().ed.record}})[0].result ==
          Result::permerror);
    CHECK(verify_message(s, {{"rsa._domainkey.example.com", keys().rsa.record + "; h=sha1"}})[0].result ==
          Result::permerror);
    CHECK(verify_message(s, {{"rsa._domainkey.example.com", "v=DKIM1; p=!!!"}})[0].result ==
          Result::permerror);
    // Wrong key of the right type: the signature does not verify.
    auto other = make_key(KeyType::rsa, "example.com", "rsa");
    CHECK(verify_message(s, {{"rsa._domainkey.example.com", other.record}})[0].result == Result::fail);
    // temperror
    auto m = vigil::core::parse_message(s);
    Verifier v;
    auto refs = header_refs(m.headers);
    v.begin(refs, 1'700'000'000);
    v.body(m.body);
    auto r = v.finish(refs, [](const std::string&) {
        return key_from_answer(vigil::dns::Answer::failure(vigil::dns::Status::timeout, ""));
    });
    CHECK(r[0].result == Result::temperror);
    // RSA under 1024 bits (RFC 8301) is policy.
    auto small = make_key(KeyType::rsa, "example.com", "small", 768);
    auto s2 = sign_message(message, {small.signing}, params(Canon::relaxed, Canon::relaxed));
    auto r2 = verify_message(s2, {{"small._domainkey.example.com", small.record}});
    CHECK(r2[0].result == Result::policy);
    VerifyOptions lax;
    lax.min_rsa_bits = 512;
    CHECK(verify_message(s2, {{"small._domainkey.example.com", small.record}}, lax)[0].result ==
          Result::pass);
}

TEST_CASE("dkim verify: t= and x= against the clock with skew", "[dkim][verify]") {
    auto p = params(Canon::relaxed, Canon::relaxed);
    p.expire_after = 3600;
    auto s = sign_message(message, {keys().ed.signing}, p);
    CHECK(verify_message(s, keys().table(), {}, 1'700'000'000 + 3600)[0].result == Result::pass);
    CHECK(verify_message(s, keys().table(), {}, 1'700'000'000 + 3600 + 301)[0].result == Result::permerror);
    CHECK(verify_message(s, keys().table(), {}, 1'700'000'000 - 200)[0].result ==
          Result::pass);  // within skew
    CHECK(verify_message(s, keys().table(), {}, 1'700'000'000 - 400)[0].result ==
          Result::permerror);  // future t=
}

TEST_CASE("dkim verify: l= honoured and reported; absurd l= is permerror", "[dkim][verify]") {
    auto s = sign_message(message, {keys().ed.signing}, params(Canon::simple, Canon::simple));
    auto m = vigil::core::parse_message(s);
    // Re-sign by hand with l=5 over the simple body: build the field text, then compute b=.
    std::string body_c = "Hi.  ";
    auto bh = base64_encode(digest(HashAlg::sha256, body_c));
    std::string value =
        " v=1; a=ed25519-sha256; c=simple/simple; d=example.com; s=ed; l=5; h=from:subject; bh=" + bh +
        "; b=";
    auto refs = header_refs(m.headers);
    refs.erase(refs.begin());  // drop the generated signature
    auto b = compute_b(*keys().ed.signing, HashAlg::sha256, Canon::simple, refs, {"from", "subject"}, value,
                       value.size(), value.size());
    REQUIRE(b);
    std::string msg = "DKIM-Signature:" + value + *b + "\r\n";
    for (const auto& h : refs) msg += std::string(h.name) + ":" + std::string(h.value) + "\r\n";
    msg += "\r\n" + m.body + "Appended by someone else\r\n";
    auto r = verify_message(msg, keys().table());
    CHECK(r[0].result == Result::pass);
    CHECK(r[0].length_used);
    auto absurd = msg;
    absurd.replace(absurd.find("l=5"), 3, "l=999999999999");
    r = verify_message(absurd, keys().table());
    CHECK(r[0].result == Result::permerror);
    CHECK(r[0].detail.find("exceeds") != std::string::npos);
}

TEST_CASE("dkim verify: only max_signatures are verified; no signature is none", "[dkim][verify]") {
    auto s = sign_message(message, {keys().ed.signing, keys().ed.signing, keys().ed.signing},
                          params(Canon::relaxed, Canon::relaxed));
    VerifyOptions o;
    o.max_signatures = 2;
    auto r = verify_message(s, keys().table(), o);
    REQUIRE(r.size() == 3);
    CHECK(r[0].result == Result::pass);
    CHECK(r[1].result == Result::pass);
    CHECK(r[2].result == Result::neutral);
    CHECK(r[2].detail == "not verified: more than 2 signatures");
    CHECK(verify_message(message, keys().table()).empty());
}

TEST_CASE("dkim verify: junk signatures and a million tiny chunks stay bounded", "[dkim][verify]") {
    std::string junk =
        "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=rsa; h=from; bh=@@@; b=@@@\r\n"
        "DKIM-Signature: \x01\x02\xff garbage\r\n"
        "DKIM-Signature:\r\n";
    auto s = sign_message(message, {keys().rsa.signing}, params(Canon::relaxed, Canon::relaxed));
    auto r = verify_message(junk + s, keys().table());
    REQUIRE(r.size() == 4);
    CHECK(r[0].result == Result::permerror);
    CHECK(r[1].result == Result::permerror);
    CHECK(r[2].result == Result::permerror);
    CHECK(r[3].result == Result::pass);
    // b= of the wrong length
    auto wrong = s;
    auto bpos = wrong.find("\tb=") + 3;
    wrong.insert(bpos, "AAAA");
    CHECK(verify_message(wrong, keys().table())[0].result == Result::fail);

    std::string big_body;
    for (int i = 0; i < 1'000'000; ++i) big_body += (i % 40 == 39) ? '\n' : 'a';
    auto raw = "From: joe@example.com\r\n\r\n" + big_body;
    auto signed_big = sign_message(raw, {keys().ed.signing}, params(Canon::relaxed, Canon::relaxed));
    auto rr = verify_message(signed_big, keys().table(), {}, 1'700'000'000, 1);
    CHECK(rr[0].result == Result::pass);
}

TEST_CASE("dkim sign: refuses a message without From; oversigns", "[dkim][sign]") {
    CHECK(sign_message("Subject: x\r\n\r\nbody\r\n", {keys().rsa.signing},
                       params(Canon::relaxed, Canon::relaxed))
              .rfind("ERROR:", 0) == 0);
    auto s = sign_message(message, {keys().rsa.signing}, params(Canon::relaxed, Canon::relaxed));
    auto m = vigil::core::parse_message(s);
    auto p = parse_signature(m.headers[0].value);
    REQUIRE(p.sig);
    auto& h = p.sig->signed_headers;
    CHECK(std::count(h.begin(), h.end(), "from") == 2);
    CHECK(std::count(h.begin(), h.end(), "subject") == 2);
    CHECK(std::count(h.begin(), h.end(), "cc") == 1);
    CHECK(std::count(h.begin(), h.end(), "received") == 0);
    // Every line of the field stays within 78 columns apart from b= (72 characters a line).
    for (std::size_t pos = 0, next; pos < m.headers[0].value.size(); pos = next + 2) {
        next = m.headers[0].value.find("\r\n", pos);
        if (next == std::string::npos) next = m.headers[0].value.size();
        CHECK(next - pos <= 78);
    }
}
