#pragma once
// The MTA side of the milter protocol (version 6) as Postfix 3.7 speaks it: packets, the OPTNEG offer,
// Postfix's default macro lists, and the parsing of the filter's replies. Pure functions over bytes;
// the load engine (load.hpp) owns the sockets.
//
// What "as Postfix does" means here was checked against a real Postfix 3.7.11 (see
// test/support/milter_client.py, which documents each point): OPTNEG offers version 6, actions 0x1FF,
// protocol 0x1FFFFF; a macro packet precedes every event, even a skipped CONNECT/HELO/MAIL/RCPT/DATA,
// but not skipped headers/EOH/body; headers lose one space after the colon unless HDR_LEADSPC;
// folded header lines are joined with a bare LF; the body goes in 65,535-byte chunks; an ABORT follows
// every transaction and rides along with the next write.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::bench {

// Commands (MTA -> filter) and replies (filter -> MTA), libmilter/mfdef.h.
namespace cmd {
constexpr char abort = 'A', body = 'B', connect = 'C', macro = 'D', eob = 'E', helo = 'H', quit_nc = 'K',
               header = 'L', mail = 'M', eoh = 'N', optneg = 'O', quit = 'Q', rcpt = 'R', data = 'T',
               unknown = 'U';
}
namespace reply {
constexpr char addrcpt = '+', delrcpt = '-', addrcpt_par = '2', shutdown = '4', accept = 'a', replbody = 'b',
               cont = 'c', discard = 'd', chgfrom = 'e', conn_fail = 'f', addheader = 'h', insheader = 'i',
               setsymlist = 'l', chgheader = 'm', progress = 'p', quarantine = 'q', reject = 'r', skip = 's',
               tempfail = 't', replycode = 'y';
}

// Protocol steps (SMFIP_*).
namespace proto {
constexpr std::uint32_t noconnect = 0x1, nohelo = 0x2, nomail = 0x4, norcpt = 0x8, nobody = 0x10,
                        nohdrs = 0x20, noeoh = 0x40, nr_hdr = 0x80, nounknown = 0x100, nodata = 0x200,
                        skip = 0x400, rcpt_rej = 0x800, nr_conn = 0x1000, nr_helo = 0x2000, nr_mail = 0x4000,
                        nr_rcpt = 0x8000, nr_data = 0x10000, nr_unkn = 0x20000, nr_eoh = 0x40000,
                        nr_body = 0x80000, hdr_leadspc = 0x100000;
}

// What Postfix 3.7 offers (seen on the wire).
constexpr std::uint32_t kPostfixVersion = 6;
constexpr std::uint32_t kPostfixActions = 0x1FF;
constexpr std::uint32_t kPostfixProtocol = 0x1FFFFF;
// Postfix's MILTER_CHUNK_SIZE, and its cap on a reply packet (milter8_read_resp).
constexpr std::size_t kChunk = 65535;
constexpr std::size_t kMaxReply = 2 * kChunk;

// Macro stages (SMFIM_*), the numbering of SETSYMLIST lists in the OPTNEG reply.
enum Stage : int { connect = 0, helo = 1, envfrom = 2, envrcpt = 3, data = 4, eom = 5, eoh = 6 };
constexpr int kStages = 7;
// The stage whose macro list goes with an event (headers use EOH's list, body chunks EOM's).
int stage_of(char command);
// Postfix 3.7's default lists (`postconf -d | grep _macros`), by stage.
const std::vector<std::string>& postfix_default_macros(int stage);

struct Negotiation {
    std::uint32_t version = 0, actions = 0, protocol = 0;
    std::array<std::optional<std::vector<std::string>>, kStages> symlists;  // set: replaces Postfix's list
    bool has(std::uint32_t flag) const { return (protocol & flag) != 0; }
};

// Appends one packet: 4-byte length, command, payload.
void put_packet(std::string& out, char command, std::string_view payload = {});
// The OPTNEG packet with Postfix's offer.
void put_optneg(std::string& out);
// Parses the OPTNEG reply's payload (after the command byte). nullopt with `error` set on a malformed one.
std::optional<Negotiation> parse_optneg(std::string_view payload, std::string& error);

// One packet taken off the front of `in`: 0 = need more bytes, > 0 = bytes consumed (code/data set),
// < 0 = protocol error (length 0 or beyond Postfix's cap).
long take_packet(std::string_view in, char& code, std::string_view& data);

bool is_decision(char code);
bool is_modification(char code);

// A modification at end of message, decoded enough to check and print it.
struct Modification {
    char code = 0;
    std::uint32_t index = 0;
    std::string name, value;
};
std::optional<Modification> parse_modification(char code, std::string_view data);

// "4XX 4.x.x text" / "5XX 5.x.x text", NUL-terminated: what Postfix accepts in SMFIR_REPLYCODE.
bool valid_replycode(std::string_view data);

}  // namespace vigil::bench
