#include "policy/builtin_checks.hpp"

#include "content/gtube.hpp"
#include "content/message_structure.hpp"
#include "policy/access_list.hpp"
#include "reputation/dnsbl.hpp"
#include "reputation/helo.hpp"
#include "reputation/iprev.hpp"

namespace vigil::policy {

const std::vector<CheckFactory>& builtin_checks() {
    static const std::vector<CheckFactory> list = {
        {"access", true, &AccessListCheck::make},
        // iprev before dnsbl: checks of a stage run in this order, and iprev's forward lookups can
        // only start once its PTR answer is in; waiting for the lists first would delay them (and a
        // dead list would starve them of the stage budget). Off until enabled (they need DNS).
        {"iprev", false, &reputation::IprevCheck::make},
        {"dnsbl", false, &reputation::DnsblCheck::make},
        {"helo", false, &reputation::HeloCheck::make},
        {"message_structure", true, &content::MessageStructureCheck::make},
        {"gtube", true, &content::GtubeCheck::make},
    };
    return list;
}

}  // namespace vigil::policy
