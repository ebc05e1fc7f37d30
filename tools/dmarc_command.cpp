#include "tools/dmarc_command.hpp"

#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "auth/dmarc/org_domain.hpp"
#include "core/printable.hpp"
#include "dns/cache.hpp"
#include "engine/runtime.hpp"
#include "report/dmarc_aggregate.hpp"
#include "report/dmarc_mail.hpp"
#include "report/sqlite_dmarc_store.hpp"

namespace vigil::tools {

namespace {

constexpr const char* kUsage =
    "usage: vigil dmarc report [--config FILE] [--store FILE] [--since T] [--until T] [--domain D]...\n"
    "                          [--out DIR] [--send] [--dns HOST:PORT]\n"
    "  build one DMARC aggregate report (RFC 7489) per policy domain from the evaluations the milter\n"
    "  recorded in [dmarc_reports] store, for the period [since, until) (default: the last full UTC day)\n"
    "  --out DIR   write each report there as receiver!domain!begin!end.xml.gz\n"
    "  --send      mail each report with [dmarc_reports] sendmail to the domain's rua= mailto: addresses\n"
    "              that accept it (external destinations must publish <domain>._report._dmarc.<dest>)\n"
    "  T: seconds since the epoch, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)\n";

std::optional<std::int64_t> parse_time(std::string_view t) {
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec == std::errc() && p == t.data() + t.size() && v >= 0) return v;
    std::tm tm{};
    std::string s(t);
    const char* end = nullptr;
    if (s.size() == 10) {
        end = strptime(s.c_str(), "%Y-%m-%d", &tm);
    } else if (!s.empty() && (s.back() == 'Z' || s.back() == 'z')) {
        s.pop_back();
        end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    }
    if (end == nullptr || *end != '\0') return std::nullopt;
    return static_cast<std::int64_t>(timegm(&tm));
}

std::string utc(std::int64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

// Runs `sendmail -i -f FROM -- RCPT` with the message on stdin. Returns an error text, empty on success.
std::string run_sendmail(const std::string& sendmail, const std::string& from, const std::string& rcpt,
                         const std::string& message) {
    int in[2];
    if (pipe2(in, O_CLOEXEC) != 0) return fmt::format("pipe: {}", std::strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]);
        close(in[1]);
        return fmt::format("fork: {}", std::strerror(errno));
    }
    if (pid == 0) {
        dup2(in[0], 0);
        std::vector<std::string> args = {sendmail, "-i", "-f", from, "--", rcpt};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        execv(sendmail.c_str(), argv.data());
        std::fprintf(stderr, "vigil dmarc: cannot run %s: %s\n", sendmail.c_str(), std::strerror(errno));
        _exit(127);
    }
    close(in[0]);
    // A sendmail that stops reading must not wedge the report run: SIGPIPE is ignored, so a write
    // fails with EPIPE instead.
    auto old = signal(SIGPIPE, SIG_IGN);
    std::string error;
    std::size_t off = 0;
    while (off < message.size()) {
        ssize_t n = write(in[1], message.data() + off, message.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            error = fmt::format("writing to {}: {}", sendmail, std::strerror(errno));
            break;
        }
        off += static_cast<std::size_t>(n);
    }
    close(in[1]);
    signal(SIGPIPE, old);
    // Bounded wait: a sendmail that hangs is killed after 120 s.
    int status = 0;
    for (int waited_ms = 0;; waited_ms += 50) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) return fmt::format("waitpid: {}", std::strerror(errno));
        if (waited_ms >= 120'000) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return fmt::format("{} did not finish within 120 s and was killed", sendmail);
        }
        poll(nullptr, 0, 50);
    }
    if (!error.empty()) return error;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
    if (WIFEXITED(status)) return fmt::format("{} exited with status {}", sendmail, WEXITSTATUS(status));
    return fmt::format("{} was killed by signal {}", sendmail, WTERMSIG(status));
}

bool write_file(const std::string& path, const std::string& data, std::string& error) {
    std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        f.write(data.data(), static_cast<std::streamsize>(data.size()));
        f.close();
        if (!f) {
            error = fmt::format("cannot write {}: {}", tmp, std::strerror(errno));
            unlink(tmp.c_str());
            return false;
        }
    }
    // Renamed into place: a reader never sees half a report.
    if (rename(tmp.c_str(), path.c_str()) != 0) {
        error = fmt::format("cannot rename {} to {}: {}", tmp, path, std::strerror(errno));
        unlink(tmp.c_str());
        return false;
    }
    return true;
}

}  // namespace

