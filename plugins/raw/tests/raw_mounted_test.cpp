// Raw writes never reach a mounted filesystem by accident: with
// allow-write, a block device that is mounted, whose partition is mounted,
// or on which a mounted loop device is built, and an image file that backs a
// mounted loop device, are BUSY naming where they are mounted, whatever
// `exclusive` says, unless allow-mounted-write = true. Read-only opens are
// not refused by this check.
//
// Real kernel objects: loop devices (losetup), ext4 filesystems
// (mkfs.ext4), mounts on temp directories whose names hold a space (so the
// \040 escape of /proc/self/mountinfo is decoded in the message). Loop
// devices are detached and mounts undone by RAII guards on every path; a
// machine that cannot attach or mount reports the test skipped with why.
#include "raw_fixtures.hpp"

#include <catch2/catch.hpp>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

using namespace raw_test;
using devhost::test::mkfs_ext4;
using devhost::test::mkfs_ext4_unavailable;

namespace {

// The message for a write refused because of `where` ("/dev/loop0 on
// /mnt"), as the plugin words it.
std::string refused(const std::string &path, const std::string &where)
{
    return "raw: " + path + ": busy: mounted (" + where +
           "): a raw write would corrupt the mounted filesystem; unmount it first";
}

// Writes back what is at `offset`: proves a write went through without
// changing the mounted filesystem.
void write_same_bytes(devhost::Device &dev, uint64_t offset)
{
    auto before = read_at(dev, offset, 512);
    REQUIRE(before.outcome.ok());
    auto w = write_at(dev, offset, before.data);
    INFO(w.outcome.message);
    CHECK(w.outcome.ok());
    CHECK(w.done == 512);
}

}  // namespace

TEST_CASE("raw mounted: allow-write on a mounted device is BUSY naming the mount point, exclusive or not",
          "[raw][loop][mount]")
{
    TempDir dir;
    auto image = dir / "fs.img";
    make_image(image, fs_size);
    auto point = dir / "mount point";  // mountinfo shows it as mount\040point
    MountedExt4 mounted(image, point);
    if (!mounted.available())
        RAW_SKIP(mounted.reason());
    const LoopDevice &loop = mounted.loop();
    const std::string where = mounted.where();

    SECTION("exclusive = true: O_EXCL fails, and the message names the mount point")
    {
        auto o = open_raw(loop.path(), {{"allow-write", "true"}});
        CHECK(o.outcome.status == DEVHOST_E_BUSY);
        CHECK(o.outcome.message == refused(loop.path(), where));
        CHECK(o.outcome.message.find("exclusive = false") == std::string::npos);
    }
    SECTION("exclusive = false does not open the way")
    {
        auto o = open_raw(loop.path(), {{"allow-write", "true"}, {"exclusive", "false"}});
        CHECK(o.outcome.status == DEVHOST_E_BUSY);
        CHECK(o.outcome.message == refused(loop.path(), where));
    }
    SECTION("named through a symlink, the device is still found by its number")
    {
        auto link = dir / "by-id-disk";
        fs::create_symlink(loop.path(), link);
        auto o = open_raw(link.string(), {{"allow-write", "true"}, {"exclusive", "false"}});
        CHECK(o.outcome.status == DEVHOST_E_BUSY);
        CHECK(o.outcome.message == refused(link.string(), where));
    }
    SECTION("allow-mounted-write = true lets the write through")
    {
        auto o = open_raw(loop.path(),
                          {{"allow-write", "true"}, {"exclusive", "false"}, {"allow-mounted-write", "true"}});
        INFO(o.outcome.message);
        REQUIRE(o.outcome.ok());
        write_same_bytes(*o.device, 0);
        devhost::InfoList info;
        REQUIRE(o.device->info(info).ok());
        CHECK(info_value(info, "allow-mounted-write") == "true");
    }
    SECTION("allow-mounted-write cannot make an exclusive open of a mounted device work")
    {
        auto o = open_raw(loop.path(), {{"allow-write", "true"}, {"allow-mounted-write", "true"}});
        CHECK(o.outcome.status == DEVHOST_E_BUSY);
        CHECK(o.outcome.message == "raw: " + loop.path() + ": busy: mounted (" + where +
                                       "): exclusive = true cannot open a mounted device; allow-mounted-write "
                                       "needs exclusive = false");
    }
    SECTION("a read-only open is not refused (exclusive = false); info names the mount point decoded")
    {
        auto o = open_raw(loop.path(), {{"exclusive", "false"}});
        REQUIRE(o.outcome.ok());
        auto magic = read_at(*o.device, 1080, 2);  // the ext4 superblock magic 0xEF53
        REQUIRE(magic.outcome.ok());
        CHECK(magic.data == std::vector<uint8_t>{0x53, 0xef});
        devhost::InfoList info;
        REQUIRE(o.device->info(info).ok());
        CHECK(info_value(info, "mounted") == "true");
        CHECK(info_value(info, "mount-points") == point.string());
        CHECK(info_value(info, "allow-mounted-write") == "false");
    }
    SECTION("a read-only exclusive open is BUSY, naming the mount point and the way to read it")
    {
        auto o = open_raw(loop.path());
        CHECK(o.outcome.status == DEVHOST_E_BUSY);
        CHECK(o.outcome.message == "raw: " + loop.path() + ": busy: mounted (" + where +
                                       "): exclusive = true wants it to itself; exclusive = false reads it while "
                                       "mounted");
    }
}

