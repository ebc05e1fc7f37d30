#pragma once
// [server]: who we are and whose mail is ours. Checks see only the ServerFacts part.
#include <cstddef>
#include <string>
#include <vector>

#include "check/check.hpp"
#include "check/config_reader.hpp"
#include "core/ip_address.hpp"

namespace vigil::engine {

// What `vigil doctor` and the monitor may be asked to look at in one run.
inline constexpr std::size_t max_sending_ips = 64;
inline constexpr std::size_t max_domains = 64;

struct ServerSettings : check::ServerFacts {
    std::vector<core::Cidr> trusted_networks;
    bool authenticated_is_outbound = true;
    // What `vigil doctor` and the reputation monitor check as this server's own.
    std::vector<core::IpAddress> sending_ips;
    std::vector<std::string> domains;  // lowercase, no trailing dot

    // `authserv_id`: the command line's --authserv-id, which wins over the file.
    static ServerSettings read(check::Section& s, const std::optional<std::string>& authserv_id);
};

}  // namespace vigil::engine
