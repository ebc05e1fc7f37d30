#pragma once
// The widely used public DNS block and allow lists, in the dnsbl check's own terms: what `vigil
// doctor` and the reputation monitor look the server's own addresses up on, and what their return and
// refusal codes mean to an operator.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reputation/dnsbl.hpp"

namespace vigil::reputation {

// A public list and what an operator needs to know about a listing there.
struct PublicList {
    DnsblList list;
    std::string title;    // "Spamhaus ZEN"
    std::string removal;  // where to look a listing up and ask for removal
    // Symbol (of `list.codes`) -> what a listing with that code means.
    std::map<std::string, std::string, std::less<>> meanings;
};

// The names of the built-in public lists ("spamhaus-zen", ...). Static: no parsing, for config checks.
const std::vector<std::string_view>& public_list_names();

// The built-in public lists, parsed once by the [checks.dnsbl] parser.
const std::vector<PublicList>& public_lists();

// Validates one entry of [monitor] lists: "configured", "public" or a public list's name.
std::optional<std::string> list_selector_error(std::string_view selector);

// Why a list refused to answer, from its refusal code.
std::string refusal_meaning(std::string_view code);

}  // namespace vigil::reputation
