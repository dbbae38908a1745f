// The raw plugin on regular files (disk images) and other paths, through
// the host's Device API.
#include "raw_fixtures.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace raw_test;

namespace {

constexpr uint64_t image_size = 64 * 1024;

// The descriptor this process holds on `file`, or -1.
int fd_of(const fs::path &file)
{
    for (const auto &entry : fs::directory_iterator("/proc/self/fd")) {
        std::error_code ec;
        auto target = fs::read_symlink(entry.path(), ec);
        if (!ec && target == file)
            return std::stoi(entry.path().filename().string());
    }
    return -1;
}

}  // namespace

TEST_CASE("raw declares its class, ops, options and control table", "[raw]")
{
    auto p = raw_plugin();
    CHECK(p->device_class() == "raw");
    CHECK(p->supports_op(DEVHOST_OP_WRITE));
    CHECK(p->supports_op(DEVHOST_OP_READ));
    CHECK(p->supports_op(DEVHOST_OP_READ_EXACT));
    CHECK(p->supports_op(DEVHOST_OP_CONTROL));
    CHECK_FALSE(p->supports_op(DEVHOST_OP_READ_UNTIL));
    CHECK(p->transfer_requires() == 0);
    REQUIRE(p->find_option("allow-write"));
    CHECK(p->find_option("allow-write")->default_value == "false");
    CHECK(p->find_option("exclusive")->default_value == "true");
    CHECK(p->find_option("direct")->default_value == "false");
    const std::vector<std::pair<std::string, uint32_t>> codes{
        {"get-length", 1}, {"get-logical-sector-size", 2}, {"get-physical-sector-size", 3}, {"get-read-only", 4},
        {"get-rotational", 5}, {"get-discard", 6}, {"flush", 7}};
    for (const auto &[name, code] : codes) {
        INFO(name);
        REQUIRE(p->find_control(name));
        CHECK(p->find_control(name)->code == code);
        CHECK(p->find_control(code)->name == name);
        CHECK((p->find_control(name)->flags & DEVHOST_CONTROL_MODIFIES) == (name == "flush" ? 1u : 0u));
    }
}

TEST_CASE("raw: a missing path is NOT_FOUND and nothing is created", "[raw][open]")
{
    TempDir dir;
    auto missing = dir / "no-such-disk.img";
    auto o = open_raw(missing.string(), {{"allow-write", "true"}});
    CHECK(o.outcome.status == DEVHOST_E_NOT_FOUND);
    CHECK(o.outcome.message == "raw: " + missing.string() + ": no such device or file");
    CHECK(o.outcome.os_errno == ENOENT);
    CHECK_FALSE(fs::exists(missing));
    // A dangling link (a /dev/disk/by-id name whose disk is gone): the
    // target it names is not created either.
    auto link = dir / "by-id-link";
    fs::create_symlink(dir / "gone-disk", link);
    auto l = open_raw(link.string(), {{"allow-write", "true"}});
    CHECK(l.outcome.status == DEVHOST_E_NOT_FOUND);
    CHECK_FALSE(fs::exists(fs::symlink_status(dir / "gone-disk")));
    CHECK(fs::is_symlink(link));
}

TEST_CASE("raw: a directory or a FIFO is refused as INVALID without blocking", "[raw][open]")
{
    TempDir dir;
    auto o = open_raw(dir.path().string());
    CHECK(o.outcome.status == DEVHOST_E_INVALID);
    CHECK(o.outcome.message.find("not a block device, character device or regular file") != std::string::npos);
    auto fifo = dir / "fifo";
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    auto f = open_raw(fifo.string());
    CHECK(f.outcome.status == DEVHOST_E_INVALID);
}

