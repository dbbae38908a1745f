// The raw-disk virtual peer (devhost-vdev raw-disk), and the raw class end
// to end through the devhost binary with [virtual] disks.
#include "raw_fixtures.hpp"

#include <catch2/catch.hpp>
#include <algorithm>
#include <csignal>
#include <sys/stat.h>
#include <unistd.h>

using namespace raw_test;
using namespace devhost::test;

namespace {

std::string vdev_exe()
{
    return (bin_dir() / "devhost-vdev").string();
}

// The path from a READY line, or empty.
std::string ready_path(const std::string &out)
{
    auto at = out.find("READY ");
    if (at == std::string::npos)
        return {};
    auto end = out.find('\n', at);
    return out.substr(at + 6, end == std::string::npos ? std::string::npos : end - at - 6);
}

// Stops a peer with SIGTERM and returns how it ended.
ProcessResult stop(Child &child)
{
    child.signal(SIGTERM);
    return child.wait(10s);
}

ProcessResult run_config(const TempDir &dir, const std::string &ini)
{
    auto file = dir / "config.ini";
    write_file(file, ini);
    return run_devhost({"run", file.string()});
}

}  // namespace

TEST_CASE("raw-disk creates an image with an MBR and deletes it on stop", "[raw][vdev]")
{
    TempDir dir;
    auto image = dir / "d.img";
    Child peer({vdev_exe(), "raw-disk", "--name=d", "--path=" + image.string(), "--mbr=true", "--size=2M"}, dir.path());
    REQUIRE(peer.wait_for_output("READY ", 10s));
    CHECK(ready_path(peer.out()) == image.string());
    REQUIRE(fs::exists(image));
    CHECK(fs::file_size(image) == 2 * 1024 * 1024);
    auto mbr = read_bytes(image, 0, 512);
    CHECK(mbr[0x1fe] == 0x55);
    CHECK(mbr[0x1ff] == 0xaa);
    CHECK(std::string(mbr.begin() + 0x1b8, mbr.begin() + 0x1bc) == "DVH1");
    CHECK(mbr[0x1be] == 0x00);
    CHECK(mbr[0x1be + 4] == 0x83);
    // First LBA 2048 (1 MiB aligned), 2048 sectors: the rest of the disk.
    CHECK(std::vector<uint8_t>(mbr.begin() + 0x1be + 8, mbr.begin() + 0x1be + 16) ==
          std::vector<uint8_t>{0x00, 0x08, 0, 0, 0x00, 0x08, 0, 0});
    CHECK(std::all_of(mbr.begin() + 0x1ce, mbr.begin() + 0x1fe, [](uint8_t b) { return b == 0; }));
    auto r = stop(peer);
    CHECK(r.exit_code == 0);
    CHECK_FALSE(fs::exists(image));
}

TEST_CASE("raw-disk fills with a pattern and keeps the image with --keep=true", "[raw][vdev]")
{
    TempDir dir;
    auto image = dir / "f.img";
    {
        Child peer({vdev_exe(), "raw-disk", "--path=" + image.string(), "--size=64K", "--fill=hex:55aa01", "--keep=true"},
                   dir.path());
        REQUIRE(peer.wait_for_output("READY ", 10s));
        CHECK(stop(peer).exit_code == 0);
    }
    REQUIRE(fs::exists(image));
    CHECK(fs::file_size(image) == 64 * 1024);
    auto all = read_bytes(image, 0, 64 * 1024);
    bool continuous = true;
    const uint8_t fill[3] = {0x55, 0xaa, 0x01};
    for (size_t i = 0; i < all.size(); i++)
        continuous = continuous && all[i] == fill[i % 3];
    CHECK(continuous);
}

TEST_CASE("raw-disk refuses bad options and an existing file", "[raw][vdev]")
{
    TempDir dir;
    auto size = run_process({vdev_exe(), "raw-disk", "--path=" + (dir / "x.img").string(), "--size=1000"});
    CHECK(size.exit_code == 2);
    CHECK(size.err == "devhost-vdev: raw-disk: --size=1000: must be a multiple of 512 bytes\n");
    auto unit = run_process({vdev_exe(), "raw-disk", "--path=" + (dir / "x.img").string(), "--size=3T"});
    CHECK(unit.exit_code == 2);
    CHECK(unit.err == "devhost-vdev: raw-disk: --size=3T: unknown unit 'T' (use K, M or G)\n");
    auto fill = run_process({vdev_exe(), "raw-disk", "--path=" + (dir / "x.img").string(), "--fill=hex:5"});
    CHECK(fill.exit_code == 2);
    auto tiny = run_process({vdev_exe(), "raw-disk", "--path=" + (dir / "x.img").string(), "--size=1K", "--mbr=true"});
    CHECK(tiny.exit_code == 2);
    CHECK(tiny.err.find("--mbr=true needs a disk larger than 4096 bytes") != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "x.img"));
    auto unknown = run_process({vdev_exe(), "raw-disk", "--path=" + (dir / "x.img").string(), "--colour=red"});
    CHECK(unknown.exit_code == 2);

    auto existing = dir / "mine.img";
    write_file(existing, "do not touch");
    auto r = run_process({vdev_exe(), "raw-disk", "--path=" + existing.string()});
    CHECK(r.exit_code == 1);
    CHECK(r.err == "devhost-vdev: raw-disk: " + existing.string() +
                       " already exists; not overwriting it (remove it or pick --path)\n");
    CHECK(read_file(existing) == "do not touch");
}

