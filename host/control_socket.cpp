#include "control_socket.hpp"

#include "trusted_dir.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

namespace devhost::control {

namespace {

std::string errno_text(int e) { return std::strerror(e); }

// The directory and the entry name of an absolute socket path.
struct Place {
    std::string dir;
    std::string name;
};

std::optional<Place> place_of(const std::string &path, std::string &error)
{
    const size_t slash = path.rfind('/');
    if (path.empty() || path[0] != '/' || slash == std::string::npos) {
        error = "control socket " + path + ": not an absolute path";
        return std::nullopt;
    }
    Place p{slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
    if (p.name.empty() || p.name == "." || p.name == "..") {
        error = "control socket " + path + ": the path does not end in a name";
        return std::nullopt;
    }
    return p;
}

std::optional<sockaddr_un> address_of(const std::string &path, std::string &error)
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
        error = "control socket " + path + ": the path is too long for a Unix socket (" +
                std::to_string(path.size()) + " bytes, at most " + std::to_string(sizeof addr.sun_path - 1) + ")";
        return std::nullopt;
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

// Something at the path already: a stale socket (nothing answers) is
// removed; a live one, or anything not a socket, refused.
bool clear_path(int dir_fd, const std::string &name, const std::string &path, const sockaddr_un &addr,
                std::string &error)
{
    struct stat st;
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return true;
    if (!S_ISSOCK(st.st_mode)) {
        error = "control socket " + path + ": something that is not a socket is in its place; remove it";
        return false;
    }
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!probe) {
        error = "control socket " + path + ": socket: " + errno_text(errno);
        return false;
    }
    if (::connect(probe.get(), reinterpret_cast<const sockaddr *>(&addr), sizeof addr) == 0) {
        error = "control socket " + path + " is in use: another devhost serve is running";
        return false;
    }
    const int e = errno;
    if (e != ECONNREFUSED) {
        error = "control socket " + path + ": cannot probe the socket already there: " + errno_text(e);
        return false;
    }
    ::unlinkat(dir_fd, name.c_str(), 0);  // a dead server's
    return true;
}

// Gives the new socket its owner and mode, through its directory without
// following a link, and checks it is still the socket bound.
bool set_owner_and_mode(int dir_fd, const std::string &name, const std::string &path, std::optional<gid_t> group,
                        Listener &out, std::string &error)
{
    struct stat st;
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISSOCK(st.st_mode) ||
        st.st_uid != ::geteuid()) {
        error = "control socket " + path + ": the new socket was replaced by something else";
        return false;
    }
    const mode_t mode = group ? 0660 : 0600;
    if (group && ::fchownat(dir_fd, name.c_str(), ::geteuid(), *group, AT_SYMLINK_NOFOLLOW) != 0) {
        error = "control socket " + path + ": cannot give it to group " + std::to_string(*group) + ": " +
                errno_text(errno);
        return false;
    }
    if (::fchmodat(dir_fd, name.c_str(), mode, 0) != 0) {
        error = "control socket " + path + ": cannot set its mode: " + errno_text(errno);
        return false;
    }
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISSOCK(st.st_mode) ||
        (st.st_mode & 07777) != mode) {
        error = "control socket " + path + ": the new socket was replaced by something else";
        return false;
    }
    out.dev = st.st_dev;
    out.ino = st.st_ino;
    return true;
}

}  // namespace

Listener listen_socket(const std::string &path, std::optional<gid_t> group, std::string &error)
{
    Listener out;
    auto place = place_of(path, error);
    auto addr = place ? address_of(path, error) : std::nullopt;
    if (!addr)
        return out;
    trusted_dir::Error err;
    trusted_dir::Dir dir = trusted_dir::open(place->dir, 0755, err);
    if (!dir) {
        error = "control socket " + path + ": " + err.message;
        return out;
    }
    if (!clear_path(dir.fd(), place->name, path, *addr, error))
        return out;
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd || ::fchmod(fd.get(), 0600) != 0) {
        error = "control socket " + path + ": socket: " + errno_text(errno);
        return out;
    }
    if (::bind(fd.get(), reinterpret_cast<const sockaddr *>(&*addr), sizeof *addr) != 0) {
        error = "control socket " + path + ": bind: " + errno_text(errno);
        return out;
    }
    if (!set_owner_and_mode(dir.fd(), place->name, path, group, out, error) || ::listen(fd.get(), 64) != 0) {
        if (error.empty())
            error = "control socket " + path + ": listen: " + errno_text(errno);
        ::unlinkat(dir.fd(), place->name.c_str(), 0);
        return out;
    }
    out.fd = std::move(fd);
    return out;
}

void remove_socket(const std::string &path, const Listener &listener)
{
    std::string error;
    auto place = place_of(path, error);
    if (!place)
        return;
    trusted_dir::Error err;
    trusted_dir::Dir dir = trusted_dir::open(place->dir, 0, err);
    struct stat st;
    if (dir && ::fstatat(dir.fd(), place->name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode) &&
        st.st_dev == listener.dev && st.st_ino == listener.ino)
        ::unlinkat(dir.fd(), place->name.c_str(), 0);
}

std::optional<gid_t> group_id(const std::string &name)
{
    std::vector<char> buf(16384);
    group g{}, *found = nullptr;
    if (::getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &found) == 0 && found)
        return found->gr_gid;
    char *end = nullptr;
    errno = 0;
    const unsigned long id = std::strtoul(name.c_str(), &end, 10);
    if (!name.empty() && *end == '\0' && errno == 0 && name[0] != '-' &&
        ::getgrgid_r(static_cast<gid_t>(id), &g, buf.data(), buf.size(), &found) == 0 && found)
        return found->gr_gid;
    return std::nullopt;
}

Peer check_peer(int fd, std::optional<gid_t> group)
{
    Peer p;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        p.error = "SO_PEERCRED: " + errno_text(errno);
        return p;
    }
    p.pid = cred.pid;
    p.uid = cred.uid;
    p.gid = cred.gid;
    if (cred.uid == 0) {
        p.allowed = true;
        return p;
    }
    if (!group)
        return p;
    if (cred.gid == *group) {
        p.allowed = true;
        return p;
    }
    std::vector<gid_t> groups(64);
    len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    int rc = ::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len);
    if (rc != 0 && errno == ERANGE) {  // len now says how much is needed
        groups.resize(len / sizeof(gid_t) + 1);
        len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
        rc = ::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len);
    }
    if (rc != 0) {
        p.error = "SO_PEERGROUPS: " + errno_text(errno);
        return p;
    }
    groups.resize(len / sizeof(gid_t));
    for (gid_t g : groups)
        p.allowed |= g == *group;
    return p;
}

}  // namespace devhost::control
