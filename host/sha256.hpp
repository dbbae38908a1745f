// SHA-256 of the bytes a step moved, for its record (records.hpp): through
// OpenSSL's libcrypto (EVP), the Debian package libssl-dev, not code of our
// own. Incremental, so a file transfer hashes each chunk as it passes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace devhost {

class Sha256 {
public:
    // Throws std::bad_alloc when libcrypto cannot make its context.
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
