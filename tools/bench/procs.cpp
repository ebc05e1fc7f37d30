#include "tools/bench/procs.hpp"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace vigil::bench {
namespace {

double mono() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

pid_t spawn(std::vector<std::string> argv, const std::string& log, std::optional<int> cpu, int* out_pipe) {
    if (cpu) argv.insert(argv.begin(), {"taskset", "-c", std::to_string(*cpu)});
    int pipefd[2] = {-1, -1};
    if (out_pipe != nullptr && pipe2(pipefd, O_CLOEXEC) != 0) return -1;
    pid_t pid = fork();
    if (pid != 0) {
        if (out_pipe != nullptr) {
            ::close(pipefd[1]);
            *out_pipe = pid > 0 ? pipefd[0] : (::close(pipefd[0]), -1);
        }
        return pid;
    }
    // Child: only async-signal-safe calls from here on.
    int devnull = ::open("/dev/null", O_RDONLY);
    int logfd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (devnull >= 0) dup2(devnull, 0);
    if (logfd >= 0) {
        dup2(out_pipe != nullptr ? pipefd[1] : logfd, 1);
        dup2(logfd, 2);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
}

}  // namespace

Child::Child(std::vector<std::string> argv, const std::string& log, std::optional<int> cpu) : log_(log) {
    pid_ = spawn(std::move(argv), log, cpu, nullptr);
}

Child Child::start_with_pipe(std::vector<std::string> argv, const std::string& log) {
    Child c;
    c.log_ = log;
    c.pid_ = spawn(std::move(argv), log, std::nullopt, &c.out_fd_);
    return c;
}

Child& Child::operator=(Child&& o) noexcept {
    if (this != &o) {
        stop();
        pid_ = o.pid_;
        out_fd_ = o.out_fd_;
        status_ = o.status_;
        log_ = std::move(o.log_);
        o.pid_ = -1;
        o.out_fd_ = -1;
    }
    return *this;
}

bool Child::running() {
    if (pid_ <= 0) return false;
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
        status_ = st;
        pid_ = -1;
        return false;
    }
    return true;
}

int Child::stop(double grace_s) {
    if (out_fd_ >= 0) {
        ::close(out_fd_);
        out_fd_ = -1;
    }
    if (pid_ <= 0) return status_;
    kill(pid_, SIGTERM);
    double until = mono() + grace_s;
    while (mono() < until) {
        int st = 0;
        if (waitpid(pid_, &st, WNOHANG) == pid_) {
            pid_ = -1;
            status_ = st;
            return st;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill(pid_, SIGKILL);
    int st = 0;
    waitpid(pid_, &st, 0);
    pid_ = -1;
    status_ = st;
    return st;
}

std::string Child::read_line(double timeout_s) {
    std::string line;
    double until = mono() + timeout_s;
    while (out_fd_ >= 0) {
        double left = until - mono();
        if (left <= 0) break;
        pollfd p{out_fd_, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(left * 1000) + 1) <= 0) continue;
        char ch = 0;
        ssize_t n = ::read(out_fd_, &ch, 1);
        if (n <= 0) break;
        if (ch == '\n') return line;
        line += ch;
    }
    return line;
}

bool wait_listening(const Target& target, Child& child, double timeout_s) {
    double until = mono() + timeout_s;
    while (mono() < until) {
        if (!child.running()) return false;
        int fd = ::socket(target.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
            int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&target.addr), target.len);
            ::close(fd);
            if (rc == 0) return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

std::optional<double> cpu_seconds(pid_t pid, double* sys) {
    std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
    auto paren = stat.rfind(')');
    if (paren == std::string::npos) return std::nullopt;
    // After "pid (comm)": state is field 3; utime and stime are fields 14 and 15.
    std::istringstream in(stat.substr(paren + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && in >> field; ++i) {
        if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
        if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
    }
    if (!in) return std::nullopt;
    auto tck = static_cast<double>(sysconf(_SC_CLK_TCK));
    if (sys != nullptr) *sys = static_cast<double>(stime) / tck;
    return static_cast<double>(utime + stime) / tck;
}

std::optional<long> vm_kib(pid_t pid, const char* field) {
    std::istringstream in(slurp("/proc/" + std::to_string(pid) + "/status"));
    std::string line;
    std::string key = std::string(field) + ":";
    while (std::getline(in, line)) {
        if (line.rfind(key, 0) == 0) return std::strtol(line.c_str() + key.size(), nullptr, 10);
    }
    return std::nullopt;
}

bool reset_peak_rss(pid_t pid) {
    std::ofstream f("/proc/" + std::to_string(pid) + "/clear_refs");
    f << "5";
    f.flush();
    return static_cast<bool>(f);
}

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) ::close(fd);
    return port;
}

std::string which(const std::string& name) {
    if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
    const char* path = std::getenv("PATH");
    std::string p = path != nullptr ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    // Debian puts opendkim in /usr/sbin, which a non-root PATH may lack.
    p += ":/usr/sbin:/sbin";
    std::istringstream in(p);
    std::string dir;
    while (std::getline(in, dir, ':')) {
        std::string full = dir + "/" + name;
        if (!dir.empty() && access(full.c_str(), X_OK) == 0) return full;
    }
    return "";
}

}  // namespace vigil::bench
