#pragma once
// SPF macro expansion (RFC 7208 §7). Pure apart from the %{p} callback; every expansion is bounded
// by limits::max_expansion_bytes whatever the record or the sender says.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/ip_address.hpp"

namespace vigil::auth::spf {

struct MacroContext {
    std::string_view local_part;            // of the sender; "postmaster" when it had none
    std::string_view sender_domain;         // %{o}
    std::string_view domain;                // %{d}: the domain being evaluated now
    std::string_view helo;                  // %{h}
    core::IpAddress ip;                     // %{i}, %{c}, %{v}
    std::string_view receiver = "unknown";  // %{r}, explanations only
    std::int64_t timestamp = 0;             // %{t}, explanations only
    // %{p}: the validated PTR name of ip (evaluated lazily, at most once per evaluation by the
    // caller's caching); null means "unknown".
    std::function<std::string()> validated_ptr;
};

struct Expansion {
    std::string value;
    std::string error;  // printable; empty on success
    bool ok() const { return error.empty(); }
};

// Expands a macro-string (explanation = true also allows c, r, t and spaces: explain-string).
Expansion expand_macros(std::string_view spec, const MacroContext& ctx, bool explanation = false);
// Expands a domain-spec and, when longer than 253 characters, drops labels on the left (§7.3).
Expansion expand_domain(std::string_view spec, const MacroContext& ctx);

// "1.2.3.4" or the 32 dot-separated nibbles of an IPv6 address (the %{i} form).
std::string macro_ip(const core::IpAddress& ip);

}  // namespace vigil::auth::spf
