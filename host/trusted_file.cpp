#include "trusted_file.hpp"

#include <cerrno>
#include <climits>
#include <cstdio>
#include <deque>
#include <fcntl.h>
#include <unistd.h>
#include <vector>

namespace devhost {

namespace {

bool trusted_owner(uid_t uid) { return uid == 0 || uid == ::geteuid(); }
bool writable_by_others(mode_t mode) { return (mode & (S_IWGRP | S_IWOTH)) != 0; }

std::string join(const std::string &dir, const std::string &name) { return dir == "/" ? "/" + name : dir + "/" + name; }

// Puts the components of `path` in front of `rest`, in order; empty ones
// and "." mean nothing.
void prepend_components(std::deque<std::string> &rest, const std::string &path)
{
    std::vector<std::string> parts;
    size_t start = 0;
    while (start <= path.size()) {
        size_t slash = path.find('/', start);
        if (slash == std::string::npos)
            slash = path.size();
        std::string part = path.substr(start, slash - start);
        if (!part.empty() && part != ".")
            parts.push_back(std::move(part));
        start = slash + 1;
    }
    rest.insert(rest.begin(), parts.begin(), parts.end());
}

// A directory on the way, open by descriptor (O_PATH).
struct Dir {
    UniqueFd fd;
    std::string path;
    bool checked = false;
    bool others_may_write = false;  // writable by others, accepted as sticky
};

class Resolver {
public:
    explicit Resolver(TrustRefusal &why) : why_(why) {}
    UniqueFd open(const std::filesystem::path &file, struct stat &st);

private:
    UniqueFd refuse_open(const std::string &path, int err)
    {
        why_.kind = TrustRefusal::Kind::Open;
        why_.path = path;
        why_.os_errno = err;
        return {};
    }
    UniqueFd refuse(TrustRefusal::Kind kind, const std::string &path, mode_t mode, uid_t uid)
    {
        why_.kind = kind;
        why_.path = path;
        why_.mode = mode;
        why_.uid = uid;
        return {};
    }
    bool check_directory(Dir &dir, bool own);
    bool follow_link(const Dir &dir, int link_fd, const struct stat &link, const std::string &path);
    UniqueFd open_file(const Dir &dir, const std::string &name, const struct stat &found, struct stat &st);

