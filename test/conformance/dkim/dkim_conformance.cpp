// DKIM conformance: dkimpy's test data (Debian python3-dkim, or the transcription in
// ../shared/conformance/dkimpy-testdata) and the RFC 8463 Appendix A example. Third-party files are
// read where they are installed, never copied into the repository. Exit 0: all pass; 1: a failure;
// 77: no data found (skipped, with a message saying where it looked).
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "auth/dkim/sign.hpp"
#include "auth/dkim/verify.hpp"
#include "core/message.hpp"

using namespace vigil::auth::dkim;

namespace {

int failures = 0, passes = 0;

void expect(bool ok, const std::string& what) {
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
    (ok ? passes : failures)++;
}

bool exists(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0;
}

std::string slurp(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

using Records = std::map<std::string, std::string>;

Records read_tsv(const std::string& path, std::vector<std::string>* alternatives = nullptr) {
    Records r;
    std::istringstream in(slurp(path));
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("#ALT\t", 0) == 0 || line.rfind("#ALT ", 0) == 0) {
            auto rest = line.substr(5);
            auto t1 = rest.find('\t');
            if (alternatives && t1 != std::string::npos) {
                auto t2 = rest.find('\t', t1 + 1);
                alternatives->push_back(
                    rest.substr(t1 + 1, t2 == std::string::npos ? std::string::npos : t2 - t1 - 1));
            }
            continue;
        }
        if (line.empty() || line[0] == '#') continue;
        auto t1 = line.find('\t');
        if (t1 == std::string::npos) continue;
        auto t2 = line.find('\t', t1 + 1);
        r[line.substr(0, t1)] =
            line.substr(t1 + 1, t2 == std::string::npos ? std::string::npos : t2 - t1 - 1);
    }
    return r;
}

KeyOutcome lookup(const Records& records, const std::string& name) {
    auto it = records.find(name);
    if (it == records.end())
        return key_from_answer(vigil::dns::Answer::failure(vigil::dns::Status::nxdomain, ""));
    vigil::dns::Answer a;
    a.status = vigil::dns::Status::answer;
    vigil::dns::Record rec;
    rec.type = vigil::dns::RrType::txt;
    rec.txt = {it->second};
    a.records.push_back(rec);
    return key_from_answer(a);
}

std::vector<SignatureResult> verify(const std::string& raw, const Records& records, std::int64_t now) {
    auto m = vigil::core::parse_message(raw);
    auto refs = header_refs(m.headers);
    VerifyOptions o;
    Verifier v(o);
    v.begin(refs, now);
    v.body(m.body);
    return v.finish(refs, [&](const std::string& n) { return lookup(records, n); });
}

std::string results_text(const std::vector<SignatureResult>& rs) {
    std::string s;
    for (const auto& r : rs)
        s += std::string(to_string(r.result)) + "(" + r.selector + (r.detail.empty() ? "" : ": " + r.detail) +
             ") ";
    return s.empty() ? "none" : s;
}

bool all_pass(const std::vector<SignatureResult>& rs) {
    if (rs.empty()) return false;
    for (const auto& r : rs) {
        if (r.result != Result::pass) return false;
    }
    return true;
}

std::shared_ptr<SigningKey> load_key(const std::string& path, const std::string& domain,
                                     const std::string& selector) {
    auto parsed = parse_private_key(slurp(path));
    if (!parsed.key) return nullptr;
    auto k = std::make_shared<SigningKey>();
    k->domain = domain;
    k->selector = selector;
    k->type = parsed.type;
    k->key = std::shared_ptr<EVP_PKEY>(parsed.key.release(), PkeyFree{});
    k->file = path;
    return k;
}

std::string sign(const std::string& raw, std::shared_ptr<const SigningKey> key, Canon h, Canon b,
                 std::string* error = nullptr) {
    auto m = vigil::core::parse_message(raw);
    SignParams p;
    p.header_canon = h;
    p.body_canon = b;
    p.timestamp = 1'700'000'000;
    Signer s({std::move(key)}, p);
    s.body(m.body);
    auto out = s.finish(header_refs(m.headers));
    if (!out.error.empty()) {
        if (error) *error = out.error;
        return {};
    }
    std::string msg = "DKIM-Signature:" + out.values[0] + "\r\n";
    for (const auto& f : m.headers) msg += f.name + ":" + f.value + "\r\n";
    return msg + "\r\n" + m.body;
}

