// raw-disk: a virtual disk for the raw class. Creates a disk image file
// (optionally with an MBR partition table, optionally attached to a loop
// block device), prints READY with the image's or loop device's path, and on
// stop detaches the loop device and deletes the image (unless --keep=true).
//
//   devhost-vdev raw-disk --name=disk [--size=1M] [--path=FILE] [--mbr=true]
//                         [--fill=PATTERN] [--loop=true] [--keep=true]
//
// The MBR has one Linux (0x83) partition covering the disk after its first
// 4 KiB (after the first MiB on disks of 2 MiB and more), a fixed disk
// signature "DVH1" at 0x1B8, and the 0x55AA boot signature at 0x1FE.
#include "vdev.hpp"
#include "trusted_dir.hpp"

#include <devhost/unique_fd.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace devhost::vdev {

namespace {

namespace fs = std::filesystem;

constexpr uint64_t sector = 512;

// "1M", "512K", "4096", "2G", "1MiB": bytes, binary units.
uint64_t parse_size(const std::string &text)
{
    size_t end = 0;
    unsigned long long n = 0;
    try {
        n = std::stoull(text, &end, 10);
    } catch (const std::exception &) {
        end = 0;
    }
    if (end == 0 || text[0] == '-')
        throw std::invalid_argument("--size=" + text + ": expected a size like 1M, 64K or 1048576");
    std::string unit = text.substr(end);
    uint64_t scale = 1;
    if (unit == "" || unit == "B")
        scale = 1;
    else if (unit == "K" || unit == "k" || unit == "KiB")
        scale = 1ull << 10;
    else if (unit == "M" || unit == "MiB")
        scale = 1ull << 20;
    else if (unit == "G" || unit == "GiB")
        scale = 1ull << 30;
    else
        throw std::invalid_argument("--size=" + text + ": unknown unit '" + unit + "' (use K, M or G)");
    uint64_t bytes = n * scale;
    if (n == 0 || bytes / scale != n)
        throw std::invalid_argument("--size=" + text + ": out of range");
    if (bytes % sector != 0)
        throw std::invalid_argument("--size=" + text + ": must be a multiple of 512 bytes");
    return bytes;
}

// "hex:55aa" or text; repeated over the disk. Empty: zeroes.
std::vector<uint8_t> parse_fill(const std::string &text)
{
    std::vector<uint8_t> bytes;
    if (text.rfind("hex:", 0) == 0) {
        std::string hex = text.substr(4);
        if (hex.empty() || hex.size() % 2 != 0)
            throw std::invalid_argument("--fill=" + text + ": expected an even number of hex digits after hex:");
        for (size_t i = 0; i < hex.size(); i += 2) {
            char pair[3] = {hex[i], hex[i + 1], 0};
            char *end = nullptr;
            long v = std::strtol(pair, &end, 16);
            if (end != pair + 2)
                throw std::invalid_argument("--fill=" + text + ": '" + pair + "' is not a hex byte");
            bytes.push_back(static_cast<uint8_t>(v));
        }
    } else {
        bytes.assign(text.begin(), text.end());
    }
    return bytes;
}

void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// CHS address of `lba` with 255 heads and 63 sectors per track, or the
// "beyond CHS" marker.
void put_chs(uint8_t *p, uint64_t lba)
{
    uint64_t cylinder = lba / (255 * 63);
    if (cylinder > 1023) {
        p[0] = 0xfe;
        p[1] = 0xff;
        p[2] = 0xff;
        return;
    }
    uint64_t head = (lba / 63) % 255;
    uint64_t sec = lba % 63 + 1;
    p[0] = static_cast<uint8_t>(head);
    p[1] = static_cast<uint8_t>((sec & 0x3f) | ((cylinder >> 2) & 0xc0));
    p[2] = static_cast<uint8_t>(cylinder & 0xff);
}

// Sector 0 with one partition spanning the rest of the disk.
std::array<uint8_t, sector> make_mbr(uint64_t size)
{
    std::array<uint8_t, sector> mbr{};
    uint64_t sectors = size / sector;
    uint64_t first = sectors >= 4096 ? 2048 : 8;
    if (sectors <= first)
        throw std::invalid_argument("--mbr=true needs a disk larger than " + std::to_string(first * sector) +
                                    " bytes");
    uint64_t count = sectors - first;
    if (count > 0xffffffffull)
        throw std::invalid_argument("--mbr=true: disk too large for an MBR (2 TiB at most)");
    std::memcpy(&mbr[0x1b8], "DVH1", 4);  // disk signature
    uint8_t *entry = &mbr[0x1be];
    entry[0] = 0x00;  // not bootable
    put_chs(entry + 1, first);
    entry[4] = 0x83;  // Linux
    put_chs(entry + 5, first + count - 1);
    put_le32(entry + 8, static_cast<uint32_t>(first));
    put_le32(entry + 12, static_cast<uint32_t>(count));
    mbr[0x1fe] = 0x55;
    mbr[0x1ff] = 0xaa;
    return mbr;
}

void write_all(int fd, const uint8_t *data, size_t len, uint64_t offset, const fs::path &file)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, data, len, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            throw std::runtime_error("writing " + file.string() + ": " + std::strerror(n < 0 ? errno : EIO));
        data += n;
        len -= static_cast<size_t>(n);
        offset += static_cast<uint64_t>(n);
    }
}

