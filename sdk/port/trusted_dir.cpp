// Trusted directories, by descriptor: see trusted_dir.hpp.
#include "trusted_dir.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

namespace devhost::trusted_dir {

namespace {

constexpr int max_links = 40;     // symbolic links followed in one walk
constexpr int max_depth = 32;     // nesting remove_tree descends

std::string mode_text(mode_t m)
{
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
    return buf;
}

bool fail(Error &err, int e, const std::string &what)
{
    err.os_errno = e;
    err.refused = false;
    err.message = what + ": " + std::strerror(e);
    return false;
}

bool refuse(Error &err, const std::string &what)
{
    err.os_errno = 0;
    err.refused = true;
    err.message = what;
    return false;
}

// Splits `path` into components, "" and "." left out.
void push_components(std::deque<std::string> &todo, const std::string &path)
{
    std::vector<std::string> parts;
    size_t start = 0;
    while (start <= path.size()) {
        size_t slash = path.find('/', start);
        std::string c = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
        if (!c.empty() && c != ".")
            parts.push_back(std::move(c));
        if (slash == std::string::npos)
            break;
        start = slash + 1;
    }
    todo.insert(todo.begin(), parts.begin(), parts.end());
}

// Creates `name` in `parent` with exactly `mode`; true when this call made it
// (false with errno EEXIST when something was there).
bool create_exact(int parent, const std::string &name, mode_t mode, Error &err, const std::string &shown)
{
    if (::mkdirat(parent, name.c_str(), mode) != 0)
        return errno == EEXIST ? false : fail(err, errno, "cannot create " + shown);
    int fd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int rc = fd >= 0 ? ::fchmod(fd, mode) : ::fchmodat(parent, name.c_str(), mode, AT_SYMLINK_NOFOLLOW);
    int e = errno;
    if (fd >= 0)
        ::close(fd);
    if (rc != 0)
        return fail(err, e, "cannot set the mode of " + shown);
    return true;
}

}  // namespace

std::string why_untrusted(const struct stat &st)
{
    const uid_t me = ::geteuid();
    if (st.st_uid != 0 && st.st_uid != me)
        return "is owned by uid " + std::to_string(st.st_uid) + " (not root or uid " + std::to_string(me) + ")";
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !((st.st_mode & S_ISVTX) && st.st_uid == 0))
        return "is writable by group or others (mode " + mode_text(st.st_mode) +
               ") and is not a sticky directory owned by root";
    return {};
}

Dir &Dir::operator=(Dir &&o) noexcept
{
    if (this != &o) {
        reset();
        fd_ = o.fd_;
        path_ = std::move(o.path_);
        o.fd_ = -1;
    }
    return *this;
}

void Dir::reset()
{
    if (fd_ >= 0)
        ::close(fd_);
    fd_ = -1;
}

