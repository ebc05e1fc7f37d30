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

void PkeyFree::operator()(EVP_PKEY* p) const {
    EVP_PKEY_free(p);
}
void MdCtxFree::operator()(EVP_MD_CTX* p) const {
    EVP_MD_CTX_free(p);
}
void PkeyCtxFree::operator()(EVP_PKEY_CTX* p) const {
    EVP_PKEY_CTX_free(p);
}

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

// Base64 alphabet value, or one of the classes below: one table look-up per character.
constexpr signed char b64_fws = -1, b64_pad = -2, b64_bad = -3;
constexpr std::array<signed char, 256> b64_table = [] {
    std::array<signed char, 256> t{};
    t.fill(b64_bad);
    for (int i = 0; i < 26; ++i) {
        t['A' + i] = static_cast<signed char>(i);
        t['a' + i] = static_cast<signed char>(26 + i);
    }
    for (int i = 0; i < 10; ++i) t['0' + i] = static_cast<signed char>(52 + i);
    t['+'] = 62;
    t['/'] = 63;
    t[' '] = t['\t'] = t['\r'] = t['\n'] = b64_fws;
    t['='] = b64_pad;
    return t;
}();

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    return len > 0 ? std::string(data, static_cast<std::size_t>(len)) : std::string();
}
}  // namespace

std::string_view to_string(HashAlg h) {
    return h == HashAlg::sha1 ? "sha1" : "sha256";
}
std::string_view to_string(KeyType k) {
    return k == KeyType::rsa ? "rsa" : "ed25519";
}

std::optional<std::string> base64_decode(std::string_view text) {
    // Written into a buffer sized up front: appending byte by byte cost more than decoding.
    std::string out(text.size() / 4 * 3 + 3, '\0');
    char* o = out.data();
    unsigned acc = 0;
    int bits = 0;
    std::size_t chars = 0, pad = 0;
    const char* p = text.data();
    const char* const end = p + text.size();
    auto value = [](char c) -> int { return b64_table[static_cast<unsigned char>(c)]; };
    while (p != end) {
        // A whole quantum of four alphabet characters at once, the common case between folds.
        if (bits == 0 && pad == 0 && end - p >= 4) {
            int a = value(p[0]), b = value(p[1]), c = value(p[2]), d = value(p[3]);
            if ((a | b | c | d) >= 0) {
                auto q = static_cast<unsigned>(a << 18 | b << 12 | c << 6 | d);
                o[0] = static_cast<char>(q >> 16);
                o[1] = static_cast<char>((q >> 8) & 0xff);
                o[2] = static_cast<char>(q & 0xff);
                o += 3;
                p += 4;
                chars += 4;
                continue;
            }
        }
        int v = value(*p++);
        if (v >= 0) {
            if (pad > 0) return std::nullopt;  // data after padding
            ++chars;
            acc = (acc << 6) | static_cast<unsigned>(v);
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                *o++ = static_cast<char>((acc >> bits) & 0xff);
            }
        } else if (v == b64_pad) {
            ++pad;
            ++chars;
        } else if (v == b64_bad) {
            return std::nullopt;
        }
    }
    if (chars % 4 != 0 || pad > 2) return std::nullopt;
    out.resize(static_cast<std::size_t>(o - out.data()));
    return out;
}

std::string base64_encode(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    int n =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
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

unsigned key_bits(const EVP_PKEY* key) {
    return static_cast<unsigned>(EVP_PKEY_get_bits(key));
}

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
    if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1 ||
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
    if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1 ||
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
    std::string out =
        base64_encode(std::string_view(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len)));
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
