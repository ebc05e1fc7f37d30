#include "engine/access_list.hpp"

#include <algorithm>
#include <sstream>

#include <fmt/format.h>

#include "core/printable.hpp"

namespace vigil::engine {

namespace {

constexpr std::string_view symbol_for(AccessRule::Field f) {
    switch (f) {
        case AccessRule::Field::ip:
            return "ACCESS_IP";
        case AccessRule::Field::helo:
            return "ACCESS_HELO";
        case AccessRule::Field::sender:
            return "ACCESS_SENDER";
        case AccessRule::Field::rcpt:
            return "ACCESS_RCPT";
    }
    return "ACCESS_IP";
}

constexpr Stage stage_for(AccessRule::Field f) {
    switch (f) {
        case AccessRule::Field::ip:
            return Stage::connect;
        case AccessRule::Field::helo:
            return Stage::helo;
        case AccessRule::Field::sender:
            return Stage::mail;
        case AccessRule::Field::rcpt:
            return Stage::rcpt;
    }
    return Stage::connect;
}

bool ends_with_ci(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && core::iequals(s.substr(s.size() - suffix.size()), suffix);
}

}  // namespace

bool access_pattern_matches(AccessRule::Field field, std::string_view pattern, std::string_view value) {
    if (field == AccessRule::Field::helo) {
        if (!pattern.empty() && pattern.front() == '.') return ends_with_ci(value, pattern);
        return core::iequals(pattern, value);
    }
    if (pattern == "<>") return value.empty();
    if (value.empty()) return false;
    auto at = pattern.find('@');
    if (at == std::string_view::npos) return false;
    auto vat = value.rfind('@');
    std::string_view vlocal = vat == std::string_view::npos ? value : value.substr(0, vat);
    std::string_view vdomain = vat == std::string_view::npos ? std::string_view{} : value.substr(vat + 1);
    auto plocal = pattern.substr(0, at);
    auto pdomain = pattern.substr(at + 1);
    if (!plocal.empty() && !core::iequals(plocal, vlocal)) return false;
    if (pdomain.empty()) return !plocal.empty();
    if (pdomain.front() == '.') return ends_with_ci(vdomain, pdomain);
    return core::iequals(pdomain, vdomain);
}

std::unique_ptr<Check> AccessListCheck::make(Section& s) {
    std::vector<AccessRule> rules;
    for (auto& r : s.sub_array("rule")) {
        AccessRule rule{};
        auto field = r.get_choice("match", "ip", {"ip", "helo", "sender", "rcpt"});
        rule.field = field == "ip"       ? AccessRule::Field::ip
                     : field == "helo"   ? AccessRule::Field::helo
                     : field == "sender" ? AccessRule::Field::sender
                                         : AccessRule::Field::rcpt;
        rule.pattern = r.get_string("pattern", "");
        if (rule.pattern.empty()) r.error("pattern", "is required");
        if (rule.field == AccessRule::Field::ip && !rule.pattern.empty()) {
            rule.network = core::Cidr::parse(rule.pattern);
            if (!rule.network)
                r.error("pattern",
                        fmt::format("'{}' is not a network (address or address/prefix)", rule.pattern));
        } else if ((rule.field == AccessRule::Field::sender || rule.field == AccessRule::Field::rcpt) &&
                   !rule.pattern.empty() && rule.pattern != "<>" &&
                   rule.pattern.find('@') == std::string::npos) {
            r.error("pattern",
                    "an address pattern needs an '@': user@domain, @domain, @.domain, user@ or <>");
        }
        auto action = r.get_choice("action", "reject",
                                   {"accept", "add_header", "quarantine", "tempfail", "reject", "score"});
        if (action != "score") rule.action = core::parse_action(action);
        rule.score = r.get_double("score", 0.0);
        if (action == "score" && !r.has("score")) r.error("score", "is required when action = \"score\"");
        rule.reply = r.get_string("reply", "");
        if (!rule.reply.empty()) {
            std::istringstream in(rule.reply);
            std::string code, xcode;
            in >> code >> xcode;
            bool ok = code.size() == 3 && (code[0] == '4' || code[0] == '5') && xcode.size() >= 5 &&
                      xcode[0] == code[0];
            if (!ok) r.error("reply", "expected \"5xx 5.x.y text\" or \"4xx 4.x.y text\"");
        }
        r.finish();
        rules.push_back(std::move(rule));
    }
    return std::make_unique<AccessListCheck>(std::move(rules));
}

bool AccessListCheck::may_refuse_before_data() const {
    return std::any_of(rules_.begin(), rules_.end(), [](const AccessRule& r) {
        return r.action == core::Action::reject || r.action == core::Action::tempfail;
    });
}

std::vector<core::SymbolDef> AccessListCheck::symbols() const {
    return {{"ACCESS_IP", "The client IP matched a local access rule", 1.0},
            {"ACCESS_HELO", "The HELO name matched a local access rule", 1.0},
            {"ACCESS_SENDER", "The envelope sender matched a local access rule", 1.0},
            {"ACCESS_RCPT", "A recipient matched a local access rule", 1.0}};
}

void AccessListCheck::run(Context& ctx) const {
    const auto& env = ctx.envelope();
    for (const auto& rule : rules_) {
        if (stage_for(rule.field) != ctx.stage()) continue;
        bool hit = false;
        switch (rule.field) {
            case AccessRule::Field::ip:
                hit = env.client_ip && rule.network->contains(*env.client_ip);
                break;
            case AccessRule::Field::helo:
                hit = access_pattern_matches(rule.field, rule.pattern, env.helo);
                break;
            case AccessRule::Field::sender:
                hit = access_pattern_matches(rule.field, rule.pattern, env.mail_from);
                break;
            case AccessRule::Field::rcpt:
                hit = access_pattern_matches(rule.field, rule.pattern, ctx.current_rcpt());
                break;
        }
        if (!hit) continue;
        // With an action the rule decides; the symbol's score is then only informative.
        ctx.add_symbol(*this, symbol_for(rule.field), rule.action ? 0.0 : rule.score, {rule.pattern});
        if (rule.action) {
            std::optional<core::SmtpReply> reply;
            if (!rule.reply.empty()) {
                std::istringstream in(rule.reply);
                core::SmtpReply r;
                in >> r.code >> r.xcode;
                std::getline(in, r.text);
                r.text = std::string(core::trim(r.text));
                reply = r;
            }
            ctx.force(*this, *rule.action,
                      fmt::format("access rule {} {}", symbol_for(rule.field), rule.pattern),
                      std::move(reply));
        }
    }
}

}  // namespace vigil::engine
