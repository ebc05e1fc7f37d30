// The unix socket's owner and mode are set through a descriptor of the socket itself: a symbolic
// link (or any other file) planted at the socket's path is refused and its target left untouched.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "milter/socket_owner.hpp"

using vigil::milter::set_socket_owner;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/vigil-sock-test-XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

// A listening unix socket bound at `path`, as libmilter leaves it (mode 0600 after umask 0177).
struct BoundSocket {
    int fd = -1;
    explicit BoundSocket(const std::string& path) {
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        REQUIRE(fd >= 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        REQUIRE(path.size() < sizeof sa.sun_path);
        std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
        mode_t old = umask(0177);
        int rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
        umask(old);
        REQUIRE(rc == 0);
        REQUIRE(listen(fd, 1) == 0);
    }
    ~BoundSocket() { close(fd); }
};

struct stat stat_of(const std::string& path) {
    struct stat st {};
    REQUIRE(lstat(path.c_str(), &st) == 0);
    return st;
}

// As root the test hands the socket to another user and group, as the daemon does; otherwise
// (an unprivileged run) it can only keep its own.
const bool root = geteuid() == 0;
const uid_t new_uid = root ? 4242 : geteuid();
const gid_t new_gid = root ? 4243 : getegid();

}  // namespace

TEST_CASE("unix socket owner: the socket itself gets the owner, group and mode", "[milter][socket]") {
    TempDir dir;
    auto path = dir.path + "/vigil.sock";
    BoundSocket s(path);
    REQUIRE((stat_of(path).st_mode & 07777) == 0600);
    CHECK(set_socket_owner(path, new_uid, new_gid, 0660).empty());
    auto st = stat_of(path);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 07777) == 0660);
    CHECK(st.st_uid == new_uid);
    CHECK(st.st_gid == new_gid);

    SECTION("uid -1 leaves the owner as it is") {
        CHECK(set_socket_owner(path, static_cast<uid_t>(-1), getegid(), 0600).empty());
        CHECK(stat_of(path).st_uid == new_uid);
        CHECK(stat_of(path).st_gid == getegid());
        CHECK((stat_of(path).st_mode & 07777) == 0600);
    }
}

TEST_CASE("unix socket owner: a symbolic link planted at the path is refused, its target untouched",
          "[milter][socket]") {
    TempDir dir;
    auto target = dir.path + "/shadow";
    std::ofstream(target) << "root:secret\n";
    REQUIRE(chmod(target.c_str(), 0600) == 0);
    auto before = stat_of(target);
    auto path = dir.path + "/vigil.sock";

    SECTION("a link to a file") {
        REQUIRE(symlink(target.c_str(), path.c_str()) == 0);
        auto err = set_socket_owner(path, new_uid, new_gid, 0666);
        CHECK(err.find("is a symbolic link") != std::string::npos);
        auto after = stat_of(target);
        CHECK((after.st_mode & 07777) == 0600);
        CHECK(after.st_uid == before.st_uid);
        CHECK(after.st_gid == before.st_gid);
        CHECK(S_ISLNK(stat_of(path).st_mode));  // the link itself is left as it is too
    }
    SECTION("a link to another socket") {
        auto other = dir.path + "/other.sock";
        BoundSocket s(other);
        auto other_before = stat_of(other);
        REQUIRE(symlink(other.c_str(), path.c_str()) == 0);
        CHECK_FALSE(set_socket_owner(path, new_uid, new_gid, 0666).empty());
        auto after = stat_of(other);
        CHECK((after.st_mode & 07777) == 0600);
        CHECK(after.st_uid == other_before.st_uid);
        CHECK(after.st_gid == other_before.st_gid);
    }
    SECTION("a dangling link") {
        REQUIRE(symlink((dir.path + "/nothing").c_str(), path.c_str()) == 0);
        CHECK(set_socket_owner(path, new_uid, new_gid, 0666).find("is a symbolic link") != std::string::npos);
        struct stat st {};
        CHECK(stat((dir.path + "/nothing").c_str(), &st) != 0);  // nothing created through it
    }
}

TEST_CASE("unix socket owner: anything but a socket with one name is refused", "[milter][socket]") {
    TempDir dir;
    auto path = dir.path + "/vigil.sock";

    SECTION("a regular file") {
        std::ofstream(path) << "x";
        REQUIRE(chmod(path.c_str(), 0600) == 0);
        CHECK(set_socket_owner(path, new_uid, new_gid, 0666).find("is not a socket") != std::string::npos);
        CHECK((stat_of(path).st_mode & 07777) == 0600);
    }
    SECTION("a hard link to someone else's socket") {
        auto other = dir.path + "/other.sock";
        BoundSocket s(other);
        auto before = stat_of(other);
        REQUIRE(link(other.c_str(), path.c_str()) == 0);
        CHECK(set_socket_owner(path, new_uid, new_gid, 0666).find("names (hard links)") != std::string::npos);
        auto after = stat_of(other);
        CHECK((after.st_mode & 07777) == 0600);
        CHECK(after.st_uid == before.st_uid);
    }
    SECTION("nothing there") {
        CHECK(set_socket_owner(path, new_uid, new_gid, 0666).find("cannot open") != std::string::npos);
    }
}
