#pragma once
// [monitor]: the daemon's periodic look-up of the server's own addresses on block and allow lists
// (the monitor itself is in lib/doctor/monitor). Here, below the engine, so the engine's Config can
// hold it like any other section.
#include <chrono>
#include <string>
#include <vector>

#include "check/config_reader.hpp"

namespace vigil::reputation {

// Bounds of [monitor] interval.
inline constexpr std::chrono::seconds min_monitor_interval{1};
inline constexpr std::chrono::seconds max_monitor_interval{7 * 24 * 3600};

struct MonitorSettings {
    bool enabled = true;
    std::chrono::seconds interval{3600};
    // "configured" (the [checks.dnsbl] lists), "public" (the built-in set), or public list names;
    // `vigil doctor` checks the same lists.
    std::vector<std::string> lists{"configured", "public"};

    static MonitorSettings read(check::Section& s);
};

}  // namespace vigil::reputation
