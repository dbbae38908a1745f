// A C++ plugin built through devhost/plugin.hpp whose members throw: each
// exception becomes a status, an errno and a message at the ABI boundary,
// hooks the class lacks are NULL, and the host process carries on.
#include "devhost_test.hpp"
#include "devices.hpp"
#include "direct_plugin.hpp"

#include "device.hpp"
#include "loader.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>

using namespace devhost;
using namespace devhost::test;

namespace {

std::shared_ptr<const Plugin> throwing_plugin()
{
    return loaded_plugin(fs::path(DEVHOST_ABI_PLUGIN_DIR) / "throwing.so");
}

}  // namespace

TEST_CASE("plugin.hpp: members the class lacks are NULL hooks", "[plugin.hpp]")
{
    const devhost_hooks &hooks = throwing_plugin()->hooks();
    CHECK(hooks.open != nullptr);
    CHECK(hooks.close != nullptr);
    CHECK(hooks.connect != nullptr);
    CHECK(hooks.lock != nullptr);
    CHECK(hooks.info != nullptr);
    CHECK(hooks.transfer != nullptr);
    CHECK(hooks.disconnect == nullptr);
    CHECK(hooks.unlock == nullptr);
    CHECK(throwing_plugin()->abi_version() == DEVHOST_ABI_VERSION);
}

TEST_CASE("plugin.hpp: a constructor that throws fails open", "[plugin.hpp]")
{
    SECTION("devhost::error keeps its status, errno and message")
    {
        Device dev(throwing_plugin(), "t");
        Outcome o = open_device(dev, "throwing:missing");
        CHECK(o.status == DEVHOST_E_NOT_FOUND);
        CHECK(o.os_errno == ENOENT);
        CHECK(o.message == "no throwing device at throwing:missing");
        CHECK_FALSE(dev.is_open());
    }
    SECTION("std::bad_alloc is DEVHOST_E_NO_MEMORY")
    {
        Device dev(throwing_plugin(), "t");
        Outcome o = open_device(dev, "throwing:no-memory");
        CHECK(o.status == DEVHOST_E_NO_MEMORY);
        CHECK(o.message == "out of memory");
        CHECK_FALSE(dev.is_open());
    }
}

TEST_CASE("plugin.hpp: each exception from a hook becomes a status", "[plugin.hpp]")
{
    Device dev(throwing_plugin(), "t");
    REQUIRE(open_device(dev, "throwing:ok").ok());

    SECTION("devhost::error from lock")
    {
        Outcome o = dev.lock(100);
        CHECK(o.status == DEVHOST_E_BUSY);
        CHECK(o.os_errno == EBUSY);
        CHECK(o.message == "throwing:ok is held by the test");
        CHECK_FALSE(dev.is_locked());
    }
    SECTION("an int from info is an unknown exception")
    {
        InfoList info;
        Outcome o = dev.info(info);
        CHECK(o.status == DEVHOST_E_IO);
        CHECK(o.message == "unknown exception");
        CHECK(info.empty());
    }
    SECTION("std::runtime_error from transfer, after part of the write")
    {
        const std::string data = "abc";
        TransferResult r = transfer(dev, {.op = DEVHOST_OP_WRITE, .out = data, .timeout_ms = 100});
        CHECK(r.outcome.status == DEVHOST_E_IO);
        CHECK(r.outcome.message == "boom");
        CHECK(r.outcome.os_errno == 0);
        CHECK(r.out_done == 1);
    }
    SECTION("devhost::error with DEVHOST_OK is still a failure")
    {
        Outcome o = transfer(dev, {.op = DEVHOST_OP_READ, .capacity = 8, .timeout_ms = 0}).outcome;
        CHECK(o.status == DEVHOST_E_IO);
        CHECK(o.message == "a failure reported with DEVHOST_OK");
    }
    SECTION("std::system_error from connect keeps its errno")
    {
        ConnectRequest request;
        request.args = {{"throw", "system"}};
        Outcome o = dev.connect(request);
        CHECK(o.status == DEVHOST_E_IO);
        CHECK(o.os_errno == ECONNREFUSED);
        CHECK_THAT(o.message, Catch::Contains("connect to throwing:ok"));
        CHECK_FALSE(dev.is_connected());
    }
    SECTION("std::bad_alloc from connect")
    {
        ConnectRequest request;
        request.args = {{"throw", "bad-alloc"}};
        Outcome o = dev.connect(request);
        CHECK(o.status == DEVHOST_E_NO_MEMORY);
        CHECK(o.message == "out of memory");
    }
    SECTION("a member that returns succeeds")
    {
        CHECK(dev.connect(ConnectRequest{}).ok());
        CHECK(dev.is_connected());
    }
    SECTION("an op the descriptor does not declare is refused by the host")
    {
        CHECK(transfer(dev, {.op = DEVHOST_OP_REQUEST, .timeout_ms = 0}).outcome.status == DEVHOST_E_UNSUPPORTED);
    }
    // The process survived every throw, and the device still closes.
    CHECK(dev.close().ok());
    CHECK(dev.was_closed());
}

TEST_CASE("plugin.hpp: a close() that throws reports it and still frees the device", "[plugin.hpp]")
{
    Device dev(throwing_plugin(), "t");
    REQUIRE(open_device(dev, "throwing:close-fails").ok());
    Outcome o = dev.close();
    CHECK(o.status == DEVHOST_E_IO);
    CHECK(o.message == "could not restore throwing:close-fails");
    CHECK(dev.was_closed());
    CHECK_FALSE(dev.is_open());
    // Another device of the plugin opens and closes normally afterwards.
    Device next(throwing_plugin(), "t2");
    REQUIRE(open_device(next, "throwing:ok").ok());
    CHECK(next.close().ok());
}

TEST_CASE("plugin.hpp 1.1: what enumerate throws becomes a status, after what it found", "[plugin.hpp]")
{
    DirectPlugin plugin(fs::path(DEVHOST_ABI_PLUGIN_DIR) / "throwing.so");
    REQUIRE(plugin.hooks().enumerate != nullptr);
    std::vector<DirectPlugin::Found> found;
    REQUIRE(plugin.enumerate(0, found).ok());
    REQUIRE(found.size() == 1);
    CHECK(found[0].path == "throwing:one");
    CHECK(found[0].description == "the first");
    CHECK_FALSE(found[0].by_id);

    found.clear();
    Outcome o = plugin.enumerate(DEVHOST_ENUMERATE_ALL, found);
    CHECK(o.status == DEVHOST_E_IO);
    CHECK(o.message == "enumerate failed after one device");
    CHECK(found.size() == 1);
}

TEST_CASE("plugin.hpp 1.1: what unload throws is logged and goes no further", "[plugin.hpp]")
{
    {
        DirectPlugin plugin(fs::path(DEVHOST_ABI_PLUGIN_DIR) / "throwing.so");
        REQUIRE(plugin.hooks().unload != nullptr);
        plugin.hooks().unload();  // returns: the exception stays inside
    }
    auto lines = DirectPlugin::log_lines();
    CHECK(std::count(lines.begin(), lines.end(),
                     std::to_string(DEVHOST_LOG_ERROR) + " unload failed: unload threw") == 2);
}
