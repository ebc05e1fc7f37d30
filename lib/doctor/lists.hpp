#pragma once
// The block and allow lists `vigil doctor` and the reputation monitor look the server's own IPs up
// on: the lists of [checks.dnsbl] plus a built-in set of common public ones. Both are
// reputation::DnsblList, built by the same parser from the same kind of TOML, so return codes and
// refusal codes ("cannot tell", never "clean") mean exactly what they mean to the dnsbl check.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ip_address.hpp"
#include "doctor/finding.hpp"
#include "reputation/dnsbl.hpp"
#include "reputation/public_lists.hpp"

namespace vigil::dns {
struct Answer;
}
namespace vigil::engine {
struct Config;
}

namespace vigil::doctor {

using reputation::list_selector_error;
using reputation::public_list_names;
using reputation::public_lists;
using reputation::PublicList;
using reputation::refusal_meaning;

struct WatchedList {
    reputation::DnsblList list;
    // The public list with the same zone, if any: its titles, meanings and removal page apply.
    const PublicList* known = nullptr;
};

// The lists [monitor] lists selects: "configured" (the lists of the enabled [checks.dnsbl]),
// "public" (all built-in ones) or single public lists by name. A zone is checked once; a configured
// list wins over the public one of the same zone.
std::vector<WatchedList> select_lists(const engine::Config& config,
                                      const std::vector<std::string>& selectors);

// What one list's answer for `ip` means for the operator, as a finding (area "lists", subject the IP).
Finding list_finding(const WatchedList& list, const core::IpAddress& ip, const dns::Answer& answer);
// "127.0.0.2: SBL, a verified spam source": what the codes of a listing mean (the public list's
// meanings when the zone is a known one, else the configured symbols).
std::string listing_meaning(const WatchedList& list, const dns::Answer& answer);

}  // namespace vigil::doctor
