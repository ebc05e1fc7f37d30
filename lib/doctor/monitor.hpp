#pragma once
// The reputation monitor inside vigil-milter: every [monitor] interval it looks the server's own
// sending IPs up on the watched block and allow lists, on its own thread (never on the mail path),
// and logs a summary after the first round and a warning whenever an IP becomes listed or de-listed.
// "Cannot tell" (a refusal code, a timeout) never counts as de-listed: the last known state stays.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/clock.hpp"
#include "core/ip_address.hpp"
#include "doctor/doctor_limits.hpp"
#include "doctor/lists.hpp"

namespace vigil::dns {
class Resolver;
}

namespace vigil::doctor {

class Monitor {
  public:
    struct Options {
        std::vector<core::IpAddress> ips;
        std::vector<WatchedList> lists;
        std::chrono::seconds interval = limits::default_interval;
        std::chrono::milliseconds timeout = limits::default_timeout;  // one round's DNS wait
    };
    enum class Priority { notice, warning };
    // Called from the monitor's thread (or run_once's caller); must not block for long.
    using Log = std::function<void(Priority, const std::string&)>;

    // `resolver` and `clock` must outlive the monitor.
    Monitor(Options options, dns::Resolver& resolver, const core::Clock& clock, Log log);
    ~Monitor();
    Monitor(const Monitor&) = delete;
    Monitor& operator=(const Monitor&) = delete;

    // One round over every (IP, list). The first logs the summary; later ones log changes.
    void run_once();
    // Runs rounds on a thread of its own (with every signal blocked, so SIGTERM stays libmilter's)
    // until stop(): the first at once, then one per interval.
    void start();
    // Wakes the thread and joins it; a round waiting on DNS gives up within limits::stop_poll.
    void stop();
    std::size_t rounds() const;

  private:
    enum class State { unknown, clean, listed };
    struct Status {
        State state = State::unknown;  // the last known answer; "cannot tell" does not change it
        bool cannot_tell = false;      // the last round could not tell
        std::chrono::system_clock::time_point since;  // when `state` began (for de-listing lines)
    };
    bool stopping() const;

    Options options_;
    dns::Resolver* resolver_;
    const core::Clock* clock_;
    Log log_;
    // (ip index, list index) -> last known status
    std::map<std::pair<std::size_t, std::size_t>, Status> last_;
    std::size_t rounds_ = 0;

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace vigil::doctor
