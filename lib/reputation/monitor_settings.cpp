#include "reputation/monitor_settings.hpp"

#include "reputation/public_lists.hpp"

namespace vigil::reputation {

MonitorSettings MonitorSettings::read(check::Section& s) {
    MonitorSettings m;
    m.enabled = s.get_bool("enabled", m.enabled);
    m.interval = std::chrono::seconds(s.get_int("interval", m.interval.count(), min_monitor_interval.count(),
                                                max_monitor_interval.count()));
    m.lists = s.get_strings("lists", m.lists);
    for (const auto& l : m.lists) {
        if (auto e = list_selector_error(l)) s.error("lists", *e);
    }
    s.finish();
    return m;
}

}  // namespace vigil::reputation
