#pragma once
// Owner and mode of the milter's unix socket, set by root without trusting the path.
//
// The socket usually lives in a directory the milter's own user owns (/run/vigil): whoever runs as
// that user can replace the socket by a symbolic link (or another file) between libmilter's bind()
// and our chown, and chown()/chmod() by path, as root, would then follow it and hand that user any
// file on the system. So the path is opened without following a link (O_PATH | O_NOFOLLOW), must be
// a socket with a single link, and owner and mode are set through that descriptor.
#include <sys/types.h>

#include <string>

namespace vigil::milter {

// uid/gid -1: leave that one as it is. Returns an error text, or empty on success.
std::string set_socket_owner(const std::string& path, uid_t uid, gid_t gid, mode_t mode);

}  // namespace vigil::milter
