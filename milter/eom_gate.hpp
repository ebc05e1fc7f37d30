#pragma once
// At most N end-of-message evaluations at once, granted in the order they asked.
//
// Why: libmilter starts a worker thread whenever a session has input and no worker is idle, so a
// saturated vigil-milter runs hundreds of threads, and the kernel shares the CPU among all of them:
// a message half-way through its checks waits its turn behind every other thread, again and again,
// and some connections wait seconds while others are answered at once. End of message is where
// most of Vigil's own CPU goes (the signature checks, DMARC, the header, the log line), so it alone is gated
// (gating every callback made each message pay a hand-over per packet: 40 % fewer msg/s); with one
// slot per CPU the others queue asleep, first come first served. README, Performance, has the
// measurement (256 connections: p99 0.14-1.8 s before, 72-74 ms after, same msg/s).
//
// A slot is given up while its holder waits for DNS (core::WaitHook, through dns::Pending): a slow
// name server must delay only the messages that need it.
#include <condition_variable>
#include <cstddef>
#include <mutex>

#include "core/wait_hook.hpp"

namespace vigil::milter {

class EomGate {
  public:
    // `slots` 0 means one per CPU this process may run on (sched_getaffinity).
    explicit EomGate(std::size_t slots = 0);
    EomGate(const EomGate&) = delete;
    EomGate& operator=(const EomGate&) = delete;

    std::size_t slots() const { return slots_; }

    // Holds a slot from construction to destruction (waiting for one first, in turn), and gives it up
    // around every blocking wait of this thread in between.
    class Slot final : core::WaitHook {
      public:
        explicit Slot(EomGate& gate);
        ~Slot();
        Slot(const Slot&) = delete;
        Slot& operator=(const Slot&) = delete;

      private:
        void before_wait() noexcept override { gate_.release(); }
        void after_wait() noexcept override { gate_.acquire(); }
        EomGate& gate_;
        core::ScopedWaitHook hook_;
    };

    // For tests: how many wait for a slot now.
    std::size_t waiting() const;

  private:
    struct Waiter {
        std::condition_variable cv;
        bool granted = false;
        Waiter* next = nullptr;
    };
    void acquire() noexcept;
    void release() noexcept;

    mutable std::mutex mutex_;
    std::size_t slots_;
    std::size_t free_;
    // Oldest first, each on its waiting thread's stack (no allocation), woken alone when granted.
    Waiter* head_ = nullptr;
    Waiter* tail_ = nullptr;
    std::size_t waiting_ = 0;
};

}  // namespace vigil::milter
