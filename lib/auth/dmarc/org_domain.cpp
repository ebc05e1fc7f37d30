#include "auth/dmarc/org_domain.hpp"

#include <cstdlib>

#include <fmt/format.h>
#include <idn2.h>
#include <libpsl.h>

#include "auth/dmarc/dmarc_limits.hpp"
#include "core/printable.hpp"

namespace vigil::auth::dmarc {

namespace {

bool ldh(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

NormalizedDomain bad(std::string_view raw, std::string_view why) {
    NormalizedDomain d;
    d.error = fmt::format("{}: {}", core::printable(raw, 80), why);
    return d;
}

}  // namespace

NormalizedDomain normalize_domain(std::string_view raw) {
    // U-labels take more bytes than their A-labels may; past this no name can fit 253 characters.
    if (raw.size() > 4 * limits::max_domain_length) return bad(raw, "too long");
    std::string name(raw);
    if (!name.empty() && name.back() == '.') name.pop_back();
    if (name.empty()) return bad(raw, "empty");
    bool ascii = true;
    for (char c : name) {
        if (static_cast<unsigned char>(c) >= 0x80) ascii = false;
    }
    if (!ascii) {
        // idn2 maps (UTS 46: lowercase, NFC) and converts to A-labels; it rejects invalid UTF-8
        // and disallowed code points. ASCII names skip it: their xn-- labels are compared as given.
        char* out = nullptr;
        int rc = idn2_to_ascii_8z(name.c_str(), &out, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
        if (rc != IDN2_OK || out == nullptr) {
            if (out) idn2_free(out);
            return bad(raw, fmt::format("not a valid internationalized name ({})", idn2_strerror_name(rc)));
        }
        name = out;
        idn2_free(out);
    }
    name = core::to_lower(name);
    if (name.size() > limits::max_domain_length) return bad(raw, "longer than 253 characters");
    std::size_t label = 0;
    for (char c : name) {
        if (c == '.') {
            if (label == 0) return bad(raw, "empty label");
            label = 0;
            continue;
        }
        if (!ldh(c)) return bad(raw, "character not allowed in a domain name");
        if (++label > limits::max_label_length) return bad(raw, "label longer than 63 characters");
    }
    if (label == 0) return bad(raw, "empty label");
    NormalizedDomain d;
    d.name = std::move(name);
    return d;
}

std::shared_ptr<const PublicSuffixList> PublicSuffixList::system() {
    // Once per process: psl_latest() reads and decodes the whole list.
    static const std::shared_ptr<const PublicSuffixList> list =
        []() -> std::shared_ptr<const PublicSuffixList> {
        psl_ctx_t* ctx = psl_latest(nullptr);
        if (ctx == nullptr) return nullptr;
        return std::shared_ptr<const PublicSuffixList>(new PublicSuffixList(ctx));
    }();
    return list;
}

std::shared_ptr<const PublicSuffixList> PublicSuffixList::load_file(const std::string& path) {
    psl_ctx_t* ctx = psl_load_file(path.c_str());
    if (ctx == nullptr) return nullptr;
    // A file that is not a list at all loads as an empty list (-1 means "not counted": DAFSA form).
    if (psl_suffix_count(ctx) == 0) {
        psl_free(ctx);
        return nullptr;
    }
    return std::shared_ptr<const PublicSuffixList>(new PublicSuffixList(ctx));
}

PublicSuffixList::~PublicSuffixList() {
    psl_free(ctx_);
}

std::string PublicSuffixList::organizational_domain(std::string_view normalized) const {
    std::string name(normalized);
    {
        std::lock_guard lock(mutex_);
        if (auto it = org_cache_.find(name); it != org_cache_.end()) return it->second;
    }
    const char* reg = psl_registrable_domain(ctx_, name.c_str());
    // Null: the name is a public suffix itself (or has no label left over); it is then its own
    // organizational domain, so policy discovery looks no further.
    std::string org = reg == nullptr ? name : std::string(reg);
    std::lock_guard lock(mutex_);
    if (org_cache_.size() >= limits::max_cached_org_domains) org_cache_.clear();
    org_cache_.emplace(std::move(name), org);
    return org;
}

std::string organizational_domain(const PublicSuffixList& psl, std::string_view raw) {
    auto n = normalize_domain(raw);
    if (!n.ok()) return {};
    return psl.organizational_domain(n.name);
}

}  // namespace vigil::auth::dmarc
