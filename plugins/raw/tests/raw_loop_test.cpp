// The raw plugin on real loop block devices, through the host's Device API.
// Every loop device is detached by LoopDevice's destructor, also when a
// check fails; a test without losetup reports skipped with the reason.
#include "raw_fixtures.hpp"

#include "names.hpp"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace raw_test;

namespace {

constexpr uint64_t disk_size = 1024 * 1024;

std::string sysfs_queue(const std::string &loop_path, const std::string &attr)
{
    std::string name = fs::path(loop_path).filename().string();
    std::ifstream in("/sys/block/" + name + "/queue/" + attr);
    std::string value;
    in >> value;
    return value;
}

}  // namespace

TEST_CASE("raw loop: reads and writes at offsets, and their bounds", "[raw][loop][io]")
{
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, disk_size);
    LoopDevice loop(image);
    if (!loop.available())
        RAW_SKIP(loop.reason());
    auto o = open_raw(loop.path(), {{"allow-write", "true"}});
    REQUIRE(o.outcome.ok());
    auto &dev = *o.device;

    auto r = read_at(dev, 12345, 1000);
    REQUIRE(r.outcome.ok());
    CHECK(r.data == pattern(12345, 1000));

    std::vector<uint8_t> data(777, 0xa5);
    auto w = write_at(dev, 70001, data);
    REQUIRE(w.outcome.ok());
    CHECK(w.done == 777);
    CHECK(read_at(dev, 70001, 777).data == data);
    REQUIRE(control(dev, "flush").outcome.ok());
    CHECK(read_bytes(image, 70001, 777) == data);  // reached the backing file

    auto past = read_at(dev, disk_size - 512, 1024);
    CHECK(past.outcome.status == DEVHOST_E_INVALID);
    CHECK(past.outcome.message == "raw: " + loop.path() + ": 1024 bytes at offset 1048064 run past the end of the "
                                                          "device (size 1048576 bytes)");
    auto wpast = write_at(dev, disk_size, {1});
    CHECK(wpast.outcome.status == DEVHOST_E_INVALID);
    CHECK(wpast.outcome.message.find("offset 1048576 is at or past the end of the device (size 1048576 bytes)") !=
          std::string::npos);
    auto some = read_at(dev, disk_size - 100, 4096, false);
    CHECK(some.outcome.ok());
    CHECK(some.data == pattern(disk_size - 100, 100));
}

TEST_CASE("raw loop: a write without allow-write is ACCESS before any I/O", "[raw][loop][write]")
{
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, disk_size);
    LoopDevice loop(image);
    if (!loop.available())
        RAW_SKIP(loop.reason());
    auto o = open_raw(loop.path());
    REQUIRE(o.outcome.ok());
    auto w = write_at(*o.device, 0, {0, 0, 0, 0});
    CHECK(w.outcome.status == DEVHOST_E_ACCESS);
    CHECK(w.outcome.message.find("set allow-write = true") != std::string::npos);
    CHECK(w.done == 0);
    o.device->close();
    CHECK(read_bytes(image, 0, 4) == pattern(0, 4));
}

TEST_CASE("raw loop: a read-only loop device refuses allow-write and reports read-only", "[raw][loop][write]")
{
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, disk_size);
    LoopDevice loop(image, true);
    if (!loop.available())
        RAW_SKIP(loop.reason());
    auto w = open_raw(loop.path(), {{"allow-write", "true"}});
    CHECK(w.outcome.status == DEVHOST_E_ACCESS);
    CHECK(w.outcome.message.find(loop.path() + ": device is read-only") != std::string::npos);
    auto o = open_raw(loop.path());
    REQUIRE(o.outcome.ok());
    CHECK(text(control(*o.device, "get-read-only").data) == "1");
}

