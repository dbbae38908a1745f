// Opening a file that devhost appends to: step records, the log file, a
// virtual printer's output, a step's to=FILE (and, by the same rules, a
// file it reads: a step's from=FILE). Shared by the host and devhost-vdev (library
// devhost_text), which both run as root in directories others may use.
//
// - A file that does not exist is created with exactly the mode asked for,
//   whatever the umask (fchmod on the new descriptor).
// - The directories on the way are walked one name at a time, by
//   descriptor. A symbolic link, on the way or as the file's own name, is
//   followed only if the directory holding it can be written by no one but
//   root and the effective user, and then by walking its target the same
//   way (a second link, in a directory others can write, is refused: the
//   kernel never follows a chain by itself; a link to a file not there yet
//   creates it, as above): in a directory
//   others can write (a sticky /tmp, a group-writable directory, one owned by
//   another user) anyone could have planted the link, so it is refused
//   (O_NOFOLLOW), and so is a file there that belongs to another user or has
//   other hard links (a planted link to a file we must not append to).
// - The open never blocks: a FIFO with no reader is refused (ENXIO) instead
//   of waiting for one. The descriptor is O_NONBLOCK; a caller that wants
//   blocking writes clears it.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <sys/types.h>
#include <vector>

namespace devhost::output {

struct OpenedFile {
    int fd = -1;           // O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC | O_NOCTTY
    bool created = false;  // this call created the file (with `mode`)
};

// The directory holding `path`, opened O_PATH (for openat and renameat), and
// the file's name in it. -1 with `error` set (one line, naming the directory)
// when it cannot be opened.
int open_directory_of(const std::filesystem::path &path, std::string &name, std::string &error);

// Pushes the components of `path` onto `rest` (last first, "." left out), so
// that rest.back() is the next name a walk opens.
void push_components(std::vector<std::string> &rest, const std::string &path);

// Whether someone other than root and the effective user could create or
// replace names in the directory `dir_fd`.
bool others_can_write(int dir_fd);

// The refusal of a file (or directory) `st` found in a directory others can
// write, or nullopt: it belongs to another user, or it is a regular file
// with other hard links (a planted link to a file of root's).
std::optional<std::string> planted(const struct stat &st);

// Opens `name` in `dir_fd` for appending as described above; `shown` is how
// messages name the file. nullopt with `error` set to one line (without the
// file's name in front, e.g. "a FIFO with no reader") when refused.
std::optional<OpenedFile> open_append_at(int dir_fd, const std::string &name, mode_t mode, std::string &error);

// The same from a path.
std::optional<OpenedFile> open_append(const std::filesystem::path &path, mode_t mode, std::string &error);

// Opens the regular file at `path` for reading (a step's from=FILE) by the
// same walk and the same refusals: no symbolic link followed in a directory
// others can write, nor a file there of another user's or with other hard
// links (a planted link to a file root may read); anything but a regular
// file refused. The descriptor is O_RDONLY | O_CLOEXEC | O_NOCTTY. -1 with
// `error` set (one line, without the path) when refused.
int open_read(const std::filesystem::path &path, std::string &error);

}  // namespace devhost::output
