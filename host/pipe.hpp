// A pipe whose two ends close themselves, for the host's child processes
// (the virtual peers, `devhost-vdev --describe-kinds`): both ends are
// close-on-exec; a child dup2()s the one it keeps onto its stdio.
#pragma once

#include <devhost/unique_fd.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <string>
#include <unistd.h>

namespace devhost {

struct Pipe {
    UniqueFd read, write;
};

// A new pipe, or nullopt with `error` ("pipe: <reason>").
inline std::optional<Pipe> make_pipe(std::string &error)
{
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        error = std::string("pipe: ") + std::strerror(errno);
        return std::nullopt;
    }
    return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

}  // namespace devhost
