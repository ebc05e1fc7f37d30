#pragma once
// `vigil dmarc report`: builds the DMARC aggregate reports (RFC 7489 §7.2) from the milter's store,
// writes them to a directory and/or mails them to the domains' rua= addresses.
#include <string>

#include "engine/config.hpp"

namespace vigil::tools {

// argv starts at "dmarc":
//   dmarc report [--config FILE] [--store FILE] [--since T] [--until T] [--domain D]... [--out DIR]
//                [--send] [--dns HOST:PORT]
// T: seconds since the epoch, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC). Default period: the last
// full UTC day. Returns 0 when every report was written/sent (or rightly skipped), 1 when one could
// not be (write error, sendmail failure, DNS temperror of the §7.1 check), 2 for usage errors.
int dmarc_command(int argc, char** argv, const std::string& config_path, bool explicit_config,
                  vigil::engine::Overrides overrides);

}  // namespace vigil::tools