void create_image(const fs::path &file, uint64_t size, const std::vector<uint8_t> &fill, bool mbr)
{
    UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) {
        int e = errno;
        if (e == EEXIST)
            throw std::runtime_error(file.string() + " already exists; not overwriting it (remove it or pick --path)");
        throw std::runtime_error("cannot create " + file.string() + ": " + std::strerror(e));
    }
    try {
        if (ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
            throw std::runtime_error("sizing " + file.string() + ": " + std::strerror(errno));
        if (!fill.empty()) {
            // In 64 KiB pieces, each starting at its phase of the pattern so
            // that the pattern runs on unbroken across pieces.
            std::vector<uint8_t> piece(64 * 1024);
            for (uint64_t off = 0; off < size;) {
                size_t len = static_cast<size_t>(std::min<uint64_t>(piece.size(), size - off));
                size_t phase = static_cast<size_t>(off % fill.size());
                for (size_t i = 0; i < len; i++)
                    piece[i] = fill[(phase + i) % fill.size()];
                write_all(fd.get(), piece.data(), len, off, file);
                off += len;
            }
        }
        if (mbr) {
            auto sector0 = make_mbr(size);
            write_all(fd.get(), sector0.data(), sector0.size(), 0, file);
        }
        if (fsync(fd.get()) != 0)
            throw std::runtime_error("syncing " + file.string() + ": " + std::strerror(errno));
    } catch (...) {
        fd.reset();
        ::unlink(file.c_str());  // a half-made image is not left behind
        throw;
    }
}

// Runs losetup with `args`, returning its stdout (trimmed); throws with its
// stderr when it fails.
std::string run_losetup(const std::vector<std::string> &args)
{
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0)
        throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    UniqueFd read_end(out[0]), write_end(out[1]);
    pid_t pid = fork();
    if (pid < 0)
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        dup2(write_end.get(), STDOUT_FILENO);
        dup2(write_end.get(), STDERR_FILENO);
        std::vector<char *> argv;
        std::string prog = "losetup";
        argv.push_back(prog.data());
        std::vector<std::string> copy = args;
        for (auto &a : copy)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        execvp("losetup", argv.data());
        _exit(127);
    }
    write_end.reset();  // losetup's end: the read below sees its exit
    std::string text;
    char buf[256];
    for (;;) {
        ssize_t n = ::read(read_end.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        text.append(buf, static_cast<size_t>(n));
    }
    read_end.reset();
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.pop_back();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::string joined;
        for (const auto &a : args)
            joined += " " + a;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
            throw std::runtime_error("losetup is not installed (needed for --loop=true)");
        throw std::runtime_error("losetup" + joined + " failed: " + (text.empty() ? "no output" : text));
    }
    return text;
}

int run_raw_disk(Context &ctx)
{
    uint64_t size = parse_size(ctx.get("size", "1M"));
    std::string path_text = ctx.get("path");
    bool mbr = ctx.get_bool("mbr", false);
    std::vector<uint8_t> fill = parse_fill(ctx.get("fill"));
    bool keep = ctx.get_bool("keep", false);
    bool loop = ctx.get_bool("loop", false);
    ctx.reject_unknown();
    if (mbr)
        make_mbr(size);  // refuse a disk too small for the table before creating anything

    fs::path file = path_text.empty() ? fs::path(ctx.dir()) / (ctx.name + ".img") : fs::path(path_text);
    if (path_text.empty()) {
        // /run/devhost/vdev or the run's directory: created 0755 whatever the
        // umask, and checked with every directory above it.
        trusted_dir::Error dir_err;
        if (!trusted_dir::open(fs::absolute(file.parent_path()).string(), 0755, dir_err))
            throw std::runtime_error(dir_err.message);
    }
    create_image(file, size, fill, mbr);

    std::string loop_device;
    if (loop) {
        try {
            loop_device = run_losetup({"--find", "--show", "--partscan", file.string()});
        } catch (...) {
            if (!keep)
                ::unlink(file.c_str());
            throw;
        }
    }
    ctx.log("serving " + std::to_string(size) + "-byte disk " + file.string() +
            (loop_device.empty() ? "" : " on " + loop_device));
    ctx.ready(loop_device.empty() ? file.string() : loop_device);

    for (;;) {
        pollfd p{ctx.stop_fd, POLLIN, 0};
        int n = poll(&p, 1, -1);
        if (n < 0 && errno == EINTR)
            continue;
        break;
    }

    int code = 0;
    if (!loop_device.empty()) {
        try {
            run_losetup({"-d", loop_device});
        } catch (const std::exception &e) {
            ctx.log(std::string("cannot detach: ") + e.what());
            code = 1;
        }
    }
    if (!keep && ::unlink(file.c_str()) != 0) {
        ctx.log("cannot remove " + file.string() + ": " + std::strerror(errno));
        code = 1;
    }
    return code;
}

}  // namespace

DEVHOST_VDEV_KIND("raw-disk", "a disk image (optionally with an MBR, optionally on a loop device) for the raw class",
                  {{"size", "1M", "string"},
                   {"path", "FILE (default: DIR/NAME.img)", "string"},
                   {"mbr", "false", "bool"},
                   {"fill", "TEXT|hex:55aa", "string"},
                   {"loop", "false", "bool"},
                   {"keep", "false", "bool"}},
                  run_raw_disk);

}  // namespace devhost::vdev
