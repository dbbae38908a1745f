#include "devhost_test.hpp"
#include "class_match.hpp"
#include "names.hpp"

#include <catch2/catch.hpp>

using namespace devhost;

TEST_CASE("Windows device names map to Linux paths", "[names]")
{
    test::TempDir sys;
    for (const char *d : {"sda", "loop0", "nvme0n1", "ram0", "zram0", "sr0"})
        std::filesystem::create_directory(sys / d);
    // As in /sys/block: a device-mapper disk is a link into /sys/devices/virtual.
    test::TempDir devices;
    std::filesystem::create_directories(devices / "devices/virtual/block/dm-0");
    std::filesystem::create_directory_symlink(devices / "devices/virtual/block/dm-0", sys / "dm-0");
    NameTable t;
    t.sys_block = sys.path();
    std::string error;
    CHECK(resolve_device_name("\\\\.\\COM1", t, error) == "/dev/ttyS0");
    CHECK(resolve_device_name("\\\\.\\com12", t, error) == "/dev/ttyS11");
    CHECK(resolve_device_name("\\\\.\\LPT2", t, error) == "/dev/parport1");
    CHECK(resolve_device_name("\\\\.\\PhysicalDrive0", t, error) == "/dev/nvme0n1");
    CHECK(resolve_device_name("\\\\.\\PhysicalDrive1", t, error) == "/dev/sda");
    CHECK_FALSE(resolve_device_name("\\\\.\\PhysicalDrive2", t, error));  // not dm-0, sr0, zram0
    CHECK(resolve_device_name("\\MyFilterPort", t, error) == "/run/devhost/ports/MyFilterPort");
    CHECK(resolve_device_name("/dev/ttyUSB0", t, error) == "/dev/ttyUSB0");
    CHECK(resolve_device_name("loop:x", t, error) == "loop:x");

    t.physical_drives_all = true;
    CHECK(physical_drives(t) ==
          std::vector<std::string>{"dm-0", "loop0", "nvme0n1", "ram0", "sda", "sr0", "zram0"});
}

TEST_CASE("[names] entries override and extend the table", "[names]")
{
    NameTable t;
    t.sys_block = "/nonexistent";
    t.overrides = {{"COM1", "/dev/ttyUSB3"}, {"\\\\.\\A:", "/dev/fd0"}};
    std::string error;
    CHECK(resolve_device_name("\\\\.\\COM1", t, error) == "/dev/ttyUSB3");
    CHECK(resolve_device_name("\\\\.\\a:", t, error) == "/dev/fd0");
    CHECK(resolve_device_name("\\\\.\\COM2", t, error) == "/dev/ttyS1");
}

TEST_CASE("a name that maps to nothing is an error listing the table", "[names]")
{
    NameTable t;
    t.sys_block = "/nonexistent";
    t.overrides = {{"COM7", "/dev/ttyUSB0"}};
    std::string error;
    CHECK_FALSE(resolve_device_name("\\\\.\\Scanner", t, error));
    CHECK(error.rfind("'\\\\.\\Scanner' maps to nothing; known: \\\\.\\COMn -> /dev/ttyS(n-1)", 0) == 0);
    CHECK(error.find("COM7 -> /dev/ttyUSB0") != std::string::npos);
    CHECK_FALSE(resolve_device_name("\\\\.\\PhysicalDrive0", t, error));
    CHECK(error.rfind("'\\\\.\\PhysicalDrive0' maps to nothing: this machine has 0 whole disk(s)", 0) == 0);
    CHECK_FALSE(resolve_device_name("\\\\.\\COM0", t, error));
    CHECK_FALSE(resolve_device_name("\\a/b", t, error));
    CHECK(error == "'\\a/b' is not a valid port name (expected \\Name, without / or \\)");
}

// Which class serves a path is the plugins' to say (class_match.hpp): the
// names module turns a name into a path, and without a plugin no name or
// path has a class, whatever it looks like (the in-tree plugins' classes
// are in tests/e2e/class_match_e2e_test.cpp, the ABI 1.1 cases in
// abi11_host_test).
TEST_CASE("the host knows no class's paths: without plugins no name has a class", "[names]")
{
    PluginRegistry none;
    NameTable t;
    t.sys_block = "/nonexistent";
    t.overrides = {{"PhysicalDrive0", "/dev/sda"}};
    for (const char *name : {"\\\\.\\COM3", "\\\\.\\LPT1", "\\\\.\\PhysicalDrive0", "\\Port", "/dev/pts/3",
                             "/dev/serial/by-id/usb-x", "loop:a", "vport:p", "/dev/null"}) {
        INFO(name);
        std::string error;
        const auto resolved = resolve_device_name(name, t, error);
        REQUIRE(resolved);
        CHECK_FALSE(class_for_path(none, name, *resolved, error));
        CHECK_THAT(error, Catch::StartsWith("no plugin's path patterns match '" + std::string(name) + "'"));
    }
    std::string error;
    CHECK_FALSE(class_for_path(none, "/nonexistent/thing", "/nonexistent/thing", error));
    CHECK(error == "no plugin's path patterns match '/nonexistent/thing'");
}
