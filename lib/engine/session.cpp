#include "engine/session.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/limits.hpp"
#include "core/printable.hpp"
#include "dns/resolver.hpp"
#include "engine/actions.hpp"

namespace vigil::engine {

namespace {

// Stands in when no resolver was given (unit tests of non-DNS checks): every lookup fails cleanly.
class NoResolver final : public dns::Resolver {
  public:
    dns::Pending lookup(std::string_view, dns::RrType) override {
        return dns::Pending::of(dns::Answer::failure(dns::Status::servfail, "no resolver configured"));
    }
};

dns::Resolver& no_resolver() {
    static NoResolver r;
    return r;
}

}  // namespace

class Session::Ctx final : public Context {
  public:
    Ctx(Session& s, Stage stage, Results& into, std::string_view rcpt)
        : s_(s),
          stage_(stage),
          into_(into),
          rcpt_(rcpt),
          deadline_(s.services_.clock->monotonic() + s.config_->dns.stage_budget) {}

    const ServerFacts& server() const override { return s_.config_->server; }
    bool honour_forced_actions() const override { return s_.config_->actions.honour_forced; }
    const core::Clock& clock() const override { return *s_.services_.clock; }
    dns::Resolver& resolver() const override {
        return s_.services_.resolver ? *s_.services_.resolver : no_resolver();
    }
    const core::Envelope& envelope() const override { return s_.env_; }
    const core::Message& message() const override { return s_.msg_; }
    Stage stage() const override { return stage_; }
    std::chrono::steady_clock::time_point deadline() const override { return deadline_; }
    std::string_view current_rcpt() const override { return rcpt_; }

    void add_symbol(const Check& by, std::string_view symbol, double multiplier,
                    std::vector<std::string> options) override {
        into_.hits.push_back(
            {core::SymbolHit{std::string(symbol), multiplier, std::move(options), std::string(by.name())},
             by.inbound_only(), stage_});
    }
    void force(const Check& by, core::Action action, std::string reason,
               std::optional<core::SmtpReply> reply) override {
        into_.forced.push_back(
            {core::ForcedAction{action, std::move(reason), std::string(by.name()), std::move(reply)},
             by.inbound_only(), stage_});
    }
    void add_auth_result(std::string resinfo) override { into_.auth_results.push_back(std::move(resinfo)); }
    dns::CachingResolver* cache() const override { return s_.services_.cache; }
    report::DmarcStore* dmarc_store() const override { return s_.services_.dmarc_store; }
    void prepend_header(std::string name, std::string value) override {
        into_.prepend.emplace_back(std::move(name), std::move(value));
    }
    void add_report(std::string key, std::string json) override {
        if (s_.services_.keep_reports) into_.reports.emplace_back(std::move(key), std::move(json));
    }
    bool wants_reports() const override { return s_.services_.keep_reports; }
    void warn(std::string message) override { into_.warnings.push_back(std::move(message)); }
    AuthFacts& facts() override { return s_.facts_; }
    CheckState* state(const Check& by) override {
        auto it = s_.states_.find(&by);
        return it == s_.states_.end() ? nullptr : it->second.get();
    }
    void set_state(const Check& by, std::unique_ptr<CheckState> st) override {
        s_.states_[&by] = std::move(st);
    }

  private:
    Session& s_;
    Stage stage_;
    Results& into_;
    std::string_view rcpt_;
    std::chrono::steady_clock::time_point deadline_;
};

Session::Session(std::shared_ptr<const Config> config, Services services)
    : config_(std::move(config)),
      services_(services),
      incoming_(*config_),
      started_(services_.clock->monotonic()) {}

long Session::elapsed_ms() const {
    return static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(services_.clock->monotonic() - started_)
            .count());
}

bool Session::skip(const Check& c) const {
    // Before MAIL FROM the direction is not known yet (authentication comes after EHLO); connect and
    // helo checks run for everyone and their symbols are dropped at the end for outbound mail.
    return direction_known_ && env_.direction == core::Direction::outbound && c.inbound_only();
}

void Session::run_stage(Stage stage, Results& into, std::string_view rcpt) {
    const auto& checks = config_->by_stage[static_cast<int>(stage)];
    if (checks.empty()) return;
    Ctx ctx(*this, stage, into, rcpt);
    for (const auto* c : checks) {
        if (!skip(*c)) c->start(ctx);
    }
    for (const auto* c : checks) {
        if (!skip(*c)) c->run(ctx);
    }
}

StageResult Session::early_decision(const Results& r, std::size_t forced_from) const {
    StageResult out;
    if (!config_->actions.honour_forced) return out;
    for (std::size_t i = forced_from; i < r.forced.size(); ++i) {
        const auto& f = r.forced[i].action;
        if (f.action != core::Action::reject && f.action != core::Action::tempfail) continue;
        if (direction_known_ && env_.direction == core::Direction::outbound && r.forced[i].inbound_only)
            continue;
        auto kind =
            f.action == core::Action::reject ? StageResult::Kind::reject : StageResult::Kind::tempfail;
        if (out.kind == StageResult::Kind::reject) continue;  // reject wins over tempfail
        out.kind = kind;
        out.decided_at = r.forced[i].stage;
        out.reply = f.reply.value_or(kind == StageResult::Kind::reject ? config_->replies.reject
                                                                       : config_->replies.tempfail);
        out.reason = f.reason;
    }
    return out;
}