TEST_CASE("raw: reads at offsets on an image file, and their bounds", "[raw][io]")
{
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, image_size);
    auto o = open_raw(image.string());
    REQUIRE(o.outcome.ok());
    auto &dev = *o.device;

    auto r = read_at(dev, 1000, 300);
    REQUIRE(r.outcome.ok());
    CHECK(r.data == pattern(1000, 300));

    // The last bytes exactly; READ near the end returns what is there.
    auto tail = read_at(dev, image_size - 16, 16);
    CHECK(tail.outcome.ok());
    CHECK(tail.data == pattern(image_size - 16, 16));
    auto some = read_at(dev, image_size - 10, 100, false);
    CHECK(some.outcome.ok());
    CHECK(some.data == pattern(image_size - 10, 10));

    // READ_EXACT past the end, and any read at or past the end: INVALID,
    // naming offset and size.
    auto past = read_at(dev, image_size - 10, 100);
    CHECK(past.outcome.status == DEVHOST_E_INVALID);
    CHECK(past.outcome.message == "raw: " + image.string() + ": 100 bytes at offset 65526 run past the end of the "
                                  "device (size 65536 bytes)");
    CHECK(past.done == 0);
    auto at_end = read_at(dev, image_size, 1, false);
    CHECK(at_end.outcome.status == DEVHOST_E_INVALID);
    CHECK(at_end.outcome.message ==
          "raw: " + image.string() + ": offset 65536 is at or past the end of the device (size 65536 bytes)");
    auto huge = read_at(dev, UINT64_MAX - 1, 4);
    CHECK(huge.outcome.status == DEVHOST_E_INVALID);

    auto zero = read_at(dev, 0, 0);
    CHECK(zero.outcome.status == DEVHOST_E_INVALID);
}

TEST_CASE("raw: without an offset, transfers use a position that advances", "[raw][io]")
{
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, image_size);
    auto o = open_raw(image.string(), {{"allow-write", "true"}});
    REQUIRE(o.outcome.ok());
    auto &dev = *o.device;
    CHECK(read_at(dev, std::nullopt, 100).data == pattern(0, 100));
    CHECK(read_at(dev, std::nullopt, 50).data == pattern(100, 50));
    // An explicit offset leaves the position alone.
    CHECK(read_at(dev, 5000, 10).data == pattern(5000, 10));
    std::vector<uint8_t> data{'a', 'b', 'c'};
    REQUIRE(write_at(dev, std::nullopt, data).outcome.ok());
    CHECK(read_bytes(image, 150, 3) == data);
    CHECK(read_at(dev, std::nullopt, 4).data == pattern(153, 4));
}

TEST_CASE("raw: a write without allow-write is ACCESS and touches nothing", "[raw][io][write]")
{
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, image_size);
    auto before = devhost::test::read_file(image);
    {
        auto o = open_raw(image.string());
        REQUIRE(o.outcome.ok());
        auto w = write_at(*o.device, 0, {1, 2, 3, 4});
        CHECK(w.outcome.status == DEVHOST_E_ACCESS);
        CHECK(w.outcome.message == "raw: " + image.string() +
                                       ": write refused: the device is open read-only (set allow-write = true)");
        CHECK(w.done == 0);
        // Refused before the bounds check too: permission comes first.
        CHECK(write_at(*o.device, image_size * 2, {1}).outcome.status == DEVHOST_E_ACCESS);
    }
    CHECK(devhost::test::read_file(image) == before);
}

TEST_CASE("raw: writes at offsets with allow-write, bounded by the size", "[raw][io][write]")
{
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, image_size);
    auto o = open_raw(image.string(), {{"allow-write", "true"}});
    REQUIRE(o.outcome.ok());
    auto &dev = *o.device;
    std::vector<uint8_t> data(700, 0x5a);
    auto w = write_at(dev, 4097, data);
    REQUIRE(w.outcome.ok());
    CHECK(w.done == 700);
    CHECK(read_bytes(image, 4097, 700) == data);
    CHECK(read_bytes(image, 4096, 1) == pattern(4096, 1));
    CHECK(read_bytes(image, 4797, 1) == pattern(4797, 1));
    CHECK(read_at(dev, 4097, 700).data == data);

    // The last byte may be written; one more is past the end and the image
    // does not grow.
    CHECK(write_at(dev, image_size - 1, {0x11}).outcome.ok());
    auto past = write_at(dev, image_size - 1, {0x11, 0x22});
    CHECK(past.outcome.status == DEVHOST_E_INVALID);
    CHECK(past.outcome.message.find("2 bytes at offset 65535 run past the end of the device (size 65536 bytes)") !=
          std::string::npos);
    CHECK(fs::file_size(image) == image_size);
}

