#include "milter/eom_gate.hpp"

#include <sched.h>

namespace vigil::milter {
namespace {

std::size_t usable_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? static_cast<std::size_t>(n) : 1;
}

}  // namespace

EomGate::EomGate(std::size_t slots) : slots_(slots > 0 ? slots : usable_cpus()), free_(slots_) {}

EomGate::Slot::Slot(EomGate& gate) : gate_(gate), hook_(*this) {
    gate_.acquire();
}

EomGate::Slot::~Slot() {
    gate_.release();
}

void EomGate::acquire() noexcept {
    std::unique_lock lock(mutex_);
    // A free slot means nobody waits: release() hands a slot straight to the oldest waiter.
    if (free_ > 0) {
        --free_;
        return;
    }
    Waiter me;
    (tail_ != nullptr ? tail_->next : head_) = &me;
    tail_ = &me;
    ++waiting_;
    me.cv.wait(lock, [&] { return me.granted; });
}

void EomGate::release() noexcept {
    std::lock_guard lock(mutex_);
    if (head_ == nullptr) {
        ++free_;
        return;
    }
    // The slot passes straight to the oldest waiter: nobody can take it in between. The waiter's
    // frame outlives this: it cannot return from its wait before we unlock.
    Waiter* next = head_;
    head_ = next->next;
    if (head_ == nullptr) tail_ = nullptr;
    --waiting_;
    next->granted = true;
    next->cv.notify_one();
}

std::size_t EomGate::waiting() const {
    std::lock_guard lock(mutex_);
    return waiting_;
}

}  // namespace vigil::milter
