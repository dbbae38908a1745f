// The raw plugin hands the host the descriptor that holds its claim
// (share_fd: "file" for an image file's flock, "block" for a block device
// opened O_EXCL) once open, exclusive, and takes the host's copy back
// before its own close (devhost/plugin_util.h, section 6). Through
// tests/support's DirectPlugin, whose share_fd answers what the test
// chooses and keeps copies as a supervisor would:
//   - the descriptor shared is the image's (or the loop device's) open file
//     that holds the lock: a flock through the copy is the plugin's own;
//   - with the plugin's descriptor gone (its process died), the copy alone
//     keeps the claim (another raw device is busy, an O_EXCL open of the
//     loop device fails EBUSY) until the host lets go;
//   - exclusive = false and a character device share nothing;
//   - E_UNSUPPORTED (the in-process host) is silent, E_IO costs one
//     warning; open succeeds and the device works either way.
#include "devhost_test.hpp"
#include "direct_plugin.hpp"
#include "raw_fixtures.hpp"

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

using namespace devhost;
using namespace devhost::test;
using namespace raw_test;

namespace {

DirectPlugin &plugin()
{
    static DirectPlugin p(plugin_dir() / "raw.so");
    return p;
}

void require_open(const DirectDevice &dev)
{
    INFO(dev.opened().message);
    REQUIRE(dev.opened().ok());
}

// Reads `len` bytes at `offset` through the device.
std::vector<uint8_t> read_through(DirectDevice &dev, uint64_t offset, size_t len)
{
    std::vector<uint8_t> buf(len);
    devhost_transfer x{};
    x.op = DEVHOST_OP_READ_EXACT;
    x.flags = DEVHOST_TRANSFER_HAS_OFFSET;
    x.offset = offset;
    x.timeout_ms = 2000;
    x.in = buf.data();
    x.in_capacity = len;
    Outcome o = dev.transfer(x);
    INFO(o.message);
    CHECK(o.ok());
    buf.resize(x.in_len);
    return buf;
}

// Whether a new open of `path` may take an exclusive flock now: "ok", or
// the errno's name.
std::string flock_from_new_open(const std::string &path)
{
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return std::string("open: ") + strerror(errno);
    int rc = flock(fd, LOCK_EX | LOCK_NB);
    int e = errno;
    ::close(fd);
    return rc == 0 ? "ok" : e == EWOULDBLOCK ? "EWOULDBLOCK" : strerror(e);
}

// Whether an O_EXCL open of the block device `path` works now: "ok", or the
// errno's name.
std::string open_excl(const std::string &path)
{
    int fd = ::open(path.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC);
    if (fd < 0)
        return errno == EBUSY ? "EBUSY" : strerror(errno);
    ::close(fd);
    return "ok";
}

// The one share_fd call made, which must hand over an open descriptor on
// `path` under `role`.
void check_one_share(const DirectDevice &dev, const std::string &path, const std::string &role)
{
    auto calls = DirectPlugin::share_calls();
    REQUIRE(calls.size() == 1);
    CHECK(calls[0].device == dev.token());
    CHECK(calls[0].role == role);
    CHECK(calls[0].answer == DEVHOST_OK);
    REQUIRE(calls[0].described);
    struct stat st;
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK(calls[0].dev == st.st_dev);
    CHECK(calls[0].ino == st.st_ino);
    CHECK((calls[0].mode & S_IFMT) == (st.st_mode & S_IFMT));
    CHECK(calls[0].rdev == st.st_rdev);
}

// After close: the copy was dropped (fd -1, same role) and nothing is held.
void check_dropped(const DirectDevice &dev, const std::string &role)
{
    auto calls = DirectPlugin::share_calls();
    REQUIRE(calls.size() == 2);
    CHECK(calls[1].device == dev.token());
    CHECK(calls[1].fd == -1);
    CHECK(calls[1].role == role);
    CHECK(DirectPlugin::held(dev.token(), role) == -1);
}

}  // namespace

TEST_CASE("raw share_fd: an exclusive image file shares the descriptor that holds its flock")
{
    TempDir dir;
    const std::string image = (dir / "disk.img").string();
    make_image(image, 64 * 1024);
    DirectPlugin::set_share_answer(DEVHOST_OK);
    DirectPlugin::clear_log();
    SECTION("allow-write: the exclusive lock, on a read-write descriptor")
    {
        DirectDevice dev(plugin(), image, {{"allow-write", "true"}});
        require_open(dev);
        check_one_share(dev, image, "file");
        CHECK((DirectPlugin::share_calls()[0].status_flags & O_ACCMODE) == O_RDWR);
        const int copy = DirectPlugin::held(dev.token(), "file");
        REQUIRE(copy >= 0);
        // The plugin's own lock, through the copy; refused to others.
        CHECK(flock(copy, LOCK_EX | LOCK_NB) == 0);
        CHECK(flock_from_new_open(image) == "EWOULDBLOCK");
        CHECK(read_through(dev, 100, 16) == pattern(100, 16));
        CHECK(dev.close().ok());
        check_dropped(dev, "file");
        CHECK(flock_from_new_open(image) == "ok");
    }
    SECTION("read-only: the shared lock, on a read-only descriptor")
    {
        DirectDevice dev(plugin(), image);
        require_open(dev);
        check_one_share(dev, image, "file");
        CHECK((DirectPlugin::share_calls()[0].status_flags & O_ACCMODE) == O_RDONLY);
        const int copy = DirectPlugin::held(dev.token(), "file");
        REQUIRE(copy >= 0);
        CHECK(flock(copy, LOCK_SH | LOCK_NB) == 0);
        CHECK(flock_from_new_open(image) == "EWOULDBLOCK");
        CHECK(dev.close().ok());
        check_dropped(dev, "file");
    }
    CHECK(DirectPlugin::warnings().empty());
}

