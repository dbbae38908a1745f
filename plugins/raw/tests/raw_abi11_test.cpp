// The raw plugin under ABI 1.1, its hooks called directly with a services
// table whose deadline_ns answers the test's deadline
// (tests/support/direct_plugin.hpp): enumerate lists a
// real loop device (losetup) with its path, its backing file and size, its
// partition, a /dev/disk/by-id link to it, the virtual block devices only
// when asked for all, and keeps to its deadline; a transfer on a character
// device that never has data ends at the earlier of the deadline and its
// timeout_ms; the descriptor's path patterns and exclusive flag; an unknown
// control code is DEVHOST_E_UNSUPPORTED.
#include "devhost_test.hpp"
#include "direct_plugin.hpp"
#include "raw_fixtures.hpp"

#include <catch2/catch.hpp>

#include <devhost/plugin_util.h>

#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <set>
#include <string>
#include <algorithm>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

using namespace devhost;
using namespace devhost::test;
using namespace raw_test;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int64_t margin_ms = 250;

using Found = DirectPlugin::Found;

fs::path raw_so() { return plugin_dir() / "raw.so"; }

// What enumerate lists with `flags`, in `found` (emptied first).
Outcome enumerate(const DirectPlugin &plugin, uint32_t flags, std::vector<Found> &found)
{
    found.clear();
    return plugin.enumerate(flags, found);
}

const Found *find(const std::vector<Found> &found, const std::string &path)
{
    for (const auto &f : found)
        if (f.path == path)
            return &f;
    return nullptr;
}

// A link in /dev/disk/by-id to `target`, removed (with the directories it
// made) on every exit path.
class ByIdLink {
public:
    ByIdLink(const std::string &name, const std::string &target)
    {
        for (const char *dir : {"/dev/disk", "/dev/disk/by-id"})
            if (mkdir(dir, 0755) == 0)
                made_.insert(made_.begin(), dir);
        link_ = std::string("/dev/disk/by-id/") + name;
        ok_ = symlink(("../../" + fs::path(target).filename().string()).c_str(), link_.c_str()) == 0;
    }
    ~ByIdLink()
    {
        if (ok_)
            unlink(link_.c_str());
        for (const auto &dir : made_)
            rmdir(dir.c_str());
    }
    bool ok() const { return ok_; }
    const std::string &path() const { return link_; }

private:
    std::vector<std::string> made_;
    std::string link_;
    bool ok_ = false;
};

// The /sys/block entries that are virtual block devices other than loop
// devices, with a node under /dev (zram0, ram0, dm-0 ...).
std::vector<std::string> virtual_non_loop()
{
    std::vector<std::string> paths;
    for (const auto &e : fs::directory_iterator("/sys/block")) {
        std::string name = e.path().filename().string();
        std::error_code ec;
        struct stat st {};
        if (name.rfind("loop", 0) == 0 ||
            fs::canonical(e.path(), ec).string().find("/devices/virtual/") == std::string::npos)
            continue;
        if (stat(("/dev/" + name).c_str(), &st) == 0 && S_ISBLK(st.st_mode))
            paths.push_back("/dev/" + name);
    }
    return paths;
}

}  // namespace

TEST_CASE("raw 1.1: enumerate lists a loop device with its backing file, size and partition", "[raw][abi11]")
{
    TempDir dir;
    const fs::path image = dir / "enumerated.img";
    make_partitioned_image(image);
    LoopDevice loop(image, false, true);
    if (!loop.available())
        RAW_SKIP(loop.reason());
    std::string why = ensure_partition(loop);
    if (!why.empty())
        RAW_SKIP(why);
    const std::string name = fs::path(loop.path()).filename().string();

    DirectPlugin plugin(raw_so());
    std::vector<Found> found;
    DirectPlugin::set_deadline_in(5s);
    REQUIRE(enumerate(plugin, 0, found).ok());
    CHECK(DirectPlugin::deadline_asked() >= 1);
    CHECK(DirectPlugin::deadline_asked_for() == nullptr);  // enumerate asks with no device

    const Found *disk = find(found, loop.path());
    REQUIRE(disk);
    CHECK(disk->description == "loop device, 8.0 MiB, backing file " + fs::canonical(image).string());
    const Found *part = find(found, loop.path() + "p1");
    REQUIRE(part);
    CHECK(part->description == "partition 1 of " + name + ", 7.0 MiB");

    // Every entry is a block device node, and nothing is listed twice.
    std::set<std::string> paths;
    for (const auto &f : found) {
        const std::string path = f.path.value_or("");
        struct stat st {};
        INFO(path);
        CHECK((stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode)));
        CHECK(paths.insert(path).second);
    }

    // Detached, it is gone from the list.
    REQUIRE(loop.detach() == 0);
    REQUIRE(enumerate(plugin, 0, found).ok());
    CHECK(find(found, loop.path()) == nullptr);
    DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);
}

