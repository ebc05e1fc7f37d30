#pragma once
// Token hashes. A token (a word, a header or URL feature, a word pair) is stored only as a 64-bit
// hash, never as text: the store holds no message content, every entry has the same small size, and
// a look-up is one integer key.
//
// The hash is SipHash-1-3 (the reduced-round SipHash that Rust's and Python's hash tables use): keyed,
// so nobody can precompute colliding tokens without the key, and about 10 ns for a word. A 64-bit
// hash makes a collision among a store's few million tokens unlikely (~1e-7 for 2 million tokens).
// The key is fixed and part of the store format (tokenizer_id): every host that shares a store, and
// every restart, must hash the same word to the same token.
#include <cstdint>
#include <string_view>

namespace vigil::content::bayes {

struct HashKey {
    std::uint64_t k0;
    std::uint64_t k1;
};

// "vigil-bayes-tok1" as two little-endian words.
inline constexpr HashKey default_hash_key{0x6179622d6c696769ULL, 0x316b6f742d736579ULL};

std::uint64_t siphash13(const HashKey& key, std::string_view data);

// A word pair from the two words' hashes and their distance (1 = adjacent). Ordered: (a, b) is not
// (b, a). Not keyed again: the inputs already are.
inline std::uint64_t pair_hash(std::uint64_t earlier, std::uint64_t later, unsigned distance) {
    std::uint64_t x = earlier * 0x9E3779B97F4A7C15ULL;
    x ^= (later << 29 | later >> 35) + distance * 0xC2B2AE3D27D4EB4FULL;
    // murmur3's finaliser: every input bit reaches every output bit.
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDULL;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ULL;
    x ^= x >> 33;
    return x;
}

}  // namespace vigil::content::bayes
