// The serial plugin's ABI 1.1 side, its hooks called directly under a
// services table whose deadline_ns the test sets (tests/support's
// DirectPlugin): path patterns and
// option flags in the descriptor, every hook by its deadline (close on a
// pty whose output cannot go anywhere, transfers whose timeout is longer
// than the hook's deadline), the one status for an unknown control code,
// and enumerate on this machine's real ttys and ptys.
#include "devhost_test.hpp"
#include "direct_plugin.hpp"
#include "serial_helpers.hpp"

#include <catch2/catch.hpp>

#include <devhost/plugin_util.h>

#include <algorithm>
#include <chrono>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace devhost;
using namespace devhost::test;
using namespace serial_test;
using Clock = std::chrono::steady_clock;

namespace {

// How far past its deadline a hook may return here: what the host allows
// (ABI11.md: about 20 ms) plus room for a loaded test machine.
constexpr auto margin = 60ms;

DirectPlugin &plugin()
{
    static DirectPlugin p(plugin_dir() / "serial.so");
    return p;
}

std::chrono::milliseconds since(Clock::time_point t0)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
}

Outcome write_bytes(DirectDevice &dev, const std::string &bytes, int32_t timeout_ms, size_t *done = nullptr)
{
    devhost_transfer x{};
    x.op = DEVHOST_OP_WRITE;
    x.timeout_ms = timeout_ms;
    x.out = reinterpret_cast<const uint8_t *>(bytes.data());
    x.out_len = bytes.size();
    Outcome o = dev.transfer(x);
    if (done)
        *done = x.out_done;
    return o;
}

}  // namespace

TEST_CASE("serial 1.1: the descriptor declares the tty paths and the exclusive option")
{
    CHECK(plugin().abi_version() == DEVHOST_MAKE_VERSION(1, 1));
    CHECK(plugin().path_patterns() == std::vector<std::string>{"/dev/ttyS*", "/dev/ttyUSB*", "/dev/ttyACM*",
                                                               "/dev/ttyAMA*", "/dev/pts/*", "/dev/serial/*",
                                                               "/dev/tty*"});
    const devhost_plugin_descriptor &d = plugin().descriptor();
    CHECK(d.path_types == 0);  // a tty is named by one of its patterns
    for (uint32_t i = 0; i < d.option_count; i++) {
        INFO(d.options[i].name);
        CHECK(d.options[i].flags == (std::string(d.options[i].name) == "exclusive" ? uint32_t(DEVHOST_OPTION_EXCLUSIVE) : 0u));
        CHECK(d.options[i].reserved == 0);
    }
    CHECK(plugin().hooks().enumerate != nullptr);
    CHECK(plugin().hooks().unload != nullptr);  // gives back the close signal
}

TEST_CASE("serial 1.1: close asks for its deadline and keeps it on a pty whose output cannot drain")
{
    Pty pty;
    SECTION("stopped by XOFF from the other side")
    {
        DirectDevice dev(plugin(), pty.path, {{"flow", "xonxoff"}});
        REQUIRE(dev.opened().ok());
        pty.send("\x13");  // XOFF: the tty stops its output
        size_t done = 1;
        Outcome w = write_bytes(dev, std::string(4096, 'x'), 100, &done);
        CHECK(w.status == DEVHOST_E_TIMEOUT);  // really held: nothing goes out
        CHECK(done == 0);
        DirectPlugin::set_deadline_in(300ms);
        const auto t0 = Clock::now();
        Outcome c = dev.close();
        const auto took = since(t0);
        CHECK(c.ok());
        CHECK(took < 300ms + margin);
        CHECK(DirectPlugin::deadline_asked() >= 1);
    }
    SECTION("its reader never reads and the buffer is full")
    {
        DirectDevice dev(plugin(), pty.path);
        REQUIRE(dev.opened().ok());
        size_t done = 0;
        Outcome w = write_bytes(dev, std::string(1 << 20, 'y'), 200, &done);
        CHECK(w.status == DEVHOST_E_TIMEOUT);
        CHECK(done < size_t(1 << 20));
        DirectPlugin::set_deadline_in(300ms);
        const auto t0 = Clock::now();
        Outcome c = dev.close();
        CHECK(c.ok());
        CHECK(since(t0) < 300ms + margin);
        CHECK(DirectPlugin::deadline_asked() >= 1);
    }
    SECTION("a deadline that has already passed")
    {
        DirectDevice dev(plugin(), pty.path);
        REQUIRE(dev.opened().ok());
        DirectPlugin::set_deadline(devhost_util_now_ns() - 1);
        const auto t0 = Clock::now();
        CHECK(dev.close().ok());
        CHECK(since(t0) < margin);
    }
    DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);
}

