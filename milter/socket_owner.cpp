#include "milter/socket_owner.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace vigil::milter {

namespace {

struct Fd {
    int fd;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

std::string failed(const char* what, const std::string& path) {
    return fmt::format("cannot {} {}: {}", what, path, std::strerror(errno));
}

}  // namespace

std::string set_socket_owner(const std::string& path, uid_t uid, gid_t gid, mode_t mode) {
    // O_PATH: a socket cannot be opened for reading or writing; O_NOFOLLOW with O_PATH gives a
    // descriptor of the link itself, which fstat then shows.
    Fd f{::open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC)};
    if (f.fd < 0) return failed("open", path);
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) return failed("stat", path);
    if (S_ISLNK(st.st_mode))
        return fmt::format(
            "{} is a symbolic link, not the socket just created: its owner and mode are left "
            "alone (is someone tampering with the socket's directory?)",
            path);
    if (!S_ISSOCK(st.st_mode))
        return fmt::format("{} is not a socket: its owner and mode are left alone", path);
    // A hard link to someone else's socket (where fs.protected_hardlinks is off) would be another
    // name for a file we must not touch; the socket libmilter just bound has exactly one name.
    if (st.st_nlink != 1)
        return fmt::format("{} has {} names (hard links): its owner and mode are left alone", path,
                           st.st_nlink);
    if (::fchownat(f.fd, "", uid, gid, AT_EMPTY_PATH) != 0) return failed("set the owner of", path);
    // fchmod() takes no O_PATH descriptor; /proc/self/fd/N reaches exactly the file it refers to (what
    // glibc's own fchmodat(AT_SYMLINK_NOFOLLOW) does).
    auto by_fd = fmt::format("/proc/self/fd/{}", f.fd);
    if (::chmod(by_fd.c_str(), mode) != 0) return failed("set the mode of", path);
    return {};
}

}  // namespace vigil::milter
