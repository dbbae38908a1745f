// A C++ plugin built through devhost/plugin.hpp whose members report the C
// way (reporting.cpp): their statuses, errnos and messages reach the host as
// they were written, a positive "status" and an exception still come out as
// failures, set_options/set_controls fill the descriptor, and the
// negotiation refuses another major naming the plugin. Since ABI 1.1: the
// negotiation answers an older host's minor, enumerate written as a free
// function in the C form, the hook deadline a member reads, option flags
// and path patterns in the descriptor.
#include "devhost_test.hpp"
#include "devices.hpp"
#include "direct_plugin.hpp"

#include "device.hpp"
#include "loader.hpp"

#include <catch2/catch.hpp>

#include <cerrno>
#include <devhost/plugin_util.h>
#include <dlfcn.h>

using namespace devhost;
using namespace devhost::test;

namespace {

const fs::path reporting_file = fs::path(DEVHOST_ABI_PLUGIN_DIR) / "reporting.so";

std::shared_ptr<const Plugin> reporting_plugin() { return loaded_plugin(reporting_file); }

// A transfer of `op` sending "ab" with room for 8 bytes back.
Outcome transfer(Device &dev, uint32_t op)
{
    return devhost::test::transfer(dev, {.op = op, .out = "ab", .capacity = 8, .timeout_ms = 100}).outcome;
}

}  // namespace

TEST_CASE("plugin.hpp: members in the C form are hooks, and the descriptor has the schema", "[plugin.hpp]")
{
    auto plugin = reporting_plugin();
    const devhost_hooks &hooks = plugin->hooks();
    CHECK(hooks.lock != nullptr);
    CHECK(hooks.info != nullptr);
    CHECK(hooks.transfer != nullptr);
    CHECK(hooks.connect == nullptr);
    CHECK(hooks.disconnect == nullptr);
    CHECK(hooks.unlock == nullptr);
    REQUIRE(plugin->options().size() == 2);
    CHECK(plugin->options()[0].name == "quiet");
    CHECK(plugin->options()[1].name == "exclusive");
    REQUIRE(plugin->controls().size() == 2);
    CHECK(plugin->controls()[1].name == "prod");
}

TEST_CASE("plugin.hpp: statuses reported the C way reach the host as written", "[plugin.hpp]")
{
    SECTION("devhost::check in the constructor fails open with the record's status, errno and message")
    {
        Device dev(reporting_plugin(), "r");
        Outcome o = open_device(dev, "reporting:missing");
        CHECK(o.status == DEVHOST_E_NOT_FOUND);
        CHECK(o.os_errno == ENOENT);
        CHECK(o.message == "no reporting device at reporting:missing");
        CHECK_FALSE(dev.is_open());
    }
    Device dev(reporting_plugin(), "r");
    REQUIRE(open_device(dev, "reporting:ok").ok());
    SECTION("a failure")
    {
        Outcome o = dev.lock(0);
        CHECK(o.status == DEVHOST_E_BUSY);
        CHECK(o.os_errno == EBUSY);
        CHECK(o.message == "reporting:ok is held");
        o = transfer(dev, DEVHOST_OP_READ);
        CHECK(o.status == DEVHOST_E_TIMEOUT);
        CHECK(o.os_errno == ETIMEDOUT);
        CHECK(o.message == "nothing to read from reporting:ok");
    }
    SECTION("success")
    {
        CHECK(transfer(dev, DEVHOST_OP_WRITE).ok());
        InfoList info;
        REQUIRE(dev.info(info).ok());
        REQUIRE(info.size() == 4);  // then deadline and deadline-or-1h (ABI 1.1 cases below)
        CHECK(InfoList(info.begin(), info.begin() + 2) == InfoList{{"path", "reporting:ok"}, {"sink", "c"}});
        CHECK(info[2].first == "deadline");
    }
    SECTION("a positive value, which is no status, is a failure")
    {
        CHECK(transfer(dev, DEVHOST_OP_REQUEST).status == DEVHOST_E_IO);
    }
    SECTION("what a C-style member throws is still caught")
    {
        Outcome o = transfer(dev, DEVHOST_OP_CONTROL);
        CHECK(o.status == DEVHOST_E_IO);
        CHECK(o.message == "thrown from a C-style member");
    }
    CHECK(dev.close().ok());
}

TEST_CASE("plugin.hpp: a close reported the C way", "[plugin.hpp]")
{
    Device dev(reporting_plugin(), "r");
    REQUIRE(open_device(dev, "reporting:close-fails").ok());
    Outcome o = dev.close();
    CHECK(o.status == DEVHOST_E_IO);
    CHECK(o.os_errno == EIO);
    CHECK(o.message == "could not restore reporting:close-fails");
    CHECK_FALSE(dev.is_open());
}

TEST_CASE("plugin.hpp: the negotiation refuses another major, naming the plugin", "[plugin.hpp]")
{
    void *library = dlopen(reporting_file.c_str(), RTLD_NOW | RTLD_LOCAL);
    REQUIRE(library);
    auto negotiate = reinterpret_cast<devhost_negotiate_fn>(dlsym(library, DEVHOST_ENTRY_POINT_NAME));
    REQUIRE(negotiate);
    devhost_error err{};
    err.struct_size = sizeof err;
    devhost_negotiation n{};
    n.struct_size = sizeof n;
    n.host_abi_version = DEVHOST_MAKE_VERSION(2, 0);
    n.host_min_abi_version = DEVHOST_MAKE_VERSION(2, 0);
    n.error = &err;
    CHECK(negotiate(&n) == DEVHOST_E_UNSUPPORTED);
    CHECK(std::string(err.message) == "reporting speaks ABI 1.x, the host offers 2.0");
    CHECK(n.descriptor == nullptr);
    dlclose(library);
}

