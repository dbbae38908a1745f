// The filterport plugin's ABI 1.1 side, its hooks called directly under a
// services table whose deadline_ns the test sets (tests/support's
// DirectPlugin), against real port
// servers (the port library in this process): the path patterns, enumerate
// of a port directory, connect and request ending at the hook's deadline
// when their own timeout is longer, disconnect/info/close past their
// deadline, and the one status for a control.
#include "direct_plugin.hpp"
#include "port_test_util.hpp"

#include <catch2/catch.hpp>

#include <devhost/plugin_util.h>

#include <cstdlib>
#include <sys/stat.h>
#include <thread>

using namespace porttest;
using devhost::Outcome;
using devhost::test::DirectDevice;
using devhost::test::DirectPlugin;
using devhost::test::TempDir;
using Clock = std::chrono::steady_clock;

namespace {

// How far past its deadline a hook may return here: what the host allows
// (ABI11.md: about 20 ms) plus room for a loaded test machine.
constexpr auto margin = 60ms;

DirectPlugin &direct()
{
    static DirectPlugin p(devhost::test::plugin_dir() / "filterport.so");
    return p;
}

std::chrono::milliseconds since(Clock::time_point t0)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
}

Outcome connect(DirectDevice &dev, int32_t timeout_ms)
{
    devhost_connect_params p{};
    p.struct_size = sizeof p;
    p.timeout_ms = timeout_ms;
    return dev.connect(p);
}

// Sets $DEVHOST_PORT_DIR for the scope.
struct PortDirEnv {
    explicit PortDirEnv(const std::string &dir) { setenv("DEVHOST_PORT_DIR", dir.c_str(), 1); }
    ~PortDirEnv() { unsetenv("DEVHOST_PORT_DIR"); }
};

}  // namespace

TEST_CASE("filterport 1.1: the descriptor declares the default port directory's paths, and sockets elsewhere")
{
    CHECK(direct().abi_version() == DEVHOST_MAKE_VERSION(1, 1));
    CHECK(direct().path_patterns() == std::vector<std::string>{"/run/devhost/ports/*"});
    const devhost_plugin_descriptor &d = direct().descriptor();
    CHECK(d.path_types == DEVHOST_PATH_SOCKET);
    for (uint32_t i = 0; i < d.option_count; i++)
        CHECK(d.options[i].flags == 0);  // no option is required, none is "exclusive"
    CHECK(direct().hooks().enumerate != nullptr);
}

TEST_CASE("filterport 1.1: enumerate lists the sockets of the port directory without connecting")
{
    TempDir dir;
    Server alpha(dir / "Alpha", {});
    Server::Options group;
    group.mode = 0660;
    Server beta(dir / "Beta", group);
    REQUIRE(alpha.status() == DEVHOST_OK);
    REQUIRE(beta.status() == DEVHOST_OK);
    devhost::test::write_file(dir / "notes", "not a port\n");
    fs::create_symlink(dir / "Alpha", dir / "Link");  // a link is not a port
    fs::create_directory(dir / "sub");
    PortDirEnv env(dir.path().string());

    std::vector<DirectPlugin::Found> found;
    REQUIRE(direct().enumerate(0, found).ok());
    REQUIRE(found.size() == 2);
    CHECK(found[0].path == (dir / "Alpha").string());
    CHECK(found[0].description ==
          "filter port \\Alpha (socket of uid " + std::to_string(geteuid()) + ", mode 0600)");
    CHECK(found[1].path == (dir / "Beta").string());
    CHECK(found[1].description == "filter port \\Beta (socket of uid " + std::to_string(geteuid()) + ", mode 0660)");
    for (const auto &f : found) {
        CHECK_FALSE(f.by_id);
        CHECK_FALSE(f.usb_vendor);
    }
    // Listed, not connected to: neither server saw a client.
    CHECK(alpha.peers().empty());
    CHECK(beta.peers().empty());
    CHECK(alpha.clients().empty());

    found.clear();
    REQUIRE(direct().enumerate(DEVHOST_ENUMERATE_ALL, found).ok());  // nothing more to list
    CHECK(found.size() == 2);
}

TEST_CASE("filterport 1.1: enumerate of a port directory that does not exist finds nothing")
{
    TempDir dir;
    PortDirEnv env((dir / "none").string());
    std::vector<DirectPlugin::Found> found;
    CHECK(direct().enumerate(0, found).ok());
    CHECK(found.empty());
}

