#pragma once
// The one interface through which the engine knows a check (DESIGN.md: "The shape").
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "check/auth_facts.hpp"
#include "core/clock.hpp"
#include "core/envelope.hpp"
#include "core/message.hpp"
#include "core/verdict.hpp"

namespace vigil::dns {
class Resolver;
class CachingResolver;
}  // namespace vigil::dns
namespace vigil::report {
class DmarcStore;
}

namespace vigil::check {

enum class Stage { connect, helo, mail, rcpt, headers, body, eom };
inline constexpr int stage_count = 7;
std::string_view to_string(Stage s);

class Check;

// What a check may know of the server it runs on (part of the engine's [server] settings).
struct ServerFacts {
    std::string hostname;     // our own host name (HELO comparisons, the SPF receiver)
    std::string authserv_id;  // the Authentication-Results authserv-id
};

// Per-message scratch space a check may keep between its stages (e.g. a streaming hash).
class CheckState {
  public:
    virtual ~CheckState() = default;
};

// What a check sees while it runs: the envelope and message so far, the config, a deadline for
// any lookup, and the means to add symbols, force an action, or add an Authentication-Results entry.
class Context {
  public:
    virtual ~Context() = default;
    virtual const ServerFacts& server() const = 0;
    // [actions] honour_forced_actions: false turns every forced action into a score-only finding.
    virtual bool honour_forced_actions() const = 0;
    virtual const core::Clock& clock() const = 0;
    // Shared by all sessions (cached). Without one configured, every lookup answers servfail.
    virtual dns::Resolver& resolver() const = 0;
    // The same cache, for parsed objects derived from answers (e.g. DKIM keys); null in unit tests
    // that give no cache.
    virtual dns::CachingResolver* cache() const = 0;
    // Where DMARC evaluations go for aggregate reports; null when reporting is off.
    virtual report::DmarcStore* dmarc_store() const = 0;
    virtual const core::Envelope& envelope() const = 0;
    virtual const core::Message& message() const = 0;
    virtual Stage stage() const = 0;
    // The current stage's DNS budget ends here; lookups not answered by then count as timeouts.
    virtual std::chrono::steady_clock::time_point deadline() const = 0;
    // For a rcpt-stage check: the recipient being considered (already in envelope().rcpts
    // only once it is accepted).
    virtual std::string_view current_rcpt() const = 0;

    virtual void add_symbol(const Check& by, std::string_view symbol, double multiplier = 1.0,
                            std::vector<std::string> options = {}) = 0;
    virtual void force(const Check& by, core::Action action, std::string reason,
                       std::optional<core::SmtpReply> reply = std::nullopt) = 0;
    // "method=result ptype.property=value ..." for the Authentication-Results header.
    virtual void add_auth_result(std::string resinfo) = 0;
    // A header field to put at the top of the message if it is delivered (Received-SPF,
    // DKIM-Signature). `value` follows "Name:" and starts with a space; fold with CRLF + WSP.
    virtual void prepend_header(std::string name, std::string value) = 0;
    // A JSON value (object or array, already serialised) that `vigil check --json` shows under `key`,
    // e.g. "spf" -> {"result":"pass",...}. Also kept in the verdict for tests.
    virtual void add_report(std::string key, std::string json) = 0;
    // False when nobody will read the reports (the milter): a check may skip building them.
    virtual bool wants_reports() const { return true; }
    // Something the operator must learn about (e.g. a block list refusing our queries): logged at
    // warning level with the message's decision. Made printable by the logger, but keep it short.
    virtual void warn(std::string message) = 0;
    // Results one check leaves for another (DMARC reads SPF and DKIM); the same object for the whole
    // message, cleared with it.
    virtual AuthFacts& facts() = 0;
    // Null until the check stores something; the same object for the whole message.
    virtual CheckState* state(const Check& by) = 0;
    virtual void set_state(const Check& by, std::unique_ptr<CheckState> state) = 0;
};

class Check {
  public:
    virtual ~Check() = default;
    // Also the name of its table in the config: [checks.<name>].
    virtual std::string_view name() const = 0;
    virtual std::vector<Stage> stages() const = 0;
    virtual std::vector<core::SymbolDef> symbols() const = 0;
    // Names of checks whose results this one reads; they run earlier in the same stage.
    virtual std::vector<std::string_view> depends_on() const { return {}; }
    // Inbound-only checks are skipped for outbound mail (authenticated or trusted-network senders).
    virtual bool inbound_only() const { return true; }
    // Whether this check, as configured, may refuse (force reject or tempfail) at connect, HELO, MAIL
    // FROM or RCPT TO. When no check may, the milter does not make the MTA wait for its answers
    // there. A check that does not say may, if it has such a stage.
    virtual bool may_refuse_before_data() const;

    // Issue lookups without waiting; the engine calls start() for every check of a stage before
    // run() for any, so one stage costs its slowest lookup, not the sum of them.
    virtual void start(Context&) const {}
    virtual void run(Context& ctx) const = 0;
    // Body checks see every body chunk as it streams through (never the whole body at once).
    virtual void body_chunk(Context&, std::string_view) const {}
};

}  // namespace vigil::check