TEST_CASE("raw-disk --loop=true serves a loop device and detaches it on stop", "[raw][vdev][loop]")
{
    if (find_tool("losetup").empty())
        RAW_SKIP("losetup is not installed");
    TempDir dir;
    auto image = dir / "l.img";
    Child peer({vdev_exe(), "raw-disk", "--path=" + image.string(), "--mbr=true", "--loop=true"}, dir.path());
    if (!peer.wait_for_output("READY ", 10s)) {
        auto r = peer.wait(10s);
        if (r.err.find("losetup") != std::string::npos)
            RAW_SKIP("raw-disk could not attach a loop device: " + peer.err());
        FAIL("raw-disk did not get ready: " << peer.err());
    }
    std::string loop = ready_path(peer.out());
    REQUIRE(loop.rfind("/dev/loop", 0) == 0);
    {
        auto o = open_raw(loop);
        REQUIRE(o.outcome.ok());
        devhost::InfoList info;
        REQUIRE(o.device->info(info).ok());
        CHECK(info_value(info, "type") == "block");
        CHECK(info_value(info, "backing-file") == image.string());
        auto sig = read_at(*o.device, 510, 2);
        CHECK(sig.data == std::vector<uint8_t>{0x55, 0xaa});
    }
    auto r = stop(peer);
    CHECK(r.exit_code == 0);
    CHECK_FALSE(fs::exists(image));
    auto left = run_process({find_tool("losetup").string(), "-j", image.string()});
    CHECK(left.out == "");
}

TEST_CASE("configs/examples/raw-disk.ini reads the partition table of a virtual disk", "[raw][e2e]")
{
    auto r = run_devhost({"run", (source_dir() / "configs/examples/raw-disk.ini").string()});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    auto l = lines(r.out);
    REQUIRE(l.size() == 7);
    CHECK(l[1].find(R"("type":"file","size":"1048576")") != std::string::npos);
    CHECK(l[2].find(R"("status":"DEVHOST_OK","code":0,"duration_ms")") != std::string::npos);
    CHECK(l[2].find(R"("hex":"31303438353736","text":"1048576")") != std::string::npos);
    CHECK(l[3].find(R"("text":"512")") != std::string::npos);
    // The partition entry: type 0x83 at 0x1C2, first LBA 8, 2040 sectors.
    CHECK(l[4].find(R"("bytes":64,"hex":"000009008320200008000000f8070000)") != std::string::npos);
    CHECK(l[5].find(R"("hex":"55aa")") != std::string::npos);
    CHECK(l[6].find(R"("step":"close","line":28,"status":"DEVHOST_OK")") != std::string::npos);
}

TEST_CASE("devhost run: a raw write without allow-write fails with ACCESS and unwinds", "[raw][e2e]")
{
    TempDir dir;
    auto r = run_config(dir, "[virtual disk]\nkind = raw-disk\npath = " + (dir / "w.img").string() +
                                 "\n\n[device d]\nclass = raw\npath = virtual:disk\nstep = open\n"
                                 "step = write \"boot\" offset=0\nstep = close\n");
    CHECK(r.exit_code == 1);
    auto l = lines(r.out);
    REQUIRE(l.size() >= 2);
    CHECK(l[1].find(R"("status":"DEVHOST_E_ACCESS")") != std::string::npos);
    CHECK(l[1].find("write refused: the device is open read-only (set allow-write = true)") != std::string::npos);
    CHECK(r.out.find(R"("step":"close")") != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "w.img"));  // the peer removed it
}