TEST_CASE("raw: a large transfer crosses chunk boundaries intact", "[raw][io]")
{
    TempDir dir;
    auto image = dir / "big.img";
    const uint64_t size = 3 * 1024 * 1024 + 512;
    make_image(image, size);
    auto o = open_raw(image.string());
    REQUIRE(o.outcome.ok());
    auto r = read_at(*o.device, 256, static_cast<size_t>(size - 256));
    REQUIRE(r.outcome.ok());
    CHECK(r.data == pattern(256, static_cast<size_t>(size - 256)));
}

TEST_CASE("raw: direct I/O on an image file needs sector alignment", "[raw][io][direct]")
{
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, image_size);
    auto o = open_raw(image.string(), {{"direct", "true"}, {"allow-write", "true"}});
    if (o.outcome.status == DEVHOST_E_INVALID && o.outcome.message.find("O_DIRECT") != std::string::npos)
        RAW_SKIP("the filesystem of " + dir.path().string() + " does not support O_DIRECT: " + o.outcome.message);
    REQUIRE(o.outcome.ok());
    auto &dev = *o.device;
    auto r = read_at(dev, 1024, 2048);
    REQUIRE(r.outcome.ok());
    CHECK(r.data == pattern(1024, 2048));
    auto bad = read_at(dev, 100, 512);
    CHECK(bad.outcome.status == DEVHOST_E_INVALID);
    CHECK(bad.outcome.message.find("direct I/O needs offset and length aligned to 512 bytes (the logical sector "
                                   "size); got offset 100, length 512") != std::string::npos);
    CHECK(read_at(dev, 512, 100).outcome.status == DEVHOST_E_INVALID);
    std::vector<uint8_t> data(512, 0xc3);
    CHECK(write_at(dev, 1536, data).outcome.ok());
    CHECK(read_bytes(image, 1536, 512) == data);
    CHECK(write_at(dev, 1537, data).outcome.status == DEVHOST_E_INVALID);
}

TEST_CASE("raw: direct I/O with a page-aligned caller buffer and with an unaligned one", "[raw][io][direct]")
{
    // An aligned buffer is read into and written from as it is; any other
    // goes through the plugin's aligned bounce buffer. Both move the same bytes.
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, image_size);
    auto o = open_raw(image.string(), {{"direct", "true"}, {"allow-write", "true"}});
    if (o.outcome.status == DEVHOST_E_INVALID && o.outcome.message.find("O_DIRECT") != std::string::npos)
        RAW_SKIP("the filesystem of " + dir.path().string() + " does not support O_DIRECT: " + o.outcome.message);
    REQUIRE(o.outcome.ok());
    auto &dev = *o.device;
    const size_t len = 16384;
    std::unique_ptr<uint8_t, decltype(&std::free)> mem(static_cast<uint8_t *>(std::aligned_alloc(4096, len + 4096)),
                                                       &std::free);
    REQUIRE(mem);
    for (size_t shift : {size_t(0), size_t(512)}) {
        INFO("buffer shifted by " << shift << " bytes from a page");
        uint8_t *buf = mem.get() + shift;
        std::memset(buf, 0, len);
        devhost_transfer x{};
        x.op = DEVHOST_OP_READ_EXACT;
        x.timeout_ms = 10000;
        x.flags = DEVHOST_TRANSFER_HAS_OFFSET;
        x.offset = 4096;
        x.in = buf;
        x.in_capacity = len;
        REQUIRE(dev.transfer(x).ok());
        CHECK(x.in_len == len);
        CHECK(std::vector<uint8_t>(buf, buf + len) == pattern(4096, len));

        std::memset(buf, shift ? 0x5a : 0xa5, len);
        devhost_transfer w{};
        w.op = DEVHOST_OP_WRITE;
        w.timeout_ms = 10000;
        w.flags = DEVHOST_TRANSFER_HAS_OFFSET;
        w.offset = 32768;
        w.out = buf;
        w.out_len = len;
        REQUIRE(dev.transfer(w).ok());
        CHECK(w.out_done == len);
        CHECK(read_bytes(image, 32768, len) == std::vector<uint8_t>(len, shift ? 0x5a : 0xa5));
    }
}

