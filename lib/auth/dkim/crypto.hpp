#pragma once
// The OpenSSL 3 pieces DKIM needs, behind RAII wrappers (EVP API only). Expected failures are values.
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

typedef struct evp_pkey_st EVP_PKEY;
typedef struct evp_md_ctx_st EVP_MD_CTX;
typedef struct evp_pkey_ctx_st EVP_PKEY_CTX;

namespace vigil::auth::dkim {

struct PkeyFree {
    void operator()(EVP_PKEY* p) const;
};
struct MdCtxFree {
    void operator()(EVP_MD_CTX* p) const;
};
struct PkeyCtxFree {
    void operator()(EVP_PKEY_CTX* p) const;
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

enum class HashAlg { sha1, sha256 };
enum class KeyType { rsa, ed25519 };
std::string_view to_string(HashAlg h);
std::string_view to_string(KeyType k);

// Strict base64 (RFC 4648 with padding); FWS inside is ignored, anything else is an error (nullopt).
std::optional<std::string> base64_decode(std::string_view text);
std::string base64_encode(std::string_view bytes);

// A streaming hash. Copyable by snapshot().
class Hasher {
  public:
    explicit Hasher(HashAlg alg);
    void update(std::string_view data);
    // Copies the running state into a fresh context and finishes that copy; this one goes on.
    std::string snapshot() const;
    std::string final();
    HashAlg alg() const { return alg_; }

  private:
    HashAlg alg_;
    MdCtxPtr ctx_;
};
std::string digest(HashAlg alg, std::string_view data);

// Public key from the decoded p= bytes: SubjectPublicKeyInfo, or for k=rsa also a bare RSAPublicKey
// (PKCS#1, which dkimpy and OpenDKIM accept), or for k=ed25519 the raw 32-byte key.
struct PublicKeyResult {
    PkeyPtr key;
    std::string error;
};
PublicKeyResult parse_public_key(KeyType type, std::string_view der);
unsigned key_bits(const EVP_PKEY* key);
bool key_is(const EVP_PKEY* key, KeyType type);

// Verifies `sig` over the already computed header hash `hash` (RFC 6376: RSASSA-PKCS1-v1_5 with
// `alg`; RFC 8463: Ed25519 over the SHA-256 hash).
bool verify_hash(EVP_PKEY* key, KeyType type, HashAlg alg, std::string_view hash, std::string_view sig);
// OpenSSL 3 looks the signature algorithm up on every verify_init; a context prepared once per cached
// key (RSA, PKCS#1 v1.5, `alg`) and duplicated per verification skips that. The prepared context is
// only ever read (duplicated), so one may serve every thread.
PkeyCtxPtr prepare_rsa_verify(EVP_PKEY* key, HashAlg alg);
bool verify_prepared(const EVP_PKEY_CTX* prepared, std::string_view hash, std::string_view sig);
// Signs `hash` the same way; nullopt on an OpenSSL failure.
std::optional<std::string> sign_hash(EVP_PKEY* key, KeyType type, HashAlg alg, std::string_view hash);

// Private keys: PEM (PKCS#1, PKCS#8; RSA or Ed25519), or a base64 32-byte Ed25519 seed (dkimpy's
// format). `error` says what is wrong, for a config error.
struct PrivateKeyResult {
    PkeyPtr key;
    KeyType type = KeyType::rsa;
    std::string error;
};
PrivateKeyResult parse_private_key(std::string_view text);
// Key generation for `vigil dkim keygen`; PEM (PKCS#8) text of the private key, and the p= value.
struct GeneratedKey {
    std::string private_pem;
    std::string public_b64;
    std::string error;
};
GeneratedKey generate_key(KeyType type, unsigned bits);
// p= value (base64 SubjectPublicKeyInfo for RSA, raw key for Ed25519) of a private or public key.
std::string public_key_b64(EVP_PKEY* key, KeyType type);

}  // namespace vigil::auth::dkim
