#include "milter/adapter.hpp"

#include <syslog.h>

#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "core/printable.hpp"
#include "engine/session.hpp"
#include "report/decision_log.hpp"

namespace vigil::milter {

namespace {

Daemon* g_daemon = nullptr;
bool g_unix_listener = false;         // set once before smfi_main(), like g_daemon
const char* g_fault_stage = nullptr;  // tests only: the callback that throws (set_fault_injection)

// An answer decided at a stage where the MTA does not wait for one (a no-reply stage, negotiated):
// libmilter drops whatever such a callback returns, so the answer is kept and given at the next
// stage the MTA waits for: each RCPT TO for connect, HELO and MAIL FROM (Postfix's
// smtpd_delay_reject), end of message for the header and body stages, and for all of them when RCPT
// TO is not answered either (nothing configured can refuse before DATA).
struct Deferred {
    sfsistat status = SMFIS_TEMPFAIL;
    core::SmtpReply reply;  // empty code: libmilter's default reply for the status
    std::string stage;      // where it was decided, for the log
    std::string reason;
};

struct Priv {
    std::shared_ptr<const engine::Config> config;
    std::unique_ptr<engine::Session> session;
    bool leadspc = false;
    unsigned long noreply = 0;               // protocol flags for stages where the MTA waits for no answer
    std::optional<Deferred> session_answer;  // an internal failure at connect or HELO: every transaction
    std::optional<Deferred> message_answer;  // from MAIL FROM to the body: this transaction only

