#pragma once
// The one DNS interface of the library (house rule 3). Checks see only `Resolver`; whether the answer
// comes from libunbound, the shared cache or a test fake is decided by whoever builds the engine.
//
// Lookups are asynchronous: `lookup()` returns a `Pending` at once, so the engine can issue every
// lookup of an SMTP stage first and then wait on all of them with one shared deadline. A stage then
// costs its slowest lookup, not the sum. Expected failures are values: every outcome, including a
// missed deadline, is an `Answer` with a distinct `Status`; nothing on this path throws.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ip_address.hpp"

namespace vigil::dns {

enum class RrType : std::uint16_t {
    a = 1,
    ns = 2,
    cname = 5,
    soa = 6,
    ptr = 12,
    mx = 15,
    txt = 16,
    aaaa = 28,
    dnskey = 48,  // for `vigil doctor`'s DNSSEC check; the mail path never asks for it
};

// Kept distinct all the way to Authentication-Results: timeout is not servfail, nodata is not nxdomain.
enum class Status {
    answer,     // NOERROR with at least one record of the queried type
    nxdomain,   // the name does not exist
    nodata,     // the name exists, but has no record of the queried type
    servfail,   // SERVFAIL, REFUSED, any other server error, or the resolver could not ask
    timeout,    // no answer before the deadline (or the resolver's own query timeout)
    malformed,  // the query name was invalid, or the answer could not be decoded within the caps
};

enum class Dnssec {
    insecure,   // validated as unsigned (no chain of trust covers the name)
    secure,     // validated as signed and correct
    bogus,      // validation failed; see Answer for how such answers are reported
    unchecked,  // validation was off (single-server/test mode, or a failure before any answer)
};

struct Record {
    RrType type = RrType::a;
    std::string name;                        // owner, lowercase, no trailing dot
    std::optional<core::IpAddress> address;  // A/AAAA
    std::string target;                      // PTR/CNAME/NS/MX host (SOA: the primary server),
                                             // lowercase, no trailing dot; "" is the root (null MX)
    std::uint16_t preference = 0;            // MX
    std::uint16_t flags = 0;                 // DNSKEY: 256 zone-signing key, 257 key-signing key
    std::uint8_t algorithm = 0;              // DNSKEY: the DNSSEC algorithm number (13, 15, ...)
    std::vector<std::string> txt;            // TXT character-strings, raw bytes, in order
    // The character-strings concatenated without separators, as SPF (RFC 7208 §3.3) and DKIM
    // (RFC 6376 §3.6.2.2) read a TXT record.
    std::string txt_joined() const;
};

// An RRSIG that came along with an answer (RFC 4034 §3): read, never verified.
struct Signature {
    std::uint8_t algorithm = 0;
    std::uint16_t key_tag = 0;
    std::uint32_t inception = 0, expiration = 0;  // seconds since 1970, modulo 2^32 (RFC 4034 §3.1.5)
};

struct Answer {
    Status status = Status::servfail;
    Dnssec dnssec = Dnssec::unchecked;
    // Seconds the answer may be reused: the record TTL for answers, the SOA-derived negative TTL for
    // nxdomain/nodata (0 when the server gave no SOA). Clamped to [limits::min_ttl, limits::max_ttl].
    std::uint32_t ttl = 0;
    // Only records of the queried type, owned by the name the CNAME chain ended at.
    std::vector<Record> records;
    // Why, for people: "REFUSED", why validation failed, what was malformed, "truncated to 100 records".
    // Always printable ASCII and bounded.
    std::string detail;
    // DNSKEY answers only (nothing else needs them, so the mail path does not pay for the scan): the
    // RRSIGs over the records that the server sent along, as lookups ask with the DO bit. Their
    // presence says the zone is signed, whether or not anything validated them.
    std::vector<Signature> signatures;

    bool ok() const { return status == Status::answer; }
    // A non-answer with the given status and explanation.
    static Answer failure(Status status, std::string detail, Dnssec dnssec = Dnssec::unchecked);
};

namespace detail {
struct LookupState;
}

// The waiting side of one lookup. Cheap to copy; all copies see the same result.
class Pending {
  public:
    // An already-completed lookup.
    static Pending of(Answer answer);

    bool ready() const;
    // The answer, or Status::timeout if `deadline` passes first. A timeout here does not cancel the
    // lookup: it may still complete later (and, behind CachingResolver, still fill the cache).
    Answer wait_until(std::chrono::steady_clock::time_point deadline) const;
    // Calls `fn` exactly once with the answer: at once on this thread if it is ready, otherwise on the
    // thread that completes the lookup (e.g. the resolver's I/O thread). `fn` must be quick, must not
    // block and must not throw.
    void on_ready(std::function<void(const Answer&)> fn) const;

  private:
    friend class Promise;
    explicit Pending(std::shared_ptr<detail::LookupState> state);
    std::shared_ptr<detail::LookupState> state_;
};

// The completing side, for Resolver implementations. Cheap to copy; copies complete the same lookup.
class Promise {
  public:
    Promise();
    Pending pending() const;
    // Delivers the answer to every waiter and on_ready callback. The first call wins; later calls
    // return false and change nothing (so a timeout and a late answer can race harmlessly).
    bool complete(Answer answer) const;
    bool completed() const;

  private:
    std::shared_ptr<detail::LookupState> state_;
};

class Resolver {
  public:
    virtual ~Resolver() = default;
    // Starts a lookup and returns at once. Names longer than limits::max_name_length, with a label
    // over limits::max_label_length, with an empty label, or with bytes outside printable ASCII give
    // an immediate Status::malformed answer without any network I/O (see normalize_query_name).
    virtual Pending lookup(std::string_view name, RrType type) = 0;

    // lookup() and wait. For one-off callers; a check with several lookups should issue them all
    // first and then wait on each with the stage deadline.
    Answer resolve(std::string_view name, RrType type, std::chrono::steady_clock::time_point deadline) {
        return lookup(name, type).wait_until(deadline);
    }
};

// The form every Resolver queries and caches a name in: lowercase, one trailing dot removed.
// `error` is empty when the name is acceptable, else says why not (printable).
struct QueryName {
    std::string name;
    std::string error;
    bool ok() const { return error.empty(); }
};
// Rules: 1..253 characters after removing one trailing dot; labels 1..63 characters; bytes 0x21..0x7e
// except backslash (which libunbound would read as an escape). The root name alone is not queryable.
QueryName normalize_query_name(std::string_view name);
// True if `type` is one of the RrType values above (an RrType cast from another number is not).
bool is_known_type(RrType type);

// "4.3.2.1.in-addr.arpa" for 1.2.3.4; nibbles under "ip6.arpa" for IPv6. An IPv4-mapped IPv6 address
// uses its IPv4 form, as PTR data for such peers lives under in-addr.arpa.
std::string reverse_name(const core::IpAddress& ip);

std::string_view to_string(Status status);
std::string_view to_string(Dnssec dnssec);
std::string_view to_string(RrType type);  // "A", "MX", ...; "UNKNOWN" for other values

}  // namespace vigil::dns