TEST_CASE("raw 1.1: enumerate gives a /dev/disk/by-id link to the device as by_id", "[raw][abi11]")
{
    if (geteuid() != 0)
        RAW_SKIP("needs root to add a link under /dev/disk/by-id");
    TempDir dir;
    const fs::path image = dir / "by-id.img";
    make_image(image, 1024 * 1024);
    LoopDevice loop(image);
    if (!loop.available())
        RAW_SKIP(loop.reason());
    const std::string link_name = "devhost-test-" + std::to_string(getpid());
    ByIdLink wwn("wwn-0x" + std::to_string(getpid()), loop.path());  // opaque: not preferred
    ByIdLink link(link_name, loop.path());
    if (!link.ok() || !wwn.ok())
        RAW_SKIP("cannot add a link under /dev/disk/by-id: " + std::string(strerror(errno)));
    DirectPlugin plugin(raw_so());
    std::vector<Found> found;
    DirectPlugin::set_deadline_in(5s);
    REQUIRE(enumerate(plugin, 0, found).ok());
    const Found *disk = find(found, loop.path());
    REQUIRE(disk);
    CHECK(disk->by_id == link.path());
    DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);
}

TEST_CASE("raw 1.1: enumerate gives a disk on USB its device's idVendor, idProduct and serial", "[raw][abi11]")
{
    // The machine's USB disks, with the ids sysfs gives their USB device.
    struct UsbDisk {
        std::string path, vendor, product, serial;
    };
    std::vector<UsbDisk> disks;
    for (const auto &e : fs::directory_iterator("/sys/block")) {
        std::error_code ec;
        fs::path node = fs::canonical(e.path(), ec);
        if (ec || node.string().find("/usb") == std::string::npos)
            continue;
        for (; node.has_parent_path() && node != "/sys/devices"; node = node.parent_path())
            if (fs::exists(node / "idVendor")) {
                auto text = [&](const char *name) {
                    std::string t = fs::exists(node / name) ? read_file(node / name) : "";
                    return t.substr(0, t.find('\n'));
                };
                disks.push_back({"/dev/" + e.path().filename().string(), text("idVendor"), text("idProduct"),
                                 text("serial")});
                break;
            }
    }
    if (disks.empty())
        RAW_SKIP("no disk on USB here (the ids of a USB disk need one)");
    DirectPlugin plugin(raw_so());
    std::vector<Found> found;
    DirectPlugin::set_deadline_in(5s);
    REQUIRE(enumerate(plugin, DEVHOST_ENUMERATE_ALL, found).ok());
    for (const auto &d : disks) {
        INFO(d.path);
        const Found *f = find(found, d.path);
        REQUIRE(f);
        CHECK(f->usb_vendor.value_or("") == d.vendor);
        CHECK(f->usb_product.value_or("") == d.product);
        CHECK(f->usb_serial.value_or("") == d.serial);
    }
    // A disk not on USB has none.
    for (const auto &f : found)
        if (std::none_of(disks.begin(), disks.end(), [&](const UsbDisk &d) { return f.path == d.path; }) &&
            f.path.value_or("").rfind("/dev/loop", 0) == 0)
            CHECK_FALSE(f.usb_vendor.has_value());
    DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);
}

TEST_CASE("raw 1.1: enumerate lists virtual block devices only with ALL, disks always", "[raw][abi11]")
{
    DirectPlugin plugin(raw_so());
    std::vector<Found> plain, all;
    DirectPlugin::set_deadline_in(5s);
    REQUIRE(enumerate(plugin, 0, plain).ok());
    REQUIRE(enumerate(plugin, DEVHOST_ENUMERATE_ALL, all).ok());
    const auto virtuals = virtual_non_loop();
    for (const auto &path : virtuals) {
        INFO(path);
        CHECK(find(plain, path) == nullptr);
        REQUIRE(find(all, path) != nullptr);
        CHECK_THAT(find(all, path)->description.value_or(""), Catch::StartsWith("virtual block device, "));
    }
    // Real disks with a medium (vda, sda ...) are listed without ALL.
    for (const auto &e : fs::directory_iterator("/sys/block")) {
        std::error_code ec;
        const std::string name = e.path().filename().string();
        if (fs::canonical(e.path(), ec).string().find("/devices/virtual/") != std::string::npos ||
            read_file(e.path() / "size").rfind("0\n", 0) == 0 || !fs::is_block_file("/dev/" + name, ec))
            continue;
        INFO(name);
        REQUIRE(find(plain, "/dev/" + name) != nullptr);
        CHECK_THAT(find(plain, "/dev/" + name)->description.value_or(""), Catch::StartsWith("disk, "));
    }
    if (virtuals.empty())
        WARN("no virtual block device other than loop devices here: the ALL-only half was not exercised");
    DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);
}

