// The parallel plugin under ABI 1.1, its hooks called directly with a
// services table whose deadline_ns answers the test's deadline
// (tests/support/direct_plugin.hpp): against a
// real devhost-vdev parallel-port peer that was stopped (SIGSTOP) and so
// never answers, every hook -- info, unlock, disconnect and close, which
// take no timeout, included -- returns at its deadline (the issue: "unlock
// timeout=300ms against a stopped peer took 5 s"), and open, connect, lock
// and transfer at the earlier of the deadline and their timeout_ms. Also
// the 1.1 descriptor (path patterns, the exclusive flag), enumerate, unload
// and the status of an unknown control code.
#include "devhost_test.hpp"
#include "direct_plugin.hpp"
#include "vport_peer.hpp"

#include <catch2/catch.hpp>

#include <devhost/plugin_util.h>

#include <chrono>
#include <csignal>
#include <fnmatch.h>
#include <glob.h>
#include <set>
#include <string>
#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <vector>

using namespace devhost;
using namespace devhost::test;
using Clock = std::chrono::steady_clock;

namespace {

// How late a hook may return after its deadline on a loaded machine (the
// plugin itself allows an answer already asked for 10 ms); what these tests
// rule out is the 5 s the plugin waited for a peer before 1.1, or forever.
constexpr int64_t margin_ms = 250;
constexpr int64_t deadline_ms = 300;

const std::chrono::milliseconds deadline{deadline_ms};

fs::path parallel_so() { return plugin_dir() / "parallel.so"; }

// The device's open must have succeeded.
void require_open(const DirectDevice &dev)
{
    INFO(dev.opened().message);
    REQUIRE(dev.opened().ok());
}

// The plugin, a peer and one device open on it (open's timeout 2 s, no
// deadline).
struct Fixture {
    VPort port;
    DirectPlugin plugin{parallel_so()};
    DirectDevice dev;

    explicit Fixture(const std::string &name, const std::map<std::string, std::string> &options = {})
        : port(name), dev(plugin, port.path(), options, 2000)
    {
        require_open(dev);
    }
    ~Fixture()
    {
        DirectPlugin::set_deadline_in(deadline);  // the peer may be stopped
        dev.close();
        DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);
    }

    void lock()
    {
        DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);
        Outcome o = dev.lock(2000);
        INFO(o.message);
        REQUIRE(o.ok());
    }
    Outcome connect(const char *mode, int32_t timeout_ms)
    {
        devhost_kv kv{"mode", mode};
        devhost_connect_params p{};
        p.struct_size = sizeof p;
        p.arg_count = 1;
        p.args = &kv;
        p.timeout_ms = timeout_ms;
        return dev.connect(p);
    }
    Outcome control(uint32_t code, int32_t timeout_ms)
    {
        uint8_t in[4];
        devhost_transfer x{};
        x.op = DEVHOST_OP_CONTROL;
        x.timeout_ms = timeout_ms;
        x.in = in;
        x.in_capacity = sizeof in;
        x.control_code = code;
        return dev.transfer(x);
    }
};

// Runs `hook`, returns what it answered and checks that it took the
// deadline, give or take the margin: at least until it (it waited for the
// peer) and not much longer.
template <typename Hook>
Outcome timed(Hook hook, int64_t expect_ms)
{
    auto start = Clock::now();
    Outcome o = hook();
    int64_t ms = elapsed_ms(start);
    INFO("took " << ms << " ms, expected " << expect_ms << " ms");
    CHECK(ms >= expect_ms - 5);
    CHECK(ms <= expect_ms + margin_ms);
    return o;
}

constexpr uint32_t read_status = 1;  // the control code "read-status"

}  // namespace

TEST_CASE("parallel 1.1: unlock against a stopped peer ends at its deadline", "[parallel][abi11]")
{
    Fixture f("stopped-unlock");
    f.lock();
    f.port.stop();
    DirectPlugin::set_deadline_in(deadline);
    Outcome o = timed([&] { return f.dev.unlock(); }, deadline_ms);
    CHECK(o.status == DEVHOST_E_TIMEOUT);
    CHECK_THAT(o.message, Catch::Contains("no answer from the virtual port in time"));
    // close then has nothing to release: it is quick.
    DirectPlugin::set_deadline_in(deadline);
    auto start = Clock::now();
    CHECK(f.dev.close().ok());
    CHECK(elapsed_ms(start) < margin_ms);
}

