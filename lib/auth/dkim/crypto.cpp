#include "auth/dkim/crypto.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <array>
#include <new>

#include "auth/dkim/dkim_limits.hpp"

namespace vigil::auth::dkim {

void PkeyFree::operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
void MdCtxFree::operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
void PkeyCtxFree::operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }

namespace {
struct BioFree {
    void operator()(BIO* p) const { BIO_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

// Fetched once: an implicit fetch on every use costs more than hashing a small message.
const EVP_MD* md_of(HashAlg h) {
    static const EVP_MD* sha1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
    static const EVP_MD* sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return h == HashAlg::sha1 ? sha1 : sha256;
}

int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    return len > 0 ? std::string(data, static_cast<std::size_t>(len)) : std::string();
}
}  // namespace

std::string_view to_string(HashAlg h) { return h == HashAlg::sha1 ? "sha1" : "sha256"; }
std::string_view to_string(KeyType k) { return k == KeyType::rsa ? "rsa" : "ed25519"; }

std::optional<std::string> base64_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size() * 3 / 4);
    unsigned acc = 0;
    int bits = 0, chars = 0, pad = 0;
    for (char c : text) {
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
        if (c == '=') {
            ++pad;
            ++chars;
            continue;
        }
        if (pad > 0) return std::nullopt;  // data after padding
        int v = b64_value(c);
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

std::string base64_encode(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

Hasher::Hasher(HashAlg alg) : alg_(alg), ctx_(EVP_MD_CTX_new()) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), md_of(alg), nullptr) != 1) throw std::bad_alloc();
}

void Hasher::update(std::string_view data) {
    if (!data.empty()) EVP_DigestUpdate(ctx_.get(), data.data(), data.size());
}

std::string Hasher::snapshot() const {
    MdCtxPtr copy(EVP_MD_CTX_new());
    if (!copy || EVP_MD_CTX_copy_ex(copy.get(), ctx_.get()) != 1) return {};
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned len = 0;
    EVP_DigestFinal_ex(copy.get(), md.data(), &len);
    return std::string(reinterpret_cast<const char*>(md.data()), len);
}

std::string Hasher::final() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx_.get(), md.data(), &len);
    return std::string(reinterpret_cast<const char*>(md.data()), len);
}

std::string digest(HashAlg alg, std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned len = 0;
    EVP_Digest(data.data(), data.size(), md.data(), &len, md_of(alg), nullptr);
    return std::string(reinterpret_cast<const char*>(md.data()), len);
}

PublicKeyResult parse_public_key(KeyType type, std::string_view der) {
    PublicKeyResult r;
    if (der.empty() || der.size() > limits::max_public_key_bytes) {
        r.error = "public key data of " + std::to_string(der.size()) + " bytes";
        return r;
    }
    if (type == KeyType::ed25519) {
        if (der.size() == 32) {
            r.key.reset(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                                    reinterpret_cast<const unsigned char*>(der.data()), 32));
        }
        if (!r.key) r.error = "not a 32-byte Ed25519 public key";
        return r;
    }
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    r.key.reset(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
    if (!r.key || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
        r.key.reset();
        p = reinterpret_cast<const unsigned char*>(der.data());
        r.key.reset(d2i_PublicKey(EVP_PKEY_RSA, nullptr, &p, static_cast<long>(der.size())));
    }
    if (!r.key || EVP_PKEY_get_base_id(r.key.get()) != EVP_PKEY_RSA) {
        r.key.reset();
        r.error = "p= is not an RSA public key";
    }
    return r;
}

unsigned key_bits(const EVP_PKEY* key) { return static_cast<unsigned>(EVP_PKEY_get_bits(key)); }

bool key_is(const EVP_PKEY* key, KeyType type) {
    int id = EVP_PKEY_get_base_id(key);
    return type == KeyType::rsa ? id == EVP_PKEY_RSA : id == EVP_PKEY_ED25519;
}

bool verify_hash(EVP_PKEY* key, KeyType type, HashAlg alg, std::string_view hash, std::string_view sig) {
    const auto* h = reinterpret_cast<const unsigned char*>(hash.data());
    const auto* s = reinterpret_cast<const unsigned char*>(sig.data());
    if (type == KeyType::ed25519) {
        if (sig.size() != 64) return false;
        MdCtxPtr md(EVP_MD_CTX_new());
        if (!md || EVP_DigestVerifyInit(md.get(), nullptr, nullptr, nullptr, key) != 1) return false;
        return EVP_DigestVerify(md.get(), s, sig.size(), h, hash.size()) == 1;
    }
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new(key, nullptr));
    if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1 ||
        EVP_PKEY_CTX_set_signature_md(ctx.get(), md_of(alg)) != 1) {
        return false;
    }
    return EVP_PKEY_verify(ctx.get(), s, sig.size(), h, hash.size()) == 1;
}

