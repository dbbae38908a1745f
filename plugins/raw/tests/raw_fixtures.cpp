#include "raw_fixtures.hpp"

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <stdexcept>
#include <sys/mount.h>
#include <unistd.h>

namespace raw_test {

using devhost::test::run_process;

fs::path find_tool(const std::string &name)
{
    for (const char *dir : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) {
        fs::path p = fs::path(dir) / name;
        if (access(p.c_str(), X_OK) == 0)
            return p;
    }
    return {};
}

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

std::vector<uint8_t> read_bytes(const fs::path &file, uint64_t offset, size_t len)
{
    std::string all = devhost::test::read_file(file);
    if (offset + len > all.size())
        throw std::runtime_error("read_bytes past the end of " + file.string());
    return std::vector<uint8_t>(all.begin() + static_cast<long>(offset),
                                all.begin() + static_cast<long>(offset + len));
}

LoopDevice::LoopDevice(const fs::path &image, bool read_only, bool partscan)
{
    fs::path tool = find_tool("losetup");
    if (tool.empty()) {
        reason_ = "losetup is not installed";
        return;
    }
    std::vector<std::string> argv{tool.string(), "--find", "--show"};
    if (read_only)
        argv.push_back("--read-only");
    if (partscan)
        argv.push_back("--partscan");
    argv.push_back(image.string());
    auto r = run_process(argv);
    std::string out = r.out;
    while (!out.empty() && (out.back() == '\n' || out.back() == ' '))
        out.pop_back();
    if (r.exit_code != 0 || out.rfind("/dev/loop", 0) != 0) {
        reason_ = "losetup cannot attach a loop device here: " + (r.err.empty() ? out : r.err);
        return;
    }
    path_ = out;
}

LoopDevice::~LoopDevice()
{
    // Detach even if the test detached it already or failed half way; an
    // error here (already detached) is fine.
    if (!path_.empty())
        losetup({"-d", path_});
}

int LoopDevice::detach()
{
    int rc = losetup({"-d", path_});
    if (rc == 0)
        path_.clear();
    return rc;
}

int LoopDevice::losetup(const std::vector<std::string> &args) const
{
    std::vector<std::string> argv{find_tool("losetup").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv).exit_code;
}

Mount::Mount(const std::string &device, const fs::path &dir, const std::string &fstype) : dir_(dir)
{
    fs::create_directories(dir);
    if (::mount(device.c_str(), dir.c_str(), fstype.c_str(), 0, nullptr) != 0) {
        reason_ = "cannot mount " + device + " (" + fstype + "): " + std::strerror(errno);
        return;
    }
    mounted_ = true;
}

Mount::~Mount()
{
    if (mounted_)
        ::umount2(dir_.c_str(), MNT_DETACH);
}

// Why ext4 cannot be made here, or empty.
std::string mkfs_unavailable()
{
    return find_tool("mkfs.ext4").empty() ? "mkfs.ext4 (e2fsprogs) is not installed, so no filesystem can be "
                                            "made to mount"
                                          : "";
}

// Makes an ext4 filesystem on `target` (an image file or a block device).
bool mkfs_ext4(const std::string &target)
{
    auto r = run_process({find_tool("mkfs.ext4").string(), "-q", "-F", target});
    INFO(r.err);
    return r.exit_code == 0;
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
    auto r = run_process({addpart.string(), loop.path(), "1", "2048", "14336"});
    if (r.exit_code != 0)
        return "addpart could not add a partition to " + loop.path() + ": " + r.err;
    return {};
}

void write_mbr(const fs::path &image, uint32_t first_lba, uint32_t sectors)
{
    std::vector<uint8_t> mbr(512, 0);
    mbr[0x1be + 4] = 0x83;  // Linux
    for (int i = 0; i < 4; i++) {
        mbr[0x1be + 8 + i] = static_cast<uint8_t>(first_lba >> (8 * i));
        mbr[0x1be + 12 + i] = static_cast<uint8_t>(sectors >> (8 * i));
    }
    mbr[0x1fe] = 0x55;
    mbr[0x1ff] = 0xaa;
    std::fstream f(image, std::ios::in | std::ios::out | std::ios::binary);
    f.write(reinterpret_cast<const char *>(mbr.data()), 512);
}

// An 8 MiB image with an MBR holding one Linux partition from LBA 2048.
void make_partitioned_image(const fs::path &image)
{
    make_image(image, fs_size);
    write_mbr(image, 2048, 14336);
}

std::shared_ptr<const devhost::Plugin> raw_plugin()
{
    static devhost::PluginRegistry registry;
    static std::shared_ptr<const devhost::Plugin> plugin = registry.load_file(devhost::test::plugin_dir() / "raw.so");
    if (!plugin)
        throw std::runtime_error("raw.so did not load: " +
                                 (registry.refusals().empty() ? std::string("?") : registry.refusals()[0].reason));
    return plugin;
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

Result read_at(devhost::Device &dev, std::optional<uint64_t> offset, size_t len, bool exact)
{
    Result r;
    r.data.resize(len);
    devhost_transfer x{};
    x.op = exact ? DEVHOST_OP_READ_EXACT : DEVHOST_OP_READ;
    x.timeout_ms = 10000;
    if (offset) {
        x.flags = DEVHOST_TRANSFER_HAS_OFFSET;
        x.offset = *offset;
    }
    x.in = r.data.data();
    x.in_capacity = len;
    r.outcome = dev.transfer(x);
    r.data.resize(x.in_len);
    r.done = x.in_len;
    return r;
}

Result write_at(devhost::Device &dev, std::optional<uint64_t> offset, const std::vector<uint8_t> &data)
{
    Result r;
    devhost_transfer x{};
    x.op = DEVHOST_OP_WRITE;
    x.timeout_ms = 10000;
    if (offset) {
        x.flags = DEVHOST_TRANSFER_HAS_OFFSET;
        x.offset = *offset;
    }
    x.out = data.data();
    x.out_len = data.size();
    r.outcome = dev.transfer(x);
    r.done = x.out_done;
    return r;
}

Result control_code(devhost::Device &dev, uint32_t code, size_t capacity)
{
    Result r;
    r.data.resize(capacity);
    devhost_transfer x{};
    x.op = DEVHOST_OP_CONTROL;
    x.timeout_ms = 10000;
    x.control_code = code;
    x.in = capacity ? r.data.data() : nullptr;
    x.in_capacity = capacity;
    r.outcome = dev.transfer(x);
    r.data.resize(x.in_len);
    return r;
}

Result control(devhost::Device &dev, const std::string &name, size_t capacity, const std::vector<uint8_t> &input)
{
    const devhost::ControlSpec *spec = dev.plugin().find_control(name);
    if (!spec)
        throw std::runtime_error("raw has no control named " + name);
    Result r;
    r.data.resize(capacity);
    devhost_transfer x{};
    x.op = DEVHOST_OP_CONTROL;
    x.timeout_ms = 10000;
    x.control_code = spec->code;
    x.out = input.empty() ? nullptr : input.data();
    x.out_len = input.size();
    x.in = capacity ? r.data.data() : nullptr;
    x.in_capacity = capacity;
    r.outcome = dev.transfer(x);
    r.data.resize(x.in_len);
    return r;
}

std::string text(const std::vector<uint8_t> &bytes)
{
    return std::string(bytes.begin(), bytes.end());
}

std::string info_value(const devhost::InfoList &info, const std::string &key)
{
    for (const auto &[k, v] : info)
        if (k == key)
            return v;
    return "<missing " + key + ">";
}

bool has_info(const devhost::InfoList &info, const std::string &key)
{
    for (const auto &[k, v] : info)
        if (k == key)
            return true;
    return false;
}

}  // namespace raw_test