TEST_CASE("raw share_fd: once the plugin's descriptor is gone, the host's copy alone keeps the image locked")
{
    TempDir dir;
    const std::string image = (dir / "disk.img").string();
    make_image(image, 64 * 1024);
    DirectPlugin::set_share_answer(DEVHOST_OK);
    DirectDevice dev(plugin(), image, {{"allow-write", "true"}});
    require_open(dev);
    const int copy = DirectPlugin::held(dev.token(), "file");
    REQUIRE(copy >= 0);

    CHECK(lose_other_descriptors(copy) == 1);
    CHECK(flock_from_new_open(image) == "EWOULDBLOCK");
    {
        DirectDevice second(plugin(), image, {{"allow-write", "true"}});
        CHECK(second.opened().status == DEVHOST_E_BUSY);
        CHECK(second.opened().message ==
              "raw: " + image + ": image file is locked by another client (set exclusive = false to share it)");
    }
    DirectPlugin::drop_held(dev.token());  // the host lets go
    {
        DirectDevice second(plugin(), image, {{"allow-write", "true"}});
        require_open(second);
    }
    dev.close();  // on what is left of it: its descriptor now is /dev/null
}

TEST_CASE("raw share_fd: an exclusive block device shares the descriptor that holds O_EXCL")
{
    if (geteuid() != 0)
        DEVHOST_SKIP("needs root for a loop device (losetup)");
    TempDir dir;
    const fs::path image = dir / "disk.img";
    make_image(image, 1024 * 1024);
    LoopDevice loop(image);
    if (!loop.available())
        DEVHOST_SKIP("no loop device: " + loop.reason());
    DirectPlugin::set_share_answer(DEVHOST_OK);
    DirectPlugin::clear_log();
    DirectDevice dev(plugin(), loop.path());
    require_open(dev);
    check_one_share(dev, loop.path(), "block");
    CHECK(S_ISBLK(DirectPlugin::share_calls()[0].mode));
    const int copy = DirectPlugin::held(dev.token(), "block");
    REQUIRE(copy >= 0);
    CHECK(open_excl(loop.path()) == "EBUSY");
    CHECK(read_through(dev, 4096, 32) == pattern(4096, 32));

    SECTION("closed: the copy is dropped first, and O_EXCL goes with the plugin's own close")
    {
        CHECK(dev.close().ok());
        check_dropped(dev, "block");
        CHECK(open_excl(loop.path()) == "ok");
    }
    SECTION("the plugin's descriptor gone: the copy alone holds O_EXCL until the host lets go")
    {
        CHECK(lose_other_descriptors(copy) == 1);
        CHECK(open_excl(loop.path()) == "EBUSY");
        DirectPlugin::drop_held(dev.token());
        CHECK(open_excl(loop.path()) == "ok");
        dev.close();
    }
    CHECK(DirectPlugin::warnings().empty());
}

TEST_CASE("raw share_fd: a descriptor that holds no claim is not shared")
{
    TempDir dir;
    const std::string image = (dir / "disk.img").string();
    make_image(image, 64 * 1024);
    DirectPlugin::set_share_answer(DEVHOST_OK);
    SECTION("an image file with exclusive = false (no flock)")
    {
        DirectDevice dev(plugin(), image, {{"exclusive", "false"}});
        require_open(dev);
        CHECK(DirectPlugin::share_calls().empty());
        CHECK(dev.close().ok());
    }
    SECTION("a character device (nothing to claim)")
    {
        DirectDevice dev(plugin(), "/dev/zero");
        require_open(dev);
        CHECK(DirectPlugin::share_calls().empty());
        CHECK(dev.close().ok());
    }
    CHECK(DirectPlugin::share_calls().empty());
}

TEST_CASE("raw share_fd: a host that keeps no descriptors is normal, one that fails costs one warning")
{
    TempDir dir;
    const std::string image = (dir / "disk.img").string();
    make_image(image, 64 * 1024);
    DirectPlugin::clear_log();
    SECTION("E_UNSUPPORTED (the in-process host): open works, nothing logged, nothing dropped")
    {
        DirectPlugin::set_share_answer(DEVHOST_E_UNSUPPORTED);
        DirectDevice dev(plugin(), image);
        require_open(dev);
        CHECK(read_through(dev, 0, 8) == pattern(0, 8));
        CHECK(dev.close().ok());
        auto calls = DirectPlugin::share_calls();
        REQUIRE(calls.size() == 1);
        CHECK(calls[0].role == "file");
        CHECK(calls[0].answer == DEVHOST_E_UNSUPPORTED);
        CHECK(DirectPlugin::warnings().empty());
    }
    SECTION("E_IO: open works, one warning naming the file and the status, nothing dropped")
    {
        DirectPlugin::set_share_answer(DEVHOST_E_IO);
        DirectDevice dev(plugin(), image);
        require_open(dev);
        CHECK(DirectPlugin::warnings() ==
              std::vector<std::string>{"raw: " + image +
                                       ": share_fd (role file): DEVHOST_E_IO: the device works, but the host does "
                                       "not hold it should this process die"});
        CHECK(read_through(dev, 0, 8) == pattern(0, 8));
        CHECK(dev.close().ok());
        CHECK(DirectPlugin::share_calls().size() == 1);
        CHECK(DirectPlugin::warnings().size() == 1);
    }
    DirectPlugin::set_share_answer(DEVHOST_E_UNSUPPORTED);
}
