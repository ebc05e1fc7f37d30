#include "doctor/lists.hpp"

#include <algorithm>
#include <mutex>

#include <fmt/format.h>

#include "core/printable.hpp"
#include "dns/resolver.hpp"
#include "engine/config.hpp"

namespace vigil::doctor {

namespace {

bool is_block(const reputation::DnsblList& l) {
    return l.type == reputation::DnsblList::Type::block;
}

// A Spamhaus PBL listing alone says "end-user range", not "spam seen": its fix is different. Judged
// by the public list's codes, whatever the operator's own entry for the zone calls them.
bool policy_listing_only(const WatchedList& w, const dns::Answer& answer) {
    if (!w.known || w.known->list.name != "spamhaus-zen") return false;
    auto r = reputation::classify_answer(w.known->list, answer);
    return !r.hits.empty() && std::all_of(r.hits.begin(), r.hits.end(), [](const auto& h) {
        return h.symbol == "SPAMHAUS_PBL" || h.symbol == "SPAMHAUS_PBL_ISP";
    });
}

std::string list_label(const WatchedList& w) {
    if (w.known) return fmt::format("{} ({})", w.list.zone, w.known->title);
    return fmt::format("{} ({})", w.list.zone, w.list.name);
}

}  // namespace

std::vector<WatchedList> select_lists(const engine::Config& config,
                                      const std::vector<std::string>& selectors) {
    std::vector<WatchedList> out;
    auto known_for = [](std::string_view zone) -> const PublicList* {
        for (const auto& p : public_lists()) {
            if (p.list.zone == zone) return &p;
        }
        return nullptr;
    };
    auto add = [&](const reputation::DnsblList& l) {
        bool dup =
            std::any_of(out.begin(), out.end(), [&](const WatchedList& w) { return w.list.zone == l.zone; });
        if (!dup) out.push_back({l, known_for(l.zone)});
    };
    bool configured = std::find(selectors.begin(), selectors.end(), "configured") != selectors.end();
    if (configured) {
        for (const auto& c : config.checks) {
            if (const auto* d = dynamic_cast<const reputation::DnsblCheck*>(c.get())) {
                for (const auto& l : d->lists()) add(l);
            }
        }
    }
    bool all_public = std::find(selectors.begin(), selectors.end(), "public") != selectors.end();
    for (const auto& p : public_lists()) {
        if (all_public || std::find(selectors.begin(), selectors.end(), p.list.name) != selectors.end())
            add(p.list);
    }
    return out;
}

std::string listing_meaning(const WatchedList& w, const dns::Answer& answer) {
    std::vector<std::string> parts;
    if (w.known) {
        auto r = reputation::classify_answer(w.known->list, answer);
        for (const auto& hit : r.hits) {
            std::string codes;
            for (const auto& c : hit.codes) codes += (codes.empty() ? "" : ", ") + c;
            auto it = w.known->meanings.find(hit.symbol);
            parts.push_back(
                fmt::format("{}: {}", codes, it != w.known->meanings.end() ? it->second : hit.symbol));
        }
    }
    if (parts.empty()) {
        auto r = reputation::classify_answer(w.list, answer);
        for (const auto& hit : r.hits) {
            std::string codes;
            for (const auto& c : hit.codes) codes += (codes.empty() ? "" : ", ") + c;
            parts.push_back(fmt::format("{}: {}", codes, hit.symbol));
        }
    }
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
    return out;
}

Finding list_finding(const WatchedList& w, const core::IpAddress& ip, const dns::Answer& answer) {
    Finding f;
    f.area = "lists";
    f.subject = ip.to_string();
    auto r = reputation::classify_answer(w.list, answer);
    const auto label = list_label(w);
    const bool block = is_block(w.list);
    switch (r.kind) {
        case reputation::ListResult::Kind::not_listed:
            f.level = Level::ok;
            f.reason = block ? fmt::format("not listed on {}", label)
                             : fmt::format("not on the allow list {} (optional)", label);
            return f;
        case reputation::ListResult::Kind::listed:
            if (!block) {
                f.level = Level::ok;
                f.reason = fmt::format("on the allow list {}: {}", label, listing_meaning(w, answer));
                return f;
            }
            f.level = Level::fail;
            f.reason = fmt::format("LISTED on {} with {}", label, listing_meaning(w, answer));
            if (policy_listing_only(w, answer)) {
                // PBL: a policy listing, not a spam finding; a real mail server simply gets out of it.
                f.fix = fmt::format(
                    "If {} is a mail server with a fixed address, remove it from the PBL at {} (or ask your "
                    "provider to); otherwise send through your provider's relay.",
                    f.subject, w.known->removal);
            } else {
                f.fix = fmt::format(
                    "Find and stop the cause (an open relay, a compromised account or web form, malware on a "
                    "host "
                    "behind {}), then ask for removal at {}.",
                    f.subject, w.known ? w.known->removal : "the operator of " + w.list.zone);
            }
            return f;
        case reputation::ListResult::Kind::refused:
            f.level = Level::unknown;
            f.reason = fmt::format("cannot tell: {} refused our query ({}: {})", label, r.refused_code,
                                   refusal_meaning(r.refused_code));
            f.fix =
                "Query DNS lists through a resolver of your own, not a public or forwarding one: run a local "
                "recursive resolver (e.g. unbound) and leave [dns] server empty or point --dns at it; a "
                "list's "
                "free quota may also need its free registration.";
            return f;
        case reputation::ListResult::Kind::tempfail:
            f.level = Level::unknown;
            f.reason = fmt::format("cannot tell: the query to {} ended in {}", label, r.status);
            f.fix = fmt::format(
                "Check that this host can reach the name servers of {} (firewall, resolver), then run again.",
                w.list.zone);
            return f;
    }
    return f;
}

}  // namespace vigil::doctor
