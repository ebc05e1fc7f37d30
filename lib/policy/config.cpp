#include "policy/config.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include <fmt/format.h>

#include "core/printable.hpp"
#include "dns/dns_limits.hpp"
#include "dns/resolver.hpp"
#include "doctor/doctor_limits.hpp"
#include "doctor/lists.hpp"
#include "policy/builtin_checks.hpp"
#include "report/dmarc_aggregate.hpp"

namespace vigil::policy {

std::string_view to_string(Stage s) {
    static constexpr std::string_view names[] = {"connect", "helo", "mail", "rcpt", "headers", "body", "eom"};
    return names[static_cast<int>(s)];
}

bool Check::may_refuse_before_data() const {
    auto st = stages();
    return std::any_of(st.begin(), st.end(),
                       [](Stage s) { return static_cast<int>(s) <= static_cast<int>(Stage::rcpt); });
}

bool Config::may_refuse_before_data() const {
    if (!honour_forced_actions) return false;
    for (Stage s : {Stage::connect, Stage::helo, Stage::mail, Stage::rcpt}) {
        const auto& checks = by_stage[static_cast<int>(s)];
        if (std::any_of(checks.begin(), checks.end(),
                        [](const Check* c) { return c->may_refuse_before_data(); })) {
            return true;
        }
    }
    return false;
}

double Config::weight(std::string_view symbol) const {
    auto it = weights.find(symbol);
    return it == weights.end() ? 0.0 : it->second;
}

const core::SymbolDef* Config::symbol(std::string_view name) const {
    auto it = symbols.find(name);
    return it == symbols.end() ? nullptr : &it->second;
}

std::optional<std::string> socket_spec_error(std::string_view spec) {
    auto colon = spec.find(':');
    if (colon == std::string_view::npos) return "expected unix:PATH or inet:PORT@HOST";
    auto proto = spec.substr(0, colon);
    auto rest = spec.substr(colon + 1);
    if (proto == "unix" || proto == "local") {
        if (rest.empty() || rest.front() != '/')
            return "a unix socket needs an absolute path (unix:/run/vigil/vigil.sock)";
        return std::nullopt;
    }
    if (proto == "inet" || proto == "inet6") {
        auto at = rest.find('@');
        auto port = rest.substr(0, at);
        unsigned p = 0;
        auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535) {
            return "expected inet:PORT@HOST with a port from 1 to 65535 (e.g. inet:8891@127.0.0.1)";
        }
        if (at != std::string_view::npos && rest.substr(at + 1).empty()) return "empty host after '@'";
        return std::nullopt;
    }
    return fmt::format("unknown socket type '{}' (use unix: or inet:)", proto);
}

std::optional<std::string> dns_server_error(std::string_view spec) {
    std::string_view host, port;
    if (!spec.empty() && spec.front() == '[') {
        auto close = spec.find(']');
        if (close == std::string_view::npos || close + 1 >= spec.size() || spec[close + 1] != ':') {
            return "expected [IPv6]:PORT";
        }
        host = spec.substr(1, close - 1);
        port = spec.substr(close + 2);
    } else {
        auto colon = spec.rfind(':');
        if (colon == std::string_view::npos) return "expected HOST:PORT, e.g. 127.0.0.1:53";
        host = spec.substr(0, colon);
        port = spec.substr(colon + 1);
    }
    if (!core::IpAddress::parse(host)) return fmt::format("'{}' is not an IP address", host);
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535) {
        return "port must be 1 to 65535";
    }
    return std::nullopt;
}

namespace {

std::string local_hostname() {
    char buf[256] = {};
    if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
    return buf;
}

// "550 5.7.1 Some text": the basic code must be of the expected class (4 or 5) and the enhanced
// code must agree with it (RFC 3463).
core::SmtpReply read_reply(Section& s, std::string_view key, const core::SmtpReply& def,
                           char expected_class) {
    auto raw = s.get_string(key, fmt::format("{} {} {}", def.code, def.xcode, def.text));
    std::istringstream in(raw);
    core::SmtpReply r;
    in >> r.code >> r.xcode;
    std::getline(in, r.text);
    if (!r.text.empty() && r.text.front() == ' ') r.text.erase(0, 1);
    bool ok = r.code.size() == 3 && r.code[0] == expected_class &&
              std::all_of(r.code.begin(), r.code.end(), ::isdigit) && r.xcode.size() >= 5 &&
              r.xcode[0] == expected_class && r.xcode[1] == '.' && !r.text.empty();
    for (char c : raw) ok = ok && c >= 0x20 && c < 0x7f && c != '%';
    if (!ok) {
        s.error(key,
                fmt::format("expected \"{}xx {}.x.y text\" in printable ASCII without '%', e.g. \"{} {} {}\"",
                            expected_class, expected_class, def.code, def.xcode, def.text));
        return def;
    }
    return r;
}

bool valid_header_name(std::string_view n) {
    if (n.empty() || n.size() > 64) return false;
    return std::all_of(n.begin(), n.end(), [](char c) { return c > 32 && c < 127 && c != ':'; });
}

}  // namespace