TEST_CASE("filterport 1.1: enumerate keeps to its deadline")
{
    TempDir dir;
    Server alpha(dir / "Alpha", {});
    REQUIRE(alpha.status() == DEVHOST_OK);
    PortDirEnv env(dir.path().string());
    DirectPlugin &p = direct();  // loaded first: loading resets the deadline
    DirectPlugin::set_deadline(devhost_util_now_ns() - 1);
    std::vector<DirectPlugin::Found> found;
    Outcome o = p.enumerate(0, found);
    DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);
    CHECK(o.status == DEVHOST_E_TIMEOUT);
    CHECK(o.message == "filterport: enumerate: the deadline passed (0 ports found by then)");
    CHECK(found.empty());
}

TEST_CASE("filterport 1.1: connect and request end at the hook's deadline when their timeout is longer")
{
    TempDir dir;
    Server::Options slow;
    slow.on_connect = [](uint64_t, const devhost_port_peer &, const std::string &ctx, std::string &) {
        if (ctx.empty())  // the deadline case: the WELCOME comes late
            std::this_thread::sleep_for(1s);
        return static_cast<devhost_status>(DEVHOST_OK);
    };
    slow.on_message = [](uint64_t, const std::string &in, std::string &out) {
        if (in == "slow")
            std::this_thread::sleep_for(1s);
        out = in;
        return static_cast<devhost_status>(DEVHOST_OK);
    };
    Server server(dir / "Slow", slow);
    REQUIRE(server.status() == DEVHOST_OK);
    DirectDevice dev(direct(), (dir / "Slow").string());
    REQUIRE(dev.opened().ok());
    SECTION("connect: timeout 5s, deadline in 200ms")
    {
        DirectPlugin::set_deadline_in(200ms);
        const auto t0 = Clock::now();
        Outcome o = connect(dev, 5000);
        const auto took = since(t0);
        CHECK(o.status == DEVHOST_E_TIMEOUT);
        CHECK(o.message == "port " + (dir / "Slow").string() + ": no WELCOME from the server in time");
        CHECK(took >= 190ms);
        CHECK(took < 200ms + margin);
    }
    SECTION("request: timeout 5s, deadline in 200ms")
    {
        devhost_connect_params p{};
        p.struct_size = sizeof p;
        p.context = "x";
        p.context_size = 1;
        p.timeout_ms = 2000;
        REQUIRE(dev.connect(p).ok());
        const std::string out = "slow";
        uint8_t in[16];
        devhost_transfer x{};
        x.op = DEVHOST_OP_REQUEST;
        x.timeout_ms = 5000;
        x.out = reinterpret_cast<const uint8_t *>(out.data());
        x.out_len = out.size();
        x.in = in;
        x.in_capacity = sizeof in;
        DirectPlugin::set_deadline_in(200ms);
        const auto t0 = Clock::now();
        Outcome o = dev.transfer(x);
        const auto took = since(t0);
        CHECK(o.status == DEVHOST_E_TIMEOUT);
        CHECK(o.message == "port " + (dir / "Slow").string() + ": no response to request 1 in time");
        CHECK(took < 200ms + margin);

        SECTION("then disconnect, info and close past their deadline return at once")
        {
            DirectPlugin::set_deadline(devhost_util_now_ns() - 1);
            const auto t1 = Clock::now();
            devhost::InfoList info;
            CHECK(dev.info(info).ok());
            CHECK(dev.disconnect().ok());
            CHECK(dev.close().ok());
            CHECK(since(t1) < margin);
        }
    }
    DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);
}

TEST_CASE("filterport 1.1: a control is DEVHOST_E_UNSUPPORTED")
{
    TempDir dir;
    Server server(dir / "Echo", {});
    REQUIRE(server.status() == DEVHOST_OK);
    DirectDevice dev(direct(), (dir / "Echo").string());
    REQUIRE(dev.opened().ok());
    REQUIRE(connect(dev, 2000).ok());
    devhost_transfer x{};
    x.op = DEVHOST_OP_CONTROL;
    x.control_code = 1;
    x.timeout_ms = 100;
    Outcome o = dev.transfer(x);
    CHECK(o.status == DEVHOST_E_UNSUPPORTED);
    CHECK(o.message == "filterport: transfer op 8 is not supported");
}
