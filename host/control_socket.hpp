// The control socket's file and its peers: creating the listening socket
// safely as root, and deciding who may talk to it.
#pragma once

#include <devhost/unique_fd.hpp>

#include <optional>
#include <string>
#include <sys/types.h>

namespace devhost::control {

// The listening socket at PATH (absolute). The directory holding it is
// opened and checked by descriptor, every directory from / down
// (trusted_dir.hpp: owned by root or us, writable by nobody else), and
// created 0755 when missing. The socket is made mode 0600 before bind, so
// whatever the umask the file is never wider; then it is given to
// root:GROUP mode 0660 (root only, 0600, without a group). A socket left
// by a dead server is replaced; one a live server answers on is refused,
// and so is anything else at PATH. On failure returns an empty fd and a
// one-line `error` naming PATH.
struct Listener {
    UniqueFd fd;     // listening, non-blocking
    dev_t dev = 0;   // the socket file made
    ino_t ino = 0;
};
Listener listen_socket(const std::string &path, std::optional<gid_t> group, std::string &error);

// Removes the socket at PATH if it is still the file `listener` made (same
// inode), through its directory, never following a link.
void remove_socket(const std::string &path, const Listener &listener);

// The group NAME's id (a number is taken as an id only when it names an
// existing group); nullopt when there is no such group.
std::optional<gid_t> group_id(const std::string &name);

// The connected peer of `fd`: who it is, and whether it may use the socket
// (uid 0, or GROUP is its primary or one of its supplementary groups, as
// the kernel saw them at connect: SO_PEERCRED, SO_PEERGROUPS).
struct Peer {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    bool allowed = false;
    std::string error;  // set when the credentials could not be read
};
Peer check_peer(int fd, std::optional<gid_t> group);

}  // namespace devhost::control
