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
#include "dns/dns_limits.hpp"
#include "policy/check.hpp"
#include "policy/config_reader.hpp"
#include "report/report_limits.hpp"

namespace vigil::policy {

enum class LogFormat { text, json };

struct Thresholds {
    // Score at or above which each action applies; the action with the highest threshold that the
    // score reaches wins (rspamd semantics). Unset = the action is never chosen by score.
    std::optional<double> reject;
    std::optional<double> tempfail;
    std::optional<double> quarantine;
    std::optional<double> add_header;
};

struct Config {
    std::string source;  // file the config came from, for messages

    // [milter]
    std::string socket = "inet:8891@127.0.0.1";
    unsigned socket_mode = 0660;
    std::string user = "vigil";
    std::string group;         // empty: the user's primary group
    std::string socket_group;  // a unix socket's group; empty: `group`
    bool allow_root = false;
    std::string pid_file;
    int milter_timeout_s = 300;
    core::Action on_internal_error = core::Action::tempfail;
    bool tcp_nodelay = true;
    // Refusals decided at connect, HELO and MAIL FROM are given at RCPT TO (Postfix's smtpd_delay_reject).
    bool delay_reject = true;

    // [server]
    std::string hostname;
    std::string authserv_id;
    std::vector<core::Cidr> trusted_networks;
    bool authenticated_is_outbound = true;
    // What `vigil doctor` and the reputation monitor check as this server's own.
    std::vector<core::IpAddress> sending_ips;
    std::vector<std::string> domains;  // lowercase, no trailing dot

    // [monitor]: the daemon's periodic look-up of sending_ips on block and allow lists.
    struct Monitor {
        bool enabled = true;
        std::chrono::seconds interval{3600};
        // "configured" (the [checks.dnsbl] lists), "public" (the built-in set), or public list names;
        // `vigil doctor` checks the same lists.
        std::vector<std::string> lists{"configured", "public"};
    };
    Monitor monitor;

    // [dns]
    std::string dns_server;  // HOST:PORT: every query to that one server, no validation
    std::chrono::milliseconds stage_budget{3000};
    std::size_t dns_cache_bytes =
        dns::limits::default_cache_bytes;  // the shared cache's budget ([dns] cache_mb)

    // [log]
    LogFormat log_format = LogFormat::text;
    bool log_connections = true;

    // [actions]
    Thresholds thresholds;
    bool honour_forced_actions = true;

    // [replies]
    core::SmtpReply reject_reply{"550", "5.7.1", "Message rejected by policy"};
    core::SmtpReply tempfail_reply{"451", "4.7.1", "Message deferred by policy, try again later"};

    // [headers]
    std::string flag_header = "X-Spam-Flag";
    std::string score_header = "X-Spam-Score";
    std::string status_header = "X-Spam-Status";
    std::string subject_tag;
    bool always_add_score = false;

    // [dmarc_reports]: DMARC aggregate reports (RFC 7489 §7.2). Off: nothing is recorded. Read at
    // start; changing it takes a restart of the milter.
    struct DmarcReports {
        bool enabled = false;
        std::string store = "/var/lib/vigil/dmarc-reports.sqlite";
        std::size_t queue_size = 10000;  // evaluations waiting to be written; more are dropped
        // Rows kept per UTC day; past it the day's oldest are dropped (report_limits.hpp).
        std::uint64_t max_rows_per_day = report::limits::default_max_rows_per_day;
        int keep_days = 31;    // `vigil dmarc report` deletes older evaluations; 0: never
        std::string org_name;  // default: [server] hostname
        std::string email;     // report contact; default: postmaster@<hostname>
        std::string extra_contact_info;
        std::string submitter;  // our domain in file names and the Subject; default: [server] hostname
        std::string report_id = "{begin}.{random}@{receiver}";  // placeholders: see report_id_template_error
        std::string sendmail = "/usr/sbin/sendmail";
        std::string from;  // envelope and From: of sent reports; default: email
    };
    DmarcReports dmarc_reports;

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

// Settings given on the command line that win over the file.
struct Overrides {
    std::optional<std::string> dns_server;
    std::optional<std::string> authserv_id;
    std::optional<std::string> socket;
    std::optional<bool> allow_root;
};

// Throw ConfigError listing every problem with file:line:column.
std::shared_ptr<const Config> load_config_file(const std::string& path, const Overrides& overrides = {});
std::shared_ptr<const Config> load_config_string(std::string_view toml, const std::string& name = "<config>",
                                                 const Overrides& overrides = {});

// Fills cfg.by_stage from cfg.checks in dependency order; a cycle is reported to `errors`.
void order_checks(Config& cfg, ConfigErrors& errors);

// Validates a libmilter socket spec: unix:PATH, local:PATH, inet:PORT@HOST, inet6:PORT@HOST.
std::optional<std::string> socket_spec_error(std::string_view spec);
// Validates HOST:PORT (or [v6]:PORT) for the DNS override.
std::optional<std::string> dns_server_error(std::string_view spec);

}  // namespace vigil::policy
