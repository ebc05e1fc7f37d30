#pragma once
// Time goes through this interface so tests can fix "now" (house rule 3).
#include <chrono>

namespace vigil::core {

class Clock {
  public:
    virtual ~Clock() = default;
    // Wall-clock time, for timestamps in headers, reports and signature expiry.
    virtual std::chrono::system_clock::time_point now() const = 0;
    // Monotonic time, for deadlines, budgets, TTLs and durations.
    virtual std::chrono::steady_clock::time_point monotonic() const = 0;
};

class SystemClock final : public Clock {
  public:
    std::chrono::system_clock::time_point now() const override { return std::chrono::system_clock::now(); }
    std::chrono::steady_clock::time_point monotonic() const override {
        return std::chrono::steady_clock::now();
    }
    static const SystemClock& instance() {
        static const SystemClock clock;
        return clock;
    }
};

}  // namespace vigil::core
