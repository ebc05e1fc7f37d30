#pragma once
// What the SMTP dialogue told us about a connection and one message transaction.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ip_address.hpp"

namespace vigil::core {

enum class Direction { inbound, outbound };
std::string_view to_string(Direction d);

struct Envelope {
    // Connection level.
    std::optional<IpAddress> client_ip;  // empty for local submission (sendmail binary, pickup)
    std::string client_name;             // the MTA's verified reverse name, or "unknown"
    std::string daemon_name;             // {daemon_name}, e.g. "smtpd" or "submission"
    std::string helo;

    // Transaction level.
    std::string queue_id;            // {i}; often known only from RCPT or end of message on
    std::string mail_from;           // without angle brackets; empty is the null sender
    std::string auth_user;           // {auth_authen}; empty when the client did not authenticate
    std::string auth_type;           // {auth_type}
    std::vector<std::string> rcpts;  // accepted recipients, at most limits::max_recipients_kept
    std::size_t rcpt_count = 0;      // all accepted recipients, also those not kept
    Direction direction = Direction::inbound;
    bool trusted_network = false;
};

// "<a@b>" -> "a@b"; also drops ESMTP parameters the MTA may pass after the address.
std::string strip_angle_brackets(std::string_view addr);
// Domain part of an address (after the last '@'), lowercased; empty when there is none.
std::string address_domain(std::string_view addr);

}  // namespace vigil::core
