#pragma once
// The process around the libmilter callbacks: configuration ownership and reload, logging,
// socket set-up and privilege drop.
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "dns/cache.hpp"
#include "doctor/monitor.hpp"
#include "engine/config.hpp"
#include "engine/runtime.hpp"
#include "milter/eom_gate.hpp"

namespace vigil::milter {

class Daemon {
  public:
    Daemon(std::string config_path, engine::Overrides overrides, std::shared_ptr<const engine::Config> config,
           bool foreground);

    std::shared_ptr<const engine::Config> config() const;
    // Re-reads the file; on any error logs why and keeps the running configuration. Either way logs
    // the DNS cache's figures (log_dns_cache).
    bool reload();
    // The shared DNS cache's counters and size, for the log and a metrics endpoint; after start_runtime.
    dns::CacheStats dns_cache_stats() const;
    // One line: entries, bytes against the budget, hits, misses, evictions (at reload and at stop).
    void log_dns_cache() const;
    bool foreground() const { return foreground_; }
    // Builds the shared resolver; after dropping privileges, before serving.
    void start_runtime();
    engine::Services services() const { return runtime_->services(); }
    // The reputation monitor ([monitor]) on its own thread, off the mail path; after start_runtime.
    // Its settings are read once: changing them takes a restart.
    void start_monitor();
    void stop_monitor();

    // A libmilter callback at work: a stop waits for those running before the resolver and stores
    // they use go away, and one that starts after the stop must touch neither (stopping()).
    // Sequentially consistent on both sides, so a callback and the stop always see each other.
    class CallbackScope {
      public:
        explicit CallbackScope(Daemon& d) : d_(d) { d_.running_.fetch_add(1); }
        ~CallbackScope() { d_.running_.fetch_sub(1); }
        CallbackScope(const CallbackScope&) = delete;
        CallbackScope& operator=(const CallbackScope&) = delete;
        bool stopping() const { return d_.stopping_.load(); }

      private:
        Daemon& d_;
    };
    // Once libmilter's listener has returned: marks the stop and waits at most `limit` for the
    // callbacks still running. Returns how many still were.
    int quiesce(std::chrono::milliseconds limit);

    // End-of-message evaluations take a slot here (one per CPU, in turn).
    EomGate& eom_gate() { return eom_gate_; }

  private:
    bool reload_config();
    std::string path_;
    engine::Overrides overrides_;
    mutable std::mutex mutex_;
    std::shared_ptr<const engine::Config> config_;
    bool foreground_;
    std::unique_ptr<engine::Runtime> runtime_;
    std::unique_ptr<doctor::Monitor> monitor_;  // after runtime_: stopped before its resolver goes
    std::atomic<int> running_{0};               // callbacks at work (CallbackScope)
    EomGate eom_gate_;
    std::atomic<bool> stopping_{false};
};

// openlog(LOG_MAIL) as "vigil-milter[PID]"; `foreground` mirrors every line to stderr.
void open_log(bool foreground);

// syslog(LOG_MAIL) at the given priority; peer data must already be made printable.
void log_line(int priority, const std::string& line);

// Sets TCP_NODELAY on the listening inet sockets libmilter opened, so that the sockets it accepts
// inherit it (Linux copies the option to accepted sockets). Returns how many sockets were set.
int set_nodelay_on_listeners();

// Drops to the configured user and group; refuses to keep running as root unless allowed.
// Returns an error text, or empty on success.
std::string drop_privileges(const engine::Config& config, const std::string& unix_socket_path);

}  // namespace vigil::milter