int dmarc_command(int argc, char** argv, const std::string& config_path_in, bool explicit_config_in,
                  vigil::engine::Overrides ov) {
    if (argc < 2 || std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h") {
        std::fputs(kUsage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (std::string_view(argv[1]) != "report") {
        std::fprintf(stderr, "vigil dmarc: unknown subcommand '%s'\n%s", core::printable(argv[1]).c_str(),
                     kUsage);
        return 2;
    }
    std::string config_path = config_path_in;
    bool explicit_config = explicit_config_in;
    std::optional<std::string> store_path, out_dir;
    std::optional<std::int64_t> since, until;
    std::vector<std::string> only;
    bool send = false;
    static const option opts[] = {
        {"config", required_argument, nullptr, 'c'}, {"store", required_argument, nullptr, 's'},
        {"since", required_argument, nullptr, 'S'},  {"until", required_argument, nullptr, 'U'},
        {"domain", required_argument, nullptr, 'd'}, {"out", required_argument, nullptr, 'o'},
        {"send", no_argument, nullptr, 'm'},         {"dns", required_argument, nullptr, 'D'},
        {"help", no_argument, nullptr, 'h'},         {nullptr, 0, nullptr, 0}};
    optind = 1;
    int c;
    // argv[1] is "report": options start after it.
    while ((c = getopt_long(argc - 1, argv + 1, "h", opts, nullptr)) != -1) {
        switch (c) {
            case 'c':
                config_path = optarg;
                explicit_config = true;
                break;
            case 's':
                store_path = optarg;
                break;
            case 'S':
            case 'U': {
                auto t = parse_time(optarg);
                if (!t) {
                    std::fprintf(stderr,
                                 "vigil dmarc report: '%s' is not a time (epoch seconds, YYYY-MM-DD or "
                                 "YYYY-MM-DDTHH:MM:SSZ)\n",
                                 core::printable(optarg).c_str());
                    return 2;
                }
                (c == 'S' ? since : until) = *t;
                break;
            }
            case 'd':
                only.push_back(core::to_lower(optarg));
                break;
            case 'o':
                out_dir = optarg;
                break;
            case 'm':
                send = true;
                break;
            case 'D':
                ov.dns_server = optarg;
                break;
            case 'h':
                std::fputs(kUsage, stdout);
                return 0;
            default:
                std::fputs(kUsage, stderr);
                return 2;
        }
    }
    if (optind != argc - 1) {
        std::fputs(kUsage, stderr);
        return 2;
    }
    if (!out_dir && !send) {
        std::fprintf(stderr, "vigil dmarc report: nothing to do: give --out DIR, --send, or both\n");
        return 2;
    }
    std::shared_ptr<const engine::Config> config;
    if (explicit_config || access(config_path.c_str(), R_OK) == 0) {
        config = engine::load_config_file(config_path, ov);
    } else {
        config = engine::load_config_string("", "<defaults>", ov);
    }
    const auto& rc = config->dmarc_reports;

    auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    if (!until) until = now - now % 86400;
    if (!since) since = *until - 86400;
    if (*since >= *until) {
        std::fprintf(stderr, "vigil dmarc report: --since must be before --until\n");
        return 2;
    }
    if (out_dir) {
        struct stat st {};
        if (stat(out_dir->c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
            std::fprintf(stderr, "vigil dmarc report: --out %s is not a directory\n",
                         core::printable(*out_dir).c_str());
            return 2;
        }
    }

    std::string path = store_path.value_or(rc.store);
    // Writable to prune old evaluations and to migrate a store of an older schema; a store we may
    // only read still gives reports (if its schema is current).
    std::unique_ptr<report::DmarcStoreReader> reader;
    bool writable = true;
    try {
        reader = std::make_unique<report::DmarcStoreReader>(path, true);
    } catch (const report::StoreError&) {
        reader = std::make_unique<report::DmarcStoreReader>(path, false);
        writable = false;
    }

    std::unique_ptr<engine::Runtime> runtime;
    std::shared_ptr<const auth::dmarc::PublicSuffixList> psl;
    if (send) {
        runtime = std::make_unique<engine::Runtime>(config->dns);
        psl = auth::dmarc::PublicSuffixList::system();
        if (!psl)
            std::fprintf(stderr,
                         "vigil dmarc report: no Public Suffix List: every rua domain is checked (§7.1)\n");
    }
    auto org_domain = [&psl](std::string_view d) {
        return psl ? auth::dmarc::organizational_domain(*psl, d) : auth::dmarc::normalize_domain(d).name;
    };

    auto domains = only.empty() ? reader->domains(*since, *until) : only;
    int status = 0;
    std::size_t reports = 0;
    for (const auto& domain : domains) {
        auto latest = reader->latest(domain, *since, *until);
        if (!latest) {
            std::printf("%s: no evaluations between %s and %s UTC\n", core::printable(domain).c_str(),
                        utc(*since).c_str(), utc(*until).c_str());
            continue;
        }
        std::vector<report::AggregateRow> rows;
        std::uint64_t messages = 0;
        for (auto& r : reader->rows(domain, *since, *until)) {
            messages += r.count;
            rows.push_back({std::move(r.evaluation), r.count});
        }
        report::ReportMetadata meta;
        meta.org_name = rc.org_name;
        meta.email = rc.email;
        meta.extra_contact_info = rc.extra_contact_info;
        meta.begin = *since;
        meta.end = *until - 1;
        meta.report_id = report::expand_report_id(rc.report_id, domain, meta.begin, meta.end, rc.submitter,
                                                  report::random_hex());
        auto xml = report::build_report_xml(meta, *latest, rows);
        auto gz = report::gzip_compress(xml);
        auto file = report::report_file_name(rc.submitter, domain, meta.begin, meta.end);
        if (file.empty()) {
            std::fprintf(stderr, "%s: not a usable domain name for a report file, skipped\n",
                         core::printable(domain).c_str());
            status = 1;
            continue;
        }
        ++reports;
        auto rows_merged = report::merge_rows(rows).size();
        std::printf("%s: report %s: %zu records, %llu messages, %zu bytes gzip\n", domain.c_str(),
                    core::printable(meta.report_id).c_str(), rows_merged,
                    static_cast<unsigned long long>(messages), gz.size());
        if (out_dir) {
            std::string error;
            auto target = *out_dir + "/" + file;
            if (write_file(target, gz, error)) {
                std::printf("  wrote %s\n", target.c_str());
            } else {
                std::fprintf(stderr, "  %s\n", error.c_str());
                status = 1;
            }
        }
        if (!send) continue;
        if (latest->rua.empty()) std::printf("  no rua= destinations\n");
        auto deadline_for = [&] {
            return std::chrono::steady_clock::now() +
                   std::max<std::chrono::milliseconds>(config->dns.stage_budget, std::chrono::seconds(5));
        };
        for (const auto& uri : latest->rua) {
            auto shown = core::printable(uri, 200);
            auto mailto = report::parse_mailto(uri);
            if (!mailto) {
                std::printf("  %s: skipped (only plain mailto: destinations are supported)\n", shown.c_str());
                continue;
            }
            auto check = report::check_external_destination(runtime->cache(), deadline_for(), domain,
                                                            mailto->domain, org_domain);
            if (check.result == report::Authorization::refused) {
                std::printf("  %s: skipped, external destination not authorized: %s\n", shown.c_str(),
                            check.detail.c_str());
                continue;
            }
            if (check.result == report::Authorization::temperror) {
                std::printf("  %s: not sent, the authorization lookup failed: %s\n", shown.c_str(),
                            check.detail.c_str());
                status = 1;
                continue;
            }
            report::ReportMessage m;
            m.from = rc.from;
            m.to = mailto->address;
            m.subject = report::report_subject(domain, rc.submitter, meta.report_id);
            m.submitter = rc.submitter;
            m.file_name = file;
            m.gzip = gz;
            m.date = now;
            m.text = fmt::format(
                "This is a DMARC aggregate report (RFC 7489) from {} for {}, covering {} to {} UTC:\n"
                "{} messages in {} records. Contact: {}\n",
                rc.org_name, domain, utc(meta.begin), utc(meta.end), messages, rows_merged, rc.email);
            auto message = report::build_report_message(m);
            if (mailto->max_bytes && message.size() > *mailto->max_bytes) {
                std::printf(
                    "  %s: skipped, the report message (%zu bytes) is over the destination's limit of %llu "
                    "bytes\n",
                    shown.c_str(), message.size(), static_cast<unsigned long long>(*mailto->max_bytes));
                continue;
            }
            if (auto err = run_sendmail(rc.sendmail, rc.from, mailto->address, message); !err.empty()) {
                std::printf("  %s: sending failed: %s\n", shown.c_str(), core::printable(err, 300).c_str());
                status = 1;
            } else {
                std::printf("  sent to %s (%s)\n", core::printable(mailto->address).c_str(),
                            std::string(report::to_string(check.result)).c_str());
            }
        }
    }
    if (reports == 0 && only.empty()) {
        std::printf("no evaluations between %s and %s UTC in %s\n", utc(*since).c_str(), utc(*until).c_str(),
                    core::printable(path).c_str());
    }
    if (writable && rc.keep_days > 0) {
        auto pruned = reader->prune(now - static_cast<std::int64_t>(rc.keep_days) * 86400);
        if (pruned)
            std::printf("pruned %llu evaluations older than %d days\n",
                        static_cast<unsigned long long>(pruned), rc.keep_days);
    }
    return status;
}

}  // namespace vigil::tools
