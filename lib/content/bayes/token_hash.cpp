#include "content/bayes/token_hash.hpp"

#include <cstring>

namespace vigil::content::bayes {

namespace {

inline std::uint64_t rotl(std::uint64_t x, int b) {
    return (x << b) | (x >> (64 - b));
}

inline std::uint64_t load_le64(const unsigned char* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

struct State {
    std::uint64_t v0, v1, v2, v3;
    void round() {
        v0 += v1;
        v1 = rotl(v1, 13);
        v1 ^= v0;
        v0 = rotl(v0, 32);
        v2 += v3;
        v3 = rotl(v3, 16);
        v3 ^= v2;
        v0 += v3;
        v3 = rotl(v3, 21);
        v3 ^= v0;
        v2 += v1;
        v1 = rotl(v1, 17);
        v1 ^= v2;
        v2 = rotl(v2, 32);
    }
};

}  // namespace

std::uint64_t siphash13(const HashKey& key, std::string_view data) {
    State s{0x736f6d6570736575ULL ^ key.k0, 0x646f72616e646f6dULL ^ key.k1, 0x6c7967656e657261ULL ^ key.k0,
            0x7465646279746573ULL ^ key.k1};
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    std::size_t n = data.size();
    std::size_t whole = n & ~std::size_t{7};
    for (std::size_t i = 0; i < whole; i += 8) {
        std::uint64_t m = load_le64(p + i);
        s.v3 ^= m;
        s.round();
        s.v0 ^= m;
    }
    std::uint64_t b = static_cast<std::uint64_t>(n) << 56;
    for (std::size_t i = whole; i < n; ++i) b |= static_cast<std::uint64_t>(p[i]) << (8 * (i - whole));
    s.v3 ^= b;
    s.round();
    s.v0 ^= b;
    s.v2 ^= 0xff;
    s.round();
    s.round();
    s.round();
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

}  // namespace vigil::content::bayes