TEST_CASE("parallel 1.1: close holding the claim against a stopped peer ends at its deadline", "[parallel][abi11]")
{
    Fixture f("stopped-close");
    f.lock();
    f.port.stop();
    DirectPlugin::set_deadline_in(deadline);
    CHECK(timed([&] { return f.dev.close(); }, deadline_ms).status == DEVHOST_E_TIMEOUT);  // freed either way
}

TEST_CASE("parallel 1.1: disconnect against a stopped peer ends at its deadline", "[parallel][abi11]")
{
    SECTION("locked: the compat negotiation gets no answer")
    {
        Fixture f("stopped-disc-locked");
        f.lock();
        REQUIRE(f.connect("nibble", 2000).ok());
        f.port.stop();
        DirectPlugin::set_deadline_in(deadline);
        Outcome o = timed([&] { return f.dev.disconnect(); }, deadline_ms);
        CHECK(o.status == DEVHOST_E_TIMEOUT);
        CHECK_THAT(o.message, Catch::Contains("no answer from the virtual port in time"));
    }
    SECTION("not locked: the brief claim is never granted (claim-timeout 2 s is later)")
    {
        Fixture f("stopped-disc-brief");
        REQUIRE(f.connect("nibble", 2000).ok());
        f.port.stop();
        DirectPlugin::set_deadline_in(deadline);
        Outcome o = timed([&] { return f.dev.disconnect(); }, deadline_ms);
        CHECK(o.status == DEVHOST_E_TIMEOUT);
        CHECK_THAT(o.message, Catch::Contains("still claimed by another client"));
    }
}

TEST_CASE("parallel 1.1: info against a stopped peer ends at its deadline", "[parallel][abi11]")
{
    Fixture f("stopped-info");
    f.port.stop();
    InfoList info;
    DirectPlugin::set_deadline_in(deadline);
    CHECK(timed([&] { return f.dev.info(info); }, deadline_ms).status == DEVHOST_E_TIMEOUT);
    CHECK(DirectPlugin::deadline_asked() >= 1);
    CHECK(DirectPlugin::deadline_asked_for() == f.dev.token());
}

TEST_CASE("parallel 1.1: connect, lock and transfer end at the earlier of the deadline and timeout_ms",
          "[parallel][abi11]")
{
    SECTION("connect without a timeout: the deadline")
    {
        Fixture f("stopped-connect");
        f.port.stop();
        DirectPlugin::set_deadline_in(deadline);
        CHECK(timed([&] { return f.connect("nibble", -1); }, deadline_ms).status == DEVHOST_E_TIMEOUT);
    }
    SECTION("lock: the deadline before a 10 s timeout, then a 150 ms timeout before a 10 s deadline")
    {
        Fixture f("stopped-lock");
        f.port.stop();
        DirectPlugin::set_deadline_in(deadline);
        Outcome o = timed([&] { return f.dev.lock(10000); }, deadline_ms);
        CHECK(o.status == DEVHOST_E_TIMEOUT);
        CHECK_THAT(o.message, Catch::Contains("still claimed by another client"));
    }
    SECTION("lock: timeout_ms earlier than the deadline")
    {
        Fixture f("stopped-lock-timeout");
        f.port.stop();
        DirectPlugin::set_deadline_in(10s);
        CHECK(timed([&] { return f.dev.lock(150); }, 150).status == DEVHOST_E_TIMEOUT);
    }
    SECTION("transfer without a timeout: the deadline")
    {
        Fixture f("stopped-transfer");
        f.lock();
        f.port.stop();
        DirectPlugin::set_deadline_in(deadline);
        CHECK(timed([&] { return f.control(read_status, -1); }, deadline_ms).status == DEVHOST_E_TIMEOUT);
    }
    SECTION("transfer: timeout_ms earlier than the deadline")
    {
        Fixture f("stopped-transfer-timeout");
        f.lock();
        f.port.stop();
        DirectPlugin::set_deadline_in(10s);
        CHECK(timed([&] { return f.control(read_status, 150); }, 150).status == DEVHOST_E_TIMEOUT);
    }
}

