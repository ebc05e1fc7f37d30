#pragma once
// Domain names as DMARC compares them, and the organizational domain (RFC 7489 §3.2) from the
// Public Suffix List through libpsl. Names are compared in one form: lowercase A-labels (U-labels
// converted with libidn2, IDNA2008/UTS 46 non-transitional), one trailing dot removed.
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

struct psl_ctx_st;

namespace vigil::auth::dmarc {

struct NormalizedDomain {
    std::string name;   // lowercase A-label form
    std::string error;  // printable; empty when the name is usable
    bool ok() const { return error.empty(); }
};

// Lowercases, drops one trailing dot, converts U-labels, and checks the result is a host-name-like
// domain: labels of 1..63 letters, digits, '-' or '_', at most 253 characters. Anything else (an
// empty label, a leading dot, spaces, invalid UTF-8) is an error, never repaired.
NormalizedDomain normalize_domain(std::string_view raw);

// A loaded Public Suffix List. Loading costs milliseconds: load it once (the check holds one for
// all messages) and share it; lookups are read-only and safe from any thread.
class PublicSuffixList {
  public:
    // Debian's list (/usr/share/publicsuffix, package publicsuffix) or libpsl's built-in one,
    // whichever is newer (psl_latest), loaded on first use. Null if neither could be loaded.
    static std::shared_ptr<const PublicSuffixList> system();
    // A list in the public_suffix_list.dat text format (or libpsl's DAFSA form). Null on failure.
    static std::shared_ptr<const PublicSuffixList> load_file(const std::string& path);

    ~PublicSuffixList();
    PublicSuffixList(const PublicSuffixList&) = delete;
    PublicSuffixList& operator=(const PublicSuffixList&) = delete;

    // The organizational domain of a name that normalize_domain() accepted: the public suffix plus
    // one label (ICANN and private sections alike, wildcards and exceptions as the list says). A name
    // that is itself a public suffix is its own organizational domain. Answers are remembered
    // (limits::max_cached_org_domains): the same sender domains come back message after message.
    std::string organizational_domain(std::string_view normalized) const;

  private:
    explicit PublicSuffixList(psl_ctx_st* ctx) : ctx_(ctx) {}
    psl_ctx_st* ctx_;
    mutable std::mutex mutex_;
    mutable std::unordered_map<std::string, std::string> org_cache_;
};

// normalize_domain() then organizational_domain(); "" when the name is not usable.
std::string organizational_domain(const PublicSuffixList& psl, std::string_view raw);

}  // namespace vigil::auth::dmarc
