// Reading a small text file a user named (a config, a peer's script or
// answers): a regular file of bounded size, never a directory, FIFO or
// device such as /dev/zero, which would be read forever or block. Shared by
// the host and devhost-vdev (library devhost_text); each caller words the
// refusal in its own terms.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace devhost::text {

struct FileRefusal {
    enum class Kind { None, Open, Directory, NotRegular, TooLarge, Read };
    Kind kind = Kind::None;
    int os_errno = 0;   // Open, Read
    uint64_t size = 0;  // TooLarge: the file's size, or 0 when it grew while read
};

// The whole file, or nullopt with `why` saying what stopped it. The file is
// opened without blocking and checked on the open descriptor (no race
// between a check and the open).
std::optional<std::string> read_small_file(const std::filesystem::path &file, uint64_t max_bytes, FileRefusal &why);

}  // namespace devhost::text
