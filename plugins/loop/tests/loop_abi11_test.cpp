// The loop plugin under ABI 1.1, its hooks called directly with a services
// table whose deadline_ns answers a deadline the test chooses
// (tests/support/direct_plugin.hpp): the hooks that wait (open's
// open-delay, lock, transfer) end at the earlier of that deadline and their
// timeout_ms; the others never wait. Also what the descriptor declares for
// 1.1 (path patterns, the exclusive flag, no enumerate or unload).
#include "devhost_test.hpp"
#include "direct_plugin.hpp"

#include <catch2/catch.hpp>

#include <devhost/plugin_util.h>
#include <fnmatch.h>

#include <chrono>
#include <string>

using namespace devhost;
using namespace devhost::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// How late a hook may return after its deadline on a loaded machine; the
// alternative these tests rule out is a wait without end (or of seconds).
constexpr int64_t margin_ms = 250;

std::filesystem::path loop_so() { return plugin_dir() / "loop.so"; }

// The device's open must have succeeded.
void require_open(const DirectDevice &dev)
{
    INFO(dev.opened().message);
    REQUIRE(dev.opened().ok());
}

Outcome read_some(DirectDevice &dev, int32_t timeout_ms)
{
    uint8_t in[16];
    devhost_transfer x{};
    x.op = DEVHOST_OP_READ;
    x.timeout_ms = timeout_ms;
    x.in = in;
    x.in_capacity = sizeof in;
    return dev.transfer(x);
}

}  // namespace

TEST_CASE("loop 1.1: descriptor declares loop:* and the exclusive flag, no enumerate or unload", "[loop][abi11]")
{
    DirectPlugin plugin(loop_so());
    CHECK(plugin.abi_version() == DEVHOST_ABI_VERSION);
    const devhost_plugin_descriptor &d = plugin.descriptor();
    REQUIRE(d.path_patterns);
    CHECK(std::string(d.path_patterns[0]) == "loop:*");
    CHECK(d.path_patterns[1] == nullptr);
    CHECK(fnmatch(d.path_patterns[0], "loop:a/b", 0) == 0);  // as the host matches: a NAME with '/' too
    CHECK(d.path_types == 0);
    for (uint32_t i = 0; i < d.option_count; i++) {
        INFO(d.options[i].name);
        const bool exclusive = std::string(d.options[i].name) == "exclusive";
        CHECK(d.options[i].flags == (exclusive ? static_cast<uint32_t>(DEVHOST_OPTION_EXCLUSIVE) : 0u));
        CHECK(d.options[i].default_value != nullptr);  // so nothing is REQUIRED
    }
    CHECK(plugin.hooks().enumerate == nullptr);
    CHECK(plugin.hooks().unload == nullptr);
}

TEST_CASE("loop 1.1: lock ends at the host's deadline, or at timeout_ms when that is earlier", "[loop][abi11]")
{
    DirectPlugin plugin(loop_so());
    DirectDevice a(plugin, "loop:deadline-lock");
    DirectDevice b(plugin, "loop:deadline-lock");
    require_open(a);
    require_open(b);
    REQUIRE(a.lock(-1).ok());

    SECTION("no timeout_ms: the host's deadline (300 ms) ends it")
    {
        DirectPlugin::set_deadline_in(300ms);
        auto start = Clock::now();
        Outcome o = b.lock(-1);
        int64_t ms = elapsed_ms(start);
        CHECK(o.status == DEVHOST_E_TIMEOUT);
        CHECK_THAT(o.message, Catch::Contains("still locked by device 'direct'"));
        CHECK(ms >= 295);
        CHECK(ms <= 300 + margin_ms);
        CHECK(DirectPlugin::deadline_asked() >= 1);
        CHECK(DirectPlugin::deadline_asked_for() == b.token());  // asked for its own device
    }
    SECTION("timeout_ms 100 before a 10 s deadline: the timeout ends it")
    {
        DirectPlugin::set_deadline_in(10s);
        auto start = Clock::now();
        CHECK(b.lock(100).status == DEVHOST_E_TIMEOUT);
        int64_t ms = elapsed_ms(start);
        CHECK(ms >= 95);
        CHECK(ms <= 100 + margin_ms);
    }
    SECTION("a 200 ms deadline before timeout_ms 10 s: the deadline ends it")
    {
        DirectPlugin::set_deadline_in(200ms);
        auto start = Clock::now();
        CHECK(b.lock(10000).status == DEVHOST_E_TIMEOUT);
        int64_t ms = elapsed_ms(start);
        CHECK(ms >= 195);
        CHECK(ms <= 200 + margin_ms);
    }
    DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);
    CHECK(a.unlock().ok());
    CHECK(a.close().ok());
    CHECK(b.close().ok());
}

