#include "doctor/finding.hpp"

namespace vigil::doctor {

std::string_view to_string(Level level) {
    switch (level) {
        case Level::ok:
            return "ok";
        case Level::warn:
            return "warn";
        case Level::fail:
            return "fail";
        case Level::unknown:
            return "unknown";
    }
    return "unknown";
}

Summary summarize(const std::vector<Finding>& findings) {
    Summary s;
    for (const auto& f : findings) {
        switch (f.level) {
            case Level::ok:
                ++s.ok;
                break;
            case Level::warn:
                ++s.warn;
                break;
            case Level::fail:
                ++s.fail;
                break;
            case Level::unknown:
                ++s.unknown;
                break;
        }
    }
    return s;
}

int exit_status(const std::vector<Finding>& findings) {
    auto s = summarize(findings);
    if (s.fail > 0) return 2;
    return s.warn + s.unknown > 0 ? 1 : 0;
}

}  // namespace vigil::doctor
