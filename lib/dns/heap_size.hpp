#pragma once
// What objects really take on the heap, for the DNS cache's byte budget. The figures model glibc's
// malloc and libstdc++'s containers on 64-bit Linux (Debian 12); test/unit/dns/cache_test.cpp checks
// the cache's total against mallinfo2() so the model cannot drift unnoticed.
#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

namespace vigil::dns::heap {

// A malloc block: the request plus glibc's 8-byte size field, rounded up to 16, at least 32 bytes.
constexpr std::size_t block(std::size_t request) {
    return request == 0 ? 0 : std::max<std::size_t>(32, (request + 8 + 15) / 16 * 16);
}

// The heap buffer of a string: none while it fits in the object itself (short-string optimization).
inline std::size_t of(const std::string& s) {
    const char* self = reinterpret_cast<const char*>(&s);
    if (s.data() >= self && s.data() < self + sizeof s) return 0;
    return block(s.capacity() + 1);
}

// The element buffer of a vector (not what the elements themselves own).
template <class T>
std::size_t buffer_of(const std::vector<T>& v) {
    return block(v.capacity() * sizeof(T));
}

// std::make_shared puts the object next to its counts (a vtable pointer and two 32-bit counts) in
// one block.
inline constexpr std::size_t shared_counts = 16;
template <class T>
constexpr std::size_t make_shared_block() {
    return block(sizeof(T) + shared_counts);
}

}  // namespace vigil::dns::heap