void dkimpy(const std::string& data, const std::string& tsv) {
    std::printf("# dkimpy test data: %s, DNS answers: %s\n", data.c_str(), tsv.c_str());
    std::vector<std::string> alts;
    auto records = read_tsv(tsv, &alts);
    const std::int64_t now = 1'700'000'000;
    struct Case {
        const char* file;
        const char* expected;  // pass, notpass, none
    };
    for (auto c : {Case{"rfc6376.signed.msg", "pass"}, Case{"rfc6376.signed.rsa.msg", "pass"},
                   Case{"ed25519test2.msg", "pass"}, Case{"test2.message", "pass"},
                   Case{"test.message.baddomain", "notpass"}, Case{"test.message", "none"}}) {
        auto rs = verify(slurp(data + "/" + c.file), records, now);
        bool ok = std::string(c.expected) == "pass"   ? all_pass(rs)
                  : std::string(c.expected) == "none" ? rs.empty()
                                                      : (!rs.empty() && !all_pass(rs));
        expect(ok, std::string("verify ") + c.file + " expected " + c.expected + ": " + results_text(rs));
    }
    // Sign-then-verify round trips, all four canonicalisations.
    struct Sign {
        const char* msg;
        const char* key;
        const char* selector;
        const char* domain;
    };
    for (auto s : {Sign{"test.message", "test.private", "test", "example.com"},
                   Sign{"rfc6376.msg", "rfc8032_7_1.key", "brisbane", "football.example.com"},
                   Sign{"ed25519test.msg", "ed25519test.key", "test", "example.net"},
                   Sign{"rfc6376.w1258.msg", "test.private", "test", "football.example.com"},
                   Sign{"message.mbox", "test.private", "test", "example.com"}}) {
        auto key = load_key(data + "/" + s.key, s.domain, s.selector);
        if (!key) {
            expect(false, std::string("load key ") + s.key);
            continue;
        }
        for (auto h : {Canon::simple, Canon::relaxed}) {
            for (auto b : {Canon::simple, Canon::relaxed}) {
                auto signed_msg = sign(slurp(data + "/" + s.msg), key, h, b);
                auto rs = verify(signed_msg, records, now);
                // Our signature is on top; message.mbox also carries an older signature whose key is gone.
                expect(!rs.empty() && rs[0].result == Result::pass,
                       std::string("sign+verify ") + s.msg + " with " + s.key +
                           " c=" + std::string(to_string(h)) + "/" + std::string(to_string(b)) + ": " +
                           results_text(rs));
            }
        }
    }
    {
        std::string err;
        auto key = load_key(data + "/test.private", "example.com", "test");
        auto out =
            key ? sign(slurp(data + "/test_nofrom.message"), key, Canon::relaxed, Canon::relaxed, &err) : "";
        expect(key && out.empty() && !err.empty(), "signing test_nofrom.message is refused: " + err);
    }
    // RSA key encodings: each private key verifies under a selector publishing its public key as SPKI
    // or as a bare RSAPublicKey, and every such selector matches one of the keys.
    std::map<std::string, bool> selector_ok;
    for (auto keyfile : {"1024_testkey.key", "2048_testkey.key", "2048_testkey_PKCS8.key"}) {
        bool any = false;
        for (auto sel : {"test2", "test3", "test4", "test5"}) {
            auto key = load_key(data + "/" + keyfile, "example.com", sel);
            if (!key) break;
            auto rs =
                verify(sign(slurp(data + "/test.message"), key, Canon::relaxed, Canon::simple), records, now);
            if (all_pass(rs)) {
                any = true;
                selector_ok[sel] = true;
            }
        }
        expect(any, std::string("RSA key encoding ") + keyfile + " verifies under one of test2..test5");
    }
    for (auto sel : {"test2", "test3", "test4", "test5"})
        expect(selector_ok[sel], std::string("selector ") + sel + " usable");
    // Alternative key records for test._domainkey.example.com.
    if (alts.size() == 4) {
        auto key = load_key(data + "/test.private", "example.com", "test");
        auto msg = sign(slurp(data + "/test.message"), key, Canon::relaxed, Canon::relaxed);
        const char* expected[] = {"pass", "notpass", "notpass", "notpass"};
        const char* what[] = {"no v=/k= tags: implicit rsa", "v=DKIM1: (bad syntax)",
                              "unknown k=", "non-matching key"};
        for (std::size_t i = 0; i < 4; ++i) {
            auto r = records;
            r["test._domainkey.example.com"] = alts[i];
            auto rs = verify(msg, r, now);
            bool ok = std::string(expected[i]) == "pass" ? all_pass(rs) : (!rs.empty() && !all_pass(rs));
            expect(ok, std::string("alternative key record, ") + what[i] + ": " + results_text(rs));
        }
    } else {
        expect(false, "dns-records.tsv has 4 #ALT lines");
    }
}

