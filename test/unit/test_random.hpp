#pragma once
// The repeatable generator of the differential tests: the same sequence on every machine (the C
// standard's example rand()), so a failing round can be replayed from its seed.
#include <cstdint>

namespace vigil::test {

class Lcg {
  public:
    explicit Lcg(std::uint32_t seed) : seed_(seed) {}
    std::uint32_t operator()() {
        seed_ = seed_ * 1103515245u + 12345u;
        return (seed_ >> 16) & 0x7fff;
    }

  private:
    std::uint32_t seed_;
};

}  // namespace vigil::test
