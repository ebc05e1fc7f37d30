#pragma once
// Helpers of the DKIM unit tests: keys made at test time, messages split like the MTA splits them,
// sign-then-verify without DNS.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "auth/dkim/sign.hpp"
#include "auth/dkim/verify.hpp"
#include "core/message.hpp"
#include "dns/resolver.hpp"

namespace vigil::test::dkim {

using namespace vigil::auth::dkim;

struct TestKey {
    std::shared_ptr<SigningKey> signing;
    std::string record;  // the TXT record to publish
};

inline TestKey make_key(KeyType type, std::string domain, std::string selector, unsigned bits = 2048) {
    auto g = generate_key(type, bits);
    auto parsed = parse_private_key(g.private_pem);
    TestKey k;
    k.signing = std::make_shared<SigningKey>();
    k.signing->domain = std::move(domain);
    k.signing->selector = std::move(selector);
    k.signing->type = parsed.type;
    k.signing->key = std::shared_ptr<EVP_PKEY>(parsed.key.release(), PkeyFree{});
    k.signing->file = "<generated>";
    k.record =
        std::string("v=DKIM1; k=") + (type == KeyType::rsa ? "rsa" : "ed25519") + "; p=" + g.public_b64;
    return k;
}

inline dns::Answer txt_answer(const std::string& name, const std::string& txt, std::uint32_t ttl = 300) {
    dns::Answer a;
    a.status = dns::Status::answer;
    a.ttl = ttl;
    dns::Record r;
    r.type = dns::RrType::txt;
    r.name = name;
    // Split in 255-byte strings as DNS would.
    for (std::size_t i = 0; i < txt.size(); i += 255) r.txt.push_back(txt.substr(i, 255));
    a.records.push_back(r);
    return a;
}

// key query name -> TXT record
using KeyTable = std::map<std::string, std::string>;

// Signs `raw` (LF or CRLF) with `keys`; returns the message with the signature fields on top (CRLF).
inline std::string sign_message(std::string_view raw, std::vector<std::shared_ptr<const SigningKey>> keys,
                                SignParams params, std::size_t chunk = 65535) {
    auto m = core::parse_message(raw);
    Signer signer(std::move(keys), std::move(params));
    for (std::size_t i = 0; i < m.body.size(); i += chunk)
        signer.body(std::string_view(m.body).substr(i, chunk));
    auto out = signer.finish(header_refs(m.headers));
    if (!out.error.empty()) return "ERROR: " + out.error;
    std::string msg;
    for (const auto& v : out.values) msg += "DKIM-Signature:" + v + "\r\n";
    for (const auto& h : m.headers) msg += h.name + ":" + h.value + "\r\n";
    msg += "\r\n" + m.body;
    return msg;
}

inline std::vector<SignatureResult> verify_message(std::string_view raw, const KeyTable& keys,
                                                   VerifyOptions opts = {}, std::int64_t now = 1'700'000'000,
                                                   std::size_t chunk = 65535) {
    auto m = core::parse_message(raw);
    Verifier v(opts);
    auto refs = header_refs(m.headers);
    v.begin(refs, now);
    for (std::size_t i = 0; i < m.body.size(); i += chunk) v.body(std::string_view(m.body).substr(i, chunk));
    return v.finish(refs, [&](const std::string& name) {
        auto it = keys.find(name);
        if (it == keys.end()) return key_from_answer(dns::Answer::failure(dns::Status::nxdomain, "no"));
        return key_from_answer(txt_answer(name, it->second));
    });
}

}  // namespace vigil::test::dkim