TEST_CASE("raw loop: direct I/O needs sector alignment and uses an aligned buffer", "[raw][loop][direct]")
{
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, disk_size);
    LoopDevice loop(image);
    if (!loop.available())
        RAW_SKIP(loop.reason());
    auto o = open_raw(loop.path(), {{"allow-write", "true"}, {"direct", "true"}});
    REQUIRE(o.outcome.ok());
    auto &dev = *o.device;
    auto lss = text(control(dev, "get-logical-sector-size").data);
    REQUIRE(lss == "512");

    auto r = read_at(dev, 4096, 8192);  // the host's buffer is not aligned
    REQUIRE(r.outcome.ok());
    CHECK(r.data == pattern(4096, 8192));

    auto off = read_at(dev, 4097, 512);
    CHECK(off.outcome.status == DEVHOST_E_INVALID);
    CHECK(off.outcome.message == "raw: " + loop.path() + ": direct I/O needs offset and length aligned to 512 bytes "
                                                         "(the logical sector size); got offset 4097, length 512");
    auto len = read_at(dev, 4096, 100);
    CHECK(len.outcome.status == DEVHOST_E_INVALID);
    CHECK(len.outcome.message.find("aligned to 512 bytes") != std::string::npos);
    auto wlen = write_at(dev, 0, std::vector<uint8_t>(513, 1));
    CHECK(wlen.outcome.status == DEVHOST_E_INVALID);
    CHECK(wlen.done == 0);

    std::vector<uint8_t> data(1024, 0x3c);
    REQUIRE(write_at(dev, 2048, data).outcome.ok());
    CHECK(read_at(dev, 2048, 1024).data == data);
    o.device->close();
    CHECK(read_bytes(image, 2048, 1024) == data);  // O_DIRECT: no flush needed
}

// (No ';' in test names: CTest would cut the name there and run nothing.)
TEST_CASE("raw loop: O_EXCL makes a second open BUSY, exclusive = false shares it for reading", "[raw][loop][busy]")
{
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, disk_size);
    LoopDevice loop(image);
    if (!loop.available())
        RAW_SKIP(loop.reason());
    auto first = open_raw(loop.path());
    REQUIRE(first.outcome.ok());
    auto second = open_raw(loop.path());
    CHECK(second.outcome.status == DEVHOST_E_BUSY);
    CHECK(second.outcome.os_errno == EBUSY);
    CHECK(second.outcome.message == "raw: " + loop.path() + ": busy: held exclusively by another program, or by "
                                                            "the kernel (device mapper, RAID, swap); exclusive = "
                                                            "false shares it for reading");
    auto shared = open_raw(loop.path(), {{"exclusive", "false"}});
    CHECK(shared.outcome.ok());
    // For a write, sharing is not offered as the way out.
    auto writer = open_raw(loop.path(), {{"allow-write", "true"}});
    CHECK(writer.outcome.status == DEVHOST_E_BUSY);
    CHECK(writer.outcome.message == "raw: " + loop.path() + ": busy: held exclusively by another program, or by "
                                                            "the kernel (device mapper, RAID, swap)");
    first.device->close();
    auto again = open_raw(loop.path());
    CHECK(again.outcome.ok());
}

TEST_CASE("raw loop: a mounted device is BUSY, and info says where it is mounted", "[raw][loop][busy][mount]")
{
    TempDir dir;
    auto image = dir / "fs.img";
    make_image(image, 4 * disk_size);
    fs::path mke2fs = find_tool("mke2fs");
    if (mke2fs.empty())
        RAW_SKIP("mke2fs (e2fsprogs) is not installed, so no filesystem can be made to mount");
    auto mk = devhost::test::run_process({mke2fs.string(), "-q", "-F", "-t", "ext2", image.string()});
    REQUIRE(mk.exit_code == 0);
    LoopDevice loop(image);
    if (!loop.available())
        RAW_SKIP(loop.reason());
    Mount mount(loop.path(), dir / "mnt", "ext2");
    if (!mount.mounted())
        RAW_SKIP(mount.reason());

    auto o = open_raw(loop.path());
    CHECK(o.outcome.status == DEVHOST_E_BUSY);
    CHECK(o.outcome.message == "raw: " + loop.path() + ": busy: mounted (" + loop.path() + " on " +
                                   (dir / "mnt").string() +
                                   "): exclusive = true wants it to itself; exclusive = false reads it while mounted");

    auto shared = open_raw(loop.path(), {{"exclusive", "false"}});
    REQUIRE(shared.outcome.ok());
    devhost::InfoList info;
    REQUIRE(shared.device->info(info).ok());
    CHECK(info_value(info, "mounted") == "true");
    CHECK(info_value(info, "mount-points") == (dir / "mnt").string());
    // The ext2 superblock magic 0xEF53 at byte 1080.
    auto magic = read_at(*shared.device, 1080, 2);
    REQUIRE(magic.outcome.ok());
    CHECK(magic.data == std::vector<uint8_t>{0x53, 0xef});
}