TEST_CASE("raw: control codes on an image file", "[raw][control]")
{
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, image_size);
    auto o = open_raw(image.string());
    REQUIRE(o.outcome.ok());
    auto &dev = *o.device;
    auto len = control(dev, "get-length");
    REQUIRE(len.outcome.ok());
    CHECK(text(len.data) == "65536");
    CHECK(text(control(dev, "get-logical-sector-size").data) == "512");
    struct stat st;
    REQUIRE(stat(image.c_str(), &st) == 0);
    CHECK(text(control(dev, "get-physical-sector-size").data) == std::to_string(st.st_blksize));
    auto ro = control(dev, "get-read-only");
    REQUIRE(ro.outcome.ok());
    CHECK(text(ro.data) == (access(image.c_str(), W_OK) == 0 ? "0" : "1"));

    auto rot = control(dev, "get-rotational");
    CHECK(rot.outcome.status == DEVHOST_E_UNSUPPORTED);
    CHECK(rot.outcome.message ==
          "raw: " + image.string() + ": get-rotational applies to block devices, this is a regular file");
    CHECK(control(dev, "get-discard").outcome.status == DEVHOST_E_UNSUPPORTED);

    // flush changes the device: refused without allow-write.
    auto flush = control(dev, "flush");
    CHECK(flush.outcome.status == DEVHOST_E_ACCESS);
    CHECK(flush.outcome.message ==
          "raw: " + image.string() + ": control flush changes the device and is refused without allow-write = true");

    auto unknown = control_code(dev, 99);
    CHECK(unknown.outcome.status == DEVHOST_E_UNSUPPORTED);
    CHECK(unknown.outcome.message.find("unknown control code 99") != std::string::npos);

    auto small = control(dev, "get-length", 3);
    CHECK(small.outcome.status == DEVHOST_E_INVALID);
    CHECK(small.outcome.message.find("get-length needs an output buffer of 5 bytes, got 3") != std::string::npos);
    auto input = control(dev, "get-length", 64, {1});
    CHECK(input.outcome.status == DEVHOST_E_INVALID);
    CHECK(input.outcome.message.find("control get-length takes no input (got 1 bytes)") != std::string::npos);

    auto w = open_raw(image.string(), {{"allow-write", "true"}, {"exclusive", "false"}});
    REQUIRE(w.outcome.ok());
    auto flushed = control(*w.device, "flush");
    CHECK(flushed.outcome.ok());
    CHECK(flushed.data.empty());
}

TEST_CASE("raw: an image file is held exclusively unless exclusive = false", "[raw][open][busy]")
{
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, image_size);
    auto first = open_raw(image.string(), {{"allow-write", "true"}});
    REQUIRE(first.outcome.ok());
    auto second = open_raw(image.string());
    CHECK(second.outcome.status == DEVHOST_E_BUSY);
    CHECK(second.outcome.message.find("image file is locked by another client") != std::string::npos);
    auto shared = open_raw(image.string(), {{"exclusive", "false"}});
    CHECK(shared.outcome.ok());
    first.device->close();
    auto third = open_raw(image.string());
    CHECK(third.outcome.ok());
}

TEST_CASE("raw: descriptors are close-on-exec unless inherit is asked", "[raw][open]")
{
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, image_size);
    {
        auto o = open_raw(image.string());
        REQUIRE(o.outcome.ok());
        int fd = fd_of(image);
        REQUIRE(fd >= 0);
        CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
        CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY);
    }
    CHECK(fd_of(image) == -1);  // closed with the device
    auto o = open_raw(image.string(), {{"allow-write", "true"}}, true);
    REQUIRE(o.outcome.ok());
    int fd = fd_of(image);
    REQUIRE(fd >= 0);
    CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) == 0);
    CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR);
}

