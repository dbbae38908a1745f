// Raw: sequential read of a file (256 MiB; 8 MiB in smoke mode) in 64 KiB
// blocks, from the page cache and with O_DIRECT.
//   devhost: raw plugin through the host's Device API, `read exactly=65536
//     offset=N` transfers into an aligned buffer the host owns
//   baseline: a pread loop with the same block size and buffer
#include "bench.hpp"

#include <device.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace bench {
namespace {

constexpr size_t block = 64 * 1024;

struct AlignedBuffer {
    uint8_t *data = nullptr;
    explicit AlignedBuffer(size_t size)
    {
        void *p = nullptr;
        if (posix_memalign(&p, 4096, size) != 0)
            fail("posix_memalign failed");
        data = static_cast<uint8_t *>(p);
        std::memset(data, 0, size);
    }
    ~AlignedBuffer() { std::free(data); }
};

}  // namespace

fs::path raw_file(const Params &p, uint64_t size)
{
    const fs::path file = p.work_dir / ("raw-" + std::to_string(size >> 20) + "MiB.bin");
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0 && uint64_t(st.st_size) == size)
        return file;
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        fail("create " + file.string() + ": " + std::strerror(errno));
    std::vector<uint8_t> chunk(1 << 20);
    for (uint64_t done = 0; done < size; done += chunk.size()) {
        for (size_t i = 0; i < chunk.size(); i += 8)
            std::memcpy(&chunk[i], &done, sizeof done);  // not all zeros
        if (::write(fd, chunk.data(), chunk.size()) != ssize_t(chunk.size()))
            fail("write " + file.string() + ": " + std::strerror(errno));
    }
    fsync(fd);
    ::close(fd);
    return file;
}

namespace {

double baseline(const fs::path &file, uint64_t size, bool direct, int passes)
{
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
    if (fd < 0)
        fail("open " + file.string() + ": " + std::strerror(errno));
    AlignedBuffer buf(block);
    const auto start = Clock::now();
    for (int pass = 0; pass < passes; pass++)
        for (uint64_t off = 0; off < size; off += block)
            if (pread(fd, buf.data, block, off_t(off)) != ssize_t(block))
                fail("pread " + file.string() + ": " + std::strerror(errno));
    double s = seconds_since(start);
    ::close(fd);
    return double(size) * passes / s / (1024.0 * 1024.0);
}

double with_devhost(const Params &p, const fs::path &file, uint64_t size, bool direct, int passes)
{
    auto plugin = load_plugin(p, "raw");
    devhost::Device dev(plugin, "bench");
    devhost::Outcome o = dev.open({.path = file.string(), .options = {{"direct", direct ? "true" : "false"}}});
    if (!o.ok())
        fail("raw open: " + o.message);
    AlignedBuffer buf(block);
    const auto start = Clock::now();
    for (int pass = 0; pass < passes; pass++)
        for (uint64_t off = 0; off < size; off += block) {
            devhost_transfer x{};
            x.op = DEVHOST_OP_READ_EXACT;
            x.flags = DEVHOST_TRANSFER_HAS_OFFSET;
            x.offset = off;
            x.timeout_ms = 5000;
            x.in = buf.data;
            x.in_capacity = block;
            o = dev.transfer(x);
            if (!o.ok())
                fail("raw read: " + o.message);
        }
    double s = seconds_since(start);
    dev.close();
    return double(size) * passes / s / (1024.0 * 1024.0);
}

}  // namespace

void bench_raw(const Params &p, Report &report)
{
    const uint64_t size = (p.smoke ? 8ull : 256ull) << 20;
    const fs::path file = raw_file(p, size);
    baseline(file, size, false, 1);  // into the page cache

    Result r{"raw", "sequential read 64 KiB blocks, page cache", "MiB/s", true, "pread loop, same block size", {}, {}, ""};
    r.note = "4 passes over the file a sample";
    report.add(compare(p, r, [&] { return with_devhost(p, file, size, false, 4); },
                       [&] { return baseline(file, size, false, 4); }));

    r = {"raw", "sequential read 64 KiB blocks, O_DIRECT", "MiB/s", true, "pread loop with O_DIRECT, same block size", {}, {}, ""};
    r.note = "virtio disk of a shared VM; the host's buffer is page-aligned, so the plugin reads straight into it";
    report.add(compare(p, r, [&] { return with_devhost(p, file, size, true, 1); },
                       [&] { return baseline(file, size, true, 1); }));
}

}  // namespace bench