TEST_CASE("raw loop: every control code", "[raw][loop][control]")
{
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, disk_size);
    LoopDevice loop(image);
    if (!loop.available())
        RAW_SKIP(loop.reason());
    auto o = open_raw(loop.path());
    REQUIRE(o.outcome.ok());
    auto &dev = *o.device;
    CHECK(text(control(dev, "get-length").data) == "1048576");
    CHECK(text(control(dev, "get-logical-sector-size").data) == "512");
    CHECK(text(control(dev, "get-physical-sector-size").data) == "512");
    CHECK(text(control(dev, "get-read-only").data) == "0");
    auto rot = control(dev, "get-rotational");
    REQUIRE(rot.outcome.ok());
    CHECK(text(rot.data) == sysfs_queue(loop.path(), "rotational"));
    auto discard = control(dev, "get-discard");
    REQUIRE(discard.outcome.ok());
    CHECK(text(discard.data) == sysfs_queue(loop.path(), "discard_max_bytes"));
    // By number, as a config's `control 1` would.
    CHECK(text(control_code(dev, 1).data) == "1048576");

    auto flush = control(dev, "flush");
    CHECK(flush.outcome.status == DEVHOST_E_ACCESS);
    CHECK(flush.outcome.message.find("control flush changes the device") != std::string::npos);
    CHECK(control_code(dev, 0).outcome.status == DEVHOST_E_UNSUPPORTED);
    CHECK(control_code(dev, 8).outcome.status == DEVHOST_E_UNSUPPORTED);
    o.device->close();

    auto w = open_raw(loop.path(), {{"allow-write", "true"}});
    REQUIRE(w.outcome.ok());
    auto flushed = control(*w.device, "flush");
    CHECK(flushed.outcome.ok());
    CHECK(flushed.data.empty());
}

TEST_CASE("raw loop: controls by number are the controls by name, flush by number needs allow-write",
          "[raw][loop][control]")
{
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, disk_size);
    LoopDevice loop(image);
    if (!loop.available())
        RAW_SKIP(loop.reason());
    auto o = open_raw(loop.path());
    REQUIRE(o.outcome.ok());
    auto &dev = *o.device;
    for (const auto &c : raw_plugin()->controls()) {
        if (c.name == "flush")
            continue;
        INFO(c.name << " = " << c.code);
        auto by_name = control(dev, c.name);
        auto by_number = control_code(dev, c.code);
        REQUIRE(by_name.outcome.ok());
        CHECK(by_number.outcome.ok());
        CHECK(text(by_number.data) == text(by_name.data));
    }
    auto flush = control_code(dev, 7);
    CHECK(flush.outcome.status == DEVHOST_E_ACCESS);
    CHECK(flush.outcome.message ==
          "raw: " + loop.path() + ": control flush changes the device and is refused without allow-write = true");
    auto unknown = control_code(dev, 4242);
    CHECK(unknown.outcome.status == DEVHOST_E_UNSUPPORTED);
    CHECK(unknown.outcome.message.find("unknown control code 4242") != std::string::npos);
    o.device->close();
    auto w = open_raw(loop.path(), {{"allow-write", "true"}});
    REQUIRE(w.outcome.ok());
    CHECK(control_code(*w.device, 7).outcome.ok());
}

TEST_CASE("raw loop: PhysicalDriveN counts the real /sys/block without loop, ram and zram",
          "[raw][loop][names]")
{
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, disk_size);
    LoopDevice loop(image);
    if (!loop.available())
        RAW_SKIP(loop.reason());
    std::string name = fs::path(loop.path()).filename().string();
    REQUIRE(fs::exists("/sys/block/" + name));
    devhost::NameTable table;  // the real /sys/block
    auto drives = devhost::physical_drives(table);
    for (const auto &d : drives) {
        INFO(d);
        CHECK(d.rfind("loop", 0) != 0);
        CHECK(d.rfind("ram", 0) != 0);
        CHECK(d.rfind("zram", 0) != 0);
    }
    // Every other /sys/block entry is counted, in name order.
    std::vector<std::string> expected;
    for (const auto &entry : fs::directory_iterator("/sys/block")) {
        std::string n = entry.path().filename().string();
        if (n.rfind("loop", 0) && n.rfind("ram", 0) && n.rfind("zram", 0))
            expected.push_back(n);
    }
    std::sort(expected.begin(), expected.end());
    CHECK(drives == expected);
    std::string error;
    for (size_t i = 0; i < drives.size(); i++)
        CHECK(devhost::resolve_device_name("\\\\.\\PhysicalDrive" + std::to_string(i), table, error) ==
              "/dev/" + drives[i]);
    auto past = devhost::resolve_device_name("\\\\.\\PhysicalDrive" + std::to_string(drives.size()), table, error);
    CHECK_FALSE(past);
    CHECK(error.find("this machine has " + std::to_string(drives.size()) + " whole disk(s)") != std::string::npos);
    // Asked for, the loop device is counted too.
    table.physical_drives_all = true;
    auto all = devhost::physical_drives(table);
    CHECK(std::find(all.begin(), all.end(), name) != all.end());
}