TEST_CASE("serial 1.1: a transfer ends at the hook's deadline when its own timeout is longer")
{
    Pty pty;
    DirectDevice dev(plugin(), pty.path);
    REQUIRE(dev.opened().ok());
    SECTION("a read with nothing coming, timeout 5s, deadline in 200ms")
    {
        uint8_t in[16];
        devhost_transfer x{};
        x.op = DEVHOST_OP_READ;
        x.timeout_ms = 5000;
        x.in = in;
        x.in_capacity = sizeof in;
        DirectPlugin::set_deadline_in(200ms);
        const auto t0 = Clock::now();
        Outcome o = dev.transfer(x);
        const auto took = since(t0);
        CHECK(o.status == DEVHOST_E_TIMEOUT);
        CHECK(took >= 190ms);
        CHECK(took < 200ms + margin);
    }
    SECTION("a write into a full buffer, no timeout of its own, deadline in 200ms")
    {
        DirectPlugin::set_deadline_in(200ms);
        const auto t0 = Clock::now();
        Outcome o = write_bytes(dev, std::string(1 << 20, 'z'), -1);
        const auto took = since(t0);
        CHECK(o.status == DEVHOST_E_TIMEOUT);
        CHECK(took < 200ms + margin);
    }
    SECTION("the transfer's own timeout when it is the earlier")
    {
        uint8_t in[16];
        devhost_transfer x{};
        x.op = DEVHOST_OP_READ;
        x.timeout_ms = 100;
        x.in = in;
        x.in_capacity = sizeof in;
        DirectPlugin::set_deadline_in(5s);
        const auto t0 = Clock::now();
        CHECK(dev.transfer(x).status == DEVHOST_E_TIMEOUT);
        CHECK(since(t0) < 100ms + margin);
    }
    DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);
}

TEST_CASE("serial 1.1: info waits for nothing, even past its deadline")
{
    Pty pty;
    DirectDevice dev(plugin(), pty.path);
    REQUIRE(dev.opened().ok());
    DirectPlugin::set_deadline(devhost_util_now_ns() - 1);
    InfoList info;
    const auto t0 = Clock::now();
    CHECK(dev.info(info).ok());
    CHECK(since(t0) < margin);
    CHECK(std::count_if(info.begin(), info.end(), [&](const auto &kv) { return kv.first == "path"; }) == 1);
    DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);
}

TEST_CASE("serial 1.1: an unknown control code is DEVHOST_E_UNSUPPORTED")
{
    Pty pty;
    DirectDevice dev(plugin(), pty.path);
    REQUIRE(dev.opened().ok());
    for (uint32_t code : {0u, 10u, 999u, 0xffffffffu}) {
        devhost_transfer x{};
        x.op = DEVHOST_OP_CONTROL;
        x.control_code = code;
        x.timeout_ms = 100;
        Outcome o = dev.transfer(x);
        CHECK(o.status == DEVHOST_E_UNSUPPORTED);
        CHECK(o.message == "serial: control code " + std::to_string(code) + " is not supported");
    }
}

namespace {

bool listed(const std::vector<DirectPlugin::Found> &found, const std::string &path)
{
    return std::any_of(found.begin(), found.end(), [&](const auto &f) { return f.path == path; });
}

}  // namespace

TEST_CASE("serial 1.1: enumerate lists ptys only when asked for all, and only paths that exist")
{
    Pty pty;
    std::vector<DirectPlugin::Found> all, plain;
    REQUIRE(plugin().enumerate(DEVHOST_ENUMERATE_ALL, all).ok());
    REQUIRE(plugin().enumerate(0, plain).ok());
    for (const auto &f : plain)
        UNSCOPED_INFO("found " << f.path.value_or("-") << ": " << f.description.value_or("-"));

    REQUIRE(listed(all, pty.path));
    for (const auto &f : all)
        if (f.path == pty.path) {
            CHECK(f.description == "pseudo-terminal");
            CHECK_FALSE(f.by_id);
            CHECK_FALSE(f.usb_vendor);
        }
    CHECK_FALSE(listed(plain, pty.path));
    for (const auto &f : plain) {
        REQUIRE(f.path);
        CHECK(f.path->rfind("/dev/pts/", 0) == std::string::npos);
    }
    for (const auto *list : {&all, &plain})
        for (const auto &f : *list) {
            REQUIRE(f.path);
            INFO(*f.path);
            struct stat st;
            CHECK(::stat(f.path->c_str(), &st) == 0);
            CHECK(S_ISCHR(st.st_mode));
            CHECK(f.description);
        }
}

TEST_CASE("serial 1.1: enumerate never opens the console's tty, and marks it")
{
    // inotify reports every open of the node (watching it opens nothing).
    std::string console = read_file("/sys/class/tty/console/active");
    if (console.find("ttyS0") == std::string::npos || !fs::exists("/dev/ttyS0"))
        DEVHOST_SKIP("/dev/ttyS0 is not this machine's console");
    int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    REQUIRE(in >= 0);
    REQUIRE(inotify_add_watch(in, "/dev/ttyS0", IN_OPEN) >= 0);
    std::vector<DirectPlugin::Found> found;
    REQUIRE(plugin().enumerate(DEVHOST_ENUMERATE_ALL, found).ok());
    char buf[4096];
    CHECK(::read(in, buf, sizeof buf) < 0);  // no IN_OPEN event: EAGAIN
    ::close(in);
    for (const auto &f : found)
        if (f.path == std::string("/dev/ttyS0")) {
            REQUIRE(f.description);
            CHECK(f.description->find(", the system console") != std::string::npos);
        }
}

TEST_CASE("serial 1.1: enumerate keeps to its deadline")
{
    std::vector<DirectPlugin::Found> found;
    DirectPlugin &p = plugin();  // loaded first: loading resets the deadline
    DirectPlugin::set_deadline(devhost_util_now_ns() - 1);
    Outcome o = p.enumerate(DEVHOST_ENUMERATE_ALL, found);
    DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);
    CHECK(o.status == DEVHOST_E_TIMEOUT);
    CHECK(o.message == "serial: enumerate: the deadline passed (0 ttys found by then)");
    CHECK(found.empty());
}
