// A C++ plugin built through devhost/plugin.hpp whose members report the C
// way (reporting.cpp): their statuses, errnos and messages reach the host as
// they were written, a positive "status" and an exception still come out as
// failures, set_options/set_controls fill the descriptor, and the
// negotiation refuses another major naming the plugin.
#include "devhost_test.hpp"
#include "devices.hpp"

#include "device.hpp"
#include "loader.hpp"

#include <catch2/catch.hpp>

#include <cerrno>
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
    REQUIRE(plugin->options().size() == 1);
    CHECK(plugin->options()[0].name == "quiet");
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
        CHECK(info == InfoList{{"path", "reporting:ok"}, {"sink", "c"}});
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