TEST_CASE("devhost run: write and read back at an offset on a virtual loop disk", "[raw][e2e][loop]")
{
    if (find_tool("losetup").empty())
        RAW_SKIP("losetup is not installed");
    TempDir dir;
    auto image = dir / "rw.img";
    auto r = run_config(dir, "[virtual disk]\nkind = raw-disk\nloop = true\nsize = 1M\npath = " + image.string() +
                                 "\n\n[device d]\nclass = raw\npath = virtual:disk\nallow-write = true\n"
                                 "direct = true\nstep = open\nstep = write \"hello, disk\" offset=4096\n"
                                 "step = write \"hello, disk\" offset=4100\n"
                                 "step = control flush\n"
                                 "step = read exactly=512 offset=4096 expect=\"hello, disk\"\n"
                                 "step = control get-length expect=\"1048576\"\n"
                                 "step = close\n");
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);  // the misaligned direct write fails the pipeline
    auto l = lines(r.out);
    REQUIRE(l.size() >= 3);
    CHECK(l[1].find(R"("status":"DEVHOST_E_INVALID")") != std::string::npos);
    CHECK(l[1].find("direct I/O needs offset and length aligned to 512 bytes") != std::string::npos);
    // A failed pipeline still stops the peer, which detaches its loop device.
    CHECK_FALSE(fs::exists(image));
    CHECK(run_process({find_tool("losetup").string(), "-j", image.string()}).out == "");

    auto ok = run_config(dir, "[virtual disk]\nkind = raw-disk\nloop = true\nsize = 1M\npath = " + image.string() +
                                  "\n\n[device d]\nclass = raw\npath = virtual:disk\nallow-write = true\n"
                                  "step = open\nstep = info\nstep = write \"hello, disk\" offset=4100\n"
                                  "step = control flush\n"
                                  "step = read exactly=11 offset=4100 expect=\"hello, disk\"\n"
                                  "step = control 1 expect=\"1048576\"\n"
                                  "step = close\n");
    INFO(ok.out << ok.err);
    CHECK(ok.exit_code == 0);
    auto k = lines(ok.out);
    REQUIRE(k.size() == 7);
    CHECK(k[1].find(R"("type":"block")") != std::string::npos);
    CHECK(k[1].find(R"("backing-file":")" + image.string() + "\"") != std::string::npos);
    CHECK(k[4].find(R"("text":"hello, disk")") != std::string::npos);
    CHECK_FALSE(fs::exists(image));
    auto left = run_process({find_tool("losetup").string(), "-j", image.string()});
    CHECK(left.out == "");
}

namespace {

// Waits (up to a deadline, only to avoid a hang) until no loop device uses
// `image`; returns what losetup -j last said.
std::string loop_users(const fs::path &image)
{
    std::string out;
    for (int i = 0; i < 100; i++) {
        out = run_process({find_tool("losetup").string(), "-j", image.string()}).out;
        if (out.empty())
            break;
        usleep(100000);
    }
    return out;
}

}  // namespace

TEST_CASE("raw-disk detaches its loop device on every way it can end", "[raw][vdev][loop]")
{
    if (find_tool("losetup").empty())
        RAW_SKIP("losetup is not installed");
    TempDir dir;
    SECTION("SIGINT")
    {
        auto image = dir / "int.img";
        Child peer({vdev_exe(), "raw-disk", "--path=" + image.string(), "--loop=true"}, dir.path());
        REQUIRE(peer.wait_for_output("READY /dev/loop", 10s));
        REQUIRE(run_process({find_tool("losetup").string(), "-j", image.string()}).out != "");
        peer.signal(SIGINT);
        auto r = peer.wait(10s);
        CHECK(r.exit_code == 0);
        CHECK(loop_users(image) == "");
        CHECK_FALSE(fs::exists(image));
    }
    SECTION("SIGHUP (the terminal closed)")
    {
        auto image = dir / "hup.img";
        Child peer({vdev_exe(), "raw-disk", "--path=" + image.string(), "--loop=true"}, dir.path());
        REQUIRE(peer.wait_for_output("READY /dev/loop", 10s));
        peer.signal(SIGHUP);
        auto r = peer.wait(10s);
        CHECK(r.exit_code == 0);
        CHECK(loop_users(image) == "");
        CHECK_FALSE(fs::exists(image));
    }
    SECTION("its parent killed (the host crashing)")
    {
        auto image = dir / "orphan.img";
        // The shell is the peer's parent; `; :` keeps it from exec'ing the peer.
        Child parent({"/bin/sh", "-c", vdev_exe() + " raw-disk --path=" + image.string() + " --loop=true; :"},
                     dir.path());
        REQUIRE(parent.wait_for_output("READY /dev/loop", 10s));
        parent.signal(SIGKILL);
        parent.wait(10s);
        CHECK(loop_users(image) == "");
        for (int i = 0; i < 100 && fs::exists(image); i++)
            usleep(100000);
        CHECK_FALSE(fs::exists(image));
    }
    SECTION("devhost run interrupted mid-pipeline")
    {
        auto image = dir / "run.img";
        write_file(dir / "config.ini", "[virtual disk]\nkind = raw-disk\nloop = true\npath = " + image.string() +
                                           "\n\n[device d]\nclass = raw\npath = virtual:disk\n"
                                           "step = open\nstep = sleep 60s\nstep = close\n");
        Child host({devhost_exe().string(), "run", (dir / "config.ini").string()}, dir.path());
        REQUIRE(host.wait_for_output("\"step\":\"open\"", 20s));
        REQUIRE(run_process({find_tool("losetup").string(), "-j", image.string()}).out != "");
        host.signal(SIGTERM);
        auto r = host.wait(20s);
        CHECK(r.exit_code == 4);
        CHECK(loop_users(image) == "");
        CHECK_FALSE(fs::exists(image));
    }
}
