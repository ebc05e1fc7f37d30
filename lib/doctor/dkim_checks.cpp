// DKIM: each signing selector's published key against the private key on disk.
#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <set>

#include <fmt/format.h>

#include "auth/dkim/crypto.hpp"
#include "auth/dkim/keys.hpp"
#include "auth/dkim/sign.hpp"
#include "core/printable.hpp"
#include "dns/resolver.hpp"
#include "doctor/checks.hpp"

namespace vigil::doctor {

namespace dk = auth::dkim;

namespace {

// RFC 8301: verifiers must not accept keys under 1024 bits; 2048 is what to use.
constexpr unsigned min_rsa_bits = 1024;
constexpr unsigned good_rsa_bits = 2048;

Finding make(std::string subject, Level level, std::string reason, std::string fix = {}) {
    return Finding{"dkim", std::move(subject), level, std::move(reason), std::move(fix)};
}

// A selector name for a new key: the year and a letter, so rotations sort.
std::string new_selector(std::string_view suffix) {
    auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&t, &tm);
    return fmt::format("{}{}", tm.tm_year + 1900, suffix);
}

std::string keygen_fix(std::string_view domain, std::string_view type, std::string_view why) {
    auto sel = new_selector(type == "rsa" ? "r" : "e");
    return fmt::format(
        "{}vigil dkim keygen --domain {} --selector {} --type {} --out /etc/vigil/dkim; add to the config: "
        "[[checks.dkim.key]] domain = \"{}\" selector = \"{}\" file = \"/etc/vigil/dkim/{}.{}.pem\"; publish "
        "the TXT "
        "record keygen prints",
        why, domain, sel, type, domain, sel, domain, sel);
}

std::string publish_from_key(const dk::SigningKey& key, std::string_view selector, std::string_view domain) {
    return fmt::format(
        "Publish (from {}): {}", key.file,
        dk::key_txt_record(selector, domain, key.type, dk::public_key_b64(key.key.get(), key.type)));
}

}  // namespace

std::vector<Finding> check_dkim(Probe& probe, std::string_view domain_in,
                                const std::vector<Selector>& selectors) {
    std::vector<Finding> out;
    const std::string domain(domain_in);
    if (selectors.empty()) {
        out.push_back(
            make(domain, Level::warn,
                 fmt::format("no DKIM selector is configured for {}: its mail goes out unsigned", domain),
                 keygen_fix(domain, "rsa", "Run: ")));
        return out;
    }
    std::vector<dns::Pending> lookups;
    for (const auto& s : selectors)
        lookups.push_back(probe.resolver.lookup(dk::key_query_name(s.name, domain), dns::RrType::txt));
    auto deadline = probe.deadline();
    std::set<dk::KeyType> published;
    for (std::size_t i = 0; i < selectors.size(); ++i) {
        const auto& sel = selectors[i];
        const auto name = dk::key_query_name(sel.name, domain);
        const auto subject = domain;
        auto answer = lookups[i].wait_until(deadline);
        const auto publish =
            sel.key ? publish_from_key(*sel.key, sel.name, domain)
                    : fmt::format("Publish the TXT record `vigil dkim keygen` printed for {}", name);
        auto outcome = dk::key_from_answer(answer);
        if (outcome.status == dk::Result::temperror) {
            out.push_back(make(
                subject, Level::unknown,
                fmt::format("cannot tell: the lookup of {} ended in {}", name, dns::to_string(answer.status)),
                "Check that this host's resolver works, then run again."));
            continue;
        }
        if (outcome.status != dk::Result::pass) {
            bool missing = answer.status == dns::Status::nxdomain || answer.status == dns::Status::nodata;
            out.push_back(make(
                subject, Level::fail,
                missing ? fmt::format("selector {}: no key published at {} ({}): signatures with it fail",
                                      sel.name, name, dns::to_string(answer.status))
                        : fmt::format("selector {}: the key record at {} is unusable: {}", sel.name, name,
                                      core::printable(outcome.detail, limits::max_quoted)),
                publish));
            continue;
        }
        const auto& key = *outcome.key;
        if (key.record.revoked || !key.pkey) {
            out.push_back(make(
                subject, Level::fail,
                fmt::format("selector {}: the key is revoked (empty p=): signatures with it fail", sel.name),
                sel.key ? publish + ", or remove this selector from [[checks.dkim.key]]"
                        : fmt::format("Stop signing with selector {}, or publish its key again", sel.name)));
            continue;
        }
        const auto type = key.record.type;
        std::string what =
            type == dk::KeyType::rsa ? fmt::format("RSA-{}", dk::key_bits(key.pkey.get())) : "Ed25519";
        bool good = true;
        if (sel.key) {
            if (sel.key->type != type || EVP_PKEY_eq(key.pkey.get(), sel.key->key.get()) != 1) {
                out.push_back(
                    make(subject, Level::fail,
                         fmt::format("selector {}: the published {} key does not match the private key {}: "
                                     "receivers see dkim=fail",
                                     sel.name, what, sel.key->file),
                         publish));
                continue;
            }
        }
        if (type == dk::KeyType::rsa) {
            auto bits = dk::key_bits(key.pkey.get());
            if (bits < min_rsa_bits) {
                good = false;
                out.push_back(make(
                    subject, Level::fail,
                    fmt::format("selector {}: {} key: receivers ignore RSA keys under {} bits (RFC 8301)",
                                sel.name, what, min_rsa_bits),
                    keygen_fix(domain, "rsa", "Make a new key: ")));
            } else if (bits < good_rsa_bits) {
                good = false;
                out.push_back(make(subject, Level::warn,
                                   fmt::format("selector {}: {} key is weak; use at least {} bits", sel.name,
                                               what, good_rsa_bits),
                                   keygen_fix(domain, "rsa", "Make a new key: ")));
            }
        }
        if (key.record.testing) {
            good = false;
            out.push_back(
                make(subject, Level::warn,
                     fmt::format("selector {}: the key record says t=y (testing): receivers may treat "
                                 "signatures as unsigned",
                                 sel.name),
                     "Remove t=y from the record once signing works"));
        }
        published.insert(type);
        if (good) {
            out.push_back(make(
                subject, Level::ok,
                sel.key
                    ? fmt::format("selector {}: {} key published, matches {}", sel.name, what, sel.key->file)
                    : fmt::format("selector {}: {} key published (no private key here to compare)", sel.name,
                                  what)));
        }
    }
    if (published.size() == 1) {
        if (*published.begin() == dk::KeyType::rsa) {
            out.push_back(make(domain, Level::warn,
                               "only RSA keys are published: add an Ed25519 key alongside (RFC 8463)",
                               keygen_fix(domain, "ed25519", "Sign with both: ")));
        } else {
            out.push_back(
                make(domain, Level::warn,
                     "only Ed25519 keys are published: receivers that cannot verify Ed25519 see no valid "
                     "signature; add an RSA-2048 key alongside",
                     keygen_fix(domain, "rsa", "Sign with both: ")));
        }
    }
    return out;
}

}  // namespace vigil::doctor
