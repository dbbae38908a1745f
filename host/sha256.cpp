#include "sha256.hpp"

#include "common/text.hpp"

#include <new>
#include <openssl/evp.h>

namespace devhost {

struct Sha256::Context {
    EVP_MD_CTX *md = nullptr;
    ~Context() { EVP_MD_CTX_free(md); }
};

Sha256::Sha256() : ctx_(std::make_unique<Context>())
{
    ctx_->md = EVP_MD_CTX_new();
    if (!ctx_->md || EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) != 1)
        throw std::bad_alloc();
}

Sha256::~Sha256() = default;

void Sha256::update(const uint8_t *data, size_t len)
{
    if (len)
        EVP_DigestUpdate(ctx_->md, data, len);
}

std::string Sha256::hex()
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_->md, digest, &len);
    return text::to_hex(digest, len);
}

std::string Sha256::of(const uint8_t *data, size_t len)
{
    Sha256 h;
    h.update(data, len);
    return h.hex();
}

}  // namespace devhost
