#pragma once
// The whole configuration: built once, validated, then shared read-only (house rule 7).
#include <array>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ip_address.hpp"
#include "core/verdict.hpp"
#include "engine/check_api.hpp"
#include "engine/daemon_settings.hpp"
#include "engine/dns_settings.hpp"
#include "engine/overrides.hpp"
#include "engine/server_settings.hpp"
#include "engine/verdict_settings.hpp"
#include "report/report_settings.hpp"
#include "reputation/monitor_settings.hpp"

namespace vigil::engine {

struct Config {
    std::string source;  // file the config came from, for messages

    // One settings struct per section, each read by its owner's reader.
    DaemonSettings milter;                      // [milter]
    ServerSettings server;                      // [server]
    reputation::MonitorSettings monitor;        // [monitor]
    DnsSettings dns;                            // [dns]
    report::LogSettings log;                    // [log]
    ActionSettings actions;                     // [actions]
    ReplySettings replies;                      // [replies]
    HeaderSettings headers;                     // [headers]
    report::DmarcReportSettings dmarc_reports;  // [dmarc_reports]

    // Checks, all of them; disabled ones are kept out of `by_stage`.
    std::vector<std::unique_ptr<Check>> checks;
    std::array<std::vector<const Check*>, stage_count> by_stage;  // dependency order
    // Some enabled check may refuse before DATA (Check::may_refuse_before_data), and forced actions
    // are honoured.
    bool may_refuse_before_data() const;
    std::map<std::string, core::SymbolDef, std::less<>> symbols;  // every known symbol
    std::map<std::string, double, std::less<>> weights;           // effective weights

    double weight(std::string_view symbol) const;
    const core::SymbolDef* symbol(std::string_view name) const;
};

// Throw ConfigError listing every problem with file:line:column.
std::shared_ptr<const Config> load_config_file(const std::string& path, const Overrides& overrides = {});
std::shared_ptr<const Config> load_config_string(std::string_view toml, const std::string& name = "<config>",
                                                 const Overrides& overrides = {});

// Fills cfg.by_stage from cfg.checks in dependency order; a cycle is reported to `errors`.
void order_checks(Config& cfg, ConfigErrors& errors);

}  // namespace vigil::engine
