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
    UniqueFd fd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    int rc = fd ? ::fchmod(fd.get(), mode) : ::fchmodat(parent, name.c_str(), mode, AT_SYMLINK_NOFOLLOW);
    if (rc != 0)
        return fail(err, errno, "cannot set the mode of " + shown);
    return true;
}

// Checks the open directory `dir_fd` (named `shown` in messages) against
// the trust rule (why_untrusted).
bool check_trusted(int dir_fd, const std::string &shown, Error &err)
{
    struct stat st;
    if (::fstat(dir_fd, &st) != 0)
        return fail(err, errno, "stat " + shown);
    std::string why = why_untrusted(st);
    return why.empty() ? true : refuse(err, "directory " + shown + " " + why);
}

// One walk of open() from / down to the directory asked for: the directory
// reached so far (an O_PATH descriptor, and its path for messages), the
// components left to walk (a symbolic link met adds its target's in front),
// and how many links were followed.
class Walk {
public:
    Walk(const std::string &path, mode_t create_mode, Error &err) : create_mode_(create_mode), err_(err)
    {
        push_components(todo_, path);
    }

    // Walks every component, checking each directory reached; returns the
    // last one, or an empty descriptor with err_ set.
    UniqueFd run()
    {
        bool ok = to_root() && check_trusted(fd_.get(), at_, err_);
        while (ok && !todo_.empty())
            ok = step();
        return ok ? std::move(fd_) : UniqueFd();
    }

private:
    bool to_root()
    {
        fd_.reset(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
        at_ = "/";
        return fd_ ? true : fail(err_, errno, "open /");
    }

    // Goes down into the next component (created first when missing and
    // create_mode_ is set), or follows it when it is a link.
    bool step()
    {
        const std::string name = todo_.front();
        todo_.pop_front();
        const std::string shown = at_ == "/" ? "/" + name : at_ + "/" + name;
        UniqueFd next(::openat(fd_.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!next && errno == ENOENT && create_mode_) {
            if (!create_exact(fd_.get(), name, create_mode_, err_, shown) && !err_.message.empty())
                return false;
            next.reset(::openat(fd_.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        }
        if (!next && (errno == ENOTDIR || errno == ELOOP))
            return follow_link(name, shown);
        if (!next)
            return fail(err_, errno, "cannot open directory " + shown);
        fd_ = std::move(next);
        at_ = name == ".." ? at_.substr(0, std::max<size_t>(1, at_.rfind('/'))) : shown;
        return check_trusted(fd_.get(), at_, err_);
    }

    // A symbolic link (or not a directory): followed by hand, its target's
    // components walked next, so that every directory it leads through is
    // checked too; an absolute target starts again at /.
    bool follow_link(const std::string &name, const std::string &shown)
    {
        if (!link_trusted(name, shown))
            return false;
        char target[4096];
        ssize_t n = ::readlinkat(fd_.get(), name.c_str(), target, sizeof target - 1);
        if (n < 0)
            return fail(err_, ENOTDIR, shown);
        if (++links_ > max_links)
            return fail(err_, ELOOP, shown);
        target[n] = '\0';
        push_components(todo_, target);
        return target[0] == '/' ? to_root() : true;
    }

    // In a directory others may write (a sticky one: check_trusted refused
    // any other), anyone could have planted the link: it is followed only
    // when it is root's or ours, as the kernel's protected_symlinks would.
    // Others cannot remove or rename such a link there, so it stays the
    // one checked.
    bool link_trusted(const std::string &name, const std::string &shown)
    {
        struct stat dir, link;
        if (::fstat(fd_.get(), &dir) != 0)
            return fail(err_, errno, "stat " + at_);
        if (!(dir.st_mode & (S_IWGRP | S_IWOTH)))
            return true;
        if (::fstatat(fd_.get(), name.c_str(), &link, AT_SYMLINK_NOFOLLOW) != 0)
            return fail(err_, errno, "stat " + shown);
        if (!S_ISLNK(link.st_mode) || link.st_uid == 0 || link.st_uid == ::geteuid())
            return true;
        return refuse(err_, "symbolic link " + shown + " is owned by uid " + std::to_string(link.st_uid) +
                                ", in a directory others can write (mode " + mode_text(dir.st_mode) + ")");
    }

    const mode_t create_mode_;
    Error &err_;
    std::deque<std::string> todo_;
    UniqueFd fd_;
    std::string at_ = "/";  // what fd_ is, for messages
    int links_ = 0;
};

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

Dir open(const std::string &path, mode_t create_mode, Error &err)
{
    err = Error{};
    if (path.empty() || path[0] != '/')
        return refuse(err, "directory '" + path + "' is not an absolute path"), Dir{};
    UniqueFd walked = Walk(path, create_mode, err).run();
    if (!walked)
        return Dir{};
    // The result is a readable descriptor (for listing and fchmod), reopened
    // through the checked one, so it is the same directory.
    UniqueFd real(::openat(walked.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!real)
        return fail(err, errno, "cannot open directory " + path), Dir{};
    return Dir(std::move(real), path);
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
        UniqueFd fd(::openat(parent.fd(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd)
            return fail(err, errno, "cannot open " + shown), Dir{};
        Dir d(std::move(fd), shown);
        struct stat st;
        if (::fstat(d.fd(), &st) != 0)
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
    UniqueFd fd(::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd)
        return fail(err, errno, "cannot open " + name);
    struct stat opened;
    bool ok = ::fstat(fd.get(), &opened) == 0;
    if (ok && opened.st_uid != ::geteuid()) {
        ok = refuse(err, "directory " + name + " is owned by uid " + std::to_string(opened.st_uid) +
                             "; not removing it");
    } else if (ok) {
        ok = empty_at(fd.get(), depth + 1, err);
    } else {
        fail(err, errno, "stat " + name);
    }
    fd.reset();
    if (ok && ::unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
        return fail(err, errno, "cannot remove " + name);
    return ok;
}

bool empty_at(int dir_fd, int depth, Error &err)
{
    UniqueFd list_fd(::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!list_fd)
        return fail(err, errno, "cannot list a directory");
    DIR *d = ::fdopendir(list_fd.get());
    if (!d)
        return fail(err, errno, "cannot list a directory");
    (void)list_fd.release();  // the DIR owns it now: closedir closes it
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
