#pragma once
// DKIM-Signature values (RFC 6376 §3.5) and key records (§3.6.1): pure parsers over string_view.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/dkim/canon.hpp"
#include "auth/dkim/crypto.hpp"

namespace vigil::auth::dkim {

// RFC 8601 dkim= results, kept distinct up to Authentication-Results.
enum class Result { none, pass, fail, neutral, policy, permerror, temperror };
std::string_view to_string(Result r);

struct Signature {
    std::string algorithm;  // as written, lowercase ("rsa-sha256")
    KeyType key_type = KeyType::rsa;
    HashAlg hash = HashAlg::sha256;
    Canon header_canon = Canon::simple;
    Canon body_canon = Canon::simple;
    std::string domain;                       // d=, lowercase
    std::string selector;                     // s=, lowercase
    std::string identity;                     // i= (default "@" + d=)
    std::vector<std::string> signed_headers;  // h=, lowercase, in order
    std::string body_hash;                    // bh= decoded
    std::string sig;                          // b= decoded
    std::string b_text;                       // b= with FWS removed (header.b is its first 8 characters)
    std::optional<std::uint64_t> length;      // l=
    std::optional<std::int64_t> timestamp, expiry;  // t=, x=
    // Offsets of the b= value in the field value (to blank it for hashing).
    std::size_t b_begin = 0, b_end = 0;
};

struct SignatureParse {
    std::optional<Signature> sig;
    Result error = Result::permerror;  // when !sig: permerror, or policy for a refused algorithm
    std::string detail;                // why (printable)
    // What could be read even from a broken signature (for results and reports).
    std::string domain, selector, algorithm, b_text, identity;
};

struct SignaturePolicy {
    bool allow_sha1 = false;
};

SignatureParse parse_signature(std::string_view value, const SignaturePolicy& policy = {});

// A DNS name made of LDH labels (d=, s=, and i='s domain).
bool valid_domain(std::string_view d);

struct KeyRecord {
    KeyType type = KeyType::rsa;
    std::vector<std::string> hashes;  // h=, empty: any
    bool testing = false;             // t=y
    bool strict = false;              // t=s
    bool revoked = false;             // p= empty
    std::string public_key;           // p= decoded
};
struct KeyRecordParse {
    std::optional<KeyRecord> key;
    std::string detail;
};
KeyRecordParse parse_key_record(std::string_view txt);

// The canonical header data a signature covers (everything but the final DKIM-Signature CRLF):
// the fields named in h=, chosen bottom-up for repeated names, then the signature field itself with
// its b= value blanked. `headers` are in message order, values exactly as after the colon.
struct HeaderRef {
    std::string_view name;
    std::string_view value;
};
std::string header_hash_input(const std::vector<HeaderRef>& headers, Canon canon,
                              const std::vector<std::string>& signed_names, std::string_view sig_name,
                              std::string_view sig_value, std::size_t b_begin, std::size_t b_end);

}  // namespace vigil::auth::dkim