StageResult Session::connect(std::optional<core::IpAddress> ip, std::string_view client_name,
                             std::string_view daemon_name, bool local) {
    env_ = core::Envelope{};
    connection_ = Results{};
    started_ = services_.clock->monotonic();
    env_.client_ip = ip ? std::optional(ip->unmapped()) : std::nullopt;
    env_.client_name = std::string(client_name.substr(0, core::limits::max_envelope_string));
    env_.daemon_name = std::string(daemon_name.substr(0, core::limits::max_envelope_string));
    env_.trusted_network =
        local ||
        (env_.client_ip &&
         std::any_of(config_->server.trusted_networks.begin(), config_->server.trusted_networks.end(),
                     [&](const core::Cidr& c) { return c.contains(*env_.client_ip); }));
    auto before = connection_.forced.size();
    run_stage(Stage::connect, connection_);
    connect_mark_ = {connection_.auth_results.size(), connection_.prepend.size(), connection_.reports.size(),
                     connection_.warnings.size()};
    return early_decision(connection_, before);
}

StageResult Session::helo(std::string_view name) {
    env_.helo = std::string(name.substr(0, core::limits::max_envelope_string));
    // A second HELO/EHLO replaces what the first one found (and only that: connect-stage findings
    // of the same checks stay).
    std::erase_if(connection_.hits, [](const Hit& h) { return h.stage == Stage::helo; });
    std::erase_if(connection_.forced, [](const Forced& f) { return f.stage == Stage::helo; });
    connection_.auth_results.resize(connect_mark_.auth_results);
    connection_.prepend.resize(connect_mark_.prepend);
    connection_.reports.resize(connect_mark_.reports);
    connection_.warnings.resize(connect_mark_.warnings);
    auto before = connection_.forced.size();
    run_stage(Stage::helo, connection_);
    return early_decision(connection_, before);
}

StageResult Session::mail(std::string_view from, std::string_view auth_user, std::string_view auth_type) {
    reset_message();
    in_message_ = true;
    started_ = services_.clock->monotonic();
    env_.mail_from = core::strip_angle_brackets(from.substr(0, core::limits::max_envelope_string));
    env_.auth_user = std::string(auth_user.substr(0, core::limits::max_envelope_string));
    env_.auth_type = std::string(auth_type.substr(0, core::limits::max_envelope_string));
    bool outbound =
        env_.trusted_network || (config_->server.authenticated_is_outbound && !env_.auth_user.empty());
    env_.direction = outbound ? core::Direction::outbound : core::Direction::inbound;
    direction_known_ = true;
    // A refusal decided at connect or HELO, before the direction was known, holds only now that
    // the sender is known not to be one of ours (an inbound-only check's refusal does not stop our
    // own users: delay_reject). When it holds it is the answer, and MAIL's checks need not run.
    if (auto held = early_decision(connection_, 0); !held.proceed()) return held;
    auto before = message_.forced.size();
    run_stage(Stage::mail, message_);
    return early_decision(message_, before);
}

StageResult Session::rcpt(std::string_view rcpt) {
    auto addr = core::strip_angle_brackets(rcpt.substr(0, core::limits::max_envelope_string));
    // Findings about one recipient must not stick to the message if that recipient is refused.
    Results scratch;
    run_stage(Stage::rcpt, scratch, addr);
    auto early = early_decision(scratch, 0);
    if (!early.proceed()) return early;
    for (auto& h : scratch.hits) message_.hits.push_back(std::move(h));
    for (auto& f : scratch.forced) message_.forced.push_back(std::move(f));
    for (auto& a : scratch.auth_results) message_.auth_results.push_back(std::move(a));
    for (auto& p : scratch.prepend) message_.prepend.push_back(std::move(p));
    for (auto& r : scratch.reports) message_.reports.push_back(std::move(r));
    for (auto& w : scratch.warnings) message_.warnings.push_back(std::move(w));
    ++env_.rcpt_count;
    if (env_.rcpts.size() < core::limits::max_recipients_kept) env_.rcpts.push_back(std::move(addr));
    return early;
}

void Session::set_queue_id(std::string_view id) {
    if (!id.empty()) env_.queue_id = std::string(id.substr(0, 64));
}

void Session::header(std::string_view name, std::string_view value) {
    incoming_.add(name, value);
    msg_.add_header(name, value);
}

void Session::end_of_headers() {
    headers_done_ = true;
    run_stage(Stage::headers, message_);
}

void Session::body(std::string_view chunk) {
    msg_.add_body(chunk.size());
    const auto& checks = config_->by_stage[static_cast<int>(Stage::body)];
    if (checks.empty()) return;
    Ctx ctx(*this, Stage::body, message_, {});
    for (const auto* c : checks) {
        if (!skip(*c)) c->body_chunk(ctx, chunk);
    }
}

