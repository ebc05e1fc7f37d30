#pragma once
// Helpers of the doctor tests: a FakeResolver programmed record by record, and finding lookups.
#include <algorithm>
#include <string>
#include <vector>

#include "doctor/checks.hpp"
#include "doctor/finding.hpp"
#include "fakes/fake_resolver.hpp"

namespace vigil::test::doctor {

using vigil::doctor::Finding;
using vigil::doctor::Level;

inline dns::Answer answer_of(std::vector<dns::Record> records, std::uint32_t ttl = 300) {
    dns::Answer a;
    a.status = dns::Status::answer;
    a.ttl = ttl;
    a.records = std::move(records);
    return a;
}

inline void txt(dns::FakeResolver& f, const std::string& name, std::vector<std::string> records) {
    std::vector<dns::Record> rr;
    for (auto& r : records) rr.push_back(dns::fake::txt(name, {r}));
    f.set(name, dns::RrType::txt, answer_of(std::move(rr)));
}

inline void addr(dns::FakeResolver& f, const std::string& name, std::vector<std::string> ips) {
    std::vector<dns::Record> a, aaaa;
    for (auto& ip : ips)
        (ip.find(':') == std::string::npos ? a : aaaa).push_back(dns::fake::address(name, ip));
    if (a.empty()) {
        f.set_status(name, dns::RrType::a, dns::Status::nodata);
    } else {
        f.set(name, dns::RrType::a, answer_of(std::move(a)));
    }
    if (aaaa.empty()) {
        f.set_status(name, dns::RrType::aaaa, dns::Status::nodata);
    } else {
        f.set(name, dns::RrType::aaaa, answer_of(std::move(aaaa)));
    }
}

// Findings whose reason contains `text`.
inline std::vector<Finding> with(const std::vector<Finding>& all, std::string_view text) {
    std::vector<Finding> out;
    for (const auto& f : all) {
        if (f.reason.find(text) != std::string::npos) out.push_back(f);
    }
    return out;
}

inline std::size_t count(const std::vector<Finding>& all, Level level) {
    return static_cast<std::size_t>(
        std::count_if(all.begin(), all.end(), [&](const Finding& f) { return f.level == level; }));
}

inline std::string dump(const std::vector<Finding>& all) {
    std::string s;
    for (const auto& f : all) {
        s +=
            std::string(vigil::doctor::to_string(f.level)) + " " + f.area + " " + f.subject + ": " + f.reason;
        if (!f.fix.empty()) s += " | fix: " + f.fix;
        s += "\n";
    }
    return s;
}

}  // namespace vigil::test::doctor
