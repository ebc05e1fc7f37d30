#include "tools/bench/milter_wire.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace vigil::bench {
namespace {

std::uint32_t get32(std::string_view s, std::size_t at) {
    std::uint32_t v = 0;
    std::memcpy(&v, s.data() + at, 4);
    return ntohl(v);
}

void put32(std::string& out, std::uint32_t v) {
    v = htonl(v);
    out.append(reinterpret_cast<const char*>(&v), 4);
}

}  // namespace

int stage_of(char command) {
    switch (command) {
        case cmd::connect:
            return Stage::connect;
        case cmd::helo:
            return Stage::helo;
        case cmd::mail:
            return Stage::envfrom;
        case cmd::rcpt:
            return Stage::envrcpt;
        case cmd::data:
            return Stage::data;
        case cmd::header:
        case cmd::eoh:
            return Stage::eoh;
        case cmd::body:
        case cmd::eob:
            return Stage::eom;
        default:
            return -1;
    }
}

const std::vector<std::string>& postfix_default_macros(int stage) {
    static const std::array<std::vector<std::string>, kStages> lists = {{
        {"j", "{daemon_name}", "{daemon_addr}", "v", "_"},                                  // connect
        {"{tls_version}", "{cipher}", "{cipher_bits}", "{cert_subject}", "{cert_issuer}"},  // helo
        {"i", "{auth_type}", "{auth_authen}", "{auth_author}", "{mail_addr}", "{mail_host}",
         "{mail_mailer}"},                                     // mail
        {"i", "{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}"},  // rcpt
        {"i"},                                                 // data
        {"i"},                                                 // eom
        {"i"},                                                 // eoh
    }};
    static const std::vector<std::string> none;
    return stage >= 0 && stage < kStages ? lists[static_cast<std::size_t>(stage)] : none;
}

void put_packet(std::string& out, char command, std::string_view payload) {
    put32(out, static_cast<std::uint32_t>(payload.size() + 1));
    out.push_back(command);
    out.append(payload);
}

void put_optneg(std::string& out) {
    put32(out, 13);
    out.push_back(cmd::optneg);
    put32(out, kPostfixVersion);
    put32(out, kPostfixActions);
    put32(out, kPostfixProtocol);
}

std::optional<Negotiation> parse_optneg(std::string_view p, std::string& error) {
    if (p.size() < 12) {
        error = "OPTNEG reply shorter than 12 bytes";
        return std::nullopt;
    }
    Negotiation n;
    n.version = get32(p, 0);
    n.actions = get32(p, 4);
    n.protocol = get32(p, 8);
    // Postfix refuses these (milter8_connect).
    if (n.version > kPostfixVersion) {
        error = "filter wants a newer protocol version";
        return std::nullopt;
    }
    if ((n.actions & kPostfixActions) != n.actions) {
        error = "filter wants actions Postfix does not offer";
        return std::nullopt;
    }
    p.remove_prefix(12);
    while (!p.empty()) {
        if (p.size() < 5) {
            error = "truncated symbol list in OPTNEG reply";
            return std::nullopt;
        }
        std::uint32_t stage = get32(p, 0);
        auto end = p.find('\0', 4);
        if (end == std::string_view::npos) {
            error = "symbol list without NUL";
            return std::nullopt;
        }
        std::string_view names = p.substr(4, end - 4);
        p.remove_prefix(end + 1);
        if (stage >= static_cast<std::uint32_t>(kStages)) continue;  // Postfix ignores unknown stages
        std::vector<std::string> list;
        std::size_t i = 0;
        while (i < names.size()) {
            while (i < names.size() && (names[i] == ' ' || names[i] == ',')) ++i;
            std::size_t j = i;
            while (j < names.size() && names[j] != ' ' && names[j] != ',') ++j;
            if (j > i) list.emplace_back(names.substr(i, j - i));
            i = j;
        }
        n.symlists[stage] = std::move(list);
    }
    return n;
}

long take_packet(std::string_view in, char& code, std::string_view& data) {
    if (in.size() < 4) return 0;
    std::uint32_t len = get32(in, 0);
    if (len == 0 || len > kMaxReply + 1) return -1;
    if (in.size() < 4 + static_cast<std::size_t>(len)) return 0;
    code = in[4];
    data = in.substr(5, len - 1);
    return static_cast<long>(4 + len);
}

bool is_decision(char c) {
    switch (c) {
        case reply::accept:
        case reply::cont:
        case reply::reject:
        case reply::tempfail:
        case reply::replycode:
        case reply::discard:
        case reply::skip:
        case reply::shutdown:
        case reply::conn_fail:
            return true;
        default:
            return false;
    }
}

bool is_modification(char c) {
    switch (c) {
        case reply::addrcpt:
        case reply::delrcpt:
        case reply::addrcpt_par:
        case reply::replbody:
        case reply::chgfrom:
        case reply::addheader:
        case reply::insheader:
        case reply::chgheader:
        case reply::quarantine:
            return true;
        default:
            return false;
    }
}

std::optional<Modification> parse_modification(char code, std::string_view d) {
    Modification m;
    m.code = code;
    if (code == reply::replbody) return m;  // body bytes: not kept
    if (code == reply::insheader || code == reply::chgheader) {
        if (d.size() < 4) return std::nullopt;
        m.index = get32(d, 0);
        d.remove_prefix(4);
    }
    if (d.empty() || d.back() != '\0') return std::nullopt;
    d.remove_suffix(1);
    auto nul = d.find('\0');
    bool two = code == reply::addheader || code == reply::insheader || code == reply::chgheader;
    if (two) {
        if (nul == std::string_view::npos) return std::nullopt;
        m.name = std::string(d.substr(0, nul));
        m.value = std::string(d.substr(nul + 1));
        if (m.value.find('\0') != std::string::npos) return std::nullopt;
    } else {
        // One string, optionally followed by ESMTP args (ADDRCPT_PAR, CHGFROM).
        m.name = std::string(d.substr(0, nul));
        if (nul != std::string_view::npos) m.value = std::string(d.substr(nul + 1));
    }
    return m;
}

bool valid_replycode(std::string_view d) {
    if (d.empty() || d.back() != '\0') return false;
    d.remove_suffix(1);
    return d.size() >= 5 && (d[0] == '4' || d[0] == '5') && d[1] >= '0' && d[1] <= '9' && d[2] >= '0' &&
           d[2] <= '9' && (d[3] == ' ' || d[3] == '-') && d[4] == d[0];
}

}  // namespace vigil::bench
