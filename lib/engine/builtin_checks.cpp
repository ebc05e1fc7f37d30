#include "engine/builtin_checks.hpp"

#include "auth/dkim/dkim_check.hpp"
#include "auth/dmarc/dmarc_check.hpp"
#include "auth/spf/spf_check.hpp"
#include "content/gtube.hpp"
#include "content/message_structure.hpp"
#include "engine/access_list.hpp"
#include "reputation/dnsbl.hpp"
#include "reputation/helo.hpp"
#include "reputation/iprev.hpp"

namespace vigil::engine {

const std::vector<CheckFactory>& builtin_checks() {
    static const std::vector<CheckFactory> list = {
        {"access", true, &AccessListCheck::make},
        // iprev before dnsbl: checks of a stage run in this order, and iprev's forward lookups can
        // only start once its PTR answer is in; waiting for the lists first would delay them (and a
        // dead list would starve them of the stage budget). Off until enabled: see lib/reputation/DOCS.md.
        {"iprev", false, &reputation::IprevCheck::make},
        {"dnsbl", false, &reputation::DnsblCheck::make},
        {"helo", false, &reputation::HeloCheck::make},
        // Off until enabled, like the other DNS checks: see lib/auth/spf/DOCS.md.
        {"spf", false, &auth::spf::SpfCheck::make},
        {"message_structure", true, &content::MessageStructureCheck::make},
        {"gtube", true, &content::GtubeCheck::make},
        // DKIM verification (inbound) and signing (outbound). Off until enabled: see lib/auth/dkim/DOCS.md.
        {"dkim", false, &auth::dkim::DkimCheck::make},
        // DMARC after SPF and DKIM, whose results it reads. Off until enabled: see lib/auth/dmarc/DOCS.md.
        {"dmarc", false, &auth::dmarc::DmarcCheck::make},
    };
    return list;
}

}  // namespace vigil::engine
