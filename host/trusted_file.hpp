// Opening a file that only root or the host's user can change, checked by
// descriptor. devhost runs as root and runs the code of the files it loads,
// so "who could change this file" covers the file and every directory the
// path leads through, symlinks included: whoever can write a directory can
// rename what is in it and put their own file or directory in its place.
//
// The path is resolved here, one component at a time from "/", following
// symlinks by reading them (never letting the kernel follow one), and every
// directory a name is looked up in is checked on its open descriptor before
// the lookup. The file is then opened once; the caller reads and loads that
// descriptor, so a swap of any path component after the check changes
// nothing. Each caller words a refusal in its own terms.
//
// Trusted means: owned by root or the host's effective user. The rules:
// - every directory a name is looked up in is trusted and not writable by
//   group or others (group-writable counts: every member of the group is
//   another user; a POSIX ACL granting write to anyone shows in the group
//   bits), unless it is sticky (like /tmp): then others may add entries but
//   not rename or remove the trusted owner's, so it is accepted, and a
//   symlink found in it must itself be trusted (others could have placed
//   it; the kernel's protected_symlinks makes the same distinction);
// - the file is a regular file, trusted, and not writable by group or others.
#pragma once

#include <devhost/unique_fd.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <sys/stat.h>
#include <sys/types.h>

namespace devhost {

struct TrustRefusal {
    enum class Kind {
        None,
        Open,          // a lookup or the open failed (os_errno), at `path`
        NotRegular,    // `path` is not a regular file (mode: its type bits)
        FileWritable,  // the file is writable by group or others (mode)
        FileOwner,     // the file is owned by uid, not trusted
        DirWritable,   // the directory `path` is writable by group or others and not sticky (mode)
        DirOwner,      // the directory `path` is owned by uid, not trusted
        LinkOwner,     // the symlink `path`, in a sticky directory others may write, is owned by uid
        Changed,       // the file at `path` was replaced between its lookup and its open
    };
    Kind kind = Kind::None;
    std::string path;            // what failed, as resolved so far (absolute, no symlinks)
    bool own_directory = false;  // Dir*: the directory holding the file itself, not one above it
    int os_errno = 0;
    mode_t mode = 0;
    uid_t uid = 0;
};

// Symlinks followed at most while resolving one path (the kernel's limit);
// more is ELOOP, as for the kernel.
inline constexpr int max_symlinks_followed = 40;

// Resolves `file` (relative ones from the working directory), checks it by
// the rules above and opens it O_RDONLY|O_CLOEXEC|O_NOFOLLOW|O_NONBLOCK
// (O_NONBLOCK only matters for what is refused before: nothing but a
// regular file is ever opened for reading). Returns the descriptor with
// `st` its fstat, or an empty UniqueFd with `why` saying what is wrong.
UniqueFd open_trusted_file(const std::filesystem::path &file, struct stat &st, TrustRefusal &why);

// Why a file devhost keeps for itself in a directory of its own (the MQTT
// spool's files, the restart ledger: opened O_NOFOLLOW in a checked
// directory, `st` its fstat) must not be used, or "": not a regular file,
// not the host's effective user's, another name for it elsewhere (a hard
// link), writable by group or others, or larger than `max_bytes` (0: any
// size). Worded to follow the file's name: "FILE is not a regular file".
std::string own_file_refusal(const struct stat &st, uint64_t max_bytes = 0);

}  // namespace devhost
