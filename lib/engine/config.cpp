#include "engine/config.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include <fmt/format.h>

#include "core/printable.hpp"
#include "engine/builtin_checks.hpp"

namespace vigil::engine {

bool Config::may_refuse_before_data() const {
    if (!actions.honour_forced) return false;
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
        cfg->milter = DaemonSettings::read(s, ov);
    }
    {
        auto s = top.sub("server");
        cfg->server = ServerSettings::read(s, ov.authserv_id);
    }
    {
        auto s = top.sub("monitor");
        cfg->monitor = reputation::MonitorSettings::read(s);
    }
    {
        auto s = top.sub("dns");
        cfg->dns = DnsSettings::read(s, ov);
    }
    {
        auto s = top.sub("log");
        cfg->log = report::LogSettings::read(s);
    }
    {
        auto s = top.sub("actions");
        cfg->actions = ActionSettings::read(s);
    }
    {
        auto s = top.sub("replies");
        cfg->replies = ReplySettings::read(s);
    }
    {
        auto s = top.sub("headers");
        cfg->headers = HeaderSettings::read(s);
    }
    {
        auto s = top.sub("dmarc_reports");
        cfg->dmarc_reports = report::DmarcReportSettings::read(s, cfg->server.hostname);
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

}  // namespace vigil::engine
