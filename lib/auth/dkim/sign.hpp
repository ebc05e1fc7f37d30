#pragma once
// DKIM signing (RFC 6376 §5): streaming like verification; the signature field goes on top.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/dkim/canon.hpp"
#include "auth/dkim/crypto.hpp"
#include "auth/dkim/signature.hpp"

namespace vigil::auth::dkim {

struct SigningKey {
    std::string domain;    // d=
    std::string selector;  // s=
    KeyType type = KeyType::rsa;
    std::shared_ptr<EVP_PKEY> key;
    std::string file;  // where it came from, for messages
};

// Header fields signed by default, and those signed once more than they occur ("oversigned", so
// none can be added later without breaking the signature).
std::vector<std::string> default_signed_headers();
std::vector<std::string> default_oversigned_headers();

struct SignParams {
    Canon header_canon = Canon::relaxed;
    Canon body_canon = Canon::relaxed;
    std::vector<std::string> headers = default_signed_headers();       // lowercase
    std::vector<std::string> oversign = default_oversigned_headers();  // lowercase
    std::optional<std::int64_t> timestamp;                             // t=
    std::optional<std::int64_t> expire_after;                          // x= = t= + this (seconds)
};

// Signs one message with one or more keys. begin() ... body()* ... finish().
class Signer {
  public:
    Signer(std::vector<std::shared_ptr<const SigningKey>> keys, SignParams params);
    void body(std::string_view chunk) { hashes_.feed(chunk); }
    // The DKIM-Signature values (each starting with a space, folded with CRLF TAB), one per key, in
    // key order; or an error (e.g. no From field).
    struct Output {
        std::vector<std::string> values;
        std::string error;
    };
    Output finish(const std::vector<HeaderRef>& headers);

  private:
    std::vector<std::shared_ptr<const SigningKey>> keys_;
    SignParams params_;
    BodyHashes hashes_;
};

// The b= value for a signature field whose text (with an empty b= value at [b_begin, b_end)) is
// `sig_value`, over `headers` with the names in `signed_names`. For exact reproduction tests.
std::optional<std::string> compute_b(const SigningKey& key, HashAlg alg, Canon header_canon,
                                     const std::vector<HeaderRef>& headers,
                                     const std::vector<std::string>& signed_names, std::string_view sig_value,
                                     std::size_t b_begin, std::size_t b_end);

}  // namespace vigil::auth::dkim
