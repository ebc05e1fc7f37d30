#include "doctor/report.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/printable.hpp"

namespace vigil::doctor {

namespace {

std::string_view label(Level l) {
    switch (l) {
        case Level::ok:
            return "ok";
        case Level::warn:
            return "WARN";
        case Level::fail:
            return "FAIL";
        case Level::unknown:
            return "??";
    }
    return "??";
}

std::string_view colour_of(Level l) {
    switch (l) {
        case Level::ok:
            return "\033[32m";  // green
        case Level::warn:
            return "\033[33m";  // yellow
        case Level::fail:
            return "\033[1;31m";  // bold red
        case Level::unknown:
            return "\033[35m";  // magenta
    }
    return "";
}

// Findings carry DNS data; a terminal must never receive its control bytes.
std::string clean(std::string_view s) {
    return core::printable(s, 4096);
}

}  // namespace

std::string format_table(const std::vector<Finding>& findings, bool colour) {
    std::vector<std::string> subjects;
    for (const auto& f : findings) {
        if (std::find(subjects.begin(), subjects.end(), f.subject) == subjects.end())
            subjects.push_back(f.subject);
    }
    std::string out;
    for (const auto& s : subjects) {
        out += fmt::format("{}{}{}\n", colour ? "\033[1m" : "", clean(s), colour ? "\033[0m" : "");
        for (const auto& f : findings) {
            if (f.subject != s) continue;
            auto lv = fmt::format("{:<4}", label(f.level));
            if (colour) lv = fmt::format("{}{}\033[0m", colour_of(f.level), lv);
            out += fmt::format("  {}  {:<6}  {}\n", lv, f.area, clean(f.reason));
            if (!f.fix.empty()) out += fmt::format("{:16}fix: {}\n", "", clean(f.fix));
        }
        out += "\n";
    }
    auto sum = summarize(findings);
    out += fmt::format("{} ok, {} warn, {} fail, {} cannot tell\n", sum.ok, sum.warn, sum.fail, sum.unknown);
    return out;
}

std::string format_json(const std::vector<Finding>& findings) {
    std::string items;
    for (const auto& f : findings) {
        items += fmt::format(
            "{}{{\"area\":\"{}\",\"subject\":\"{}\",\"level\":\"{}\",\"reason\":\"{}\",\"fix\":\"{}\"}}",
            items.empty() ? "" : ",", core::json_escape(f.area), core::json_escape(f.subject),
            to_string(f.level), core::json_escape(f.reason), core::json_escape(f.fix));
    }
    auto sum = summarize(findings);
    return fmt::format(
        "{{\"findings\":[{}],\"summary\":{{\"ok\":{},\"warn\":{},\"fail\":{},\"unknown\":{}}},\"exit\":{}}}",
        items, sum.ok, sum.warn, sum.fail, sum.unknown, exit_status(findings));
}

}  // namespace vigil::doctor
