#pragma once
// A thread may hold something other threads need while it computes but not while it sleeps:
// vigil-milter's end-of-message slots (milter/eom_gate.hpp) are held by a callback that may have to
// wait for a DNS answer. The holder installs a WaitHook for its thread; code that is about to block
// (dns::Pending::wait_until) opens a BlockingWait, which calls before_wait() first and after_wait()
// when the wait is over. Nothing happens on threads without a hook (vigil check, tests, the monitor).
//
// The hook is per thread, not per session: it lives exactly as long as the one callback that installed
// it, on the thread running that callback, so it does not break DESIGN.md's "no thread_local session
// state" (libmilter may run a session's next callback on another thread).
namespace vigil::core {

class WaitHook {
  public:
    // Both must not throw; after_wait() may block (to take back what before_wait() gave up).
    virtual void before_wait() noexcept = 0;
    virtual void after_wait() noexcept = 0;

  protected:
    ~WaitHook() = default;
};

// Installs `hook` on the calling thread for this object's lifetime; the previous one comes back after.
// Scopes nest: end them in the reverse order they began (as automatic variables do).
class ScopedWaitHook {
  public:
    explicit ScopedWaitHook(WaitHook& hook) noexcept;
    ~ScopedWaitHook();
    ScopedWaitHook(const ScopedWaitHook&) = delete;
    ScopedWaitHook& operator=(const ScopedWaitHook&) = delete;

  private:
    WaitHook* previous_;
};

// Around one blocking wait: the calling thread's hook gets before_wait() now and after_wait() at the
// end of the scope. Open it only when the thread is really about to sleep, and hold no lock the
// hook's holder could need (after_wait may wait for other threads).
class BlockingWait {
  public:
    BlockingWait() noexcept;
    ~BlockingWait();
    BlockingWait(const BlockingWait&) = delete;
    BlockingWait& operator=(const BlockingWait&) = delete;

  private:
    WaitHook* hook_;
};

}  // namespace vigil::core
