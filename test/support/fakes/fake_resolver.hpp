#pragma once
// A Resolver for unit tests of every check: answers only what the test programmed.
//
// House rule 3: fakes fail on unexpected calls. A lookup that was not programmed throws
// std::logic_error naming the query (and is recorded in unexpected(), so a test can also assert on it
// if a caller swallowed the exception). Every lookup is recorded in order, for "was issued",
// "was issued before waiting" and "was not issued" assertions. An answer can be held back until
// release() (a slow server) or never given (a dead one).
//
// It has no test-framework dependency and needs no network, so it lives in the library where any test
// (and `vigil check` fixtures, if ever wanted) can use it. Thread-safe.
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dns/resolver.hpp"

namespace vigil::dns {

class FakeResolver final : public Resolver {
  public:
    struct Query {
        std::string name;  // as normalized (lowercase, no trailing dot); the raw text if it was invalid
        RrType type;
        friend bool operator==(const Query&, const Query&) = default;
    };

    // Programs the answer for (name, type), replacing any earlier one. Names are matched as
    // normalize_query_name() normalizes them.
    void set(std::string_view name, RrType type, Answer answer);
    // Shorthands: an answer made of these records, or a bare status (nxdomain, nodata, servfail, ...).
    void set_records(std::string_view name, RrType type, std::vector<Record> records,
                     std::uint32_t ttl = 300);
    void set_status(std::string_view name, RrType type, Status status, std::uint32_t ttl = 0);

    // Lookups of (name, type) stay pending until release(); the answer must also be programmed.
    void hold(std::string_view name, RrType type);
    // Completes every held lookup of (name, type) with its programmed answer; later lookups answer at
    // once. Returns how many waiting lookups were completed.
    std::size_t release(std::string_view name, RrType type);
    // Lookups of (name, type) never complete (a server that never answers). No programming needed.
    void never_answer(std::string_view name, RrType type);

    // Throws std::logic_error for a (valid) name/type that was not programmed. An invalid name gets the
    // same immediate Status::malformed answer as from any Resolver, programmed or not.
    Pending lookup(std::string_view name, RrType type) override;

    std::vector<Query> queries() const;     // every lookup, in the order issued
    std::vector<Query> unexpected() const;  // the lookups that threw
    std::size_t count(std::string_view name, RrType type) const;
    bool was_queried(std::string_view name, RrType type) const { return count(name, type) > 0; }
    void clear_queries();

  private:
    using Key = std::pair<std::string, RrType>;
    static Key key_of(std::string_view name, RrType type);

    mutable std::mutex mutex_;
    std::map<Key, Answer> answers_;
    std::map<Key, std::vector<Promise>> held_;   // present: holding; value: lookups waiting for release
    std::map<Key, std::vector<Promise>> never_;  // kept so the lookups stay pending (and alive) forever
    std::vector<Query> queries_;
    std::vector<Query> unexpected_;
};

// Builders for programmed answers. Names are normalized; an invalid address text throws
// std::invalid_argument (a test bug, not a DNS outcome).
namespace fake {
Record address(std::string_view name, std::string_view ip);  // A or AAAA by the address family
Record txt(std::string_view name, std::vector<std::string> strings);
Record mx(std::string_view name, std::uint16_t preference, std::string_view target);
Record ptr(std::string_view name, std::string_view target);
Record cname(std::string_view name, std::string_view target);
Record ns(std::string_view name, std::string_view target);
}  // namespace fake

}  // namespace vigil::dns