TEST_CASE("raw 1.1: enumerate keeps to its deadline", "[raw][abi11]")
{
    DirectPlugin plugin(raw_so());
    std::vector<Found> found;
    DirectPlugin::set_deadline(devhost_util_now_ns() - 1);
    Outcome o = enumerate(plugin, DEVHOST_ENUMERATE_ALL, found);
    CHECK(o.status == DEVHOST_E_TIMEOUT);
    CHECK(o.message == "raw: enumerate: the deadline passed");
    CHECK(found.empty());
    DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);
}

TEST_CASE("raw 1.1: a read of a character device without data ends at the earlier of deadline and timeout",
          "[raw][abi11]")
{
    // A pseudo-terminal nobody writes to: raw opens its subsidiary side (a
    // character device), whose read waits.
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    REQUIRE(master >= 0);
    REQUIRE(grantpt(master) == 0);
    REQUIRE(unlockpt(master) == 0);
    const std::string pts = ptsname(master);
    DirectPlugin plugin(raw_so());
    DirectDevice dev(plugin, pts, {{"exclusive", "false"}});
    INFO(dev.opened().message);
    REQUIRE(dev.opened().ok());
    auto read_with = [&](int32_t timeout_ms) {
        uint8_t in[16];
        devhost_transfer x{};
        x.op = DEVHOST_OP_READ;
        x.timeout_ms = timeout_ms;
        x.in = in;
        x.in_capacity = sizeof in;
        return dev.transfer(x).status;
    };
    DirectPlugin::set_deadline_in(300ms);
    auto start = Clock::now();
    CHECK(read_with(-1) == DEVHOST_E_TIMEOUT);
    int64_t ms = elapsed_ms(start);
    CHECK(ms >= 295);
    CHECK(ms <= 300 + margin_ms);

    DirectPlugin::set_deadline_in(10s);
    start = Clock::now();
    CHECK(read_with(150) == DEVHOST_E_TIMEOUT);
    ms = elapsed_ms(start);
    CHECK(ms >= 145);
    CHECK(ms <= 150 + margin_ms);
    DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);
    CHECK(dev.close().ok());
    close(master);
}

TEST_CASE("raw 1.1: descriptor declares the block device paths, the exclusive and writable flags, no unload, and an unknown code is unsupported",
          "[raw][abi11]")
{
    DirectPlugin plugin(raw_so());
    CHECK(plugin.abi_version() == DEVHOST_ABI_VERSION);
    const devhost_plugin_descriptor &d = plugin.descriptor();
    REQUIRE(d.path_patterns);
    auto served = [&](const std::string &path) {
        for (const char *const *p = d.path_patterns; *p; p++)
            if (fnmatch(*p, path.c_str(), 0) == 0)  // as the host matches: without FNM_PATHNAME
                return true;
        return false;
    };
    for (const char *path : {"/dev/sda", "/dev/sdb3", "/dev/nvme0n1", "/dev/nvme0n1p2", "/dev/vda", "/dev/loop0",
                             "/dev/loop7p1", "/dev/mmcblk0", "/dev/mmcblk0p1", "/dev/xvda", "/dev/dm-0",
                             "/dev/md127", "/dev/mapper/vg-root", "/dev/zram0", "/dev/disk/by-id/ata-X_123",
                             "/dev/disk/by-uuid/0c5e-1d2f"}) {
        INFO(path);
        CHECK(served(path));
    }
    for (const char *path : {"/dev/ttyS0", "/dev/parport0", "/dev/nvme0", "/dev/loop-control", "loop:x",
                             "vport:p", "/tmp/disk.img", "/dev/zero", "/dev/serial/by-id/usb-x"}) {
        INFO(path);
        CHECK_FALSE(served(path));
    }
    // A disk image anywhere and a block device of any name: by their kind.
    CHECK(d.path_types == (DEVHOST_PATH_REGULAR | DEVHOST_PATH_BLOCK));
    for (uint32_t i = 0; i < d.option_count; i++) {
        INFO(d.options[i].name);
        const std::string name = d.options[i].name;
        const uint32_t flags = name == "exclusive"     ? static_cast<uint32_t>(DEVHOST_OPTION_EXCLUSIVE)
                               : name == "allow-write" ? static_cast<uint32_t>(DEVHOST_OPTION_WRITABLE)
                                                       : 0u;
        CHECK(d.options[i].flags == flags);
        CHECK(d.options[i].default_value != nullptr);  // nothing is REQUIRED
    }
    CHECK(plugin.hooks().enumerate != nullptr);
    CHECK(plugin.hooks().unload == nullptr);

    TempDir dir;
    make_image(dir / "a.img", 4096);
    DirectDevice dev(plugin, (dir / "a.img").string());
    REQUIRE(dev.opened().ok());
    uint8_t in[64];
    devhost_transfer x{};
    x.op = DEVHOST_OP_CONTROL;
    x.timeout_ms = 1000;
    x.in = in;
    x.in_capacity = sizeof in;
    x.control_code = 0x7fffffff;
    CHECK(dev.transfer(x).status == DEVHOST_E_UNSUPPORTED);
    CHECK(dev.close().ok());
}