TEST_CASE("loop 1.1: a read of an empty buffer ends at the host's deadline", "[loop][abi11]")
{
    DirectPlugin plugin(loop_so());
    DirectDevice dev(plugin, "loop:deadline-read");
    require_open(dev);
    DirectPlugin::set_deadline_in(250ms);
    auto start = Clock::now();
    Outcome o = read_some(dev, -1);
    int64_t ms = elapsed_ms(start);
    CHECK(o.status == DEVHOST_E_TIMEOUT);
    CHECK_THAT(o.message, Catch::Contains("timed out: nothing was written"));
    CHECK(ms >= 245);
    CHECK(ms <= 250 + margin_ms);

    // The earlier of the two, when it is timeout_ms.
    DirectPlugin::set_deadline_in(10s);
    start = Clock::now();
    CHECK(read_some(dev, 100).status == DEVHOST_E_TIMEOUT);
    ms = elapsed_ms(start);
    CHECK(ms >= 95);
    CHECK(ms <= 100 + margin_ms);
    DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);
    CHECK(dev.close().ok());
}

TEST_CASE("loop 1.1: open-delay ends at the host's deadline with its own message", "[loop][abi11]")
{
    DirectPlugin plugin(loop_so());
    DirectPlugin::set_deadline_in(200ms);
    auto start = Clock::now();
    {
        DirectDevice dev(plugin, "loop:deadline-open", {{"open-delay", "5s"}});
        int64_t ms = elapsed_ms(start);
        CHECK(dev.opened().status == DEVHOST_E_TIMEOUT);
        CHECK(dev.opened().message ==
              "opening loop:deadline-open takes 5000 ms (open-delay), past the open's deadline");
        CHECK(ms >= 195);
        CHECK(ms <= 200 + margin_ms);
    }

    // A timeout_ms shorter than the delay keeps the 1.0 message.
    DirectPlugin::set_deadline_in(10s);
    {
        DirectDevice dev(plugin, "loop:deadline-open", {{"open-delay", "5s"}}, 100);
        CHECK(dev.opened().status == DEVHOST_E_TIMEOUT);
        CHECK(dev.opened().message ==
              "opening loop:deadline-open takes 5000 ms (open-delay), more than the 100 ms timeout");
    }

    // A delay that fits the deadline opens.
    DirectPlugin::set_deadline_in(5s);
    DirectDevice dev(plugin, "loop:deadline-open", {{"open-delay", "50ms"}});
    CHECK(dev.opened().status == DEVHOST_OK);
    DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);
}

TEST_CASE("loop 1.1: connect, info, disconnect, unlock and close never wait, even past their deadline",
          "[loop][abi11]")
{
    DirectPlugin plugin(loop_so());
    DirectDevice dev(plugin, "loop:deadline-quick");
    require_open(dev);
    REQUIRE(dev.lock(-1).ok());
    DirectPlugin::set_deadline(devhost_util_now_ns());  // already passed
    auto start = Clock::now();
    devhost_connect_params cp{};
    cp.struct_size = sizeof cp;
    cp.timeout_ms = -1;
    CHECK(dev.connect(cp).ok());
    InfoList info;
    CHECK(dev.info(info).ok());
    CHECK(dev.disconnect().ok());
    CHECK(dev.unlock().ok());
    CHECK(dev.close().ok());
    CHECK(elapsed_ms(start) < margin_ms);
    DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);
}

TEST_CASE("loop 1.1: an unknown control code is DEVHOST_E_UNSUPPORTED", "[loop][abi11]")
{
    DirectPlugin plugin(loop_so());
    DirectDevice dev(plugin, "loop:unknown-code");
    require_open(dev);
    uint8_t in[64];
    devhost_transfer x{};
    x.op = DEVHOST_OP_CONTROL;
    x.timeout_ms = 1000;
    x.in = in;
    x.in_capacity = sizeof in;
    x.control_code = 0x7fffffff;
    CHECK(dev.transfer(x).status == DEVHOST_E_UNSUPPORTED);
    CHECK(x.in_len == 0);
    CHECK(dev.close().ok());
}
