#pragma once
// `vigil doctor` as a library: what to check (from the config, or the command line) and the run
// over every area. The command line (tools/doctor_command.cpp) only parses options and prints.
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/ip_address.hpp"
#include "doctor/checks.hpp"
#include "doctor/finding.hpp"
#include "doctor/lists.hpp"

namespace vigil::engine {
struct Config;
}

namespace vigil::doctor {

// Every area a run covers, in the order it reports them; each can be skipped by name.
const std::vector<std::string_view>& areas();

struct Target {
    std::string hostname;
    std::vector<core::IpAddress> ips;
    std::vector<std::string> domains;  // the From domains of our mail
    // DKIM: the selectors of each signing domain (d=), in configured order.
    std::vector<std::pair<std::string, std::vector<Selector>>> dkim;
    // DMARC alignment: From domain -> the d= domains that sign its mail.
    std::map<std::string, std::vector<std::string>> signing_domains;
};

// What the command line gives instead of the config; empty members leave the config's.
struct TargetOverrides {
    std::optional<std::string> hostname;
    std::vector<core::IpAddress> ips;
    std::vector<std::string> domains;
    std::vector<std::string> selectors;  // checked for every domain, with the config's key when it has one
};

// [server] hostname, sending_ips and domains (else the DKIM key domains), and the keys and signing
// rules of [checks.dkim], with `overrides` applied.
Target make_target(const engine::Config& config, const TargetOverrides& overrides = {});

struct RunOptions {
    std::vector<WatchedList> lists;
    std::set<std::string, std::less<>> skip;  // area names
    std::chrono::milliseconds timeout = limits::default_timeout;
};

std::vector<Finding> run(dns::Resolver& resolver, const Target& target, const RunOptions& options);

}  // namespace vigil::doctor