PkeyCtxPtr prepare_rsa_verify(EVP_PKEY* key, HashAlg alg) {
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new(key, nullptr));
    if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1 ||
        EVP_PKEY_CTX_set_signature_md(ctx.get(), md_of(alg)) != 1) {
        return nullptr;
    }
    return ctx;
}

bool verify_prepared(const EVP_PKEY_CTX* prepared, std::string_view hash, std::string_view sig) {
    PkeyCtxPtr ctx(EVP_PKEY_CTX_dup(prepared));
    if (!ctx) return false;
    return EVP_PKEY_verify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                           reinterpret_cast<const unsigned char*>(hash.data()), hash.size()) == 1;
}

std::optional<std::string> sign_hash(EVP_PKEY* key, KeyType type, HashAlg alg, std::string_view hash) {
    const auto* h = reinterpret_cast<const unsigned char*>(hash.data());
    std::size_t len = 0;
    std::string out;
    if (type == KeyType::ed25519) {
        MdCtxPtr md(EVP_MD_CTX_new());
        if (!md || EVP_DigestSignInit(md.get(), nullptr, nullptr, nullptr, key) != 1) return std::nullopt;
        if (EVP_DigestSign(md.get(), nullptr, &len, h, hash.size()) != 1) return std::nullopt;
        out.resize(len);
        if (EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(out.data()), &len, h, hash.size()) != 1)
            return std::nullopt;
        out.resize(len);
        return out;
    }
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new(key, nullptr));
    if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1 ||
        EVP_PKEY_CTX_set_signature_md(ctx.get(), md_of(alg)) != 1) {
        return std::nullopt;
    }
    if (EVP_PKEY_sign(ctx.get(), nullptr, &len, h, hash.size()) != 1) return std::nullopt;
    out.resize(len);
    if (EVP_PKEY_sign(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, h, hash.size()) != 1)
        return std::nullopt;
    out.resize(len);
    return out;
}

PrivateKeyResult parse_private_key(std::string_view text) {
    PrivateKeyResult r;
    if (text.size() > limits::max_private_key_file) {
        r.error = "key file larger than " + std::to_string(limits::max_private_key_file) + " bytes";
        return r;
    }
    if (text.find("-----BEGIN") != std::string_view::npos) {
        BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
        if (bio) r.key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
        if (!r.key) {
            r.error = "not a readable PEM private key (truncated, encrypted or not a key)";
            return r;
        }
    } else {
        auto seed = base64_decode(text);
        if (!seed || seed->size() != 32) {
            r.error = "neither a PEM private key nor a base64 32-byte Ed25519 seed";
            return r;
        }
        r.key.reset(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr,
                                                 reinterpret_cast<const unsigned char*>(seed->data()), 32));
        if (!r.key) {
            r.error = "invalid Ed25519 seed";
            return r;
        }
    }
    if (key_is(r.key.get(), KeyType::rsa)) {
        r.type = KeyType::rsa;
    } else if (key_is(r.key.get(), KeyType::ed25519)) {
        r.type = KeyType::ed25519;
    } else {
        r.key.reset();
        r.error = "key is neither RSA nor Ed25519";
    }
    return r;
}

std::string public_key_b64(EVP_PKEY* key, KeyType type) {
    if (type == KeyType::ed25519) {
        std::array<unsigned char, 32> raw{};
        std::size_t len = raw.size();
        if (EVP_PKEY_get_raw_public_key(key, raw.data(), &len) != 1) return {};
        return base64_encode(std::string_view(reinterpret_cast<const char*>(raw.data()), len));
    }
    unsigned char* der = nullptr;
    int len = i2d_PUBKEY(key, &der);
    if (len <= 0) return {};
    std::string out = base64_encode(std::string_view(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len)));
    OPENSSL_free(der);
    return out;
}

GeneratedKey generate_key(KeyType type, unsigned bits) {
    GeneratedKey g;
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new_id(type == KeyType::rsa ? EVP_PKEY_RSA : EVP_PKEY_ED25519, nullptr));
    EVP_PKEY* raw = nullptr;
    if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
        (type == KeyType::rsa && EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), static_cast<int>(bits)) != 1) ||
        EVP_PKEY_keygen(ctx.get(), &raw) != 1) {
        g.error = "key generation failed";
        return g;
    }
    PkeyPtr key(raw);
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
        g.error = "cannot encode the private key";
        return g;
    }
    g.private_pem = bio_text(bio.get());
    g.public_b64 = public_key_b64(key.get(), type);
    return g;
}

}  // namespace vigil::auth::dkim
