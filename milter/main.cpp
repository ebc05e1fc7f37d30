// vigil-milter: the daemon. Parses options, loads the config, opens the socket, drops privileges,
// and hands control to libmilter.
#include <getopt.h>
#include <libmilter/mfapi.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <thread>

#include <fmt/format.h>

#include "core/printable.hpp"
#include "engine/config.hpp"
#include "milter/adapter.hpp"
#include "milter/daemon.hpp"

namespace {

constexpr const char* default_config = "/etc/vigil/vigil.conf";

void usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: vigil-milter [-c FILE] [-t] [-f] [-p SOCKET] [--dns HOST:PORT] [--allow-root]\n"
                 "  -c FILE         configuration file (default %s)\n"
                 "  -t              check the configuration and exit (non-zero on any error)\n"
                 "  -f              stay in the foreground and log to stderr as well as syslog\n"
                 "  -p SOCKET       listen here instead of [milter] socket (unix:PATH or inet:PORT@HOST)\n"
                 "  --dns HOST:PORT send every DNS query to this server, without DNSSEC validation\n"
                 "  --allow-root    keep running as root (not recommended)\n"
                 "Signals: SIGUSR1 reloads the configuration; SIGTERM, SIGINT or SIGHUP stop it.\n",
                 default_config);
}

std::string unix_socket_path(const std::string& spec) {
    for (const char* prefix : {"unix:", "local:"}) {
        if (spec.rfind(prefix, 0) == 0) return spec.substr(std::strlen(prefix));
    }
    return {};
}

// SIGUSR1 reloads; SIGTERM, SIGINT and SIGHUP stop (as they do in libmilter); SIGUSR2 is ours.
sigset_t handled_signals() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGUSR1, SIGUSR2, SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, sig);
    return set;
}

const char* signal_name(int sig) {
    return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : sig == SIGHUP ? "SIGHUP" : "a signal";
}

// Runs libmilter's listener on a thread of its own while this (the main) thread waits for signals.
//
// Why: libmilter stops on SIGTERM by closing its listening socket, but its listener holds the socket's
// lock across a poll() of up to 5 s, so a stop used to take up to 5 s (measured 4.999 s after a
// session), for every restart. Linux offers a signal sent to the process first to its main thread
// when that thread is waiting for it, so this thread gets the stop signals rather than libmilter's
// own signal thread; it asks libmilter to stop and then interrupts the listener's poll (SIGUSR2, a
// no-op handler, unblocked on the listener thread only) until the listener has seen the stop. Should
// libmilter's signal thread take the signal after all, the listener still stops at its next poll
// timeout, and this loop notices.
int serve(vigil::milter::Daemon& daemon) {
    std::atomic<bool> listener_done{false};
    std::atomic<int> rc{MI_FAILURE};
    std::thread listener([&] {
        sigset_t usr2;
        sigemptyset(&usr2);
        sigaddset(&usr2, SIGUSR2);
        pthread_sigmask(SIG_UNBLOCK, &usr2, nullptr);
        rc = smfi_main();
        listener_done = true;
    });
    const sigset_t handled = handled_signals();
    const timespec tick{0, 200'000'000};
    while (!listener_done) {
        int sig = sigtimedwait(&handled, nullptr, &tick);
        if (sig == SIGUSR1) {
            daemon.reload();
        } else if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
            vigil::milter::log_line(LOG_NOTICE, fmt::format("stopping on {}", signal_name(sig)));
            // smfi_stop() marks the stop first, then waits for the listener's lock; interrupting the
            // listener's poll until it has gone (an interrupt before the mark only costs a round)
            // lets it see the mark and let go.
            std::thread stopper([] { smfi_stop(); });
            while (!listener_done) {
                pthread_kill(listener.native_handle(), SIGUSR2);
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
            stopper.join();
        }
    }
    listener.join();
    // Sessions still connected stay with libmilter's workers until the process ends; the callbacks
    // running now finish before the resolver and stores they use are taken down.
    if (int running = daemon.quiesce(std::chrono::seconds(10)); running > 0) {
        vigil::milter::log_line(LOG_WARNING,
                                fmt::format("{} callbacks still running 10 s after the stop; exiting "
                                            "without waiting for them",
                                            running));
        closelog();
        std::_Exit(1);
    }
    return rc;
}

}  // namespace