Dir open(const std::string &path, mode_t create_mode, Error &err)
{
    err = Error{};
    if (path.empty() || path[0] != '/')
        return refuse(err, "directory '" + path + "' is not an absolute path"), Dir{};
    std::deque<std::string> todo;
    push_components(todo, path);
    int fd = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errno, "open /"), Dir{};
    std::string at = "/";  // what fd is, for messages
    int links = 0;
    auto check = [&](int dir_fd, const std::string &shown) {
        struct stat st;
        if (::fstat(dir_fd, &st) != 0)
            return fail(err, errno, "stat " + shown);
        std::string why = why_untrusted(st);
        return why.empty() ? true : refuse(err, "directory " + shown + " " + why);
    };
    bool ok = check(fd, at);
    while (ok && !todo.empty()) {
        const std::string name = todo.front();
        todo.pop_front();
        const std::string shown = at == "/" ? "/" + name : at + "/" + name;
        int next = ::openat(fd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT && create_mode) {
            if (!create_exact(fd, name, create_mode, err, shown) && !err.message.empty()) {
                ok = false;
                break;
            }
            next = ::openat(fd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (next < 0 && (errno == ENOTDIR || errno == ELOOP)) {
            // A symbolic link (or not a directory): follow a link by hand so
            // that every directory it leads through is checked too.
            char target[4096];
            ssize_t n = ::readlinkat(fd, name.c_str(), target, sizeof target - 1);
            if (n < 0) {
                ok = fail(err, ENOTDIR, shown);
                break;
            }
            if (++links > max_links) {
                ok = fail(err, ELOOP, shown);
                break;
            }
            target[n] = '\0';
            push_components(todo, target);
            if (target[0] == '/') {
                ::close(fd);
                fd = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
                at = "/";
                if (fd < 0) {
                    ok = fail(err, errno, "open /");
                    break;
                }
            }
            continue;
        }
        if (next < 0) {
            ok = fail(err, errno, "cannot open directory " + shown);
            break;
        }
        ::close(fd);
        fd = next;
        at = name == ".." ? at.substr(0, std::max<size_t>(1, at.rfind('/'))) : shown;
        ok = check(fd, at);
    }
    if (!ok) {
        if (fd >= 0)
            ::close(fd);
        return Dir{};
    }
    // The result is a readable descriptor (for listing and fchmod), reopened
    // through the checked one, so it is the same directory.
    int real = ::openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int e = errno;
    ::close(fd);
    if (real < 0)
        return fail(err, e, "cannot open directory " + path), Dir{};
    return Dir(real, path);
}

Dir make_private(const Dir &parent, const std::string &prefix, std::string &name, Error &err)
{
    err = Error{};
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned char rnd[6];
        if (::getrandom(rnd, sizeof rnd, 0) != static_cast<ssize_t>(sizeof rnd))
            return fail(err, errno, "getrandom"), Dir{};
        name = prefix;
        for (unsigned char r : rnd)
            name += alphabet[r % (sizeof alphabet - 1)];
        const std::string shown = parent.path() + "/" + name;
        if (!create_exact(parent.fd(), name, 0700, err, shown)) {
            if (!err.message.empty())
                return Dir{};
            continue;  // taken: another name
        }
        int fd = ::openat(parent.fd(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return fail(err, errno, "cannot open " + shown), Dir{};
        Dir d(fd, shown);
        struct stat st;
        if (::fstat(fd, &st) != 0)
            return fail(err, errno, "stat " + shown), Dir{};
        if (st.st_uid != ::geteuid() || (st.st_mode & 07777) != 0700)
            return refuse(err, "directory " + shown + " is not ours with mode 0700 (uid " + std::to_string(st.st_uid) +
                                   ", mode " + mode_text(st.st_mode) + ")"),
                   Dir{};
        return d;
    }
    return fail(err, EEXIST, "cannot find a free name for a directory in " + parent.path()), Dir{};
}

bool still_names(const Dir &parent, const std::string &name, const Dir &dir)
{
    struct stat a, b;
    return ::fstatat(parent.fd(), name.c_str(), &a, AT_SYMLINK_NOFOLLOW) == 0 && ::fstat(dir.fd(), &b) == 0 &&
           S_ISDIR(a.st_mode) && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

namespace {

bool empty_at(int dir_fd, int depth, Error &err);

bool remove_entry(int parent_fd, const std::string &name, int depth, Error &err)
{
    struct stat st;
    if (::fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? true : fail(err, errno, "stat " + name);
    if (!S_ISDIR(st.st_mode)) {
        if (::unlinkat(parent_fd, name.c_str(), 0) != 0 && errno != ENOENT)
            return fail(err, errno, "cannot remove " + name);
        return true;
    }
    if (depth >= max_depth)
        return refuse(err, "directory " + name + " is nested too deep to remove");
    int fd = ::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errno, "cannot open " + name);
    struct stat opened;
    bool ok = ::fstat(fd, &opened) == 0;
    if (ok && opened.st_uid != ::geteuid()) {
        ok = refuse(err, "directory " + name + " is owned by uid " + std::to_string(opened.st_uid) +
                             "; not removing it");
    } else if (ok) {
        ok = empty_at(fd, depth + 1, err);
    } else {
        fail(err, errno, "stat " + name);
    }
    ::close(fd);
    if (ok && ::unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
        return fail(err, errno, "cannot remove " + name);
    return ok;
}

bool empty_at(int dir_fd, int depth, Error &err)
{
    int list_fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (list_fd < 0)
        return fail(err, errno, "cannot list a directory");
    DIR *d = ::fdopendir(list_fd);
    if (!d) {
        ::close(list_fd);
        return fail(err, errno, "cannot list a directory");
    }
    std::vector<std::string> names;
    while (dirent *e = ::readdir(d)) {
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
            names.emplace_back(e->d_name);
    }
    ::closedir(d);
    bool ok = true;
    for (const auto &n : names)
        ok = remove_entry(dir_fd, n, depth, err) && ok;
    return ok;
}

}  // namespace

bool remove_tree(int parent_fd, const std::string &name, Error &err)
{
    err = Error{};
    return remove_entry(parent_fd, name, 0, err);
}

bool empty_dir(int dir_fd, Error &err)
{
    err = Error{};
    return empty_at(dir_fd, 0, err);
}

}  // namespace devhost::trusted_dir
