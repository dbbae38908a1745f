// Directories that devhost creates or serves in (the port directory, /run/devhost
// and its run directories), opened and checked by descriptor.
//
// A directory is trusted when it is owned by root or by this process's
// effective uid and nobody else can write it: not writable by group or
// others, unless it is sticky and owned by root (like /tmp, where others may
// add entries but not remove or rename ours). Every directory from / down to
// the one asked for must be trusted, or someone else could swap a component
// between our check and our use.
//
// Internal to the tree (not installed): compiled into libdevhost-port and
// into the host's and devhost-vdev's static libraries.
#pragma once

#include <devhost/unique_fd.hpp>

#include <string>
#include <utility>

#include <sys/stat.h>
#include <sys/types.h>

namespace devhost::trusted_dir {

// Why a directory with this stat cannot be trusted ("is owned by uid 65534
// (not root or uid 0)", "is writable by group or others (mode 0777) and is
// not a sticky directory owned by root"), or "" when it can.
std::string why_untrusted(const struct stat &st);

struct Error {
    int os_errno = 0;       // errno of the failed call; 0 for a refusal
    bool refused = false;   // a directory failed the trust rule
    std::string message;    // one line naming the directory
};

// An open directory (O_DIRECTORY | O_CLOEXEC): RAII, move-only.
class Dir {
public:
    Dir() = default;
    Dir(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
    explicit operator bool() const { return static_cast<bool>(fd_); }
    int fd() const { return fd_.get(); }
    const std::string &path() const { return path_; }
    void reset() { fd_.reset(); }

private:
    UniqueFd fd_;
    std::string path_;
};

// Opens the absolute directory `path`, checking every directory from / down
// (a symbolic link met on the way is followed, and what it leads to is
// checked like the rest; a link in a directory others may write, a sticky
// one, is refused unless it is root's or ours: anyone could have planted
// it there). When `create_mode` is not 0, missing components
// are created with exactly that mode (whatever the umask: set by fchmod on
// the new directory's descriptor) and must then be owned by us. On failure
// returns an empty Dir with `err` set.
Dir open(const std::string &path, mode_t create_mode, Error &err);

// Creates a new directory PREFIX + six random characters inside `parent`,
// mode exactly 0700, and opens it without following links. `name` gets the
// new entry's name. On failure returns an empty Dir with `err` set.
Dir make_private(const Dir &parent, const std::string &prefix, std::string &name, Error &err);

// True when `name` in `parent` is still the directory `dir` (same device and
// inode, and not a symbolic link).
bool still_names(const Dir &parent, const std::string &name, const Dir &dir);

// Removes the entry `name` of `parent` and, when it is a directory owned by
// us, everything inside it, through descriptors only (openat, unlinkat), never
// following a link. A directory owned by someone else is left alone (false,
// with `err` set). Depth is bounded.
bool remove_tree(int parent_fd, const std::string &name, Error &err);

// Empties the open directory `dir` through its descriptor (see remove_tree).
bool empty_dir(int dir_fd, Error &err);

}  // namespace devhost::trusted_dir