void order_checks(Config& cfg, ConfigErrors& errors) {
    std::map<std::string_view, const Check*> by_name;
    for (const auto& c : cfg.checks) by_name[c->name()] = c.get();
    for (int st = 0; st < stage_count; ++st) {
        std::vector<const Check*> in_stage;
        for (const auto& c : cfg.checks) {
            auto stages = c->stages();
            if (std::find(stages.begin(), stages.end(), static_cast<Stage>(st)) != stages.end()) {
                in_stage.push_back(c.get());
            }
        }
        // Depth-first topological sort; the list is small and fixed, a cycle is a programming error
        // but is still reported rather than looping.
        std::set<const Check*> done, visiting;
        std::vector<const Check*> order;
        std::function<void(const Check*)> visit = [&](const Check* c) {
            if (done.count(c)) return;
            if (visiting.count(c)) {
                errors.add_plain(fmt::format("check '{}' is part of a dependency cycle", c->name()));
                return;
            }
            visiting.insert(c);
            for (auto dep : c->depends_on()) {
                auto it = by_name.find(dep);
                if (it != by_name.end() &&
                    std::find(in_stage.begin(), in_stage.end(), it->second) != in_stage.end()) {
                    visit(it->second);
                }
            }
            visiting.erase(c);
            done.insert(c);
            order.push_back(c);
        };
        for (auto* c : in_stage) visit(c);
        cfg.by_stage[st] = std::move(order);
    }
}

