#pragma once
// The SPF record (RFC 7208 §4.5, §12): selection among TXT strings and a pure parser over
// std::string_view. A record with any syntax error anywhere is rejected whole (§4.6: permerror
// before anything is evaluated). Macro strings stay unexpanded here; the evaluator expands them.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ip_address.hpp"

namespace vigil::auth::spf {

enum class Qualifier : char { pass = '+', fail = '-', softfail = '~', neutral = '?' };
enum class MechanismKind { all, include, a, mx, ptr, ip4, ip6, exists };

std::string_view to_string(MechanismKind kind);

struct Mechanism {
    Qualifier qualifier = Qualifier::pass;
    MechanismKind kind = MechanismKind::all;
    std::string domain_spec;            // unexpanded macro string; empty: the current domain
    std::optional<core::Cidr> network;  // ip4/ip6
    unsigned cidr4 = 32;                // a/mx
    unsigned cidr6 = 128;               // a/mx
    std::string text;                   // the term as written (printable), for reports
    bool counts_dns() const;
};

struct Record {
    std::vector<Mechanism> mechanisms;
    std::optional<std::string> redirect;  // domain-spec
    std::optional<std::string> exp;       // domain-spec
};

struct ParsedRecord {
    std::optional<Record> record;
    std::string error;  // printable; empty when record is set
    bool ok() const { return record.has_value(); }
};

// True if `txt` starts with "v=spf1" (any case) followed by a space or the end (§4.5).
bool is_spf_record(std::string_view txt);
// Parses a record for which is_spf_record() holds.
ParsedRecord parse_record(std::string_view txt);

// ABNF checks (§7.1, §12) on unexpanded text.
bool valid_macro_string(std::string_view s);
bool valid_domain_spec(std::string_view s);
// explain-string = *( macro-string / SP ), the TXT record an exp= modifier points to.
bool valid_explain_string(std::string_view s);

}  // namespace vigil::auth::spf