int main(int argc, char** argv) {
    std::string config_path = default_config;
    bool test_only = false, foreground = false;
    vigil::engine::Overrides ov;
    static const option long_opts[] = {{"dns", required_argument, nullptr, 'D'},
                                       {"allow-root", no_argument, nullptr, 'R'},
                                       {"help", no_argument, nullptr, 'h'},
                                       {nullptr, 0, nullptr, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:tfp:h", long_opts, nullptr)) != -1) {
        switch (c) {
            case 'c':
                config_path = optarg;
                break;
            case 't':
                test_only = true;
                break;
            case 'f':
                foreground = true;
                break;
            case 'p':
                ov.socket = optarg;
                break;
            case 'D':
                ov.dns_server = optarg;
                break;
            case 'R':
                ov.allow_root = true;
                break;
            case 'h':
                usage(stdout);
                return 0;
            default:
                usage(stderr);
                return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    std::shared_ptr<const vigil::engine::Config> config;
    try {
        config = vigil::engine::load_config_file(config_path, ov);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\nvigil-milter: configuration has errors, not starting\n", e.what());
        return 1;
    }
    if (test_only) {
        std::printf("%s: configuration OK (%zu checks enabled, socket %s)\n", config_path.c_str(),
                    config->checks.size(), config->milter.socket.c_str());
        return 0;
    }

    // libunbound keeps up to 512 queries in flight, each with its own socket, besides libmilter's
    // connections: take all the descriptors we are allowed.
    struct rlimit nofile {};
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    // Signals are taken by this thread alone, through sigwait (see serve()): every thread started
    // from here on inherits them blocked.
    sigset_t handled = handled_signals();
    pthread_sigmask(SIG_BLOCK, &handled, nullptr);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction wake {};
    wake.sa_handler = [](int) {};  // only interrupts the listener's poll
    sigemptyset(&wake.sa_mask);
    sigaction(SIGUSR2, &wake, nullptr);
    vigil::milter::open_log(foreground);
    vigil::milter::Daemon daemon(config_path, ov, config, foreground);
    vigil::milter::set_daemon(&daemon);

    smfiDesc desc = vigil::milter::make_filter_description();
    if (smfi_register(desc) != MI_SUCCESS) {
        vigil::milter::log_line(LOG_ERR, "smfi_register failed");
        return 1;
    }
    if (smfi_setconn(const_cast<char*>(config->milter.socket.c_str())) != MI_SUCCESS ||
        smfi_settimeout(config->milter.timeout_s) != MI_SUCCESS) {
        vigil::milter::log_line(LOG_ERR, fmt::format("invalid socket {}", config->milter.socket));
        return 1;
    }
    auto sock_path = unix_socket_path(config->milter.socket);
    vigil::milter::set_unix_listener(!sock_path.empty());
    if (const char* fault = std::getenv("VIGIL_TEST_THROW_IN"); fault != nullptr && *fault != '\0') {
        vigil::milter::log_line(
            LOG_WARNING,
            fmt::format("VIGIL_TEST_THROW_IN is set: the {} callback fails on every call (a test)",
                        vigil::core::printable(fault, 32)));
        vigil::milter::set_fault_injection(fault);
    }
    mode_t old_umask = umask(0177);  // the socket starts private; its mode is set explicitly below
    if (smfi_opensocket(true) != MI_SUCCESS) {
        vigil::milter::log_line(
            LOG_ERR, fmt::format("cannot open socket {}: {}", config->milter.socket, std::strerror(errno)));
        return 1;
    }
    umask(old_umask);
    if (config->milter.tcp_nodelay && sock_path.empty()) {
        // libmilter writes "add header" and the final reply separately: without this the second
        // write waits for the MTA's delayed ACK (~40 ms per message over TCP).
        vigil::milter::set_nodelay_on_listeners();
    }
    if (!config->milter.pid_file.empty()) {
        std::ofstream pid(config->milter.pid_file, std::ios::trunc);
        pid << getpid() << '\n';
        if (!pid)
            vigil::milter::log_line(LOG_WARNING,
                                    fmt::format("cannot write pid file {}", config->milter.pid_file));
    }
    if (auto err = vigil::milter::drop_privileges(*config, sock_path); !err.empty()) {
        vigil::milter::log_line(LOG_ERR, err);
        return 1;
    }

    try {
        daemon.start_runtime();
    } catch (const std::exception& e) {
        vigil::milter::log_line(LOG_ERR, fmt::format("cannot start: {}", e.what()));
        return 1;
    }

    vigil::milter::log_line(
        LOG_NOTICE,
        fmt::format("starting: listening on {}, authserv-id {}, {} checks, uid {}, end-of-message slots {}",
                    config->milter.socket, config->server.authserv_id, config->checks.size(), getuid(),
                    daemon.eom_gate().slots()));
    daemon.start_monitor();
    int rc = serve(daemon);
    daemon.stop_monitor();
    daemon.log_dns_cache();
    vigil::milter::log_line(LOG_NOTICE, fmt::format("stopped (libmilter returned {})", rc));
    return rc == MI_SUCCESS ? 0 : 1;
}
