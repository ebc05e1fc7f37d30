#include "spf_command.hpp"

#include <getopt.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "auth/spf/evaluator.hpp"
#include "core/printable.hpp"
#include "dns/cache.hpp"
#include "engine/runtime.hpp"

namespace vigil::tools {

namespace {

void spf_usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: vigil spf --ip IP --mail-from ADDR [--helo NAME] [--dns HOST:PORT] [--json]\n"
                 "  evaluate SPF for the MAIL FROM identity (--mail-from \"\" is the null sender:\n"
                 "  postmaster@HELO is checked) and print the result, the deciding mechanism and the\n"
                 "  explanation of a fail\n");
}

}  // namespace

int spf_command(int argc, char** argv, std::shared_ptr<const vigil::engine::Config> config) {
    std::optional<core::IpAddress> ip;
    std::optional<std::string> mail_from;
    std::string helo;
    std::optional<std::string> dns;
    bool json = false;
    static const option opts[] = {{"ip", required_argument, nullptr, 'i'},
                                  {"mail-from", required_argument, nullptr, 'm'},
                                  {"helo", required_argument, nullptr, 'H'},
                                  {"dns", required_argument, nullptr, 'D'},
                                  {"json", no_argument, nullptr, 'j'},
                                  {"help", no_argument, nullptr, 'h'},
                                  {nullptr, 0, nullptr, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, nullptr)) != -1) {
        switch (c) {
            case 'i':
                ip = core::IpAddress::parse(optarg);
                if (!ip) {
                    std::fprintf(stderr, "vigil spf: --ip %s is not an IP address\n",
                                 core::printable(optarg).c_str());
                    return 2;
                }
                break;
            case 'm':
                mail_from = optarg;
                break;
            case 'H':
                helo = optarg;
                break;
            case 'D':
                dns = optarg;
                break;
            case 'j':
                json = true;
                break;
            case 'h':
                spf_usage(stdout);
                return 0;
            default:
                spf_usage(stderr);
                return 2;
        }
    }
    if (optind != argc || !ip || !mail_from) {
        spf_usage(stderr);
        return 2;
    }
    if (mail_from->empty() && helo.empty()) {
        std::fprintf(stderr, "vigil spf: the null sender needs --helo (postmaster@HELO is checked)\n");
        return 2;
    }
    try {
        if (dns && (!config || config->dns.server != *dns)) {
            // --dns given after "spf": a config for that one server; only the receiver name is kept.
            engine::Overrides ov;
            ov.dns_server = *dns;
            if (config && !config->server.authserv_id.empty()) ov.authserv_id = config->server.authserv_id;
            config = engine::load_config_string("", "<spf>", ov);
        }
        if (!config) config = engine::load_config_string("", "<defaults>");
        engine::Runtime runtime(config->dns);
        auth::spf::Options opt;
        opt.fetch_explanation = true;
        opt.parsed_cache = &runtime.cache();
        opt.receiver = config->server.authserv_id.empty() ? "unknown" : config->server.authserv_id;
        opt.timestamp = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
        auto deadline = std::chrono::steady_clock::now() + config->dns.stage_budget;
        auto identity = auth::spf::mailfrom_identity(*mail_from, helo);
        auto o = auth::spf::evaluate(runtime.cache(), deadline, *ip, identity, helo, opt);
        if (json) {
            std::printf("%s\n", auth::spf::to_json(o, mail_from->empty() ? "helo" : "mailfrom").c_str());
        } else {
            std::printf("spf=%s %s=%s\n", std::string(auth::spf::to_string(o.result)).c_str(),
                        mail_from->empty() ? "smtp.helo" : "smtp.mailfrom", o.domain.c_str());
            if (!o.mechanism.empty()) std::printf("mechanism: %s\n", o.mechanism.c_str());
            if (!o.explanation.empty()) std::printf("explanation: %s\n", o.explanation.c_str());
            if (!o.problem.empty()) std::printf("problem: %s\n", o.problem.c_str());
            std::printf("dns terms: %zu, void lookups: %zu\n", o.dns_terms, o.void_lookups);
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vigil spf: %s\n", core::printable(e.what()).c_str());
        return 1;
    }
}

}  // namespace vigil::tools
