// SHA-256 of the bytes a step moved, for its record (records.hpp): through
// libgcrypt (the Debian package libgcrypt20-dev), not code of our own.
// Not libcrypto: every command maps the libraries devhost links at start,
// and libcrypto cost `devhost check` 1.5 ms of CPU and 1.4 MiB of RSS there,
// libgcrypt 0.03 ms and 0.3 MiB (bench/README.md, "Start-up").
// Incremental, so a file transfer hashes each chunk as it passes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace devhost {

class Sha256 {
public:
    // Throws std::bad_alloc when libgcrypt cannot make its context, and
    // std::runtime_error when the libgcrypt loaded is older than the one
    // devhost was built against.
    Sha256();
    ~Sha256();
    Sha256(const Sha256 &) = delete;
    Sha256 &operator=(const Sha256 &) = delete;

    void update(const uint8_t *data, size_t len);
    // The digest of everything updated so far, 64 lowercase hex digits.
    // Ends this hash: call once.
    std::string hex();

    // The digest of one buffer.
    static std::string of(const uint8_t *data, size_t len);

private:
    struct Context;
    std::unique_ptr<Context> ctx_;
};

}  // namespace devhost
