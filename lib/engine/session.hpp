#pragma once
// One SMTP connection as the engine sees it: the milter (or `vigil check`) feeds it the events of
// the dialogue, it runs the checks of each stage in dependency order and, at end of message,
// turns the symbols into a verdict.
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/envelope.hpp"
#include "core/message.hpp"
#include "core/verdict.hpp"
#include "engine/check_api.hpp"
#include "engine/config.hpp"
#include "engine/incoming_fields.hpp"

namespace vigil::engine {

// The answer to an SMTP stage before end of message: go on, or refuse now.
struct StageResult {
    enum class Kind { proceed, reject, tempfail };
    Kind kind = Kind::proceed;
    core::SmtpReply reply;
    std::string reason;
    Stage decided_at = Stage::connect;  // of a refusal: the stage of the check that forced it
    bool proceed() const { return kind == Kind::proceed; }
};

struct Services {
    const core::Clock* clock = &core::SystemClock::instance();
    dns::Resolver* resolver = nullptr;          // null: every lookup fails as servfail ("no resolver")
    dns::CachingResolver* cache = nullptr;      // for parsed objects; usually the same object as resolver
    report::DmarcStore* dmarc_store = nullptr;  // null: DMARC aggregate reporting is off
    bool keep_reports = true;  // false: Context::wants_reports() says so, verdict.reports stays empty
};

class Session {
  public:
    Session(std::shared_ptr<const Config> config, Services services);

    const Config& config() const { return *config_; }
    const core::Envelope& envelope() const { return env_; }
    const core::Message& message() const { return msg_; }
    bool in_message() const { return in_message_; }

    // `local`: the MTA reported no client address (sendmail binary, Postfix pickup): our own mail.
    StageResult connect(std::optional<core::IpAddress> ip, std::string_view client_name,
                        std::string_view daemon_name = {}, bool local = false);
    StageResult helo(std::string_view name);
    // auth_user/auth_type are the {auth_authen}/{auth_type} macros (empty when unauthenticated).
    // A refusal decided at connect or HELO that holds for this sender is returned (its decided_at
    // says so) before MAIL's checks run. One by an inbound-only check does not hold once the sender
    // turns out to be ours (authenticated, or from trusted_networks): with delay_reject such a sender
    // gets through where the check would have refused it at connect.
    StageResult mail(std::string_view from, std::string_view auth_user = {}, std::string_view auth_type = {});
    StageResult rcpt(std::string_view rcpt);
    void set_queue_id(std::string_view id);
    void header(std::string_view name, std::string_view value);
    void end_of_headers();
    void body(std::string_view chunk);
    core::Verdict end_of_message();
    // Forget the current message (after end of message, ABORT, or RSET), keep the connection.
    void reset_message();

    // Milliseconds since the message (or, before MAIL, the connection) started.
    long elapsed_ms() const;

  private:
    class Ctx;
    friend class Ctx;
    struct Hit {
        core::SymbolHit hit;
        bool inbound_only;
        Stage stage;
    };
    struct Forced {
        core::ForcedAction action;
        bool inbound_only;
        Stage stage;
    };
    struct Results {
        std::vector<Hit> hits;
        std::vector<Forced> forced;
        std::vector<std::string> auth_results;
        std::vector<std::pair<std::string, std::string>> prepend;  // header fields to add on top
        std::vector<std::pair<std::string, std::string>> reports;
        std::vector<std::string> warnings;
    };

    // Where the connect stage's findings end in `connection_`: a second HELO drops what the first
    // one added after them.
    struct ConnectMark {
        std::size_t auth_results = 0, prepend = 0, reports = 0, warnings = 0;
    };
    ConnectMark connect_mark_;

    void run_stage(Stage stage, Results& into, std::string_view rcpt = {});
    StageResult early_decision(const Results& r, std::size_t forced_from) const;
    bool skip(const Check& c) const;

    std::shared_ptr<const Config> config_;
    Services services_;
    core::Envelope env_;
    core::Message msg_;
    Results connection_;  // connect and helo stages: kept for every message of the connection
    Results message_;
    std::map<const Check*, std::unique_ptr<CheckState>> states_;
    AuthFacts facts_;
    // Fields to remove before delivery (forged Authentication-Results, the sender's X-Spam-*),
    // tracked for every field the MTA sends, also past the caps of core::Message: a forgery must
    // never survive because it came after 5,000 filler fields.
    IncomingFields incoming_;
    bool headers_done_ = false;
    bool in_message_ = false;
    bool direction_known_ = false;
    std::chrono::steady_clock::time_point started_;
};

// Turn symbols and forced actions into the final verdict. Exposed for unit tests.
core::Verdict decide(const Config& config, const std::vector<core::SymbolHit>& hits,
                     const std::vector<core::ForcedAction>& forced);

}  // namespace vigil::engine
