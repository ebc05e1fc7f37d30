#pragma once
// Identifier alignment (RFC 7489 §3.1): strict means the same name, relaxed means the same
// organizational domain. Both names go through normalize_domain() first, so case, U-labels and one
// trailing dot do not matter, and a malformed name (empty label, leading dot) aligns with nothing.
#include <string>
#include <string_view>

#include "auth/dmarc/org_domain.hpp"
#include "auth/dmarc/record.hpp"

namespace vigil::auth::dmarc {

// The Author Domain (RFC5322.From) in the form alignment needs, computed once per message.
struct AuthorDomain {
    std::string name;  // normalized
    std::string org;   // its organizational domain
};

// Empty name when `raw` is not a usable domain.
AuthorDomain author_domain(const PublicSuffixList& psl, std::string_view raw);

bool aligned(const AuthorDomain& author, std::string_view other, AlignMode mode, const PublicSuffixList& psl);
bool aligned(std::string_view a, std::string_view b, AlignMode mode, const PublicSuffixList& psl);

}  // namespace vigil::auth::dmarc
