#pragma once
// [log] (the decision log) and [dmarc_reports] (DMARC aggregate reports): the report floor's settings.
#include <cstddef>
#include <cstdint>
#include <string>

#include "check/config_reader.hpp"
#include "report/decision_log.hpp"
#include "report/report_limits.hpp"

namespace vigil::report {

// [log]
struct LogSettings {
    LogFormat format = LogFormat::text;
    bool connections = true;

    static LogSettings read(check::Section& s);
};

// [dmarc_reports]: DMARC aggregate reports (RFC 7489 §7.2). Off: nothing is recorded. Read at start;
// changing it takes a restart of the milter.
struct DmarcReportSettings {
    bool enabled = false;
    std::string store = "/var/lib/vigil/dmarc-reports.sqlite";
    std::size_t queue_size = 10000;  // evaluations waiting to be written; more are dropped
    // Rows kept per UTC day; past it the day's oldest are dropped (report_limits.hpp).
    std::uint64_t max_rows_per_day = limits::default_max_rows_per_day;
    int keep_days = 31;    // `vigil dmarc report` deletes older evaluations; 0: never
    std::string org_name;  // default: [server] hostname
    std::string email;     // report contact; default: postmaster@<hostname>
    std::string extra_contact_info;
    std::string submitter;  // our domain in file names and the Subject; default: [server] hostname
    std::string report_id = "{begin}.{random}@{receiver}";  // placeholders: see report_id_template_error
    std::string sendmail = "/usr/sbin/sendmail";
    std::string from;  // envelope and From: of sent reports; default: email

    // `hostname`: [server] hostname, the default of several values.
    static DmarcReportSettings read(check::Section& s, const std::string& hostname);
};

}  // namespace vigil::report