TEST_CASE("parallel 1.1: answers a stopped peer gives late are read first, and the device works on",
          "[parallel][abi11]")
{
    SECTION("an unlock that timed out: its reply comes when the peer goes on")
    {
        Fixture f("late-release");
        f.lock();
        f.port.stop();
        DirectPlugin::set_deadline_in(deadline);
        CHECK(f.dev.unlock().status == DEVHOST_E_TIMEOUT);
        f.port.resume();
        DirectPlugin::set_deadline_in(5s);
        Outcome o = f.dev.lock(2000);
        INFO(o.message);
        CHECK(o.ok());
        CHECK(f.control(read_status, 1000).ok());
        CHECK(f.dev.unlock().ok());
    }
    SECTION("a claim given up while the peer was stopped: its CANCEL is answered later")
    {
        VPort port("late-cancel");
        DirectPlugin plugin(parallel_so());
        DirectDevice a(plugin, port.path(), {}, 2000);
        DirectDevice b(plugin, port.path(), {}, 2000);
        require_open(a);
        require_open(b);
        REQUIRE(a.lock(2000).ok());
        port.stop();
        DirectPlugin::set_deadline_in(deadline);
        CHECK(timed([&] { return b.lock(-1); }, deadline_ms).status == DEVHOST_E_TIMEOUT);
        port.resume();
        DirectPlugin::set_deadline_in(5s);
        CHECK(a.unlock().ok());
        Outcome o = b.lock(2000);  // reads the CANCEL's answer, then claims
        INFO(o.message);
        CHECK(o.ok());
        CHECK(b.unlock().ok());
        CHECK(a.close().ok());
        CHECK(b.close().ok());
        DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);
    }
}

TEST_CASE("parallel 1.1: a serving peer answers within the deadline as before", "[parallel][abi11]")
{
    Fixture f("serving");
    DirectPlugin::set_deadline_in(2s);
    CHECK(f.connect("nibble", -1).ok());
    CHECK(f.dev.lock(-1).ok());
    CHECK(f.control(read_status, -1).ok());
    InfoList info;
    CHECK(f.dev.info(info).ok());
    CHECK(f.dev.disconnect().ok());
    CHECK(f.dev.unlock().ok());
    // An unknown control code, with the claim held: DEVHOST_E_UNSUPPORTED.
    f.lock();
    Outcome o = f.control(0x7fffffff, 1000);
    CHECK(o.status == DEVHOST_E_UNSUPPORTED);
    CHECK_THAT(o.message, Catch::Contains("unknown control code 2147483647"));
}

TEST_CASE("parallel 1.1: descriptor declares /dev/parportN and vport: paths of any depth, and the exclusive flag",
          "[parallel][abi11]")
{
    DirectPlugin plugin(parallel_so());
    CHECK(plugin.abi_version() == DEVHOST_ABI_VERSION);
    const devhost_plugin_descriptor &d = plugin.descriptor();
    REQUIRE(d.path_patterns);
    auto served = [&](const std::string &path) {
        for (const char *const *p = d.path_patterns; *p; p++)
            if (fnmatch(*p, path.c_str(), 0) == 0)  // as the host matches: without FNM_PATHNAME
                return true;
        return false;
    };
    CHECK(std::string(d.path_patterns[0]) == "/dev/parport[0-9]*");
    CHECK(std::string(d.path_patterns[1]) == "vport:*");
    CHECK(d.path_patterns[2] == nullptr);  // one pattern for every depth
    CHECK(d.path_types == 0);
    CHECK(served("/dev/parport0"));
    CHECK(served("/dev/parport12"));
    CHECK(served("vport:printer"));
    CHECK(served("vport:/run/devhost/vdev/devhost-run42-Ab3dEf/printer.sock"));
    CHECK(served("vport:/tmp/devhost-run42-Ab3dEf/printer.sock"));
    CHECK(served("vport:/home/u/a/b/c/d/e/f/g/h/i/printer.sock"));
    CHECK_FALSE(served("/dev/parport"));
    CHECK_FALSE(served("/dev/ttyS0"));
    CHECK_FALSE(served("/dev/sda"));
    CHECK_FALSE(served("loop:x"));
    for (uint32_t i = 0; i < d.option_count; i++) {
        INFO(d.options[i].name);
        const bool exclusive = std::string(d.options[i].name) == "exclusive";
        CHECK(d.options[i].flags == (exclusive ? static_cast<uint32_t>(DEVHOST_OPTION_EXCLUSIVE) : 0u));
        CHECK(d.options[i].default_value != nullptr);  // nothing is REQUIRED
    }
    CHECK(plugin.hooks().enumerate != nullptr);
    CHECK(plugin.hooks().unload != nullptr);
}

