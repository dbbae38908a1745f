#include "raw_fixtures.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <stdexcept>
#include <sys/mount.h>
#include <unistd.h>

namespace raw_test {

using devhost::test::run_process;

uint8_t pattern_byte(uint64_t i)
{
    return static_cast<uint8_t>((i * 7 + i / 251) & 0xff);
}

std::vector<uint8_t> pattern(uint64_t offset, size_t len)
{
    std::vector<uint8_t> bytes(len);
    for (size_t i = 0; i < len; i++)
        bytes[i] = pattern_byte(offset + i);
    return bytes;
}

void make_image(const fs::path &file, uint64_t size)
{
    auto bytes = pattern(0, static_cast<size_t>(size));
    devhost::test::write_file(file, std::string(bytes.begin(), bytes.end()));
}

void write_mbr(const fs::path &image, uint32_t first_lba, uint32_t sectors)
{
    std::vector<uint8_t> mbr(512, 0);
    uint8_t *entry = &mbr[0x1be];
    entry[4] = 0x83;
    for (int i = 0; i < 4; i++) {
        entry[8 + i] = static_cast<uint8_t>(first_lba >> (8 * i));  // little-endian
        entry[12 + i] = static_cast<uint8_t>(sectors >> (8 * i));
    }
    mbr[0x1fe] = 0x55;
    mbr[0x1ff] = 0xaa;
    std::fstream f(image, std::ios::in | std::ios::out | std::ios::binary);
    f.write(reinterpret_cast<const char *>(mbr.data()), 512);
    if (!f)
        throw std::runtime_error("cannot write an MBR to " + image.string());
}

std::vector<uint8_t> read_bytes(const fs::path &file, uint64_t offset, size_t len)
{
    std::string all = devhost::test::read_file(file);
    if (offset + len > all.size())
        throw std::runtime_error("read_bytes past the end of " + file.string());
    return std::vector<uint8_t>(all.begin() + static_cast<long>(offset),
                                all.begin() + static_cast<long>(offset + len));
}

void make_partitioned_image(const fs::path &image)
{
    make_image(image, fs_size);
    write_mbr(image, 2048, 14336);
}

// Adds partition 1 (first LBA 2048, to the end of an 8 MiB disk) to a
// partition-scanned loop device: from the MBR if the kernel parsed it, else
// through BLKPG (addpart), for kernels without the MBR parser. Returns why
// not, or empty.
std::string ensure_partition(const LoopDevice &loop)
{
    std::string name = fs::path(loop.path()).filename().string();
    if (fs::exists("/sys/block/" + name + "/" + name + "p1"))
        return {};
    fs::path addpart = find_tool("addpart");
    if (addpart.empty())
        return "the kernel found no partition on " + loop.path() + " and addpart (util-linux) is not installed";
    auto r = devhost::test::run_process({addpart.string(), loop.path(), "1", "2048", "14336"});
    if (r.exit_code != 0)
        return "addpart could not add a partition to " + loop.path() + ": " + r.err;
    return {};
}

std::shared_ptr<const devhost::Plugin> raw_plugin()
{
    return devhost::test::loaded_plugin(devhost::test::plugin_dir() / "raw.so");
}

Opened open_raw(const std::string &path, const std::map<std::string, std::string> &options, bool inherit)
{
    Opened o;
    o.device = std::make_unique<devhost::Device>(raw_plugin(), "disk");
    devhost::OpenRequest req;
    req.path = path;
    req.options = options;
    req.inherit = inherit;
    o.outcome = o.device->open(req);
    return o;
}

namespace {

// A shared transfer's result with the bytes as a vector; `done` is what
// `op` moved (bytes read, or bytes written).
Result as_raw(const devhost::test::TransferResult &t, bool wrote)
{
    Result r;
    r.outcome = t.outcome;
    r.data.assign(t.data.begin(), t.data.end());
    r.done = wrote ? t.out_done : t.data.size();
    return r;
}

}  // namespace

Result read_at(devhost::Device &dev, std::optional<uint64_t> offset, size_t len, bool exact)
{
    return as_raw(devhost::test::transfer(dev, {.op = exact ? uint32_t(DEVHOST_OP_READ_EXACT) : uint32_t(DEVHOST_OP_READ),
                                                .capacity = len,
                                                .timeout_ms = 10000,
                                                .offset = offset}),
                  false);
}

Result write_at(devhost::Device &dev, std::optional<uint64_t> offset, const std::vector<uint8_t> &data)
{
    return as_raw(devhost::test::transfer(dev, {.op = DEVHOST_OP_WRITE,
                                                .out = std::string(data.begin(), data.end()),
                                                .timeout_ms = 10000,
                                                .offset = offset}),
                  true);
}

Result control_code(devhost::Device &dev, uint32_t code, size_t capacity)
{
    return as_raw(devhost::test::transfer(
                      dev, {.op = DEVHOST_OP_CONTROL, .capacity = capacity, .timeout_ms = 10000, .control_code = code}),
                  false);
}

Result control(devhost::Device &dev, const std::string &name, size_t capacity, const std::vector<uint8_t> &input)
{
    return as_raw(devhost::test::transfer(dev, {.op = DEVHOST_OP_CONTROL,
                                                .out = std::string(input.begin(), input.end()),
                                                .capacity = capacity,
                                                .timeout_ms = 10000,
                                                .control_code = devhost::test::control_code(dev, name)}),
                  false);
}

std::string text(const std::vector<uint8_t> &bytes)
{
    return std::string(bytes.begin(), bytes.end());
}

bool has_info(const devhost::InfoList &info, const std::string &key)
{
    for (const auto &[k, v] : info)
        if (k == key)
            return true;
    return false;
}

}  // namespace raw_test