TEST_CASE("raw loop: info reports size, sectors, backing file, partitions", "[raw][loop][info]")
{
    TempDir dir;
    auto image = dir / "mbr.img";
    // An MBR image with one partition (first LBA 8, 2040 sectors).
    make_image(image, disk_size);
    write_mbr(image, 8, 2040);
    LoopDevice loop(image, false, true);
    if (!loop.available())
        RAW_SKIP(loop.reason());
    std::string name = fs::path(loop.path()).filename().string();
    // A kernel without the MBR parser finds no partition in the table; then
    // the same partition is added through BLKPG (addpart), which needs no
    // parser, so the partition list is still checked on a real one.
    bool added = false;
    if (!fs::exists("/sys/block/" + name + "/" + name + "p1")) {
        fs::path addpart = find_tool("addpart");
        if (addpart.empty())
            RAW_SKIP("the kernel found no partition on " + loop.path() +
                     " (no MBR parser) and addpart (util-linux) is not installed");
        auto r = devhost::test::run_process({addpart.string(), loop.path(), "1", "8", "2040"});
        INFO(r.err);
        REQUIRE(r.exit_code == 0);
        added = true;
    }
    auto o = open_raw(loop.path());
    REQUIRE(o.outcome.ok());
    devhost::InfoList info;
    REQUIRE(o.device->info(info).ok());
    struct stat st;
    REQUIRE(stat(loop.path().c_str(), &st) == 0);
    CHECK(info_value(info, "type") == "block");
    CHECK(info_value(info, "major-minor") ==
          std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev)));
    CHECK(info_value(info, "size") == "1048576");
    CHECK(info_value(info, "logical-sector-size") == "512");
    CHECK(info_value(info, "physical-sector-size") == "512");
    CHECK(info_value(info, "read-only") == "0");
    CHECK(info_value(info, "backing-file") == image.string());
    CHECK(info_value(info, "rotational") == sysfs_queue(loop.path(), "rotational"));
    CHECK(info_value(info, "mounted") == "false");
    INFO((added ? "partition added with addpart" : "partition found by the kernel"));
    CHECK(info_value(info, "partition-count") == "1");
    CHECK(info_value(info, "partitions") == name + "p1");
    // A loop device has no model, serial or WWN: absent, not made up.
    CHECK_FALSE(has_info(info, "model"));
    CHECK_FALSE(has_info(info, "serial"));
    CHECK_FALSE(has_info(info, "wwn"));
}

TEST_CASE("raw loop: backing file truncated and capacity re-read fails reads with REMOVED", "[raw][loop][removal]")
{
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, disk_size);
    LoopDevice loop(image);
    if (!loop.available())
        RAW_SKIP(loop.reason());
    auto o = open_raw(loop.path());
    REQUIRE(o.outcome.ok());
    REQUIRE(read_at(*o.device, 900000, 512).outcome.ok());
    fs::resize_file(image, 64 * 1024);
    REQUIRE(loop.losetup({"--set-capacity", loop.path()}) == 0);
    auto r = read_at(*o.device, 900000, 512);
    CHECK(r.outcome.status == DEVHOST_E_REMOVED);
    CHECK(r.outcome.message == "raw: " + loop.path() + ": device shrank from 1048576 to 65536 bytes since open "
                                                       "(detached, resized or backing file truncated)");
    CHECK(r.done == 0);
    devhost::InfoList info;
    CHECK(o.device->info(info).status == DEVHOST_E_REMOVED);
    CHECK(o.device->close().ok());
}