namespace {

// Negotiates reporting.so as a host offering `host_version` would.
devhost_negotiation negotiate_as(uint32_t host_version, devhost_error &err)
{
    void *library = dlopen(reporting_file.c_str(), RTLD_NOW | RTLD_LOCAL);
    REQUIRE(library);
    auto negotiate = reinterpret_cast<devhost_negotiate_fn>(dlsym(library, DEVHOST_ENTRY_POINT_NAME));
    REQUIRE(negotiate);
    err = devhost_error{};
    err.struct_size = sizeof err;
    devhost_negotiation n{};
    n.struct_size = sizeof n;
    n.host_abi_version = host_version;
    n.host_min_abi_version = DEVHOST_MAKE_VERSION(1, 0);
    n.error = &err;
    REQUIRE(negotiate(&n) == DEVHOST_OK);
    dlclose(library);
    return n;
}

std::string info_of(DirectDevice &dev, const std::string &key)
{
    InfoList info;
    REQUIRE(dev.info(info).ok());
    for (const auto &[k, v] : info)
        if (k == key)
            return v;
    return "(none)";
}

}  // namespace

TEST_CASE("plugin.hpp 1.1: the negotiation answers the older of the host's minor and the header's", "[plugin.hpp]")
{
    devhost_error err;
    CHECK(negotiate_as(DEVHOST_MAKE_VERSION(1, 0), err).plugin_abi_version == DEVHOST_MAKE_VERSION(1, 0));
    CHECK(negotiate_as(DEVHOST_MAKE_VERSION(1, 1), err).plugin_abi_version == DEVHOST_MAKE_VERSION(1, 1));
    CHECK(negotiate_as(DEVHOST_MAKE_VERSION(1, 9), err).plugin_abi_version == DEVHOST_ABI_VERSION);
}

TEST_CASE("plugin.hpp 1.1: option flags and path patterns reach the descriptor", "[plugin.hpp]")
{
    DirectPlugin plugin(reporting_file);
    CHECK(plugin.path_patterns() == std::vector<std::string>{"reporting:*", "/dev/reporting[0-9]*"});
    REQUIRE(plugin.option("exclusive"));
    CHECK(plugin.option("exclusive")->flags == DEVHOST_OPTION_EXCLUSIVE);
    CHECK(plugin.option("exclusive")->reserved == 0);
    REQUIRE(plugin.option("quiet"));
    CHECK(plugin.option("quiet")->flags == 0);
    CHECK(plugin.descriptor().struct_size == sizeof(devhost_plugin_descriptor));
    CHECK(plugin.hooks().struct_size == sizeof(devhost_hooks));
    CHECK(plugin.hooks().unload == nullptr);
}

TEST_CASE("plugin.hpp 1.1: enumerate as a free function the class names, reporting the C way", "[plugin.hpp]")
{
    DirectPlugin plugin(reporting_file);
    REQUIRE(plugin.hooks().enumerate != nullptr);
    std::vector<DirectPlugin::Found> found;
    REQUIRE(plugin.enumerate(0, found).ok());
    REQUIRE(found.size() == 1);
    CHECK(found[0].path == "reporting:a");
    CHECK(found[0].by_id == "/dev/disk/by-id/reporting-a");
    CHECK(found[0].description == "a reporting device");
    CHECK(found[0].usb_vendor == "1d6b");
    CHECK(found[0].usb_product == "0002");
    CHECK(found[0].usb_serial == "S1");

    found.clear();
    REQUIRE(plugin.enumerate(DEVHOST_ENUMERATE_ALL, found).ok());
    REQUIRE(found.size() == 2);
    CHECK(found[1].path == "reporting:hidden");
    CHECK_FALSE(found[1].by_id);  // empty strings reach the host as NULL
    CHECK_FALSE(found[1].description);

    // It reads the deadline deadline_ns gives enumerate.
    DirectPlugin::set_deadline(devhost_util_now_ns() - 1);
    found.clear();
    Outcome o = plugin.enumerate(0, found);
    CHECK(o.status == DEVHOST_E_TIMEOUT);
    CHECK(o.os_errno == ETIMEDOUT);
    CHECK(o.message == "reporting: the enumerate deadline has passed");
    CHECK(found.empty());
    CHECK(DirectPlugin::deadline_asked() >= 1);
}

TEST_CASE("plugin.hpp 1.1: devhost::deadline answers the host's deadline for the device", "[plugin.hpp]")
{
    DirectPlugin plugin(reporting_file);
    DirectDevice dev(plugin, "reporting:d");
    REQUIRE(dev.opened().ok());
    const uint64_t soon = devhost_util_now_ns() + 250000000u;
    DirectPlugin::set_deadline(soon);
    CHECK(info_of(dev, "deadline") == std::to_string(soon));
    CHECK(info_of(dev, "deadline-or-1h") == std::to_string(soon));  // the earlier of the two

    DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);  // what a 1.0 host gives
    CHECK(info_of(dev, "deadline") == std::to_string(DEVHOST_DEADLINE_NONE));
    const uint64_t before = devhost_util_now_ns();
    const uint64_t hour = std::stoull(info_of(dev, "deadline-or-1h"));
    CHECK(hour >= before + 3600000000000u);
    CHECK(hour <= devhost_util_now_ns() + 3600000000000u);
    CHECK(dev.close().ok());
}
