#pragma once
// Fakes for unit tests: a clock that only moves when told to.
#include <chrono>

#include "core/clock.hpp"

namespace vigil::test {

class FakeClock final : public core::Clock {
  public:
    std::chrono::system_clock::time_point now() const override { return wall_; }
    std::chrono::steady_clock::time_point monotonic() const override { return mono_; }
    void advance(std::chrono::milliseconds d) {
        wall_ += d;
        mono_ += d;
    }

  private:
    std::chrono::system_clock::time_point wall_{std::chrono::seconds(1'700'000'000)};
    std::chrono::steady_clock::time_point mono_{std::chrono::seconds(1000)};
};

}  // namespace vigil::test