TEST_CASE("raw: a child process sees the descriptor only with inherit", "[raw][open]")
{
    // What a program started while the device is open really gets: the
    // descriptors a shell finds in its /proc/self/fd.
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, image_size);
    auto child_fds_on = [&] {
        auto r = devhost::test::run_process({"/bin/sh", "-c", "for f in /proc/self/fd/*; do readlink \"$f\"; done"});
        REQUIRE_FALSE(r.out.empty());  // the shell listed its fds
        int hits = 0;
        for (const auto &l : devhost::test::lines(r.out))
            hits += l == image.string();
        return hits;
    };
    REQUIRE(child_fds_on() == 0);
    {
        auto o = open_raw(image.string());
        REQUIRE(o.outcome.ok());
        REQUIRE(fd_of(image) >= 0);
        CHECK(child_fds_on() == 0);
    }
    auto o = open_raw(image.string(), {}, true);
    REQUIRE(o.outcome.ok());
    CHECK(child_fds_on() == 1);
}

TEST_CASE("raw: a truncated image file fails reads with REMOVED", "[raw][removal]")
{
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, image_size);
    auto o = open_raw(image.string());
    REQUIRE(o.outcome.ok());
    REQUIRE(read_at(*o.device, 60000, 100).outcome.ok());
    fs::resize_file(image, 4096);
    auto r = read_at(*o.device, 60000, 100);
    CHECK(r.outcome.status == DEVHOST_E_REMOVED);
    CHECK(r.outcome.message == "raw: " + image.string() +
                                   ": device shrank from 65536 to 4096 bytes since open (detached, resized or "
                                   "backing file truncated)");
    // Also for offsets still inside the new size: the disk is not what it was.
    CHECK(read_at(*o.device, 0, 100).outcome.status == DEVHOST_E_REMOVED);
    CHECK(control(*o.device, "get-length").outcome.status == DEVHOST_E_REMOVED);
    CHECK(o.device->close().ok());
}

TEST_CASE("raw: a deleted image file is REMOVED", "[raw][removal]")
{
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, image_size);
    auto o = open_raw(image.string());
    REQUIRE(o.outcome.ok());
    fs::remove(image);
    auto r = read_at(*o.device, 0, 10);
    CHECK(r.outcome.status == DEVHOST_E_REMOVED);
    CHECK(r.outcome.message == "raw: " + image.string() + ": image file was deleted");
}

TEST_CASE("raw: info on an image file", "[raw][info]")
{
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, image_size);
    auto o = open_raw(image.string());
    REQUIRE(o.outcome.ok());
    devhost::InfoList info;
    REQUIRE(o.device->info(info).ok());
    CHECK(info_value(info, "path") == image.string());
    CHECK(info_value(info, "type") == "file");
    CHECK(info_value(info, "size") == "65536");
    CHECK(info_value(info, "logical-sector-size") == "512");
    CHECK(info_value(info, "allow-write") == "false");
    CHECK(info_value(info, "exclusive") == "true");
    CHECK(info_value(info, "direct") == "false");
    CHECK(has_info(info, "read-only"));
    CHECK_FALSE(has_info(info, "mounted"));  // only block devices are mounted
}

TEST_CASE("raw: a character device reads without offsets and has no length", "[raw][char]")
{
    auto o = open_raw("/dev/zero");
    REQUIRE(o.outcome.ok());
    auto r = read_at(*o.device, std::nullopt, 4096);
    REQUIRE(r.outcome.ok());
    CHECK(r.data == std::vector<uint8_t>(4096, 0));
    CHECK(control(*o.device, "get-length").outcome.status == DEVHOST_E_UNSUPPORTED);
    devhost::InfoList info;
    REQUIRE(o.device->info(info).ok());
    CHECK(info_value(info, "type") == "character");
    CHECK(info_value(info, "major-minor") == "1:5");
    auto direct = open_raw("/dev/zero", {{"direct", "true"}});
    CHECK(direct.outcome.status == DEVHOST_E_INVALID);
    CHECK(direct.outcome.message.find("direct = true applies to block devices and image files") != std::string::npos);
}

TEST_CASE("raw: a cancelled device refuses further I/O with CANCELLED", "[raw][cancel]")
{
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, image_size);
    auto o = open_raw(image.string());
    REQUIRE(o.outcome.ok());
    o.device->cancel();
    auto r = read_at(*o.device, 0, 10);
    CHECK(r.outcome.status == DEVHOST_E_CANCELLED);
    CHECK(r.done == 0);
}