TEST_CASE("raw loop: reads racing a shrinking device end in REMOVED with what was read intact",
          "[raw][loop][removal]")
{
    // Linux cannot take a loop device away while it is open (a detach is
    // deferred to the last close), so the device shrinks under the reads
    // instead: the backing file truncated and the capacity re-read while
    // another thread reads. Wherever the shrink lands (between reads or
    // inside one) the read that fails must be REMOVED with a message naming
    // the device and both sizes, never a crash or a hang.
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, 8 * disk_size);
    LoopDevice loop(image);
    if (!loop.available())
        RAW_SKIP(loop.reason());
    auto o = open_raw(loop.path());
    REQUIRE(o.outcome.ok());
    std::atomic<bool> started{false}, stop{false}, shrunk{false};
    Result last;
    int good = 0;
    std::thread reader([&] {
        while (!stop) {
            bool after_shrink = shrunk;
            auto r = read_at(*o.device, 0, 8 * disk_size);
            started = true;
            if (!r.outcome.ok() || after_shrink) {
                // A read begun after the shrink that succeeds is a failure
                // too (its status OK fails the check below).
                last = r;
                return;
            }
            good++;
        }
    });
    while (!started)
        usleep(1000);
    fs::resize_file(image, 64 * 1024);
    int set = loop.losetup({"--set-capacity", loop.path()});
    if (set != 0)
        stop = true;
    shrunk = true;
    reader.join();
    REQUIRE(set == 0);
    INFO(last.outcome.message << " after " << good << " good reads");
    CHECK(last.outcome.status == DEVHOST_E_REMOVED);
    CHECK(last.outcome.message.find("raw: " + loop.path() + ": ") == 0);
    CHECK(last.outcome.message.find("shrank from 8388608 to 65536 bytes") != std::string::npos);
    CHECK(last.done < 8 * disk_size);
    CHECK(o.device->close().ok());
}

TEST_CASE("raw loop: a loop device detached mid-use keeps serving until closed, then is gone",
          "[raw][loop][removal]")
{
    TempDir dir;
    auto image = dir / "disk.img";
    make_image(image, disk_size);
    LoopDevice loop(image);
    if (!loop.available())
        RAW_SKIP(loop.reason());
    auto o = open_raw(loop.path());
    REQUIRE(o.outcome.ok());
    REQUIRE(loop.detach() == 0);
    // Linux defers the detach while a descriptor is open (autoclear): reads
    // either still succeed or fail as removed/I/O, never crash.
    auto r = read_at(*o.device, 0, 512);
    CHECK((r.outcome.status == DEVHOST_OK || r.outcome.status == DEVHOST_E_REMOVED ||
           r.outcome.status == DEVHOST_E_IO));
    if (r.outcome.ok())
        CHECK(r.data == pattern(0, 512));
    CHECK(o.device->close().ok());
    // Detached with the last close: no loop device uses the image any more.
    // The kernel may finish the deferred detach just after close returns;
    // the loop only bounds the wait (no timing is asserted).
    devhost::test::ProcessResult left;
    for (int i = 0; i < 100; i++) {
        left = devhost::test::run_process({find_tool("losetup").string(), "-j", image.string()});
        if (left.exit_code != 0 || left.out.empty())
            break;
        usleep(100000);
    }
    CHECK(left.exit_code == 0);
    CHECK(left.out == "");
}

TEST_CASE("raw: info on a whole disk reports its sysfs serial and model", "[raw][info][disk]")
{
    // The first whole disk that is not a loop, ram or zram device and says
    // who it is; opened read-only and shared, so a mounted system disk is
    // fine.
    std::string disk;
    for (const auto &entry : fs::directory_iterator("/sys/block")) {
        std::string name = entry.path().filename().string();
        if (name.rfind("loop", 0) == 0 || name.rfind("ram", 0) == 0 || name.rfind("zram", 0) == 0)
            continue;
        if (fs::exists(entry.path() / "serial") || fs::exists(entry.path() / "device" / "model")) {
            disk = name;
            break;
        }
    }
    if (disk.empty() || !fs::exists("/dev/" + disk))
        RAW_SKIP("no whole disk with a sysfs serial or model on this machine");
    auto o = open_raw("/dev/" + disk, {{"exclusive", "false"}});
    if (o.outcome.status == DEVHOST_E_ACCESS)
        RAW_SKIP("this machine does not let the tests open /dev/" + disk + ": " + o.outcome.message);
    INFO(o.outcome.message);
    REQUIRE(o.outcome.ok());
    devhost::InfoList info;
    REQUIRE(o.device->info(info).ok());
    auto sysfs = [&](const std::string &rel) {
        std::ifstream in("/sys/block/" + disk + "/" + rel);
        std::string line;
        std::getline(in, line);
        while (!line.empty() && (line.back() == ' ' || line.back() == '\n'))
            line.pop_back();
        return line;
    };
    if (fs::exists("/sys/block/" + disk + "/serial") && !sysfs("serial").empty())
        CHECK(info_value(info, "serial") == sysfs("serial"));
    if (fs::exists("/sys/block/" + disk + "/device/model") && !sysfs("device/model").empty())
        CHECK(info_value(info, "model") == sysfs("device/model"));
    CHECK(info_value(info, "type") == "block");
    CHECK(info_value(info, "size") == std::to_string(std::stoull(sysfs("size")) * 512));
    CHECK((info_value(info, "mounted") == "true" || info_value(info, "mounted") == "false"));
}
