#include "milter/daemon.hpp"

#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <paths.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "dns/cache.hpp"
#include "milter/socket_owner.hpp"
#include "report/sqlite_dmarc_store.hpp"

namespace vigil::milter {

Daemon::Daemon(std::string config_path, engine::Overrides overrides,
               std::shared_ptr<const engine::Config> config, bool foreground)
    : path_(std::move(config_path)),
      overrides_(std::move(overrides)),
      config_(std::move(config)),
      foreground_(foreground) {}

std::shared_ptr<const engine::Config> Daemon::config() const {
    std::lock_guard lock(mutex_);
    return config_;
}

void Daemon::start_runtime() {
    auto cfg = config();
    runtime_ = std::make_unique<engine::Runtime>(cfg->dns);
    // Opened after the privilege drop, so the store's files belong to the milter's user. A store that
    // cannot be opened stops the start (StoreError says why); later write errors only drop rows.
    if (const auto& r = cfg->dmarc_reports; r.enabled) {
        report::DmarcStoreOptions o;
        o.path = r.store;
        o.queue_size = r.queue_size;
        o.max_rows_per_day = r.max_rows_per_day;
        runtime_->set_dmarc_store(std::make_shared<report::SqliteDmarcStore>(
            std::move(o), [](const std::string& line) { log_line(LOG_WARNING, line); }));
        log_line(LOG_NOTICE, fmt::format("DMARC aggregate reports: recording evaluations in {}", r.store));
    }
}

void Daemon::start_monitor() {
    auto cfg = config();
    if (!cfg->monitor.enabled) {
        log_line(LOG_NOTICE, "reputation monitor: off ([monitor] enabled = false)");
        return;
    }
    if (cfg->server.sending_ips.empty()) {
        log_line(LOG_NOTICE, "reputation monitor: nothing to watch (no [server] sending_ips)");
        return;
    }
    doctor::Monitor::Options o;
    o.ips = cfg->server.sending_ips;
    o.lists = doctor::select_lists(*cfg, cfg->monitor.lists);
    o.interval = cfg->monitor.interval;
    // As long as the resolver itself waits (Runtime: stage budget + 1 s), so no answer is abandoned.
    o.timeout = cfg->dns.stage_budget + std::chrono::seconds(2);
    monitor_ = std::make_unique<doctor::Monitor>(
        std::move(o), runtime_->cache(), core::SystemClock::instance(),
        [](doctor::Monitor::Priority p, const std::string& line) {
            log_line(p == doctor::Monitor::Priority::warning ? LOG_WARNING : LOG_NOTICE, line);
        });
    monitor_->start();
}

void Daemon::stop_monitor() {
    if (!monitor_) return;
    log_line(LOG_NOTICE, "reputation monitor: stopping");
    monitor_->stop();
}

int Daemon::quiesce(std::chrono::milliseconds limit) {
    stopping_.store(true);
    auto until = std::chrono::steady_clock::now() + limit;
    int running = running_.load();
    while (running > 0 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        running = running_.load();
    }
    return running;
}

dns::CacheStats Daemon::dns_cache_stats() const {
    return runtime_ ? runtime_->cache().stats() : dns::CacheStats{};
}

void Daemon::log_dns_cache() const {
    if (runtime_) log_line(LOG_NOTICE, dns::describe(runtime_->cache().stats()));
}

bool Daemon::reload() {
    bool ok = reload_config();
    log_dns_cache();
    return ok;
}

bool Daemon::reload_config() {
    try {
        auto fresh = engine::load_config_file(path_, overrides_);
        if (fresh->dns.server != runtime_->dns_server()) {
            log_line(LOG_WARNING,
                     fmt::format("reload: [dns] server changed from '{}' to '{}'; this takes a restart, "
                                 "the running resolver is kept",
                                 runtime_->dns_server(), fresh->dns.server));
        }
        if (fresh->dmarc_reports.enabled != config()->dmarc_reports.enabled ||
            fresh->dmarc_reports.store != config()->dmarc_reports.store) {
            log_line(LOG_WARNING,
                     "reload: [dmarc_reports] enabled/store changed; this takes a restart, the running "
                     "report store is kept");
        }
        if (auto budget = fresh->dns.cache_bytes; budget != runtime_->cache().stats().max_bytes) {
            runtime_->cache().set_max_bytes(budget);
            log_line(LOG_NOTICE,
                     fmt::format("reload: DNS cache budget now {} MiB ([dns] cache_mb)", budget >> 20));
        }
        {
            std::lock_guard lock(mutex_);
            config_ = std::move(fresh);
        }
        log_line(LOG_NOTICE, fmt::format("reloaded configuration from {}", path_));
        return true;
    } catch (const std::exception& e) {
        std::string msg = e.what();
        for (auto& c : msg) {
            if (c == '\n') c = ';';
        }
        log_line(LOG_ERR,
                 fmt::format("reload of {} failed, keeping the running configuration: {}", path_, msg));
        return false;
    }
}

namespace {

std::string g_log_ident;  // set once in open_log, before any other thread exists
bool g_log_foreground = false;
std::atomic<bool> g_syslog_socket{true};
std::atomic<std::int64_t> g_next_syslog_probe_ns{0};

// glibc's syslog() retries socket() + connect() + close() on every line while nothing listens on
// /dev/log (containers, minimal VMs: three system calls and a failed connect per message), and the
// line is lost anyway. So look for the socket at most once a second and skip syslog() meanwhile.
bool syslog_socket_present() {
    auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    if (now >= g_next_syslog_probe_ns.load(std::memory_order_relaxed)) {
        g_next_syslog_probe_ns.store(now + std::chrono::nanoseconds(std::chrono::seconds(1)).count(),
                                     std::memory_order_relaxed);
        struct stat st {};
        g_syslog_socket.store(stat(_PATH_LOG, &st) == 0 && S_ISSOCK(st.st_mode), std::memory_order_relaxed);
    }
    return g_syslog_socket.load(std::memory_order_relaxed);
}

}  // namespace

void open_log(bool foreground) {
    // The pid goes into the ident instead of LOG_PID: the text is the same ("vigil-milter[PID]: ..."),
    // but glibc (>= 2.25, no pid cache) would call getpid() for every line.
    g_log_ident = fmt::format("vigil-milter[{}]", getpid());
    g_log_foreground = foreground;
    openlog(g_log_ident.c_str(), LOG_NDELAY | (foreground ? LOG_PERROR : 0), LOG_MAIL);
}

void log_line(int priority, const std::string& line) {
    if (g_log_ident.empty() || syslog_socket_present()) {
        syslog(priority, "%s", line.c_str());
    } else if (g_log_foreground) {
        // What LOG_PERROR would have written, in one write.
        std::string out = g_log_ident + ": " + line + '\n';
        [[maybe_unused]] auto n = ::write(STDERR_FILENO, out.data(), out.size());
    }
}

int set_nodelay_on_listeners() {
    int set = 0;
    struct rlimit rl {};
    int max_fd =
        (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536) ? static_cast<int>(rl.rlim_cur) : 1024;
    for (int fd = 0; fd < max_fd; ++fd) {
        int listening = 0;
        socklen_t len = sizeof listening;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
        sockaddr_storage ss{};
        socklen_t slen = sizeof ss;
        if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &slen) != 0) continue;
        if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) continue;
        int one = 1;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0) ++set;
    }
    return set;
}

