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

bool aligned(const AuthorDomain& author, std::string_view other, AlignMode mode,
             const PublicSuffixList& psl) {
    if (author.name.empty()) return false;
    auto n = normalize_domain(other);
    if (!n.ok()) return false;
    if (mode == AlignMode::strict || n.name == author.name) return n.name == author.name;
    // Relaxed: the organizational domains are equal. Comparing whole names (not suffixes of one
    // another) is what keeps d=x.com from aligning with paypal.com.
    // An organizational domain is the name itself or a suffix of it after a dot, so a name that is
    // neither author.org nor under it cannot align: no need to ask the list (the costly part).
    const auto& org = author.org;
    if (org.empty()) return false;
    bool under = n.name.size() > org.size() &&
                 n.name.compare(n.name.size() - org.size(), org.size(), org) == 0 &&
                 n.name[n.name.size() - org.size() - 1] == '.';
    if (n.name != org && !under) return false;
    return psl.organizational_domain(n.name) == org;
}

bool aligned(std::string_view a, std::string_view b, AlignMode mode, const PublicSuffixList& psl) {
    return aligned(author_domain(psl, a), b, mode, psl);
}

}  // namespace vigil::auth::dmarc