    // The answer this transaction gets at the next stage the MTA waits for, if one is kept.
    const std::optional<Deferred>& kept() const { return session_answer ? session_answer : message_answer; }
};

Priv* priv(SMFICTX* ctx) {
    return static_cast<Priv*>(smfi_getpriv(ctx));
}

std::string macro(SMFICTX* ctx, const char* name) {
    const char* v = smfi_getsymval(ctx, const_cast<char*>(name));
    return v ? std::string(v) : std::string();
}

// libmilter hands header values with bare LF between folded lines; Vigil keeps CRLF everywhere.
// `scratch` holds the converted text when there is anything to convert (folded fields only).
std::string_view to_crlf(const char* raw, std::string& scratch) {
    std::string_view in(raw);
    auto lf = in.find('\n');
    if (lf == std::string_view::npos) return in;
    scratch.clear();
    scratch.reserve(in.size() + 8);
    std::size_t from = 0;
    for (; lf != std::string_view::npos; lf = in.find('\n', from)) {
        scratch.append(in.substr(from, lf - from));
        if (lf == 0 || in[lf - 1] != '\r') scratch += '\r';
        scratch += '\n';
        from = lf + 1;
    }
    scratch.append(in.substr(from));
    return scratch;
}

// ...and expects LF-only folding in values we send back.
std::string to_lf(std::string_view s, bool leadspc) {
    std::string out;
    out.reserve(s.size());
    std::size_t from = 0;
    for (auto cr = s.find("\r\n"); cr != std::string_view::npos; cr = s.find("\r\n", from)) {
        out.append(s.substr(from, cr - from));
        from = cr + 1;  // keeps the LF
    }
    out.append(s.substr(from));
    if (!leadspc && !out.empty() && out.front() == ' ') out.erase(0, 1);
    return out;
}

sfsistat set_reply(SMFICTX* ctx, const core::SmtpReply& r, sfsistat status) {
    // The texts are validated printable ASCII without '%'; setreply fails only on bad codes.
    smfi_setreply(ctx, const_cast<char*>(r.code.c_str()), const_cast<char*>(r.xcode.c_str()),
                  const_cast<char*>(r.text.c_str()));
    return status;
}

std::shared_ptr<const engine::Config> config_of(SMFICTX* ctx) {
    Priv* p = priv(ctx);
    return p && p->config ? p->config : g_daemon->config();
}

const char* action_name(sfsistat status) {
    return status == SMFIS_REJECT ? "reject" : status == SMFIS_ACCEPT ? "accept" : "tempfail";
}

sfsistat answer(SMFICTX* ctx, const Deferred& d) {
    return d.reply.code.empty() ? d.status : set_reply(ctx, d.reply, d.status);
}

// Gives an answer with its log line: the stage it was decided at, and the recipient it is given to
// when it was kept for RCPT.
sfsistat give(SMFICTX* ctx, Priv& p, const Deferred& d, std::string_view rcpt = {}) {
    static const core::Envelope none;  // a failure before the session existed
    log_line(LOG_INFO,
             report::format_early_decision(p.config->log.format, p.session ? p.session->envelope() : none,
                                           d.stage, action_name(d.status), d.reply, d.reason, rcpt));
    return answer(ctx, d);
}

// Keeps an answer decided where the MTA waits for none (`nr_bit` negotiated); the first one stands.
// Connect and HELO ones (internal failures: a policy refusal there is re-decided at MAIL FROM) hold
// for every transaction of the session, the others for this one.
sfsistat keep(Priv& p, unsigned long nr_bit, Deferred d) {
    auto& slot = nr_bit == SMFIP_NR_CONN || nr_bit == SMFIP_NR_HELO ? p.session_answer : p.message_answer;
    if (!slot) slot = std::move(d);
    return SMFIS_NOREPLY;
}

// Go on: no answer where the MTA waits for none, else CONTINUE.
sfsistat carry_on(const Priv& p, unsigned long nr_bit) {
    return (p.noreply & nr_bit) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

// Every callback funnels exceptions here: the configured failure action, never an accidental accept.
// `nr_bit`: the callback's no-reply protocol flag. Where it was negotiated libmilter would drop the
// answer and the message would go on as if nothing had failed, so the answer is kept for the next
// stage the MTA waits for.
sfsistat internal_failure(SMFICTX* ctx, const char* where, unsigned long nr_bit, const char* what) noexcept {
    try {
        auto config = config_of(ctx);
        const auto& cfg = *config;
        auto qid = macro(ctx, "i");
        log_line(LOG_ERR, fmt::format("{}: internal error in {}: {} -> {}",
                                      qid.empty() ? "NOQUEUE" : core::printable(qid, 32), where,
                                      core::printable(what), core::to_string(cfg.milter.on_internal_error)));
        Deferred d;
        d.stage = where;
        d.reason = fmt::format("internal error: {}", what);
        switch (cfg.milter.on_internal_error) {
            case core::Action::accept:
                d.status = SMFIS_ACCEPT;
                break;
            case core::Action::reject:
                d.status = SMFIS_REJECT, d.reply = {"550", "5.3.0", "Internal error in mail filter"};
                break;
            default:
                d.status = SMFIS_TEMPFAIL,
                d.reply = {"451", "4.3.0", "Internal error in mail filter, try again later"};
                break;
        }
        if (Priv* p = priv(ctx); p != nullptr && (p->noreply & nr_bit) != 0)
            return keep(*p, nr_bit, std::move(d));
        return answer(ctx, d);
    } catch (...) {
        return SMFIS_TEMPFAIL;
    }
}

// While stopping: no answer where the MTA waits for none, else tempfail (never an accept).
sfsistat stopping_answer(SMFICTX* ctx, unsigned long nr_bit) {
    const Priv* p = priv(ctx);
    return p != nullptr && (p->noreply & nr_bit) != 0 ? SMFIS_NOREPLY : SMFIS_TEMPFAIL;
}

// Every callback body runs inside this: the stop accounting, a fault injected by the tests, and the
// catch-all that turns any exception into the configured failure answer (never a crash, never an
// accidental accept).
template <typename Body>
sfsistat guarded(SMFICTX* ctx, const char* where, unsigned long nr_bit, Body&& body) noexcept {
    Daemon::CallbackScope scope(*g_daemon);
    if (scope.stopping()) [[unlikely]]
        return stopping_answer(ctx, nr_bit);
    try {
        if (g_fault_stage != nullptr && std::strcmp(g_fault_stage, where) == 0) [[unlikely]]
            throw std::runtime_error("injected fault (VIGIL_TEST_THROW_IN)");
        return body();
    } catch (const std::exception& e) {
        return internal_failure(ctx, where, nr_bit, e.what());
    } catch (...) {
        return internal_failure(ctx, where, nr_bit, "unknown exception");
    }
}

// The answer of a stage up to RCPT: given there, or kept for RCPT when the MTA does not wait for one
// at this stage (`nr_bit` negotiated).
sfsistat early(SMFICTX* ctx, Priv& p, const engine::StageResult& r, const char* stage,
               unsigned long nr_bit = 0, std::string_view rcpt = {}) {
    if (r.proceed()) return carry_on(p, nr_bit);
    Deferred d{r.kind == engine::StageResult::Kind::reject ? SMFIS_REJECT : SMFIS_TEMPFAIL, r.reply, stage,
               r.reason};
    if (p.noreply & nr_bit) return keep(p, nr_bit, std::move(d));
    if (p.config->log.connections || nr_bit == SMFIP_NR_MAIL || std::strcmp(stage, "rcpt") == 0) {
        return give(ctx, p, d, rcpt);
    }
    return answer(ctx, d);
}

sfsistat on_negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                      unsigned long* pf0, unsigned long* pf1, unsigned long* pf2,
                      unsigned long* pf3) noexcept {
    return guarded(ctx, "negotiate", 0, [&]() -> sfsistat {
        auto p = std::make_unique<Priv>();
        p->config = g_daemon->config();
        *pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE | SMFIF_SETSYMLIST);
        // Not SMFIP_NOEOH, though it would spare two packets per message: libmilter's state machine
        // then cannot go from DATA to the body of a message without header fields, ignores its body
        // and end of message, and the transaction hangs until the MTA's timeout (seen with Postfix).
        unsigned long want = SMFIP_HDR_LEADSPC | SMFIP_NOUNKNOWN;
        // Stages where the MTA need not wait for us: each answer it waits for is a round trip (a
        // sleep and a wake-up on each side). Vigil never refuses at a header or body event; with
        // delay_reject it gives connect, HELO and MAIL refusals at RCPT. Over TCP, DATA is answered on
        // purpose: when a filter neither sees nor answers DATA, Postfix writes the DATA event and the
        // next one back to back and Nagle on its side holds the second write for our delayed ACK
        // (~40 ms per message, test/bench/milter_latency.py; README, Performance). A unix socket has
        // no Nagle.
        // When no check, as configured, can refuse before DATA, nothing is refused at connect, HELO,
        // MAIL or RCPT either way, and on a unix socket not even RCPT need be answered (over TCP it
        // is, like DATA). A failure of our own is then kept for end of message.
        unsigned long noreply = SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY | SMFIP_NR_UNKN;
        const bool refuses_early = p->config->may_refuse_before_data();
        if (p->config->milter.delay_reject || !refuses_early)
            noreply |= SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL;
        if (g_unix_listener) noreply |= SMFIP_NR_DATA | (refuses_early ? 0 : SMFIP_NR_RCPT);
        *pf1 = f1 & (want | noreply);
        *pf2 = 0;
        *pf3 = 0;
        p->leadspc = (*pf1 & SMFIP_HDR_LEADSPC) != 0;
        p->noreply = *pf1 & noreply;
        // Only the macros the callbacks read. This does not save packets: Postfix sends a macro packet
        // before every event (each header and body chunk with the EOH and EOM lists), and an empty list
        // means "Postfix's default list", so EOH and EOM keep "i" (the queue id, also their default).
        // It saves the bytes and libmilter's copying of values nobody reads (j, {client_name},
        // {mail_addr}, {rcpt_addr}, and Postfix's defaults {auth_author}, {mail_host}, ...).
        if (*pf0 & SMFIF_SETSYMLIST) {
            smfi_setsymlist(ctx, SMFIM_CONNECT, const_cast<char*>("{daemon_name} {client_addr}"));
            smfi_setsymlist(ctx, SMFIM_ENVFROM, const_cast<char*>("i {auth_type} {auth_authen}"));
            smfi_setsymlist(ctx, SMFIM_ENVRCPT, const_cast<char*>("i"));
            smfi_setsymlist(ctx, SMFIM_EOH, const_cast<char*>("i"));
            smfi_setsymlist(ctx, SMFIM_EOM, const_cast<char*>("i"));
        }
        smfi_setpriv(ctx, p.release());
        return SMFIS_CONTINUE;
    });
}

Priv& ensure_priv(SMFICTX* ctx) {
    Priv* p = priv(ctx);
    if (p == nullptr) {  // an MTA that skipped negotiation (very old protocol): still work
        auto fresh = std::make_unique<Priv>();
        fresh->config = g_daemon->config();
        p = fresh.release();
        smfi_setpriv(ctx, p);
    }
    if (!p->session) {
        auto services = g_daemon->services();
        services.keep_reports = false;  // only `vigil check` shows them
        p->session = std::make_unique<engine::Session>(p->config, services);
    }
    return *p;
}

sfsistat on_connect(SMFICTX* ctx, char* hostname, _SOCK_ADDR* hostaddr) noexcept {
    return guarded(ctx, "connect", SMFIP_NR_CONN, [&]() -> sfsistat {
        Priv& p = ensure_priv(ctx);
        auto ip = core::IpAddress::from_sockaddr(hostaddr);
        if (!ip) {
            if (auto a = macro(ctx, "{client_addr}"); !a.empty()) ip = core::IpAddress::parse(a);
        }
        // No address at all means local submission (sendmail binary, Postfix pickup).
        auto r = p.session->connect(ip, hostname ? hostname : "unknown", macro(ctx, "{daemon_name}"), !ip);
        // With delay_reject a refusal waits for MAIL FROM, where the session tells whether it holds
        // for that sender.
        if (p.noreply & SMFIP_NR_CONN) return SMFIS_NOREPLY;
        return early(ctx, p, r, "connect", SMFIP_NR_CONN);
    });
}

sfsistat on_helo(SMFICTX* ctx, char* name) noexcept {
    return guarded(ctx, "helo", SMFIP_NR_HELO, [&]() -> sfsistat {
        Priv& p = ensure_priv(ctx);
        if (p.session_answer && p.session_answer->stage == "helo") p.session_answer.reset();  // a new HELO
        if (p.session_answer) return carry_on(p, SMFIP_NR_HELO);
        auto r = p.session->helo(name ? name : "");
        if (p.noreply & SMFIP_NR_HELO) return SMFIS_NOREPLY;  // as at connect
        return early(ctx, p, r, "helo", SMFIP_NR_HELO);
    });
}

sfsistat on_envfrom(SMFICTX* ctx, char** argv) noexcept {
    return guarded(ctx, "mail", SMFIP_NR_MAIL, [&]() -> sfsistat {
        Priv& p = ensure_priv(ctx);
        p.message_answer.reset();
        if (p.session_answer) return carry_on(p, SMFIP_NR_MAIL);
        auto r = p.session->mail(argv && argv[0] ? argv[0] : "", macro(ctx, "{auth_authen}"),
                                 macro(ctx, "{auth_type}"));
        p.session->set_queue_id(macro(ctx, "i"));
        // A refusal decided at connect or HELO that holds for this sender is logged with its stage.
        return early(ctx, p, r, to_string(r.decided_at).data(), SMFIP_NR_MAIL);
    });
}

sfsistat on_envrcpt(SMFICTX* ctx, char** argv) noexcept {
    return guarded(ctx, "rcpt", SMFIP_NR_RCPT, [&]() -> sfsistat {
        Priv& p = ensure_priv(ctx);
        p.session->set_queue_id(macro(ctx, "i"));
        std::string rcpt = argv && argv[0] ? argv[0] : "";
        const auto& kept = p.kept();
        if (kept)
            return (p.noreply & SMFIP_NR_RCPT) ? SMFIS_NOREPLY
                                               : give(ctx, p, *kept, core::strip_angle_brackets(rcpt));
        return early(ctx, p, p.session->rcpt(rcpt), "rcpt", SMFIP_NR_RCPT, core::strip_angle_brackets(rcpt));
    });
}

sfsistat on_data(SMFICTX* ctx) noexcept {
    return guarded(ctx, "data", SMFIP_NR_DATA, [&]() -> sfsistat {
        Priv& p = ensure_priv(ctx);
        return carry_on(p, SMFIP_NR_DATA);
    });
}

sfsistat on_header(SMFICTX* ctx, char* name, char* value) noexcept {
    return guarded(ctx, "header", SMFIP_NR_HDR, [&]() -> sfsistat {
        Priv& p = ensure_priv(ctx);
        if (p.kept()) return carry_on(p, SMFIP_NR_HDR);
        std::string scratch;
        p.session->header(name ? name : "", to_crlf(value ? value : "", scratch));
        return carry_on(p, SMFIP_NR_HDR);
    });
}

sfsistat on_eoh(SMFICTX* ctx) noexcept {
    return guarded(ctx, "eoh", SMFIP_NR_EOH, [&]() -> sfsistat {
        Priv& p = ensure_priv(ctx);
        if (p.kept()) return carry_on(p, SMFIP_NR_EOH);
        p.session->set_queue_id(macro(ctx, "i"));
        p.session->end_of_headers();
        return carry_on(p, SMFIP_NR_EOH);
    });
}

sfsistat on_body(SMFICTX* ctx, unsigned char* chunk, size_t len) noexcept {
    return guarded(ctx, "body", SMFIP_NR_BODY, [&]() -> sfsistat {
        Priv& p = ensure_priv(ctx);
        if (p.kept()) return carry_on(p, SMFIP_NR_BODY);
        p.session->body(std::string_view(reinterpret_cast<const char*>(chunk), len));
        return carry_on(p, SMFIP_NR_BODY);
    });
}

void apply_edits(SMFICTX* ctx, const Priv& p, const core::Verdict& v) {
    using Kind = core::HeaderEdit::Kind;
    for (const auto& e : v.edits) {
        auto value = to_lf(e.value, p.leadspc);
        char* name = const_cast<char*>(e.name.c_str());
        int rc = MI_SUCCESS;
        switch (e.kind) {
            case Kind::insert_top:
                rc = smfi_insheader(ctx, 0, name, value.data());
                break;
            case Kind::append:
                rc = smfi_addheader(ctx, name, value.data());
                break;
            case Kind::change:
                rc = smfi_chgheader(ctx, name, e.index, value.data());
                break;
            case Kind::remove:
                rc = smfi_chgheader(ctx, name, e.index, nullptr);
                break;
        }
        if (rc != MI_SUCCESS)
            throw std::runtime_error(fmt::format("the MTA refused a change of header {}", e.name));
    }
}

sfsistat on_eom(SMFICTX* ctx) noexcept {
    return guarded(ctx, "eom", 0, [&]() -> sfsistat {
        Priv& p = ensure_priv(ctx);
        p.session->set_queue_id(macro(ctx, "i"));
        // An answer kept for this point: from a stage before it where the MTA waited for none (with
        // RCPT TO among them, also one from connect or HELO, which stays for the next transaction).
        if (const auto& kept = p.kept()) {
            auto status = give(ctx, p, *kept);  // logged with the envelope
            p.message_answer.reset();
            p.session->reset_message();
            return status;
        }
        // The checks and the decision line take one of the daemon's end-of-message slots (one per
        // CPU, first come first served; given up while waiting for DNS): under overload messages
        // queue in order instead of each being preempted among hundreds of libmilter threads.
        core::Verdict v;
        std::string decision;
        {
            EomGate::Slot slot(g_daemon->eom_gate());
            v = p.session->end_of_message();
            decision = report::format_decision(p.config->log.format, p.session->envelope(), v,
                                               p.session->elapsed_ms());
        }
        sfsistat status = SMFIS_ACCEPT;
        switch (v.action) {
            case core::Action::reject:
                status = set_reply(ctx, *v.reply, SMFIS_REJECT);
                break;
            case core::Action::tempfail:
                status = set_reply(ctx, *v.reply, SMFIS_TEMPFAIL);
                break;
            case core::Action::quarantine:
                apply_edits(ctx, p, v);
                if (smfi_quarantine(ctx, const_cast<char*>(v.quarantine_reason.c_str())) != MI_SUCCESS) {
                    throw std::runtime_error(
                        "the MTA refused to quarantine (SMFIF_QUARANTINE not negotiated)");
                }
                break;
            default:
                apply_edits(ctx, p, v);
                break;
        }
        for (const auto& w : v.warnings) {
            const auto& qid = p.session->envelope().queue_id;
            log_line(LOG_WARNING,
                     fmt::format("{}: warning: {}", qid.empty() ? "NOQUEUE" : core::printable(qid, 32),
                                 core::printable(w, 512)));
        }
        log_line(LOG_INFO, decision);
        p.session->reset_message();
        return status;
    });
}

sfsistat on_abort(SMFICTX* ctx) noexcept {
    return guarded(ctx, "abort", 0, [&]() -> sfsistat {
        if (Priv* p = priv(ctx)) {
            p->message_answer.reset();
            if (p->session) p->session->reset_message();
        }
        return SMFIS_CONTINUE;
    });
}

sfsistat on_close(SMFICTX* ctx) noexcept {
    Daemon::CallbackScope scope(*g_daemon);
    // A session's state may hold what the daemon is tearing down; the process is about to end.
    if (scope.stopping()) return SMFIS_CONTINUE;
    // close may come without connect (e.g. the MTA gave up during negotiation).
    delete priv(ctx);
    smfi_setpriv(ctx, nullptr);
    return SMFIS_CONTINUE;
}

}  // namespace

void set_daemon(Daemon* daemon) {
    g_daemon = daemon;
}
void set_unix_listener(bool unix_socket) {
    g_unix_listener = unix_socket;
}
void set_fault_injection(const char* stage) {
    g_fault_stage = stage;
}

smfiDesc make_filter_description() {
    smfiDesc d{};
    d.xxfi_name = const_cast<char*>("vigil");
    d.xxfi_version = SMFI_VERSION;
    d.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE | SMFIF_SETSYMLIST;
    d.xxfi_connect = on_connect;
    d.xxfi_helo = on_helo;
    d.xxfi_envfrom = on_envfrom;
    d.xxfi_envrcpt = on_envrcpt;
    d.xxfi_data = on_data;
    d.xxfi_header = on_header;
    d.xxfi_eoh = on_eoh;
    d.xxfi_body = on_body;
    d.xxfi_eom = on_eom;
    d.xxfi_abort = on_abort;
    d.xxfi_close = on_close;
    d.xxfi_negotiate = on_negotiate;
    return d;
}

}  // namespace vigil::milter
