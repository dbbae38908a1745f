// Raw writes never reach a mounted filesystem by accident, end to end: the
// devhost binary, given a config that writes a loop device whose ext4
// filesystem is mounted (exclusive = false, which used to open it), records
// the open as DEVHOST_E_BUSY naming the mount point, runs no write and exits
// 1; the filesystem's bytes are untouched. allow-mounted-write = true is the
// explicit way through, and `devhost check` knows the option from the
// plugin's schema.
//
// Real kernel objects: a loop device (losetup) over an ext4 image
// (mkfs.ext4), mounted on a temp directory whose name holds a space. The
// mount is undone and the loop device detached by RAII guards on every path;
// where that cannot be set up the test reports skipped with why.
#include "raw_fixtures.hpp"

#include <catch2/catch.hpp>

using namespace raw_test;
using namespace devhost::test;

namespace {

// The config: one raw device on `path` writing "overwrite" at byte 0 (the
// ext4 boot block, which the filesystem does not use) and flushing it to the
// device, with `extra` option lines.
std::string config(const std::string &path, const std::string &extra)
{
    return "[device disk]\nclass = raw\npath = " + path + "\nallow-write = true\nexclusive = false\n" + extra +
           "step = open\nstep = write \"overwrite\" offset=0\nstep = control flush\nstep = close\n";
}

}  // namespace

TEST_CASE("devhost run: a raw write to a mounted loop device is BUSY naming the mount point and exits 1",
          "[reliability][raw][mount]")
{
    TempDir dir;
    auto image = dir / "fs.img";
    make_image(image, 8 * 1024 * 1024);
    auto point = dir / "mnt point";
    MountedExt4 mounted(image, point);
    if (!mounted.available())
        RAW_SKIP(mounted.reason());
    const LoopDevice &loop = mounted.loop();
    const auto boot = read_bytes(image, 0, 9);
    REQUIRE(boot != std::vector<uint8_t>({'o', 'v', 'e', 'r', 'w', 'r', 'i', 't', 'e'}));

    auto file = dir / "write.ini";
    write_file(file, config(loop.path(), ""));
    auto r = run_devhost({"run", file.string()});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    auto records = lines(r.out);
    REQUIRE(records.size() >= 1);
    CHECK(records[0].find(R"("step":"open")") != std::string::npos);
    CHECK(records[0].find(R"("status":"DEVHOST_E_BUSY")") != std::string::npos);
    CHECK(records[0].find("raw: " + loop.path() + ": busy: mounted (" + loop.path() + " on " + point.string() +
                          "): a raw write would corrupt the mounted filesystem; unmount it first") !=
          std::string::npos);
    CHECK(r.out.find("exclusive = false") == std::string::npos);
    CHECK(r.out.find(R"("step":"write")") == std::string::npos);
    CHECK(read_bytes(image, 0, 9) == boot);

    // `devhost check` validates the option by the plugin's schema.
    write_file(file, config(loop.path(), "allow-mounted-write = perhaps\n"));
    auto bad = run_devhost({"check", file.string()});
    CHECK(bad.exit_code == 2);
    CHECK(bad.err.find(":6: [device disk] allow-mounted-write: expected true or false, got 'perhaps'") !=
          std::string::npos);

    // Asked for explicitly, the write goes through.
    write_file(file, config(loop.path(), "allow-mounted-write = true\n"));
    CHECK(run_devhost({"check", file.string()}).exit_code == 0);
    auto allowed = run_devhost({"run", file.string()});
    INFO(allowed.out << allowed.err);
    CHECK(allowed.exit_code == 0);
    CHECK(read_bytes(image, 0, 9) == std::vector<uint8_t>({'o', 'v', 'e', 'r', 'w', 'r', 'i', 't', 'e'}));
}