TEST_CASE("raw mounted: the whole disk of a mounted partition refuses writes naming the partition",
          "[raw][loop][mount][partition]")
{
    if (!mkfs_ext4_unavailable().empty())
        RAW_SKIP(mkfs_ext4_unavailable());
    TempDir dir;
    auto image = dir / "disk.img";
    make_partitioned_image(image);
    LoopDevice loop(image, false, true);  // losetup --partscan
    if (!loop.available())
        RAW_SKIP(loop.reason());
    auto why = ensure_partition(loop);
    if (!why.empty())
        RAW_SKIP(why);
    const std::string part = loop.path() + "p1";
    REQUIRE(mkfs_ext4(part) == "");  // its error otherwise
    auto point = dir / "part mnt";
    Mount mount(part, point, "ext4");
    if (!mount.mounted())
        RAW_SKIP(mount.reason());
    const std::string where = part + " on " + point.string();

    auto shared = open_raw(loop.path(), {{"allow-write", "true"}, {"exclusive", "false"}});
    CHECK(shared.outcome.status == DEVHOST_E_BUSY);
    CHECK(shared.outcome.message == refused(loop.path(), where));
    // Whether the kernel lets O_EXCL claim a whole disk while a partition
    // is mounted differs between versions; the answer is the same either way.
    auto exclusive = open_raw(loop.path(), {{"allow-write", "true"}});
    CHECK(exclusive.outcome.status == DEVHOST_E_BUSY);
    CHECK(exclusive.outcome.message == refused(loop.path(), where));

    auto reading = open_raw(loop.path(), {{"exclusive", "false"}});
    REQUIRE(reading.outcome.ok());
    auto mbr = read_at(*reading.device, 510, 2);
    CHECK(mbr.data == std::vector<uint8_t>{0x55, 0xaa});
    devhost::InfoList info;
    REQUIRE(reading.device->info(info).ok());
    CHECK(info_value(info, "mounted") == "true");
    CHECK(info_value(info, "mount-points") == point.string());

    auto allowed = open_raw(loop.path(),
                            {{"allow-write", "true"}, {"exclusive", "false"}, {"allow-mounted-write", "true"}});
    INFO(allowed.outcome.message);
    REQUIRE(allowed.outcome.ok());
    write_same_bytes(*allowed.device, 0);
}

