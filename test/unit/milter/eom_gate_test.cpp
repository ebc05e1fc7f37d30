// vigil-milter's end-of-message slots: how many at once, in which order, and given up while the
// holder waits for DNS (core::WaitHook through dns::Pending::wait_until).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/wait_hook.hpp"
#include "dns/resolver.hpp"
#include "milter/eom_gate.hpp"

using vigil::milter::EomGate;
using namespace std::chrono_literals;

namespace {

// Polls `pred` for up to 10 s: threads get there when the scheduler lets them, not at a fixed time.
// Checked with CHECK, not REQUIRE: a failed REQUIRE would unwind past threads not yet joined.
template <class Pred>
bool eventually(Pred pred) {
    auto until = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < until) {
        if (pred()) return true;
        std::this_thread::sleep_for(1ms);
    }
    return pred();
}

struct CountingHook final : vigil::core::WaitHook {
    int before = 0, after = 0;
    void before_wait() noexcept override { ++before; }
    void after_wait() noexcept override { ++after; }
};

vigil::dns::Answer an_answer() {
    vigil::dns::Answer a;
    a.status = vigil::dns::Status::answer;
    return a;
}

}  // namespace

TEST_CASE("eom gate: one slot per usable CPU unless told", "[milter]") {
    EomGate by_cpus;
    CHECK(by_cpus.slots() >= 1);
    if (auto cpus = std::thread::hardware_concurrency(); cpus > 0) CHECK(by_cpus.slots() <= cpus);
    EomGate three(3);
    CHECK(three.slots() == 3);
}

TEST_CASE("eom gate: no more holders than slots; the next waits until one is given back", "[milter]") {
    EomGate gate(2);
    std::atomic<bool> third_in{false};
    std::optional<EomGate::Slot> a(std::in_place, gate), b(std::in_place, gate);
    std::thread t([&] {
        EomGate::Slot c(gate);
        third_in = true;
    });
    CHECK(eventually([&] { return gate.waiting() == 1; }));
    std::this_thread::sleep_for(20ms);
    CHECK_FALSE(third_in.load());
    b.reset();  // slots nest like the wait hooks they install: the last one taken goes first
    t.join();
    CHECK(third_in.load());
    CHECK(gate.waiting() == 0);
}

TEST_CASE("eom gate: slots go to the waiters in the order they asked", "[milter]") {
    EomGate gate(1);
    std::mutex m;
    std::vector<int> order;
    std::vector<std::thread> threads;
    {
        EomGate::Slot held(gate);
        for (int i = 0; i < 5; ++i) {
            threads.emplace_back([&, i] {
                EomGate::Slot s(gate);
                std::lock_guard lock(m);
                order.push_back(i);
            });
            // The next thread starts only once this one is queued, so the asking order is known.
            CHECK(eventually([&] { return gate.waiting() == static_cast<std::size_t>(i + 1); }));
        }
    }
    for (auto& t : threads) t.join();
    CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
}

TEST_CASE("eom gate: the slot is given up while its holder waits for DNS, and taken back after", "[milter]") {
    EomGate gate(1);
    vigil::dns::Promise promise;
    std::atomic<bool> holding{false}, answered{false}, taken{false}, let_go{false};
    std::thread holder([&] {
        EomGate::Slot s(gate);
        holding = true;
        auto a = promise.pending().wait_until(std::chrono::steady_clock::now() + 30s);
        answered = a.ok();
    });
    CHECK(eventually([&] { return holding.load(); }));
    // Another thread gets the only slot although the holder never left its scope: it gave the slot
    // up to wait. (Without that, `taken` stays false; completing the lookup below then frees it.)
    std::thread taker([&] {
        EomGate::Slot s(gate);
        taken = true;
        while (!let_go) std::this_thread::sleep_for(1ms);
    });
    CHECK(eventually([&] { return taken.load(); }));
    promise.complete(an_answer());
    // The answer is there, but the holder queues for the slot again before it goes on.
    CHECK(eventually([&] { return gate.waiting() == 1 || answered.load(); }));
    CHECK_FALSE(answered.load());
    let_go = true;
    taker.join();
    holder.join();
    CHECK(answered.load());
    CHECK(gate.waiting() == 0);
}

TEST_CASE("wait hook: called only when the thread really sleeps", "[milter][dns]") {
    CountingHook hook;
    vigil::core::ScopedWaitHook installed(hook);
    auto ready = vigil::dns::Pending::of(an_answer());
    CHECK(ready.wait_until(std::chrono::steady_clock::now() + 1s).ok());
    CHECK(hook.before == 0);
    CHECK(hook.after == 0);

    vigil::dns::Promise never;
    auto r = never.pending().wait_until(std::chrono::steady_clock::now() + 5ms);
    CHECK(r.status == vigil::dns::Status::timeout);
    CHECK(hook.before == 1);
    CHECK(hook.after == 1);
}

TEST_CASE("wait hook: a thread without one, and the previous hook after a nested one", "[milter][dns]") {
    vigil::dns::Promise never;
    // No hook installed: waiting works as before.
    CHECK(never.pending().wait_until(std::chrono::steady_clock::now() + 1ms).status ==
          vigil::dns::Status::timeout);
    CountingHook outer, inner;
    vigil::core::ScopedWaitHook a(outer);
    {
        vigil::core::ScopedWaitHook b(inner);
        never.pending().wait_until(std::chrono::steady_clock::now() + 1ms);
    }
    never.pending().wait_until(std::chrono::steady_clock::now() + 1ms);
    CHECK(inner.before == 1);
    CHECK(outer.before == 1);
    CHECK(outer.after == 1);
}
