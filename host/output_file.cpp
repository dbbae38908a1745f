#include "output_file.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace devhost::output {

namespace {

constexpr int append_flags = O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;

// A refusal of a file found in a directory others can write, or nullopt.
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

std::string open_error(int e, bool nofollow)
{
    if (e == ENXIO)
        return "a FIFO with no reader (nothing would read what is written)";
    if (e == ELOOP && nofollow)
        return "a symbolic link in a directory others can write; not followed";
    return std::strerror(e);
}

}  // namespace

int open_directory_of(const std::filesystem::path &path, std::string &name, std::string &error)
{
    name = path.filename().string();
    if (name.empty() || name == "." || name == "..") {
        error = "not a file name";
        return -1;
    }
    const std::filesystem::path parent = path.parent_path();
    const int fd = ::open(parent.empty() ? "." : parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        error = std::strerror(errno);
    return fd;
}

bool others_can_write(int dir_fd)
{
    struct stat st {};
    if (::fstat(dir_fd, &st) != 0)
        return true;
    return (st.st_mode & (S_IWGRP | S_IWOTH)) || (st.st_uid != 0 && st.st_uid != ::geteuid());
}

namespace {

std::optional<OpenedFile> open_at(int dir_fd, const std::string &name, mode_t mode, std::string &error, int depth);

// `name` in `dir_fd` is a symbolic link to nothing yet, in a directory only
// root and we can write: what it names is created, with `mode`.
std::optional<OpenedFile> open_link_target(int dir_fd, const std::string &name, mode_t mode, std::string &error,
                                           int depth)
{
    char target[4096];
    const ssize_t n = ::readlinkat(dir_fd, name.c_str(), target, sizeof target - 1);
    if (n <= 0) {
        error = "it keeps appearing and disappearing";
        return std::nullopt;
    }
    if (depth >= 8) {
        error = std::strerror(ELOOP);
        return std::nullopt;
    }
    const std::filesystem::path path(std::string(target, static_cast<size_t>(n)));
    const std::filesystem::path parent = path.parent_path();
    const int parent_fd = ::openat(dir_fd, parent.empty() ? "." : parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (parent_fd < 0) {
        error = std::strerror(errno);
        return std::nullopt;
    }
    auto file = open_at(parent_fd, path.filename().string(), mode, error, depth + 1);
    ::close(parent_fd);
    return file;
}

std::optional<OpenedFile> open_at(int dir_fd, const std::string &name, mode_t mode, std::string &error, int depth)
{
    const bool untrusted = others_can_write(dir_fd);
    const int nofollow = untrusted ? O_NOFOLLOW : 0;
    OpenedFile file;
    // Create it (O_EXCL: never through a link), or open what is there; a
    // name that comes and goes between the two is tried again.
    for (int attempt = 0; attempt < 8 && file.fd < 0; attempt++) {
        file.fd = ::openat(dir_fd, name.c_str(), append_flags | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
        if (file.fd >= 0) {
            file.created = true;
            break;
        }
        if (errno != EEXIST) {
            error = open_error(errno, false);
            return std::nullopt;
        }
        file.fd = ::openat(dir_fd, name.c_str(), append_flags | nofollow);
        if (file.fd < 0 && errno == ENOENT && !untrusted) {
            struct stat link {};
            if (::fstatat(dir_fd, name.c_str(), &link, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(link.st_mode))
                return open_link_target(dir_fd, name, mode, error, depth);
        }
        if (file.fd < 0 && errno != ENOENT) {
            error = open_error(errno, untrusted);
            return std::nullopt;
        }
    }
    if (file.fd < 0) {
        error = "it keeps appearing and disappearing";
        return std::nullopt;
    }
    struct stat st {};
    if (::fstat(file.fd, &st) != 0) {
        error = std::strerror(errno);
        ::close(file.fd);
        return std::nullopt;
    }
    std::optional<std::string> refusal;
    if (untrusted && !file.created)
        refusal = planted(st);
    else if (file.created && ::fchmod(file.fd, mode) != 0)
        refusal = std::string("cannot set its mode: ") + std::strerror(errno);
    if (refusal) {
        error = *refusal;
        ::close(file.fd);
        return std::nullopt;
    }
    return file;
}

}  // namespace

std::optional<OpenedFile> open_append_at(int dir_fd, const std::string &name, mode_t mode, std::string &error)
{
    return open_at(dir_fd, name, mode, error, 0);
}

std::optional<OpenedFile> open_append(const std::filesystem::path &path, mode_t mode, std::string &error)
{
    std::string name;
    const int dir = open_directory_of(path, name, error);
    if (dir < 0)
        return std::nullopt;
    auto file = open_append_at(dir, name, mode, error);
    ::close(dir);
    return file;
}

}  // namespace devhost::output