namespace {

// The ppdev ports of this machine, as the test sees them.
std::set<std::string> ppdev_ports()
{
    std::set<std::string> ports;
    glob_t g{};
    if (glob("/dev/parport[0-9]*", 0, nullptr, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            struct stat st {};
            if (stat(g.gl_pathv[i], &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 99)
                ports.insert(g.gl_pathv[i]);
        }
    }
    globfree(&g);
    return ports;
}

}  // namespace

TEST_CASE("parallel 1.1: enumerate lists the ppdev ports, and the virtual ports served with ALL",
          "[parallel][abi11]")
{
    VPort port("listed");
    DirectPlugin plugin(parallel_so());
    std::vector<DirectPlugin::Found> found;
    DirectPlugin::set_deadline_in(2s);

    // Without ALL: exactly the /dev/parportN ppdev nodes (none on a machine
    // without a parallel port, and then the hook still answers OK).
    REQUIRE(plugin.enumerate(0, found).ok());
    CHECK(DirectPlugin::deadline_asked() >= 1);
    CHECK(DirectPlugin::deadline_asked_for() == nullptr);  // enumerate asks with no device
    std::set<std::string> listed;
    for (const auto &f : found) {
        listed.insert(f.path.value_or(""));
        CHECK_THAT(f.description.value_or(""), Catch::StartsWith("parallel port (ppdev)"));
    }
    CHECK(listed == ppdev_ports());

    // With ALL: also vport:listed, whose socket the description names.
    found.clear();
    REQUIRE(plugin.enumerate(DEVHOST_ENUMERATE_ALL, found).ok());
    bool seen = false;
    for (const auto &f : found) {
        if (f.path != "vport:listed")
            continue;
        seen = true;
        CHECK(f.description == "virtual parallel port (devhost-vdev parallel-port) at " +
                                   (port.vport_dir() / "listed.sock").string());
        CHECK_FALSE(f.by_id);
    }
    CHECK(seen);

    // A socket open would not trust (owned by another user) is not listed.
    if (geteuid() == 0) {
        const fs::path foreign = port.vport_dir() / "foreign.sock";
        int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, foreign.c_str(), sizeof addr.sun_path - 1);
        REQUIRE(sock >= 0);
        REQUIRE(bind(sock, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
        REQUIRE(chown(foreign.c_str(), 65534, 65534) == 0);
        found.clear();
        REQUIRE(plugin.enumerate(DEVHOST_ENUMERATE_ALL, found).ok());
        bool listed_foreign = false, listed_ours = false;
        for (const auto &f : found) {
            listed_foreign = listed_foreign || f.path == "vport:foreign";
            listed_ours = listed_ours || f.path == "vport:listed";
        }
        CHECK_FALSE(listed_foreign);
        CHECK(listed_ours);
        close(sock);
        unlink(foreign.c_str());
        found.clear();
    }

    // A deadline that has passed ends the listing: E_TIMEOUT.
    found.clear();
    DirectPlugin::set_deadline(devhost_util_now_ns() - 1);
    CHECK(plugin.enumerate(DEVHOST_ENUMERATE_ALL, found).status == DEVHOST_E_TIMEOUT);
    CHECK(found.empty());
    DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);
}

TEST_CASE("parallel 1.1: unload leaves a signal disposition it did not set alone", "[parallel][abi11]")
{
    // The plugin installs its claim-interrupt handler (SIGRTMAX-3) only at a
    // claim on a real ppdev port (the hil test's guest has one); without one
    // it never did, so unload must leave the process's disposition as it is.
    struct sigaction mine {}, after {};
    mine.sa_handler = SIG_IGN;
    sigemptyset(&mine.sa_mask);
    struct sigaction before {};
    REQUIRE(sigaction(SIGRTMAX - 3, &mine, &before) == 0);
    {
        DirectPlugin plugin(parallel_so());
        REQUIRE(plugin.hooks().unload != nullptr);
    }  // ~DirectPlugin calls unload, as the host does before dlclose
    REQUIRE(sigaction(SIGRTMAX - 3, &before, &after) == 0);
    CHECK(after.sa_handler == SIG_IGN);
}
