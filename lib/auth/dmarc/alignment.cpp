#include "auth/dmarc/alignment.hpp"

namespace vigil::auth::dmarc {

AuthorDomain author_domain(const PublicSuffixList& psl, std::string_view raw) {
    AuthorDomain a;
    auto n = normalize_domain(raw);
    if (!n.ok()) return a;
    a.org = psl.organizational_domain(n.name);
    a.name = std::move(n.name);
    return a;
}

bool aligned(const AuthorDomain& author, std::string_view other, AlignMode mode, const PublicSuffixList& psl) {
    if (author.name.empty()) return false;
    auto n = normalize_domain(other);
    if (!n.ok()) return false;
    if (mode == AlignMode::strict) return n.name == author.name;
    // Relaxed: the organizational domains are equal. Comparing whole names (not suffixes of one
    // another) is what keeps d=x.com from aligning with paypal.com.
    return psl.organizational_domain(n.name) == author.org;
}

bool aligned(std::string_view a, std::string_view b, AlignMode mode, const PublicSuffixList& psl) {
    return aligned(author_domain(psl, a), b, mode, psl);
}

}  // namespace vigil::auth::dmarc
