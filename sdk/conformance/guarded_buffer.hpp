// A buffer whose last byte sits just before an inaccessible page, so that a
// plugin writing (or reading) one byte past it is killed by SIGSEGV, which
// the runner reports; the bytes before it are filled with a canary.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace devhost::conformance {

class GuardedBuffer {
public:
    explicit GuardedBuffer(size_t size) : size_(size)
    {
        const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
        span_ = ((size + page - 1) / page + 1) * page;
        void *p = mmap(nullptr, span_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            throw std::runtime_error("mmap failed");
        base_ = static_cast<uint8_t *>(p);
        if (mprotect(base_ + span_ - page, page, PROT_NONE) != 0)
            throw std::runtime_error("mprotect failed");
        data_ = base_ + span_ - page - size;
        std::memset(base_, canary, span_ - page);
    }
    ~GuardedBuffer() { munmap(base_, span_); }
    GuardedBuffer(const GuardedBuffer &) = delete;
    GuardedBuffer &operator=(const GuardedBuffer &) = delete;
    uint8_t *data() { return data_; }
    size_t size() const { return size_; }
    static constexpr uint8_t canary = 0xa5;

private:
    size_t size_, span_ = 0;
    uint8_t *base_ = nullptr, *data_ = nullptr;
};

}  // namespace devhost::conformance
