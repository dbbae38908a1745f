// The loop plugin under ABI 1.1, its hooks called directly with a services
// table whose deadline_ns answers a deadline the test chooses: the hooks
// that wait (open's open-delay, lock, transfer) end at the earlier of that
// deadline and their timeout_ms; the others never wait. Also what the
// descriptor declares for 1.1 (path patterns, the exclusive flag, no
// enumerate or unload).
#include "devhost_test.hpp"
#include "hook_driver.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>
#include <string>
#include <sys/eventfd.h>
#include <unistd.h>

using namespace devhost::test;
using Clock = std::chrono::steady_clock;

namespace {

// How late a hook may return after its deadline on a loaded machine; the
// alternative these tests rule out is a wait without end (or of seconds).
constexpr int64_t margin_ms = 250;

// The host's cancel handle for a device: a real eventfd, never fired here.
struct CancelFd {
    int fd = eventfd(0, EFD_CLOEXEC);
    ~CancelFd() { close(fd); }
};

struct Loop {
    HookPlugin plugin{plugin_dir() / "loop.so"};
    CancelFd cancel;

    devhost_device *open(const std::string &name, std::map<std::string, std::string> options = {},
                         const devhost_host_device *token = HookPlugin::token())
    {
        devhost_device *dev = nullptr;
        devhost_error err = fresh_error();
        HookHost::deadline_in(-1);
        devhost_status s = plugin.open("loop:" + name, &dev, err, options, -1, cancel.fd, token);
        INFO(err.message);
        REQUIRE(s == DEVHOST_OK);
        return dev;
    }
    void close(devhost_device *dev)
    {
        devhost_error err = fresh_error();
        CHECK(plugin.hooks().close(dev, &err) == DEVHOST_OK);
    }
};

devhost_status read_some(const devhost_hooks &hooks, devhost_device *dev, int32_t timeout_ms, devhost_error &err)
{
    uint8_t in[16];
    devhost_transfer x{};
    x.struct_size = sizeof x;
    x.op = DEVHOST_OP_READ;
    x.timeout_ms = timeout_ms;
    x.in = in;
    x.in_capacity = sizeof in;
    return hooks.transfer(dev, &x, &err);
}

}  // namespace

TEST_CASE("loop 1.1: descriptor declares loop:* and the exclusive flag, no enumerate or unload", "[loop][abi11]")
{
    HookPlugin plugin(plugin_dir() / "loop.so");
    const devhost_plugin_descriptor &d = plugin.descriptor();
    REQUIRE(d.path_patterns);
    CHECK(std::string(d.path_patterns[0]) == "loop:*");
    CHECK(d.path_patterns[1] == nullptr);
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
    Loop loop;
    static char token_b;
    const auto *b_token = reinterpret_cast<const devhost_host_device *>(&token_b);
    devhost_device *a = loop.open("deadline-lock");
    devhost_device *b = loop.open("deadline-lock", {}, b_token);
    devhost_error err = fresh_error();
    REQUIRE(loop.plugin.hooks().lock(a, -1, &err) == DEVHOST_OK);

    SECTION("no timeout_ms: the host's deadline (300 ms) ends it")
    {
        HookHost::deadline_calls = 0;
        HookHost::deadline_in(300);
        auto start = Clock::now();
        devhost_status s = loop.plugin.hooks().lock(b, -1, &err);
        int64_t ms = elapsed_ms(start);
        CHECK(s == DEVHOST_E_TIMEOUT);
        CHECK_THAT(err.message, Catch::Contains("still locked by device 'direct'"));
        CHECK(ms >= 295);
        CHECK(ms <= 300 + margin_ms);
        CHECK(HookHost::deadline_calls >= 1);
        CHECK(HookHost::last_device == b_token);  // asked for its own device
    }
    SECTION("timeout_ms 100 before a 10 s deadline: the timeout ends it")
    {
        HookHost::deadline_in(10000);
        auto start = Clock::now();
        CHECK(loop.plugin.hooks().lock(b, 100, &err) == DEVHOST_E_TIMEOUT);
        int64_t ms = elapsed_ms(start);
        CHECK(ms >= 95);
        CHECK(ms <= 100 + margin_ms);
    }
    SECTION("a 200 ms deadline before timeout_ms 10 s: the deadline ends it")
    {
        HookHost::deadline_in(200);
        auto start = Clock::now();
        CHECK(loop.plugin.hooks().lock(b, 10000, &err) == DEVHOST_E_TIMEOUT);
        int64_t ms = elapsed_ms(start);
        CHECK(ms >= 195);
        CHECK(ms <= 200 + margin_ms);
    }
    HookHost::deadline_in(-1);
    CHECK(loop.plugin.hooks().unlock(a, &err) == DEVHOST_OK);
    loop.close(a);
    loop.close(b);
}

