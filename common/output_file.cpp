#include "common/output_file.hpp"

#include <devhost/unique_fd.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

namespace devhost::output {

std::optional<std::string> planted(const struct stat &st)
{
    if (st.st_uid != 0 && st.st_uid != ::geteuid())
        return "it belongs to uid " + std::to_string(st.st_uid) +
               " and its directory can be written by others; not used";
    if (S_ISREG(st.st_mode) && st.st_nlink > 1)
        return "it has " + std::to_string(st.st_nlink) +
               " hard links and its directory can be written by others; not used";
    return std::nullopt;
}

namespace {

constexpr int append_flags = O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;

std::string open_error(int e, bool nofollow)
{
    if (e == ENXIO)
        return "a FIFO with no reader (nothing would read what is written)";
    if (e == ELOOP && nofollow)
        return "a symbolic link in a directory others can write; not followed";
    return std::strerror(e);
}

}  // namespace

namespace {

// Walks `dir` (the directory part of an output path) one component at a
// time, by descriptor, and returns it opened O_PATH. A symbolic link on the
// way is followed only where it lies in a directory no one but root and the
// effective user can write: in one others can write (a sticky /tmp, a
// directory of another user's) anyone could have planted it to send root's
// file elsewhere, so it is refused. Relative paths start at the working
// directory (or `start`, a directory descriptor, when given), which the
// caller chose.
int open_directory_walk(const std::string &dir, std::string &error, int start = -1)
{
    std::vector<std::string> rest;  // components still to walk, last first
    auto push_path = [&rest](const std::string &path) { push_components(rest, path); };
    const bool absolute = !dir.empty() && dir[0] == '/';
    UniqueFd cur(absolute || start < 0 ? ::open(absolute ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC)
                                       : ::openat(start, ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!cur) {
        error = std::strerror(errno);
        return -1;
    }
    std::string shown = !dir.empty() && dir[0] == '/' ? "" : ".";
    push_path(dir);
    int links = 0;
    while (!rest.empty()) {
        const std::string name = rest.back();
        rest.pop_back();
        UniqueFd next(::openat(cur.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
        struct stat st {};
        if (!next || ::fstat(next.get(), &st) != 0) {
            error = std::strerror(errno);
            return -1;
        }
        if (S_ISLNK(st.st_mode)) {
            char target[4096];
            const ssize_t n = ::readlinkat(next.get(), "", target, sizeof target - 1);
            next.reset();
            if (others_can_write(cur.get()) || n <= 0 || ++links > 40) {
                error = n <= 0 || links > 40 ? std::strerror(n <= 0 ? errno : ELOOP)
                                             : shown + "/" + name +
                                                   ": a symbolic link in a directory others can write; not followed";
                return -1;
            }
            target[n] = '\0';
            if (target[0] == '/') {  // from "/" again
                cur.reset(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
                shown.clear();
            }
            push_path(target);
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            error = std::strerror(ENOTDIR);
            return -1;
        }
        cur = std::move(next);
        shown += "/" + name;
    }
    return cur.release();
}

}  // namespace

int open_directory_of(const std::filesystem::path &path, std::string &name, std::string &error)
{
    name = path.filename().string();
    if (name.empty() || name == "." || name == "..") {
        error = "not a file name";
        return -1;
    }
    return open_directory_walk(path.parent_path().string(), error);
}

void push_components(std::vector<std::string> &rest, const std::string &path)
{
    std::vector<std::string> parts;
    for (size_t at = 0; at <= path.size();) {
        size_t slash = path.find('/', at);
        if (slash == std::string::npos)
            slash = path.size();
        if (slash > at && path.compare(at, slash - at, ".") != 0)
            parts.push_back(path.substr(at, slash - at));
        at = slash + 1;
    }
    rest.insert(rest.end(), parts.rbegin(), parts.rend());
}

bool others_can_write(int dir_fd)
{
    struct stat st {};
    if (::fstat(dir_fd, &st) != 0)
        return true;
    return (st.st_mode & (S_IWGRP | S_IWOTH)) || (st.st_uid != 0 && st.st_uid != ::geteuid());
}

namespace {

// Follows `name` in `dir` while it is a symbolic link in a directory only
// root and the effective user can write, walking each target by the same
// rule as a path (open_directory_walk: a link on its way through a
// directory others can write is refused), so that what the kernel would
// follow by itself through a second link never is. Leaves `dir` and `name`
// at a name that is no link, does not exist (yet: a link to a file to
// create), or is a link in a directory others can write (which the caller's
// O_NOFOLLOW open then refuses). False with `error` set when refused.
bool resolve_links(UniqueFd &dir, std::string &name, std::string &error)
{
    for (int links = 0;; links++) {
        struct stat st {};
        if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISLNK(st.st_mode) ||
            others_can_write(dir.get()))
            return true;
        char target[4096];
        const ssize_t n = ::readlinkat(dir.get(), name.c_str(), target, sizeof target - 1);
        if (n <= 0 || links >= 40) {
            error = n <= 0 ? "it keeps appearing and disappearing" : std::strerror(ELOOP);
            return false;
        }
        const std::filesystem::path path(std::string(target, static_cast<size_t>(n)));
        std::string leaf = path.filename().string();
        if (leaf.empty() || leaf == "." || leaf == "..") {
            error = "a symbolic link to a directory, not to a file";
            return false;
        }
        UniqueFd parent(open_directory_walk(path.parent_path().string(), error, dir.get()));
        if (!parent)
            return false;
        dir = std::move(parent);
        name = std::move(leaf);
    }
}

std::optional<OpenedFile> open_at(int at_fd, const std::string &at_name, mode_t mode, std::string &error)
{
    UniqueFd dir(::openat(at_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
    std::string name = at_name;
    if (!dir) {
        error = std::strerror(errno);
        return std::nullopt;
    }
    if (!resolve_links(dir, name, error))
        return std::nullopt;
    const int dir_fd = dir.get();
    const bool untrusted = others_can_write(dir_fd);
    UniqueFd fd;
    bool created = false;
    // Create it (O_EXCL: never through a link), or open what is there; a
    // name that comes and goes between the two is tried again.
    for (int attempt = 0; attempt < 8 && !fd; attempt++) {
        fd.reset(::openat(dir_fd, name.c_str(), append_flags | O_CREAT | O_EXCL | O_NOFOLLOW, mode));
        if (fd) {
            created = true;
            break;
        }
        if (errno != EEXIST) {
            error = open_error(errno, false);
            return std::nullopt;
        }
        // Never through a link: resolve_links has followed the ones to
        // follow, and one that appeared since is not ours to follow.
        fd.reset(::openat(dir_fd, name.c_str(), append_flags | O_NOFOLLOW));
        if (!fd && errno != ENOENT) {
            error = open_error(errno, untrusted);
            return std::nullopt;
        }
    }
    if (!fd) {
        error = "it keeps appearing and disappearing";
        return std::nullopt;
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        error = std::strerror(errno);
        return std::nullopt;
    }
    std::optional<std::string> refusal;
    if (untrusted && !created)
        refusal = planted(st);
    else if (created && ::fchmod(fd.get(), mode) != 0)
        refusal = std::string("cannot set its mode: ") + std::strerror(errno);
    if (refusal) {
        error = *refusal;
        return std::nullopt;
    }
    return OpenedFile{fd.release(), created};
}

}  // namespace

std::optional<OpenedFile> open_append_at(int dir_fd, const std::string &name, mode_t mode, std::string &error)
{
    return open_at(dir_fd, name, mode, error);
}

std::optional<OpenedFile> open_append(const std::filesystem::path &path, mode_t mode, std::string &error)
{
    std::string name;
    const UniqueFd dir(open_directory_of(path, name, error));
    if (!dir)
        return std::nullopt;
    return open_append_at(dir.get(), name, mode, error);
}

int open_read(const std::filesystem::path &path, std::string &error)
{
    std::string name;
    UniqueFd dir(open_directory_of(path, name, error));
    if (!dir || !resolve_links(dir, name, error))
        return -1;
    const bool untrusted = others_can_write(dir.get());
    // O_NONBLOCK: a FIFO is refused below, never waited on. O_NOFOLLOW:
    // resolve_links followed what may be followed.
    UniqueFd fd(::openat(dir.get(), name.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0) {
        error = open_error(errno, untrusted);
        return -1;
    }
    std::optional<std::string> refusal = untrusted ? planted(st) : std::nullopt;
    if (!refusal && !S_ISREG(st.st_mode))
        refusal = S_ISDIR(st.st_mode) ? "a directory, not a file" : "not a regular file";
    if (!refusal && ::fcntl(fd.get(), F_SETFL, O_RDONLY) != 0)
        refusal = std::strerror(errno);
    if (refusal) {
        error = *refusal;
        return -1;
    }
    return fd.release();
}

}  // namespace devhost::output
