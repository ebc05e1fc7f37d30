#include "doctor_command.hpp"

#include <getopt.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/printable.hpp"
#include "dns/cache.hpp"
#include "dns/resolver.hpp"
#include "doctor/doctor.hpp"
#include "doctor/report.hpp"
#include "engine/runtime.hpp"

namespace vigil::tools {

namespace {

constexpr int could_not_run = 3;  // Nagios' UNKNOWN: distinct from a failed check

void doctor_usage(std::FILE* out) {
    std::string areas;
    for (auto a : doctor::areas()) areas += (areas.empty() ? "" : ", ") + std::string(a);
    std::fprintf(out,
                 "usage: vigil doctor [--config FILE] [--domain D]... [--ip IP]... [--selector S]...\n"
                 "                    [--hostname NAME] [--skip AREA]... [--dns HOST:PORT] [--json]\n"
                 "  check this server's own standing: block/allow lists, reverse DNS, host name, MX, SPF,\n"
                 "  DKIM, DMARC, DNSSEC. Without options the config's [server] hostname, sending_ips and\n"
                 "  domains and the [checks.dkim] keys are checked, on the [monitor] lists.\n"
                 "  areas: %s\n"
                 "  exit status: 0 all ok, 1 a warning or cannot tell, 2 a failure, 3 could not run\n",
                 areas.c_str());
}

}  // namespace

int doctor_command(int argc, char** argv, const std::string& config_path, bool explicit_config,
                   engine::Overrides ov) {
    doctor::TargetOverrides target;
    doctor::RunOptions run;
    std::string path = config_path;
    bool explicit_path = explicit_config;
    bool json = false;
    static const option opts[] = {
        {"config", required_argument, nullptr, 'c'},   {"domain", required_argument, nullptr, 'd'},
        {"ip", required_argument, nullptr, 'i'},       {"selector", required_argument, nullptr, 's'},
        {"hostname", required_argument, nullptr, 'H'}, {"skip", required_argument, nullptr, 'k'},
        {"dns", required_argument, nullptr, 'D'},      {"json", no_argument, nullptr, 'j'},
        {"help", no_argument, nullptr, 'h'},           {nullptr, 0, nullptr, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "c:h", opts, nullptr)) != -1) {
        switch (c) {
            case 'c':
                path = optarg;
                explicit_path = true;
                break;
            case 'd': {
                auto q = dns::normalize_query_name(optarg);
                if (!q.ok() || q.name.find('.') == std::string::npos) {
                    std::fprintf(stderr, "vigil doctor: --domain %s is not a domain name\n",
                                 core::printable(optarg).c_str());
                    return could_not_run;
                }
                target.domains.push_back(q.name);
                break;
            }
            case 'i': {
                auto ip = core::IpAddress::parse(optarg);
                if (!ip) {
                    std::fprintf(stderr, "vigil doctor: --ip %s is not an IP address\n",
                                 core::printable(optarg).c_str());
                    return could_not_run;
                }
                target.ips.push_back(ip->unmapped());
                break;
            }
            case 's': {
                auto q = dns::normalize_query_name(optarg);
                if (!q.ok()) {
                    std::fprintf(stderr, "vigil doctor: --selector %s is not a selector\n",
                                 core::printable(optarg).c_str());
                    return could_not_run;
                }
                target.selectors.push_back(q.name);
                break;
            }
            case 'H':
                target.hostname = optarg;
                break;
            case 'k': {
                std::string area = optarg;
                const auto& all = doctor::areas();
                if (std::find(all.begin(), all.end(), area) == all.end()) {
                    std::fprintf(stderr, "vigil doctor: --skip %s is not an area\n",
                                 core::printable(area).c_str());
                    doctor_usage(stderr);
                    return could_not_run;
                }
                run.skip.insert(area);
                break;
            }
            case 'D':
                ov.dns_server = optarg;
                break;
            case 'j':
                json = true;
                break;
            case 'h':
                doctor_usage(stdout);
                return 0;
            default:
                doctor_usage(stderr);
                return could_not_run;
        }
    }
    if (optind != argc) {
        doctor_usage(stderr);
        return could_not_run;
    }
    if (target.ips.size() > doctor::limits::max_ips || target.domains.size() > doctor::limits::max_domains ||
        target.selectors.size() > doctor::limits::max_selectors) {
        std::fprintf(stderr, "vigil doctor: at most %zu --ip, %zu --domain and %zu --selector\n",
                     doctor::limits::max_ips, doctor::limits::max_domains, doctor::limits::max_selectors);
        return could_not_run;
    }
    try {
        std::shared_ptr<const engine::Config> config;
        if (explicit_path || access(path.c_str(), R_OK) == 0) {
            config = engine::load_config_file(path, ov);
        } else {
            config = engine::load_config_string("", "<defaults>", ov);
        }
        engine::Runtime runtime(config->dns);
        run.lists = doctor::select_lists(*config, config->monitor.lists);
        auto t = doctor::make_target(*config, target);
        auto findings = doctor::run(runtime.cache(), t, run);
        if (json) {
            std::printf("%s\n", doctor::format_json(findings).c_str());
        } else {
            std::printf("vigil doctor: host %s, %zu sending IPs, %zu domains, %zu lists (%s)\n\n",
                        core::printable(t.hostname).c_str(), t.ips.size(), t.domains.size(), run.lists.size(),
                        config->dns.server.empty()
                            ? "validating resolver"
                            : fmt::format("DNS server {}, no DNSSEC validation", config->dns.server).c_str());
            std::fputs(doctor::format_table(findings, isatty(STDOUT_FILENO) != 0).c_str(), stdout);
        }
        return doctor::exit_status(findings);
    } catch (const std::exception& e) {
        // Configuration errors are the operator's own text, one mistake per line.
        std::fprintf(stderr, "vigil doctor: %s\n", e.what());
        return could_not_run;
    }
}

}  // namespace vigil::tools
