#pragma once
// DNS block and allow lists on the client IP (RFC 5782): one A lookup per configured list at
// connect, all issued before any is waited for, so the stage costs the slowest list, not the sum.
//
// A list answers 127.0.0.0/8 addresses ("return codes"). Codes map to symbols per list; codes that
// mean "we refuse to answer you" (Spamhaus 127.255.255.252-255 for a public resolver or a quota,
// and anything outside 127.0.0.0/8) are never a listing: they become RBL_QUERY_REFUSED (weight 0)
// so a broken resolver set-up cannot reject the whole world. Timeouts, SERVFAIL and malformed
// answers become RBL_TEMPFAIL (weight 0), never a listing either.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "check/check.hpp"
#include "check/check_factory.hpp"
#include "core/ip_address.hpp"
#include "core/verdict.hpp"

namespace vigil::dns {
struct Answer;
}

namespace vigil::reputation {

// Each list costs one lookup per connection; more than this is a configuration mistake.
inline constexpr std::size_t max_dnsbl_lists = 32;
// Distinct return codes of one answer that are looked at (a list returns a handful at most).
inline constexpr std::size_t max_dnsbl_codes = 16;
// List names appear in symbol options and log lines.
inline constexpr std::size_t max_dnsbl_name = 32;
// Symbol names a list may define.
inline constexpr std::size_t max_symbol_name = 64;
// Query names are "<reversed address>.<zone>"; the address part is at most this long (IPv6 nibbles).
inline constexpr std::size_t max_reversed_ipv4 = 15;  // "255.255.255.255"
inline constexpr std::size_t max_reversed_ipv6 = 63;  // 32 nibbles and 31 dots

// An inclusive range of IPv4 return codes, as 32-bit numbers (127.0.0.2 is 0x7f000002).
struct CodeRange {
    std::uint32_t first = 0;
    std::uint32_t last = 0;
    bool contains(std::uint32_t code) const { return code >= first && code <= last; }
};

// One return-code rule: a range of codes (plain lists) or a set of bits in the low 24 bits of the
// code (bitmask lists such as SURBL/URIBL-style multi lists), and the symbol it adds.
struct CodeRule {
    CodeRange range;
    std::uint32_t mask = 0;  // bitmask lists only
    std::string symbol;
};

struct DnsblList {
    enum class Type { block, allow };
    enum class RejectAt { rcpt, connect };

    std::string name;  // [a-z0-9_-], for options and log lines
    std::string zone;  // lowercase, no trailing dot
    Type type = Type::block;
    bool ipv6 = false;     // query IPv6 clients (nibble form) too
    bool bitmask = false;  // codes are bit values, not addresses
    std::vector<CodeRule> codes;
    // Allow lists in DNSWL form: the last octet of 127.0.x.y is the trust level 0..3.
    bool levels = false;
    std::array<std::string, 4> level_symbols;
    std::string default_symbol;          // any other 127.0.0.0/8 code
    std::vector<CodeRange> refused;      // codes that mean "query refused", never a listing
    std::vector<CodeRule> reject_codes;  // codes that refuse the client outright (block lists)
    RejectAt reject_at = RejectAt::rcpt;
    core::SmtpReply reply;  // text may contain {ip}, {list}, {zone}, {code}
};

// What one list's answer means. Pure: tested without a resolver.
struct ListResult {
    enum class Kind { not_listed, listed, refused, tempfail };
    Kind kind = Kind::not_listed;
    // listed: the symbols with the codes that produced each, in first-seen order.
    struct Hit {
        std::string symbol;
        std::vector<std::string> codes;
    };
    std::vector<Hit> hits;
    std::vector<std::string> codes;          // every code looked at, as text
    std::optional<std::string> reject_code;  // a code in reject_codes, if any
    std::string refused_code;                // refused: the code that said so
    std::string status;  // tempfail: "timeout", "servfail", "malformed"; else "nxdomain"...
};

ListResult classify_answer(const DnsblList& list, const dns::Answer& answer);

// "2.0.0.127.zen.spamhaus.org" for 127.0.0.2; nibbles for IPv6. IPv4-mapped addresses use IPv4.
std::string dnsbl_query_name(const core::IpAddress& ip, std::string_view zone);

// The line an operator must see when a list refuses our queries (the resolver is public, or over
// its quota): every listing from that list is being ignored until it is fixed. Given to ctx.warn().
std::string refused_warning(const DnsblList& list, std::string_view query, std::string_view code);

// The SMTP reply of a reject_codes hit, with {ip}, {list}, {zone} and {code} filled in.
core::SmtpReply reject_reply(const DnsblList& list, const core::IpAddress& ip, std::string_view code);

class DnsblCheck final : public check::Check {
  public:
    DnsblCheck(std::vector<DnsblList> lists, std::vector<core::SymbolDef> list_symbols)
        : lists_(std::move(lists)), list_symbols_(std::move(list_symbols)) {}
    static std::unique_ptr<check::Check> make(check::Section& options);

    std::string_view name() const override { return "dnsbl"; }
    std::vector<check::Stage> stages() const override;
    bool may_refuse_before_data() const override;  // a list with reject_codes
    std::vector<core::SymbolDef> symbols() const override;
    void start(check::Context& ctx) const override;
    void run(check::Context& ctx) const override;

    const std::vector<DnsblList>& lists() const { return lists_; }

  private:
    void start_connect(check::Context& ctx) const;
    void run_connect(check::Context& ctx) const;
    void start_rcpt(check::Context& ctx) const;
    void run_rcpt(check::Context& ctx) const;
    bool any_reject_at_rcpt() const;

    std::vector<DnsblList> lists_;
    std::vector<core::SymbolDef> list_symbols_;
};

}  // namespace vigil::reputation
