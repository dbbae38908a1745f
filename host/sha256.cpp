#include "sha256.hpp"

#include "common/text.hpp"

#include <gcrypt.h>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>

namespace devhost {

namespace {

// libgcrypt wants gcry_check_version before its first use; a library that
// uses it too (libsystemd does) makes the same calls, and a second
// initialization is harmless. No secure memory: digests of step data only.
void initialize_gcrypt()
{
    static std::once_flag once;
    std::call_once(once, [] {
        if (!gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P)) {
            if (!gcry_check_version(GCRYPT_VERSION))  // older than the headers built against
                throw std::runtime_error(std::string("libgcrypt is older than ") + GCRYPT_VERSION);
            gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
            gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
        }
    });
}

}  // namespace

struct Sha256::Context {
    gcry_md_hd_t md = nullptr;
    ~Context() { gcry_md_close(md); }
};

Sha256::Sha256() : ctx_(std::make_unique<Context>())
{
    initialize_gcrypt();
    if (gcry_md_open(&ctx_->md, GCRY_MD_SHA256, 0) != 0)
        throw std::bad_alloc();
}

Sha256::~Sha256() = default;

void Sha256::update(const uint8_t *data, size_t len)
{
    if (len)
        gcry_md_write(ctx_->md, data, len);
}

std::string Sha256::hex()
{
    const unsigned char *digest = gcry_md_read(ctx_->md, GCRY_MD_SHA256);
    return text::to_hex(digest, gcry_md_get_algo_dlen(GCRY_MD_SHA256));
}

std::string Sha256::of(const uint8_t *data, size_t len)
{
    initialize_gcrypt();
    unsigned char digest[32];
    gcry_md_hash_buffer(GCRY_MD_SHA256, digest, data, len);
    return text::to_hex(digest, sizeof digest);
}

}  // namespace devhost
