#include "engine/server_settings.hpp"

#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "core/printable.hpp"
#include "dns/resolver.hpp"

namespace vigil::engine {

namespace {

std::string local_hostname() {
    char buf[256] = {};
    if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
    return buf;
}

}  // namespace

ServerSettings ServerSettings::read(check::Section& s, const std::optional<std::string>& authserv_id) {
    ServerSettings out;
    out.hostname = s.get_string("hostname", "");
    if (out.hostname.empty()) out.hostname = local_hostname();
    out.authserv_id = authserv_id.value_or(s.get_string("authserv_id", ""));
    if (out.authserv_id.empty()) out.authserv_id = out.hostname;
    for (char c : out.authserv_id) {
        if (c <= 32 || c >= 127 || c == ';' || c == '(' || c == ')' || c == '"' || c == '\\') {
            s.error("authserv_id",
                    "must be a host name: printable ASCII without spaces, ';', quotes or parentheses");
            break;
        }
    }
    out.trusted_networks = s.get_cidrs("trusted_networks", {"127.0.0.0/8", "::1/128"});
    out.authenticated_is_outbound = s.get_bool("authenticated_is_outbound", true);
    for (const auto& text : s.get_strings("sending_ips", {})) {
        auto ip = core::IpAddress::parse(text);
        if (!ip || text.front() == '[' || text.find('/') != std::string::npos) {
            s.error("sending_ips", fmt::format("'{}' is not an IP address", core::printable(text, 64)));
        } else if (std::find(out.sending_ips.begin(), out.sending_ips.end(), ip->unmapped()) ==
                   out.sending_ips.end()) {
            out.sending_ips.push_back(ip->unmapped());
        }
    }
    if (out.sending_ips.size() > max_sending_ips)
        s.error("sending_ips", fmt::format("at most {} addresses", max_sending_ips));
    for (const auto& text : s.get_strings("domains", {})) {
        auto q = dns::normalize_query_name(text);
        if (!q.ok() || q.name.find('.') == std::string::npos) {
            s.error("domains", fmt::format("'{}' is not a domain name", core::printable(text, 64)));
        } else if (std::find(out.domains.begin(), out.domains.end(), q.name) == out.domains.end()) {
            out.domains.push_back(q.name);
        }
    }
    if (out.domains.size() > max_domains) s.error("domains", fmt::format("at most {} domains", max_domains));
    s.finish();
    return out;
}

}  // namespace vigil::engine
