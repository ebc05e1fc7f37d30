#include "core/wait_hook.hpp"

namespace vigil::core {
namespace {

thread_local WaitHook* t_hook = nullptr;

}  // namespace

ScopedWaitHook::ScopedWaitHook(WaitHook& hook) noexcept : previous_(t_hook) {
    t_hook = &hook;
}

ScopedWaitHook::~ScopedWaitHook() {
    t_hook = previous_;
}

BlockingWait::BlockingWait() noexcept : hook_(t_hook) {
    if (hook_ != nullptr) hook_->before_wait();
}

BlockingWait::~BlockingWait() {
    if (hook_ != nullptr) hook_->after_wait();
}

}  // namespace vigil::core
