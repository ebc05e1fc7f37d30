#include "report/report_settings.hpp"

#include <algorithm>

#include "core/printable.hpp"
#include "report/dmarc_aggregate.hpp"

namespace vigil::report {

LogSettings LogSettings::read(check::Section& s) {
    LogSettings l;
    l.format = s.get_choice("format", "text", {"text", "json"}) == "json" ? LogFormat::json : LogFormat::text;
    l.connections = s.get_bool("connections", true);
    s.finish();
    return l;
}

DmarcReportSettings DmarcReportSettings::read(check::Section& s, const std::string& hostname) {
    DmarcReportSettings r;
    r.enabled = s.get_bool("enabled", r.enabled);
    r.store = s.get_string("store", r.store);
    if (r.store.empty() || r.store.front() != '/') s.error("store", "must be an absolute path");
    r.queue_size = static_cast<std::size_t>(
        s.get_int("queue_size", static_cast<std::int64_t>(r.queue_size), 1, 1'000'000));
    r.keep_days = static_cast<int>(s.get_int("keep_days", r.keep_days, 0, 3650));
    r.max_rows_per_day = static_cast<std::uint64_t>(
        s.get_int("max_rows_per_day", static_cast<std::int64_t>(r.max_rows_per_day), 1,
                  static_cast<std::int64_t>(limits::max_rows_per_day)));
    // Header fields and the report's XML take these: one printable line each, nothing that could
    // start a new header field or smuggle an address.
    // Defaults come from [server] hostname; they are judged only when reporting is on, so an odd
    // host name never breaks a configuration that does not report.
    auto judged = [&](std::string_view key) { return r.enabled || s.has(key); };
    auto line = [&](std::string_view key, std::string value, bool address) {
        if (!judged(key)) return value;
        bool bad = std::any_of(value.begin(), value.end(), [address](char c) {
            auto u = static_cast<unsigned char>(c);
            return u < 32 || u == 127 || (address && (c == ' ' || c == '<' || c == '>'));
        });
        if (bad)
            s.error(key,
                    address ? "must be a plain address (no spaces or <>)" : "must be one printable line");
        if (address && !bad && (value.find('@') == std::string::npos || value.front() == '-'))
            s.error(key, "must be an address: local@domain");
        return value;
    };
    r.org_name = line("org_name", s.get_string("org_name", hostname), false);
    r.email = line("email", s.get_string("email", "postmaster@" + hostname), true);
    r.extra_contact_info = line("extra_contact_info", s.get_string("extra_contact_info", ""), false);
    r.submitter = core::to_lower(s.get_string("submitter", hostname));
    bool host_name = !r.submitter.empty() && r.submitter.size() <= 253 && r.submitter.front() != '.' &&
                     r.submitter.front() != '-' && r.submitter.find("..") == std::string::npos &&
                     std::all_of(r.submitter.begin(), r.submitter.end(), [](char c) {
                         return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
                     });
    if (judged("submitter") && !host_name) s.error("submitter", "must be a domain name");
    r.report_id = s.get_string("report_id", r.report_id);
    if (auto e = report_id_template_error(r.report_id)) s.error("report_id", *e);
    r.sendmail = s.get_string("sendmail", r.sendmail);
    if (r.sendmail.empty() || r.sendmail.front() != '/') s.error("sendmail", "must be an absolute path");
    r.from = line("from", s.get_string("from", r.email), true);
    s.finish();
    return r;
}

}  // namespace vigil::report