std::string drop_privileges(const engine::Config& cfg, const std::string& unix_socket_path) {
    // The socket's group may differ from the daemon's (socket_group, e.g. postfix: the MTA connects
    // without joining our group). -1: leave the group as it is.
    gid_t socket_gid = static_cast<gid_t>(-1);
    if (!cfg.milter.socket_group.empty()) {
        struct group* gr = getgrnam(cfg.milter.socket_group.c_str());
        if (gr == nullptr) return fmt::format("socket_group '{}' does not exist", cfg.milter.socket_group);
        socket_gid = gr->gr_gid;
    }
    // Never by path: the socket's directory usually belongs to the user we drop to (socket_owner.hpp).
    auto set_socket = [&](uid_t uid, gid_t gid) -> std::string {
        if (unix_socket_path.empty()) return {};
        return set_socket_owner(unix_socket_path, uid, gid, cfg.milter.socket_mode);
    };
    if (geteuid() != 0) return set_socket(static_cast<uid_t>(-1), socket_gid);
    if (cfg.milter.user.empty() || cfg.milter.user == "root") {
        if (cfg.milter.allow_root) return set_socket(static_cast<uid_t>(-1), socket_gid);
        return "refusing to run as root: set [milter] user (or allow_root = true / --allow-root)";
    }
    errno = 0;
    struct passwd* pw = getpwnam(cfg.milter.user.c_str());
    if (pw == nullptr) return fmt::format("user '{}' does not exist", cfg.milter.user);
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    std::string name = pw->pw_name;
    if (!cfg.milter.group.empty()) {
        struct group* gr = getgrnam(cfg.milter.group.c_str());
        if (gr == nullptr) return fmt::format("group '{}' does not exist", cfg.milter.group);
        gid = gr->gr_gid;
    }
    if (auto err = set_socket(uid, cfg.milter.socket_group.empty() ? gid : socket_gid); !err.empty())
        return err;
    if (initgroups(name.c_str(), gid) != 0) return fmt::format("initgroups: {}", std::strerror(errno));
    if (setgid(gid) != 0) return fmt::format("setgid({}): {}", gid, std::strerror(errno));
    if (setuid(uid) != 0) return fmt::format("setuid({}): {}", uid, std::strerror(errno));
    if (setuid(0) == 0) return "privileges could be regained after dropping them";
    // Nor through anything this process might execute (setuid binaries, file capabilities).
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return fmt::format("no_new_privs: {}", std::strerror(errno));
    return {};
}

}  // namespace vigil::milter
