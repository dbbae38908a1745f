// Each plugin's README lists exactly what the plugin declares (the format is
// in plugins/README.md):
//   - options: from the descriptor, as the host's loader copied it: names,
//     types (with INT ranges and ENUM choices) and defaults;
//   - control codes: from the descriptor: names;
//   - info keys: the ABI declares none, so a real device of each class is
//     asked (a loop device, a pseudo-terminal, a devhost-vdev virtual
//     parallel port, a port served in this process by libdevhost-port; for
//     raw an image file, /dev/zero and a partitioned loop block device with
//     a mounted filesystem), in
//     the states that report the most keys; every key reported must be
//     listed, and every key listed must have been reported, except the ones
//     no device here can report, named below with the reason.
#include "devhost_test.hpp"
#include "devices.hpp"

#include "device.hpp"
#include "loader.hpp"
#include "plugin_readme.hpp"
#include "raw_fixtures.hpp"

#include <devhost/port.h>

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <map>
#include <set>
#include <string>
#include <vector>

using namespace devhost;
using namespace devhost::test;

namespace {

// The plugin of class `cls`, loaded once (a registry serves a class once).
std::shared_ptr<const Plugin> load(const std::string &cls)
{
    static PluginRegistry registry;
    if (auto loaded = registry.find(cls))
        return loaded;
    auto plugin = registry.load_file(plugin_dir() / (cls + ".so"));
    INFO((registry.refusals().empty() ? std::string() : registry.refusals().back().reason));
    REQUIRE(plugin);
    return plugin;
}

std::string readme_of(const std::string &cls)
{
    return read_file(source_dir() / "plugins" / cls / "README.md");
}

// Checks the README of plugin `cls` against its descriptor.
void check_options_and_controls(const std::string &cls)
{
    check_readme_declarations(*load(cls), readme_of(cls), "plugins/" + cls + "/README.md");
}

// Collects info keys from a device, as many times as called.
class KeyCollector {
public:
    void add(Device &dev)
    {
        InfoList info;
        Outcome o = dev.info(info);
        INFO(o.message);
        REQUIRE(o.ok());
        for (const auto &[key, value] : info)
            keys_.insert(key);
    }
    const std::set<std::string> &keys() const { return keys_; }

private:
    std::set<std::string> keys_;
};

void check_info_keys(const std::string &cls, const std::set<std::string> &reported,
                     const std::set<std::string> &unobservable)
{
    check_readme_info_keys(readme_of(cls), "plugins/" + cls + "/README.md", reported, unobservable);
}

std::unique_ptr<Device> open_device(const std::string &cls, const std::string &path,
                                    const std::map<std::string, std::string> &options = {})
{
    auto dev = std::make_unique<Device>(load(cls), "readme");
    OpenRequest request;
    request.path = path;
    request.options = options;
    request.timeout_ms = 5000;
    Outcome o = dev->open(request);
    INFO(path << ": " << o.message);
    REQUIRE(o.ok());
    return dev;
}

}  // namespace

TEST_CASE("readme: loop lists its options, control codes and info keys", "[readme]")
{
    check_options_and_controls("loop");
    KeyCollector keys;
    auto dev = open_device("loop", "loop:readme");
    keys.add(*dev);
    ConnectRequest connect;
    connect.context = std::vector<uint8_t>{'c', 't', 'x'};
    connect.args = {{"k", "v"}};
    REQUIRE(dev->connect(connect).ok());
    keys.add(*dev);  // connected: the context keys too
    CHECK(dev->close().ok());
    check_info_keys("loop", keys.keys(), {});
}

TEST_CASE("readme: serial lists its options, control codes and info keys", "[readme]")
{
    check_options_and_controls("serial");
    Pty pty;
    pty.close_slave();  // the device is the slave's only user
    KeyCollector keys;
    auto dev = open_device("serial", pty.path);
    keys.add(*dev);
    pty.close_master();  // hang-up: the tty's settings cannot be read any more
    keys.add(*dev);
    dev->close();
    check_info_keys("serial", keys.keys(),
                    {// A USB tty's ids, from sysfs: no USB serial adapter here.
                     "usb-vendor", "usb-product", "usb-serial", "usb-manufacturer", "usb-product-name"});
}

