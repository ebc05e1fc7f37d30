#pragma once
// Records as an operator pastes them into a zone file.
#include <string>
#include <string_view>

namespace vigil::doctor {

// `name. IN TXT "text"`; text over 255 bytes is split into several character-strings (RFC 1035
// §3.3.14), which SPF and DMARC readers join again.
std::string txt_record(std::string_view name, std::string_view text);

}  // namespace vigil::doctor
