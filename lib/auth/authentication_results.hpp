#pragma once
// RFC 8601 Authentication-Results: writing ours, and recognising forged ones that claim our
// authserv-id (§5: such fields must be removed before delivery).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::auth {

// The field value (what follows "Authentication-Results:"), starting with a space, folded so
// lines stay within 78 columns where the pieces allow it. No results gives "authserv-id; none".
std::string format_authentication_results(std::string_view authserv_id, const std::vector<std::string>& resinfos);

// The authserv-id an existing field claims, or nullopt when the value is not parsable.
// CFWS and comments before it are skipped; a quoted-string id is unquoted (RFC 8601 §2.2).
std::optional<std::string> claimed_authserv_id(std::string_view value);

}  // namespace vigil::auth