TEST_CASE("raw mounted: an image file backing a mounted loop device refuses writes until it is unmounted",
          "[raw][loop][mount][file]")
{
    TempDir dir;
    auto image = dir / "fs.img";
    make_image(image, fs_size);
    auto point = dir / "image mnt";
    MountedExt4 mounted(image, point);
    if (!mounted.available())
        RAW_SKIP(mounted.reason());
    const LoopDevice &loop = mounted.loop();
    {
        auto o = open_raw(image.string(), {{"allow-write", "true"}});
        CHECK(o.outcome.status == DEVHOST_E_BUSY);
        CHECK(o.outcome.message == refused(image.string(), loop.path() + " on " + point.string()));
        // Through a hard link: the same inode, another name.
        auto link = dir / "other-name.img";
        fs::create_hard_link(image, link);
        auto l = open_raw(link.string(), {{"allow-write", "true"}, {"exclusive", "false"}});
        CHECK(l.outcome.status == DEVHOST_E_BUSY);
        CHECK(l.outcome.message == refused(link.string(), loop.path() + " on " + point.string()));

        auto reading = open_raw(image.string());
        CHECK(reading.outcome.ok());
        reading.device.reset();  // its shared flock would keep the next open out
        auto allowed = open_raw(image.string(), {{"allow-write", "true"}, {"allow-mounted-write", "true"}});
        INFO(allowed.outcome.message);
        REQUIRE(allowed.outcome.ok());
        write_same_bytes(*allowed.device, 0);
    }
    mounted.unmount();
    // Unmounted, with the loop device still attached: writable again, both.
    auto file = open_raw(image.string(), {{"allow-write", "true"}});
    INFO(file.outcome.message);
    CHECK(file.outcome.ok());
    file.device.reset();
    auto device = open_raw(loop.path(), {{"allow-write", "true"}});
    INFO(device.outcome.message);
    CHECK(device.outcome.ok());
}

TEST_CASE("raw mounted: a block device under a mounted loop device refuses writes naming that loop device",
          "[raw][loop][mount][stacked]")
{
    if (!mkfs_ext4_unavailable().empty())
        RAW_SKIP(mkfs_ext4_unavailable());
    TempDir dir;
    auto image = dir / "lower.img";
    make_image(image, fs_size);
    LoopDevice lower(image);
    if (!lower.available())
        RAW_SKIP(lower.reason());
    LoopDevice upper(lower.path());  // a loop device whose backing file is a block device
    if (!upper.available())
        RAW_SKIP(upper.reason());
    REQUIRE(mkfs_ext4(upper.path()) == "");  // its error otherwise
    auto point = dir / "upper mnt";
    Mount mount(upper.path(), point, "ext4");
    if (!mount.mounted())
        RAW_SKIP(mount.reason());

    auto o = open_raw(lower.path(), {{"allow-write", "true"}, {"exclusive", "false"}});
    CHECK(o.outcome.status == DEVHOST_E_BUSY);
    CHECK(o.outcome.message == refused(lower.path(), upper.path() + " on " + point.string()));
    // And the image file under both.
    auto f = open_raw(image.string(), {{"allow-write", "true"}});
    CHECK(f.outcome.status == DEVHOST_E_BUSY);
    CHECK(f.outcome.message == refused(image.string(), upper.path() + " on " + point.string()));
}

TEST_CASE("raw mounted: an unmounted loop device and its image stay writable", "[raw][loop][mount]")
{
    if (!mkfs_ext4_unavailable().empty())
        RAW_SKIP(mkfs_ext4_unavailable());
    TempDir dir;
    auto image = dir / "fs.img";
    make_image(image, fs_size);
    REQUIRE(mkfs_ext4(image.string()) == "");  // its error otherwise
    LoopDevice loop(image);
    if (!loop.available())
        RAW_SKIP(loop.reason());
    auto o = open_raw(loop.path(), {{"allow-write", "true"}});
    INFO(o.outcome.message);
    REQUIRE(o.outcome.ok());
    write_same_bytes(*o.device, 0);
    devhost::InfoList info;
    REQUIRE(o.device->info(info).ok());
    CHECK(info_value(info, "mounted") == "false");
    o.device.reset();
    auto f = open_raw(image.string(), {{"allow-write", "true"}});
    INFO(f.outcome.message);
    CHECK(f.outcome.ok());
}