core::Verdict Session::end_of_message() {
    // An MTA that skips end-of-headers must not skip the header checks with it.
    if (!headers_done_) end_of_headers();
    run_stage(Stage::body, message_);
    run_stage(Stage::eom, message_);

    bool outbound = env_.direction == core::Direction::outbound;
    std::vector<core::SymbolHit> hits;
    std::vector<core::ForcedAction> forced;
    std::vector<std::string> auth_results;
    std::vector<std::pair<std::string, std::string>> prepend, reports;
    std::vector<std::string> warnings;
    for (const Results* r : {&connection_, &message_}) {
        for (const auto& h : r->hits) {
            if (!(outbound && h.inbound_only)) hits.push_back(h.hit);
        }
        for (const auto& f : r->forced) {
            if (!(outbound && f.inbound_only)) forced.push_back(f.action);
        }
        for (const auto& a : r->auth_results) auth_results.push_back(a);
        for (const auto& p : r->prepend) prepend.push_back(p);
        for (const auto& rep : r->reports) reports.push_back(rep);
        for (const auto& w : r->warnings) warnings.push_back(w);
    }
    auto verdict = decide(*config_, hits, forced);
    verdict.edits = header_edits(*config_, env_, msg_, verdict, auth_results, prepend, &incoming_);
    verdict.reports = std::move(reports);
    verdict.warnings = std::move(warnings);
    refuse_excess(incoming_, verdict);
    return verdict;
}

void Session::reset_message() {
    msg_ = core::Message{};
    message_ = Results{};
    incoming_ = IncomingFields(*config_);
    headers_done_ = false;
    states_.clear();
    facts_ = AuthFacts{};
    env_.queue_id.clear();
    env_.mail_from.clear();
    env_.auth_user.clear();
    env_.auth_type.clear();
    env_.rcpts.clear();
    env_.rcpt_count = 0;
    in_message_ = false;
    direction_known_ = false;
}

core::Verdict decide(const Config& config, const std::vector<core::SymbolHit>& hits,
                     const std::vector<core::ForcedAction>& forced) {
    core::Verdict v;
    // One entry per symbol: the strongest hit wins, options of all hits are kept (bounded).
    for (const auto& h : hits) {
        double score = config.weight(h.name) * h.multiplier;
        auto it = std::find_if(v.symbols.begin(), v.symbols.end(),
                               [&](const core::ScoredSymbol& s) { return s.name == h.name; });
        if (it == v.symbols.end()) {
            v.symbols.push_back({h.name, score, h.options});
            continue;
        }
        if (std::fabs(score) > std::fabs(it->score)) it->score = score;
        for (const auto& o : h.options) {
            if (it->options.size() < 8) it->options.push_back(o);
        }
    }
    for (const auto& s : v.symbols) v.score += s.score;
    v.score = std::round(v.score * 100.0) / 100.0;  // the log and the headers show two decimals
    std::sort(v.symbols.begin(), v.symbols.end(), [](const auto& a, const auto& b) {
        return std::fabs(a.score) != std::fabs(b.score) ? std::fabs(a.score) > std::fabs(b.score)
                                                        : a.name < b.name;
    });
    const auto& t = config.actions.thresholds;
    v.reject_threshold = t.reject.value_or(0.0);

    // Highest threshold reached wins.
    std::optional<double> best;
    auto consider = [&](const std::optional<double>& threshold, core::Action a) {
        if (threshold && v.score >= *threshold && (!best || *threshold > *best)) {
            best = threshold;
            v.action = a;
        }
    };
    consider(t.add_header, core::Action::add_header);
    consider(t.quarantine, core::Action::quarantine);
    consider(t.tempfail, core::Action::tempfail);
    consider(t.reject, core::Action::reject);

    if (config.actions.honour_forced && !forced.empty()) {
        // The strongest forced action decides; a forced accept (allow rule) decides only when
        // nothing else forced anything.
        const core::ForcedAction* pick = nullptr;
        for (const auto& f : forced) {
            if (pick == nullptr || f.action > pick->action) pick = &f;
        }
        // A forced accept (allow rule) overrides the score; any other forced action can only make
        // the outcome stronger than the score alone would.
        if (pick->action == core::Action::accept || pick->action >= v.action) {
            v.action = pick->action;
            v.forced = *pick;
        }
    }
    if (v.action == core::Action::reject) {
        v.reply = (v.forced && v.forced->reply) ? *v.forced->reply : config.replies.reject;
    } else if (v.action == core::Action::tempfail) {
        v.reply = (v.forced && v.forced->reply) ? *v.forced->reply : config.replies.tempfail;
    } else if (v.action == core::Action::quarantine) {
        v.quarantine_reason = v.forced ? fmt::format("vigil: {}", v.forced->reason)
                                       : fmt::format("vigil: score {:.2f}", v.score);
    }
    return v;
}

}  // namespace vigil::engine
