// A file descriptor that closes itself: the one owner of an fd from open(2),
// openat(2), socket(2), eventfd(2) or fcntl(F_DUPFD_CLOEXEC), in the host,
// the port library, devhost-vdev and C++ plugins (<devhost/plugin.hpp>
// includes it). Header-only; no ABI: it never crosses plugin.h.
#pragma once

#include <unistd.h>
#include <utility>

namespace devhost {

class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    ~UniqueFd() { reset(); }
    UniqueFd(UniqueFd &&other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    UniqueFd &operator=(UniqueFd &&other) noexcept
    {
        if (this != &other)
            reset(std::exchange(other.fd_, -1));
        return *this;
    }
    UniqueFd(const UniqueFd &) = delete;
    UniqueFd &operator=(const UniqueFd &) = delete;

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    void reset(int fd = -1)
    {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = fd;
    }
    // Gives the descriptor up without closing it (to a caller that owns it
    // from then on, e.g. across a C interface); this then holds none.
    [[nodiscard]] int release() { return std::exchange(fd_, -1); }

private:
    int fd_ = -1;
};

}  // namespace devhost
