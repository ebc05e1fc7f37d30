#include "engine/verdict_settings.hpp"

#include <algorithm>
#include <sstream>

#include <fmt/format.h>

namespace vigil::engine {

namespace {

// "550 5.7.1 Some text": the basic code must be of the expected class (4 or 5) and the enhanced
// code must agree with it (RFC 3463).
core::SmtpReply read_reply(check::Section& s, std::string_view key, const core::SmtpReply& def,
                           char expected_class) {
    auto raw = s.get_string(key, fmt::format("{} {} {}", def.code, def.xcode, def.text));
    std::istringstream in(raw);
    core::SmtpReply r;
    in >> r.code >> r.xcode;
    std::getline(in, r.text);
    if (!r.text.empty() && r.text.front() == ' ') r.text.erase(0, 1);
    bool ok = r.code.size() == 3 && r.code[0] == expected_class &&
              std::all_of(r.code.begin(), r.code.end(), ::isdigit) && r.xcode.size() >= 5 &&
              r.xcode[0] == expected_class && r.xcode[1] == '.' && !r.text.empty();
    for (char c : raw) ok = ok && c >= 0x20 && c < 0x7f && c != '%';
    if (!ok) {
        s.error(key,
                fmt::format("expected \"{}xx {}.x.y text\" in printable ASCII without '%', e.g. \"{} {} {}\"",
                            expected_class, expected_class, def.code, def.xcode, def.text));
        return def;
    }
    return r;
}

bool valid_header_name(std::string_view n) {
    if (n.empty() || n.size() > 64) return false;
    return std::all_of(n.begin(), n.end(), [](char c) { return c > 32 && c < 127 && c != ':'; });
}

}  // namespace

ActionSettings ActionSettings::read(check::Section& s) {
    ActionSettings a;
    a.thresholds.reject = s.has("reject") ? s.get_optional_double("reject") : std::optional<double>(15.0);
    a.thresholds.tempfail = s.get_optional_double("tempfail");
    a.thresholds.quarantine = s.get_optional_double("quarantine");
    a.thresholds.add_header =
        s.has("add_header") ? s.get_optional_double("add_header") : std::optional<double>(6.0);
    a.honour_forced = s.get_bool("honour_forced_actions", true);
    s.finish();
    return a;
}

ReplySettings ReplySettings::read(check::Section& s) {
    ReplySettings r;
    r.reject = read_reply(s, "reject", r.reject, '5');
    r.tempfail = read_reply(s, "tempfail", r.tempfail, '4');
    s.finish();
    return r;
}

HeaderSettings HeaderSettings::read(check::Section& s) {
    HeaderSettings h;
    for (auto [key, field] :
         {std::pair{"flag", &h.flag}, std::pair{"score", &h.score}, std::pair{"status", &h.status}}) {
        *field = s.get_string(key, *field);
        if (!valid_header_name(*field)) s.error(key, "must be a header field name (printable ASCII, no ':')");
    }
    h.subject_tag = s.get_string("subject_tag", "");
    for (char c : h.subject_tag) {
        if (static_cast<unsigned char>(c) < 32 || c == 127) {
            s.error("subject_tag", "must not contain control characters");
            break;
        }
    }
    h.always_add_score = s.get_bool("always_add_score", false);
    h.remove_incoming = s.get_bool("remove_incoming", true);
    s.finish();
    return h;
}

}  // namespace vigil::engine