    TrustRefusal &why_;
    std::vector<Dir> stack_;  // "/" first, then each directory below it; only
                              // "/" and the last hold a descriptor
    std::deque<std::string> rest_;
    int links_ = 0;
};

// Checks `dir` (once) before a name is looked up in it. `own`: the name is
// the last one, so this is the directory holding the file.
bool Resolver::check_directory(Dir &dir, bool own)
{
    if (dir.checked)
        return true;
    struct stat st {};
    if (::fstat(dir.fd.get(), &st) != 0) {
        refuse_open(dir.path, errno);
        return false;
    }
    why_.own_directory = own;
    if (writable_by_others(st.st_mode) && !(st.st_mode & S_ISVTX)) {
        refuse(TrustRefusal::Kind::DirWritable, dir.path, st.st_mode, st.st_uid);
        return false;
    }
    if (!trusted_owner(st.st_uid)) {
        refuse(TrustRefusal::Kind::DirOwner, dir.path, st.st_mode, st.st_uid);
        return false;
    }
    dir.others_may_write = writable_by_others(st.st_mode);
    dir.checked = true;
    return true;
}

// Reads the symlink at `path` (open as link_fd, found in `dir`) and puts its
// target in front of what is left to resolve.
bool Resolver::follow_link(const Dir &dir, int link_fd, const struct stat &link, const std::string &path)
{
    if (dir.others_may_write && !trusted_owner(link.st_uid)) {
        refuse(TrustRefusal::Kind::LinkOwner, path, link.st_mode, link.st_uid);
        return false;
    }
    if (++links_ > max_symlinks_followed) {
        refuse_open(path, ELOOP);
        return false;
    }
    std::string target(PATH_MAX, '\0');
    const ssize_t n = ::readlinkat(link_fd, "", target.data(), target.size());
    if (n < 0 || static_cast<size_t>(n) >= target.size()) {
        refuse_open(path, n < 0 ? errno : ENAMETOOLONG);
        return false;
    }
    target.resize(static_cast<size_t>(n));
    if (target.empty()) {
        refuse_open(path, ENOENT);
        return false;
    }
    if (target[0] == '/')
        stack_.erase(stack_.begin() + 1, stack_.end());
    prepend_components(rest_, target);
    return true;
}

// Opens the file `name` in `dir`, found (O_PATH, not followed) as `found`.
UniqueFd Resolver::open_file(const Dir &dir, const std::string &name, const struct stat &found, struct stat &st)
{
    const std::string path = join(dir.path, name);
    if (!S_ISREG(found.st_mode))
        return refuse(TrustRefusal::Kind::NotRegular, path, found.st_mode & S_IFMT, found.st_uid);
    UniqueFd fd(::openat(dir.fd.get(), name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
    if (!fd)
        return refuse_open(path, errno);
    if (::fstat(fd.get(), &st) != 0)
        return refuse_open(path, errno);
    // Only root or the host's user can swap it in a checked directory; still
    // the descriptor must be the file that was looked at.
    if (st.st_dev != found.st_dev || st.st_ino != found.st_ino)
        return refuse(TrustRefusal::Kind::Changed, path, st.st_mode, st.st_uid);
    if (writable_by_others(st.st_mode))
        return refuse(TrustRefusal::Kind::FileWritable, path, st.st_mode, st.st_uid);
    if (!trusted_owner(st.st_uid))
        return refuse(TrustRefusal::Kind::FileOwner, path, st.st_mode, st.st_uid);
    return fd;
}

UniqueFd Resolver::open(const std::filesystem::path &file, struct stat &st)
{
    std::string start = file.string();
    if (start.empty())
        return refuse_open(start, ENOENT);
    if (start[0] != '/') {
        std::string cwd(PATH_MAX, '\0');
        if (!::getcwd(cwd.data(), cwd.size()))
            return refuse_open(start, errno);
        start = std::string(cwd.c_str()) + "/" + start;
    }
    stack_.push_back({UniqueFd(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)), "/"});
    if (!stack_.back().fd)
        return refuse_open("/", errno);
    prepend_components(rest_, start);
    while (!rest_.empty()) {
        const std::string name = std::move(rest_.front());
        rest_.pop_front();
        if (name == "..") {  // the directory the last one was found in
            if (stack_.size() > 1) {
                // Only "/" and the current directory hold a descriptor, so
                // that the walk takes two whatever the depth: the parent is
                // opened again from here, and checked again.
                UniqueFd parent(::openat(stack_.back().fd.get(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
                if (!parent)
                    return refuse_open(stack_.back().path, errno);
                stack_.pop_back();
                if (stack_.size() > 1) {
                    stack_.back().fd = std::move(parent);
                    stack_.back().checked = false;
                }
            }
            continue;
        }
        Dir &dir = stack_.back();
        if (!check_directory(dir, rest_.empty()))
            return {};
        const std::string path = join(dir.path, name);
        UniqueFd fd(::openat(dir.fd.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
        struct stat found {};
        if (!fd || ::fstat(fd.get(), &found) != 0)
            return refuse_open(path, errno);
        if (S_ISLNK(found.st_mode)) {
            if (!follow_link(dir, fd.get(), found, path))
                return {};
        } else if (rest_.empty()) {
            return open_file(dir, name, found, st);
        } else if (!S_ISDIR(found.st_mode)) {
            return refuse_open(path, ENOTDIR);
        } else {
            if (stack_.size() > 1)
                stack_.back().fd.reset();  // "/" keeps its descriptor, for absolute links
            stack_.push_back({std::move(fd), path});
        }
    }
    // The path ends at a directory ("dir/", "dir/.", "..").
    return refuse(TrustRefusal::Kind::NotRegular, stack_.back().path, S_IFDIR, 0);
}

}  // namespace

UniqueFd open_trusted_file(const std::filesystem::path &file, struct stat &st, TrustRefusal &why)
{
    why = {};
    return Resolver(why).open(file, st);
}

std::string own_file_refusal(const struct stat &st, uint64_t max_bytes)
{
    if (!S_ISREG(st.st_mode))
        return "is not a regular file";
    if (st.st_uid != ::geteuid())
        return "is owned by uid " + std::to_string(st.st_uid) + " (not uid " + std::to_string(::geteuid()) + ")";
    if (st.st_nlink != 1)
        return "has " + std::to_string(st.st_nlink) + " links (another name for it is elsewhere)";
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        return "is writable by group or others (mode " + std::string(mode) + ")";
    }
    if (max_bytes && static_cast<uint64_t>(st.st_size) > max_bytes)
        return "is " + std::to_string(st.st_size) + " bytes; the limit is " + std::to_string(max_bytes);
    return {};
}

}  // namespace devhost