void rfc8463(const std::string& dir) {
    std::printf("# RFC 8463 Appendix A: %s\n", dir.c_str());
    auto records = read_tsv(dir + "/dns-records.tsv");
    auto rs = verify(slurp(dir + "/signed-message.eml"), records, 1528637909);
    expect(rs.size() == 2 && all_pass(rs), "A.3 signed message: both signatures pass: " + results_text(rs));
    auto broken = verify(slurp(dir + "/signed-message-broken.eml"), records, 1528637909);
    expect(broken.size() == 2 && broken[0].result == Result::fail && broken[1].result == Result::fail,
           "A.3 with From changed: both fail: " + results_text(broken));

    // Re-sign the unsigned message with the published seed, tags and timestamp: same b= exactly.
    auto m = vigil::core::parse_message(slurp(dir + "/unsigned-message.eml"));
    auto signed_m = vigil::core::parse_message(slurp(dir + "/signed-message.eml"));
    BodyHashes bh;
    bh.register_need(Canon::relaxed, HashAlg::sha256, std::nullopt);
    bh.feed(m.body);
    bh.finish();
    auto body_hash = base64_encode(*bh.result(Canon::relaxed, HashAlg::sha256, std::nullopt));
    expect(body_hash == "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=", "A.3 body hash bh=" + body_hash);
    struct Sig {
        std::size_t field;
        const char* keyfile;
        const char* selector;
    };
    for (auto s : {Sig{0, "ed25519-private-seed.b64", "brisbane"}, Sig{1, "rsa-private.pem", "test"}}) {
        const auto& value = signed_m.headers[s.field].value;
        auto parsed = parse_signature(value);
        if (!parsed.sig) {
            expect(false, "parse A.3 signature");
            continue;
        }
        std::string tmpl = value.substr(0, parsed.sig->b_begin);  // everything up to "b="; b= is last
        auto key = load_key(dir + "/" + s.keyfile, "football.example.com", s.selector);
        auto b = key ? compute_b(*key, HashAlg::sha256, Canon::relaxed, header_refs(m.headers),
                                 parsed.sig->signed_headers, tmpl, tmpl.size(), tmpl.size())
                     : std::nullopt;
        expect(b && *b == parsed.sig->b_text,
               std::string("re-signing A.3 with ") + s.keyfile +
                   " reproduces b= exactly: " + (b ? b->substr(0, 16) : "(no signature)") + "...");
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::string shared = argc > 1 ? argv[1] : "";
    std::string installed = "/usr/lib/python3/dist-packages/dkim/tests/data";
    std::string data;
    if (exists(installed + "/test.private")) {
        data = installed;
    } else if (!shared.empty() && exists(shared + "/dkimpy-testdata/data/test.private")) {
        data = shared + "/dkimpy-testdata/data";
    }
    std::string tsv = shared + "/dkimpy-testdata/dns-records.tsv";
    bool did = false;
    if (!data.empty() && exists(tsv)) {
        dkimpy(data, tsv);
        did = true;
    } else {
        std::printf("# dkimpy data not found (looked in %s and %s/dkimpy-testdata): skipped\n",
                    installed.c_str(), shared.c_str());
    }
    if (!shared.empty() && exists(shared + "/rfc8463-appendix-a/signed-message.eml")) {
        rfc8463(shared + "/rfc8463-appendix-a");
        did = true;
    } else {
        std::printf("# RFC 8463 data not found under %s/rfc8463-appendix-a: skipped\n", shared.c_str());
    }
    if (!did) return 77;
    std::printf("# %d passed, %d failed\n", passes, failures);
    return failures == 0 ? 0 : 1;
}
