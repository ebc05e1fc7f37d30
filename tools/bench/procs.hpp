#pragma once
// The processes a benchmark run starts (test DNS server, filters) and what /proc says about them.
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "tools/bench/load.hpp"

namespace vigil::bench {

// A child process; stopped (SIGTERM, then SIGKILL) when the object goes away.
class Child {
  public:
    Child() = default;
    // argv[0] is looked up in PATH when it has no slash. stdout and stderr go to `log` (appended);
    // with `cpu` set the command runs under `taskset -c CPU`.
    Child(std::vector<std::string> argv, const std::string& log, std::optional<int> cpu = std::nullopt);
    Child(Child&& o) noexcept { *this = std::move(o); }
    Child& operator=(Child&& o) noexcept;
    ~Child() { stop(); }

    pid_t pid() const { return pid_; }
    bool running();
    // SIGTERM, wait up to `grace_s`, then SIGKILL. libmilter notices SIGTERM only at its next ~1-5 s
    // poll, so the grace is short by default.
    int stop(double grace_s = 0.5);
    // Reads one line of stdout when started with a stdout pipe (start_with_pipe).
    std::string read_line(double timeout_s);
    static Child start_with_pipe(std::vector<std::string> argv, const std::string& log);
    const std::string& log() const { return log_; }

  private:
    pid_t pid_ = -1;
    int out_fd_ = -1;
    int status_ = 0;
    std::string log_;
};

// Waits until something accepts connections at `target` (the probe connection is closed at once;
// libmilter shrugs that off). False if the child died or the time ran out.
bool wait_listening(const Target& target, Child& child, double timeout_s);

// utime + stime of the whole process (every thread), seconds; `sys` gets stime alone.
std::optional<double> cpu_seconds(pid_t pid, double* sys = nullptr);
// VmHWM (peak resident set) and VmRSS, KiB.
std::optional<long> vm_kib(pid_t pid, const char* field);
// Resets VmHWM to the current RSS (writes 5 to /proc/PID/clear_refs, Linux >= 4.0).
bool reset_peak_rss(pid_t pid);

// Reads a whole file; empty when it cannot be read.
std::string slurp(const std::string& path);
// A port on 127.0.0.1 that was free just now.
int free_port();
// PATH lookup; empty when not found.
std::string which(const std::string& name);

}  // namespace vigil::bench