namespace {

std::shared_ptr<const Config> build(const toml::table& root, const std::string& name, const Overrides& ov) {
    ConfigErrors errors(name);
    auto cfg = std::make_shared<Config>();
    cfg->source = name;
    Section top(&root, "", errors);

    {
        auto s = top.sub("milter");
        cfg->socket = ov.socket.value_or(s.get_string("socket", cfg->socket));
        if (auto e = socket_spec_error(cfg->socket)) s.error("socket", *e);
        auto mode = s.get_string("socket_mode", "0660");
        unsigned m = 0;
        auto [p, ec] = std::from_chars(mode.data(), mode.data() + mode.size(), m, 8);
        if (mode.empty() || ec != std::errc() || p != mode.data() + mode.size() || m > 0777) {
            s.error("socket_mode", "must be an octal mode as a string, e.g. \"0660\"");
        } else {
            cfg->socket_mode = m;
        }
        cfg->user = s.get_string("user", cfg->user);
        cfg->group = s.get_string("group", cfg->group);
        cfg->socket_group = s.get_string("socket_group", cfg->socket_group);
        cfg->allow_root = ov.allow_root.value_or(s.get_bool("allow_root", cfg->allow_root));
        cfg->pid_file = s.get_string("pid_file", cfg->pid_file);
        if (!cfg->pid_file.empty() && cfg->pid_file.front() != '/')
            s.error("pid_file", "must be an absolute path");
        cfg->milter_timeout_s = static_cast<int>(s.get_int("timeout", cfg->milter_timeout_s, 1, 3600));
        auto fail = s.get_choice("on_internal_error", "tempfail", {"tempfail", "reject", "accept"});
        cfg->on_internal_error = *core::parse_action(fail);
        cfg->tcp_nodelay = s.get_bool("tcp_nodelay", cfg->tcp_nodelay);
        cfg->delay_reject = s.get_bool("delay_reject", cfg->delay_reject);
        s.finish();
    }
    {
        auto s = top.sub("server");
        cfg->hostname = s.get_string("hostname", "");
        if (cfg->hostname.empty()) cfg->hostname = local_hostname();
        cfg->authserv_id = ov.authserv_id.value_or(s.get_string("authserv_id", ""));
        if (cfg->authserv_id.empty()) cfg->authserv_id = cfg->hostname;
        for (char c : cfg->authserv_id) {
            if (c <= 32 || c >= 127 || c == ';' || c == '(' || c == ')' || c == '"' || c == '\\') {
                s.error("authserv_id",
                        "must be a host name: printable ASCII without spaces, ';', quotes or "
                        "parentheses");
                break;
            }
        }
        cfg->trusted_networks = s.get_cidrs("trusted_networks", {"127.0.0.0/8", "::1/128"});
        cfg->authenticated_is_outbound = s.get_bool("authenticated_is_outbound", true);
        for (const auto& text : s.get_strings("sending_ips", {})) {
            auto ip = core::IpAddress::parse(text);
            if (!ip || text.front() == '[' || text.find('/') != std::string::npos) {
                s.error("sending_ips", fmt::format("'{}' is not an IP address", core::printable(text, 64)));
            } else if (std::find(cfg->sending_ips.begin(), cfg->sending_ips.end(), ip->unmapped()) ==
                       cfg->sending_ips.end()) {
                cfg->sending_ips.push_back(ip->unmapped());
            }
        }
        if (cfg->sending_ips.size() > doctor::limits::max_ips)
            s.error("sending_ips", fmt::format("at most {} addresses", doctor::limits::max_ips));
        for (const auto& text : s.get_strings("domains", {})) {
            auto q = dns::normalize_query_name(text);
            if (!q.ok() || q.name.find('.') == std::string::npos) {
                s.error("domains", fmt::format("'{}' is not a domain name", core::printable(text, 64)));
            } else if (std::find(cfg->domains.begin(), cfg->domains.end(), q.name) == cfg->domains.end()) {
                cfg->domains.push_back(q.name);
            }
        }
        if (cfg->domains.size() > doctor::limits::max_domains)
            s.error("domains", fmt::format("at most {} domains", doctor::limits::max_domains));
        s.finish();
    }
    {
        auto s = top.sub("monitor");
        cfg->monitor.enabled = s.get_bool("enabled", cfg->monitor.enabled);
        cfg->monitor.interval = std::chrono::seconds(s.get_int("interval", cfg->monitor.interval.count(),
                                                               doctor::limits::min_interval.count(),
                                                               doctor::limits::max_interval.count()));
        cfg->monitor.lists = s.get_strings("lists", cfg->monitor.lists);
        for (const auto& l : cfg->monitor.lists) {
            if (auto e = doctor::list_selector_error(l)) s.error("lists", *e);
        }
        s.finish();
    }
    {
        auto s = top.sub("dns");
        cfg->dns_server = ov.dns_server.value_or(s.get_string("server", ""));
        if (!cfg->dns_server.empty()) {
            if (auto e = dns_server_error(cfg->dns_server)) {
                if (ov.dns_server) {
                    errors.add_plain(fmt::format("--dns {}: {}", cfg->dns_server, *e));
                } else {
                    s.error("server", *e);
                }
            }
        }
        cfg->stage_budget = std::chrono::milliseconds(s.get_int("stage_budget_ms", 3000, 10, 60000));
        cfg->dns_cache_bytes =
            static_cast<std::size_t>(
                s.get_int("cache_mb", static_cast<std::int64_t>(dns::limits::default_cache_bytes >> 20), 1,
                          static_cast<std::int64_t>(dns::limits::max_cache_mb)))
            << 20;
        s.finish();
    }
    {
        auto s = top.sub("log");
        cfg->log_format =
            s.get_choice("format", "text", {"text", "json"}) == "json" ? LogFormat::json : LogFormat::text;
        cfg->log_connections = s.get_bool("connections", true);
        s.finish();
    }
    {
        auto s = top.sub("actions");
        cfg->thresholds.reject =
            s.has("reject") ? s.get_optional_double("reject") : std::optional<double>(15.0);
        cfg->thresholds.tempfail = s.get_optional_double("tempfail");
        cfg->thresholds.quarantine = s.get_optional_double("quarantine");
        cfg->thresholds.add_header =
            s.has("add_header") ? s.get_optional_double("add_header") : std::optional<double>(6.0);
        cfg->honour_forced_actions = s.get_bool("honour_forced_actions", true);
        s.finish();
    }
    {
        auto s = top.sub("replies");
        cfg->reject_reply = read_reply(s, "reject", cfg->reject_reply, '5');
        cfg->tempfail_reply = read_reply(s, "tempfail", cfg->tempfail_reply, '4');
        s.finish();
    }
    {
        auto s = top.sub("headers");
        for (auto [key, field] :
             {std::pair{"flag", &cfg->flag_header}, std::pair{"score", &cfg->score_header},
              std::pair{"status", &cfg->status_header}}) {
            *field = s.get_string(key, *field);
            if (!valid_header_name(*field))
                s.error(key, "must be a header field name (printable ASCII, no ':')");
        }
        cfg->subject_tag = s.get_string("subject_tag", "");
        for (char c : cfg->subject_tag) {
            if (static_cast<unsigned char>(c) < 32 || c == 127) {
                s.error("subject_tag", "must not contain control characters");
                break;
            }
        }
        cfg->always_add_score = s.get_bool("always_add_score", false);
        s.finish();
    }
    {
        auto s = top.sub("dmarc_reports");
        auto& r = cfg->dmarc_reports;
        r.enabled = s.get_bool("enabled", r.enabled);
        r.store = s.get_string("store", r.store);
        if (r.store.empty() || r.store.front() != '/') s.error("store", "must be an absolute path");
        r.queue_size = static_cast<std::size_t>(
            s.get_int("queue_size", static_cast<std::int64_t>(r.queue_size), 1, 1'000'000));
        r.keep_days = static_cast<int>(s.get_int("keep_days", r.keep_days, 0, 3650));
        r.max_rows_per_day = static_cast<std::uint64_t>(
            s.get_int("max_rows_per_day", static_cast<std::int64_t>(r.max_rows_per_day), 1,
                      static_cast<std::int64_t>(report::limits::max_rows_per_day)));
        // Header fields and the report's XML take these: one printable line each, nothing that could
        // start a new header field or smuggle an address.
        // Defaults come from [server] hostname; they are judged only when reporting is on, so an odd
        // host name never breaks a configuration that does not report.
        auto judged = [&](std::string_view key) { return r.enabled || s.has(key); };
        auto line = [&](std::string_view key, std::string value, bool address) {
            if (!judged(key)) return value;
            bool bad = std::any_of(value.begin(), value.end(), [address](char c) {
                auto u = static_cast<unsigned char>(c);
                return u < 32 || u == 127 || (address && (c == ' ' || c == '<' || c == '>'));
            });
            if (bad)
                s.error(key,
                        address ? "must be a plain address (no spaces or <>)" : "must be one printable line");
            if (address && !bad && (value.find('@') == std::string::npos || value.front() == '-'))
                s.error(key, "must be an address: local@domain");
            return value;
        };
        r.org_name = line("org_name", s.get_string("org_name", cfg->hostname), false);
        r.email = line("email", s.get_string("email", "postmaster@" + cfg->hostname), true);
        r.extra_contact_info = line("extra_contact_info", s.get_string("extra_contact_info", ""), false);
        r.submitter = core::to_lower(s.get_string("submitter", cfg->hostname));
        bool host_name = !r.submitter.empty() && r.submitter.size() <= 253 && r.submitter.front() != '.' &&
                         r.submitter.front() != '-' && r.submitter.find("..") == std::string::npos &&
                         std::all_of(r.submitter.begin(), r.submitter.end(), [](char c) {
                             return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
                         });
        if (judged("submitter") && !host_name) s.error("submitter", "must be a domain name");
        r.report_id = s.get_string("report_id", r.report_id);
        if (auto e = report::report_id_template_error(r.report_id)) s.error("report_id", *e);
        r.sendmail = s.get_string("sendmail", r.sendmail);
        if (r.sendmail.empty() || r.sendmail.front() != '/') s.error("sendmail", "must be an absolute path");
        r.from = line("from", s.get_string("from", r.email), true);
        s.finish();
    }
    {
        auto checks = top.sub("checks");
        for (const auto& f : builtin_checks()) {
            auto s = checks.sub(f.name);
            bool enabled = s.get_bool("enabled", f.enabled_by_default);
            auto check = f.make(s);
            s.finish();
            if (!check) continue;
            for (auto& def : check->symbols()) cfg->symbols.emplace(def.name, def);
            if (enabled) cfg->checks.push_back(std::move(check));
        }
        for (const auto& k : checks.keys()) {
            bool known = std::any_of(builtin_checks().begin(), builtin_checks().end(),
                                     [&](const CheckFactory& f) { return f.name == k; });
            if (!known) checks.error(k, "unknown check (see `vigil symbols` or the README for the list)");
            checks.mark_used(k);
        }
        checks.finish();
    }
    for (const auto& [n, def] : cfg->symbols) cfg->weights[n] = def.default_weight;
    {
        auto s = top.sub("scores");
        for (const auto& k : s.keys()) {
            if (cfg->symbols.find(k) == cfg->symbols.end()) {
                s.error(k, "unknown symbol (the README lists every symbol)");
                s.mark_used(k);
                continue;
            }
            cfg->weights[k] = s.get_double(k, 0.0);
        }
        s.finish();
    }
    top.finish();
    order_checks(*cfg, errors);
    errors.raise_if_any();
    return cfg;
}

}  // namespace

std::shared_ptr<const Config> load_config_string(std::string_view text, const std::string& name,
                                                 const Overrides& ov) {
    toml::table root;
    try {
        root = toml::parse(text, name);
    } catch (const toml::parse_error& e) {
        throw ConfigError(fmt::format("{}:{}:{}: {}", name, e.source().begin.line, e.source().begin.column,
                                      e.description()));
    }
    return build(root, name, ov);
}

std::shared_ptr<const Config> load_config_file(const std::string& path, const Overrides& ov) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ConfigError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
    std::ostringstream buf;
    buf << in.rdbuf();
    return load_config_string(buf.str(), path, ov);
}

}  // namespace vigil::policy
