// Which class serves a path, from the in-tree plugins' declarations alone
// (ABI 1.1: path_patterns matched without FNM_PATHNAME, then path_types):
// Windows names after host/names.cpp has turned them into paths, a disk
// image anywhere (raw), a socket in any directory (filterport), a vport:
// path of any depth (parallel), a kind of file no plugin takes, and a port
// of another [host] port-dir whose socket does not exist yet. `devhost
// probe` opens what it names: only temporary files, sockets and vport:
// paths are probed here, never a real port.
#include "devhost_test.hpp"
#include "devices.hpp"

#include "class_match.hpp"
#include "loader.hpp"
#include "names.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

using namespace devhost;
using namespace devhost::test;

namespace {

// Every in-tree plugin, loaded once.
const PluginRegistry &in_tree()
{
    static const PluginRegistry registry = [] {
        PluginRegistry r;
        r.load_directory(plugin_dir());
        return r;
    }();
    return registry;
}

// The class the in-tree plugins give `name`, resolved as check resolves it,
// or "error: ..." when they give none.
std::string class_of(const std::string &name, const NameTable &table = {})
{
    std::string error;
    const auto path = resolve_device_name(name, table, error);
    if (!path)
        return "error: " + error;
    const auto cls = class_for_path(in_tree(), name, *path, error);
    return cls ? *cls : "error: " + error;
}

// The "info" record of a probe's output, or "" when it has none.
std::string info_record(const std::string &out)
{
    for (const auto &line : lines(out))
        if (line.find(R"("step":"info")") != std::string::npos)
            return line;
    return "";
}

}  // namespace

TEST_CASE("the in-tree plugins' patterns give the class of every Windows name after translation", "[e2e][class]")
{
    REQUIRE(in_tree().plugins().size() >= 5);
    TempDir sys;  // a /sys/block with one disk, for \\.\PhysicalDrive0
    fs::create_directory(sys / "sda");
    NameTable table;
    table.sys_block = sys.path();
    CHECK(class_of("\\\\.\\COM3", table) == "serial");
    CHECK(class_of("\\\\.\\LPT1", table) == "parallel");
    CHECK(class_of("\\\\.\\PhysicalDrive0", table) == "raw");
    CHECK(class_of("\\Port", table) == "filterport");
    // Paths of any depth: one pattern each ('*' crosses '/').
    CHECK(class_of("/dev/pts/3") == "serial");
    CHECK(class_of("/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0") == "serial");
    CHECK(class_of("/dev/serial/by-path/pci-0000:00:14.0-usb-0:1:1.0-port0") == "serial");
    CHECK(class_of("/dev/disk/by-id/ata-X_123") == "raw");
    CHECK(class_of("/dev/mapper/vg-root") == "raw");
    CHECK(class_of("loop:a/b/c") == "loop");
    CHECK(class_of("vport:/run/devhost/vdev/a/b/c/d/e/f/g/h/i/j/printer.sock") == "parallel");
}

TEST_CASE("a link no pattern names takes the class of what it leads to", "[e2e][class]")
{
    TempDir dir;
    Pty pty;
    const fs::path link = dir / "mylink";
    fs::create_symlink(pty.path, link);
    CHECK(class_of(link.string()) == "serial");
    NameTable table;
    table.overrides.push_back({"COM7", link.string()});
    CHECK(class_of("\\\\.\\COM7", table) == "serial");
}

TEST_CASE("a disk image anywhere probes as raw without --class", "[e2e][class][probe]")
{
    TempDir dir;
    const std::string image = (dir / "x.img").string();
    write_file(image, std::string(4096, '\0'));
    CHECK(class_of(image) == "raw");
    auto r = run_devhost({"probe", image});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(lines(r.out).size() == 3);
    const std::string info = info_record(r.out);
    CHECK(info.find(R"("type":"file")") != std::string::npos);  // raw's info
    CHECK(info.find(R"("size":"4096")") != std::string::npos);
}

TEST_CASE("a socket in any directory probes as filterport without --class", "[e2e][class][probe]")
{
    TempDir dir;
    BoundSocket port(dir / "port");
    CHECK(class_of(port.path.string()) == "filterport");
    auto r = run_devhost({"probe", port.path.string()});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(lines(r.out).size() == 3);
    CHECK(info_record(r.out).find(R"("connected":"no")") != std::string::npos);  // filterport's info
}

TEST_CASE("a vport: path of any depth probes as parallel", "[e2e][class][probe]")
{
    // Twelve directories deep, past the eight the patterns used to spell
    // out: parallel's open answers (no peer serves the socket).
    const std::string path = "vport:/nonexistent/a/b/c/d/e/f/g/h/i/j/k/printer.sock";
    auto r = run_devhost({"probe", path});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("no virtual port is served at /nonexistent/a/b/c/d/e/f/g/h/i/j/k/printer.sock") !=
          std::string::npos);
}

TEST_CASE("a kind of file no plugin takes has no class: probe says so and asks for --class", "[e2e][class][probe]")
{
    TempDir dir;
    const std::string fifo = (dir / "fifo").string();
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto r = run_devhost({"probe", fifo});
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err == "devhost: error: cannot tell the class of '" + fifo + "': no plugin's path patterns match '" +
                       fifo + "' (a FIFO, which no plugin's path types take); give --class\n");
}

TEST_CASE("a port of another [host] port-dir takes its class from its socket, and without one check says what to do",
          "[e2e][class][check]")
{
    TempDir dir;
    const fs::path ports = dir / "ports";
    fs::create_directory(ports);
    const fs::path config = dir / "p.ini";
    write_file(config, "[host]\nport-dir = " + ports.string() +
                           "\n[device p]\npath = \\Scanner\nstep = open\nstep = close\n");
    auto before = run_devhost({"check", config.string()});
    CHECK(before.exit_code == 2);
    CHECK(before.err == "devhost: error: " + config.string() +
                            ":3: [device p]: missing 'class = ...' and port '\\Scanner' ('" +
                            (ports / "Scanner").string() +
                            "') has no socket yet to tell its class by: name the class with 'class = ...'\n");

    BoundSocket port(ports / "Scanner");  // the port's server has started
    auto after = run_devhost({"check", config.string()});
    INFO(after.err);
    CHECK(after.exit_code == 0);
}