TEST_CASE("loop 1.1: a read of an empty buffer ends at the host's deadline", "[loop][abi11]")
{
    Loop loop;
    devhost_device *dev = loop.open("deadline-read");
    devhost_error err = fresh_error();
    HookHost::deadline_in(250);
    auto start = Clock::now();
    CHECK(read_some(loop.plugin.hooks(), dev, -1, err) == DEVHOST_E_TIMEOUT);
    int64_t ms = elapsed_ms(start);
    CHECK_THAT(err.message, Catch::Contains("timed out: nothing was written"));
    CHECK(ms >= 245);
    CHECK(ms <= 250 + margin_ms);

    // The earlier of the two, when it is timeout_ms.
    HookHost::deadline_in(10000);
    start = Clock::now();
    CHECK(read_some(loop.plugin.hooks(), dev, 100, err) == DEVHOST_E_TIMEOUT);
    ms = elapsed_ms(start);
    CHECK(ms >= 95);
    CHECK(ms <= 100 + margin_ms);
    HookHost::deadline_in(-1);
    loop.close(dev);
}

TEST_CASE("loop 1.1: open-delay ends at the host's deadline with its own message", "[loop][abi11]")
{
    Loop loop;
    devhost_device *dev = nullptr;
    devhost_error err = fresh_error();
    HookHost::deadline_in(200);
    auto start = Clock::now();
    devhost_status s =
        loop.plugin.open("loop:deadline-open", &dev, err, {{"open-delay", "5s"}}, -1, loop.cancel.fd);
    int64_t ms = elapsed_ms(start);
    CHECK(s == DEVHOST_E_TIMEOUT);
    CHECK(std::string(err.message) == "opening loop:deadline-open takes 5000 ms (open-delay), past the open's deadline");
    CHECK(ms >= 195);
    CHECK(ms <= 200 + margin_ms);
    if (dev)
        loop.close(dev);

    // A timeout_ms shorter than the delay keeps the 1.0 message.
    err = fresh_error();
    HookHost::deadline_in(10000);
    s = loop.plugin.open("loop:deadline-open", &dev, err, {{"open-delay", "5s"}}, 100, loop.cancel.fd);
    CHECK(s == DEVHOST_E_TIMEOUT);
    CHECK(std::string(err.message) == "opening loop:deadline-open takes 5000 ms (open-delay), more than the 100 ms timeout");
    if (dev)
        loop.close(dev);

    // A delay that fits the deadline opens.
    err = fresh_error();
    HookHost::deadline_in(5000);
    s = loop.plugin.open("loop:deadline-open", &dev, err, {{"open-delay", "50ms"}}, -1, loop.cancel.fd);
    CHECK(s == DEVHOST_OK);
    HookHost::deadline_in(-1);
    if (dev)
        loop.close(dev);
}

TEST_CASE("loop 1.1: connect, info, disconnect, unlock and close never wait, even past their deadline",
          "[loop][abi11]")
{
    Loop loop;
    devhost_device *dev = loop.open("deadline-quick");
    devhost_error err = fresh_error();
    REQUIRE(loop.plugin.hooks().lock(dev, -1, &err) == DEVHOST_OK);
    HookHost::deadline = HookHost::now_ns();  // already passed
    auto start = Clock::now();
    devhost_connect_params cp{};
    cp.struct_size = sizeof cp;
    cp.timeout_ms = -1;
    CHECK(loop.plugin.hooks().connect(dev, &cp, &err) == DEVHOST_OK);
    devhost_info_sink sink{};
    sink.struct_size = sizeof sink;
    sink.put = [](void *, const char *, const char *) {};
    CHECK(loop.plugin.hooks().info(dev, &sink, &err) == DEVHOST_OK);
    CHECK(loop.plugin.hooks().disconnect(dev, &err) == DEVHOST_OK);
    CHECK(loop.plugin.hooks().unlock(dev, &err) == DEVHOST_OK);
    loop.close(dev);
    CHECK(elapsed_ms(start) < margin_ms);
    HookHost::deadline_in(-1);
}

TEST_CASE("loop 1.1: an unknown control code is DEVHOST_E_UNSUPPORTED", "[loop][abi11]")
{
    Loop loop;
    devhost_device *dev = loop.open("unknown-code");
    devhost_error err = fresh_error();
    uint8_t in[64];
    devhost_transfer x{};
    x.struct_size = sizeof x;
    x.op = DEVHOST_OP_CONTROL;
    x.timeout_ms = 1000;
    x.in = in;
    x.in_capacity = sizeof in;
    x.control_code = 0x7fffffff;
    CHECK(loop.plugin.hooks().transfer(dev, &x, &err) == DEVHOST_E_UNSUPPORTED);
    CHECK(x.in_len == 0);
    loop.close(dev);
}