TEST_CASE("readme: parallel lists its options, control codes and info keys", "[readme]")
{
    check_options_and_controls("parallel");
    TempDir dir;
    ProcessOptions options;
    options.env["DEVHOST_VPORT_DIR"] = dir.path().string();
    Child peer({(bin_dir() / "devhost-vdev").string(), "parallel-port", "--name=readme",
                "--output=" + (dir / "printed").string()},
               dir.path(), options);
    bool ready = peer.wait_for_output("READY vport:readme\n", 10s);
    INFO(peer.err());
    REQUIRE(ready);
    KeyCollector keys;
    {
        // A virtual port always answers with its lines and device ID, so
        // one info reports every key.
        auto dev = open_device("parallel", "vport:" + (dir / "readme.sock").string());
        keys.add(*dev);
        CHECK(dev->close().ok());
    }
    peer.signal(SIGTERM);
    peer.wait(5s);
    check_info_keys("parallel", keys.keys(), {});
}

TEST_CASE("readme: filterport lists its options, control codes and info keys", "[readme]")
{
    check_options_and_controls("filterport");
    TempDir dir;
    const std::string socket = (dir / "readme-port").string();
    devhost_port_config config{};
    config.struct_size = sizeof config;
    config.max_connections = 1;
    config.path = socket.c_str();
    devhost_port *port = nullptr;
    devhost_error err{};
    err.struct_size = sizeof err;
    REQUIRE(devhost_port_create(&config, &port, &err) == DEVHOST_OK);
    KeyCollector keys;
    {
        auto dev = open_device("filterport", socket);
        keys.add(*dev);
        ConnectRequest connect;
        connect.timeout_ms = 5000;
        Outcome o = dev->connect(connect);
        INFO(o.message);
        CHECK(o.ok());
        keys.add(*dev);  // connected: the server's credentials too
        CHECK(dev->close().ok());
    }
    devhost_port_close(port);
    check_info_keys("filterport", keys.keys(), {});
}

TEST_CASE("readme: raw lists its options and control codes", "[readme]")
{
    check_options_and_controls("raw");
}

TEST_CASE("readme: raw lists its info keys (an image file, /dev/zero, a partitioned loop device, mounted)",
          "[readme]")
{
    if (!devhost::test::mkfs_ext4_unavailable().empty())
        DEVHOST_SKIP(devhost::test::mkfs_ext4_unavailable());
    TempDir dir;
    const auto image = dir / "disk.img";
    raw_test::make_partitioned_image(image);
    KeyCollector keys;
    for (const std::string &path : {image.string(), std::string("/dev/zero")}) {
        auto dev = open_device("raw", path);  // a file: sizes; a character device: major-minor
        keys.add(*dev);
        CHECK(dev->close().ok());
    }
    devhost::test::LoopDevice loop(image, false, true);
    if (!loop.available())
        DEVHOST_SKIP(loop.reason());
    const std::string why = raw_test::ensure_partition(loop);
    if (!why.empty())
        DEVHOST_SKIP(why);
    const std::string partition = loop.path() + "p1";
    REQUIRE(devhost::test::mkfs_ext4(partition) == "");  // its error otherwise
    devhost::test::Mount mount(partition, dir / "mnt", "ext4");
    if (!mount.mounted())
        DEVHOST_SKIP(mount.reason());
    // The whole disk (backing file, queue, partitions, mounted and where)
    // and its partition; O_EXCL cannot claim a device that is mounted.
    for (const std::string &path : {loop.path(), partition}) {
        auto dev = open_device("raw", path, {{"exclusive", "false"}});
        keys.add(*dev);
        CHECK(dev->close().ok());
    }
    check_info_keys("raw", keys.keys(),
                    {// A disk's identity, from sysfs device/ and wwid: a loop device has none.
                     "model", "vendor", "serial", "wwn"});
}
