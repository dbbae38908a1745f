// The filterport plugin hands the host its connection to the port's server
// (share_fd, role "socket") from connect, where the socket appears, and
// takes the host's copy back before it closes the socket: at disconnect,
// when the connection breaks, at close (devhost/plugin_util.h, section 6).
// Against real port servers (the port library in this process), through
// tests/support's DirectPlugin, whose share_fd answers what the test
// chooses and keeps copies as a supervisor would:
//   - open shares nothing (it does not connect); connect shares the
//     connected socket; disconnect drops the copy first, so the server sees
//     the client go at once; a new connect shares the new socket;
//   - with the plugin's descriptor gone (its process died), the copy alone
//     keeps the session until the host lets go;
//   - E_UNSUPPORTED (the in-process host) is silent, E_IO costs one
//     warning; connect succeeds and requests work either way.
#include "direct_plugin.hpp"
#include "port_test_util.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <vector>

using namespace porttest;
using devhost::Outcome;
using devhost::test::DirectDevice;
using devhost::test::DirectPlugin;
using devhost::test::lose_other_descriptors;
using devhost::test::TempDir;

namespace {

DirectPlugin &direct()
{
    static DirectPlugin p(devhost::test::plugin_dir() / "filterport.so");
    return p;
}

void require_ok(const Outcome &o)
{
    INFO(o.message);
    REQUIRE(o.ok());
}

Outcome connect(DirectDevice &dev)
{
    devhost_connect_params p{};
    p.struct_size = sizeof p;
    p.timeout_ms = 2000;
    return dev.connect(p);
}

// A REQUEST through the device; the echo server answers with the bytes.
Outcome request(DirectDevice &dev, const std::string &out, std::string *reply = nullptr)
{
    uint8_t in[64];
    devhost_transfer x{};
    x.op = DEVHOST_OP_REQUEST;
    x.timeout_ms = 2000;
    x.out = reinterpret_cast<const uint8_t *>(out.data());
    x.out_len = out.size();
    x.in = in;
    x.in_capacity = sizeof in;
    Outcome o = dev.transfer(x);
    if (reply)
        reply->assign(reinterpret_cast<const char *>(in), x.in_len);
    return o;
}

// The address the Unix socket `fd` is connected to ("" if none).
std::string peer_path(int fd)
{
    sockaddr_un addr{};
    socklen_t len = sizeof addr;
    if (getpeername(fd, reinterpret_cast<sockaddr *>(&addr), &len) != 0 || len <= sizeof(sa_family_t))
        return "";
    return addr.sun_path;
}

// The socket inode of `fd`, or 0.
ino_t inode(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

}  // namespace

TEST_CASE("filterport share_fd: connect shares the connected socket, disconnect drops the copy before closing")
{
    TempDir dir;
    const std::string path = (dir / "Port").string();
    Server server(path, {});
    REQUIRE(server.status() == DEVHOST_OK);
    DirectPlugin::set_share_answer(DEVHOST_OK);
    DirectPlugin::clear_log();
    DirectDevice dev(direct(), path);
    require_ok(dev.opened());
    CHECK(DirectPlugin::share_calls().empty());  // open does not connect

    require_ok(connect(dev));
    auto calls = DirectPlugin::share_calls();
    REQUIRE(calls.size() == 1);
    CHECK(calls[0].device == dev.token());
    CHECK(calls[0].role == "socket");
    CHECK(calls[0].answer == DEVHOST_OK);
    REQUIRE(calls[0].described);
    CHECK(S_ISSOCK(calls[0].mode));
    const int copy = DirectPlugin::held(dev.token(), "socket");
    REQUIRE(copy >= 0);
    CHECK(peer_path(copy) == path);
    const ino_t first_socket = inode(copy);
    std::string reply;
    require_ok(request(dev, "ping", &reply));
    CHECK(reply == "ping");
    REQUIRE(server.wait_clients(1));

    require_ok(dev.disconnect());
    calls = DirectPlugin::share_calls();
    REQUIRE(calls.size() == 2);
    CHECK(calls[1].device == dev.token());
    CHECK(calls[1].fd == -1);
    CHECK(calls[1].role == "socket");
    CHECK(DirectPlugin::held(dev.token(), "socket") == -1);
    CHECK(server.wait_clients(0));  // the server saw the client go

    SECTION("a new connect shares the new socket")
    {
        require_ok(connect(dev));
        calls = DirectPlugin::share_calls();
        REQUIRE(calls.size() == 3);
        CHECK(calls[2].role == "socket");
        const int again = DirectPlugin::held(dev.token(), "socket");
        REQUIRE(again >= 0);
        CHECK(inode(again) != first_socket);
        CHECK(peer_path(again) == path);
        require_ok(dev.close());
        calls = DirectPlugin::share_calls();
        REQUIRE(calls.size() == 4);  // close drops it too
        CHECK(calls[3].fd == -1);
        CHECK(server.wait_clients(0));
    }
    SECTION("a connection the server ends is dropped when the plugin closes it")
    {
        require_ok(connect(dev));
        REQUIRE(server.wait_clients(1));
        REQUIRE(devhost_port_disconnect(server.port(), server.clients().at(0)) == DEVHOST_OK);
        CHECK(request(dev, "anyone?").status == DEVHOST_E_REMOVED);
        calls = DirectPlugin::share_calls();
        REQUIRE(calls.size() == 4);
        CHECK(calls[3].fd == -1);
        CHECK(calls[3].role == "socket");
        CHECK(DirectPlugin::held(dev.token(), "socket") == -1);
        DirectPlugin::clear_log();  // the plugin warns that the server went away
    }
    CHECK(DirectPlugin::warnings().empty());
}

TEST_CASE("filterport share_fd: once the plugin's socket is gone, the host's copy alone keeps the session")
{
    TempDir dir;
    const std::string path = (dir / "Port").string();
    Server server(path, {});
    REQUIRE(server.status() == DEVHOST_OK);
    DirectPlugin::set_share_answer(DEVHOST_OK);
    DirectDevice dev(direct(), path);
    require_ok(dev.opened());
    require_ok(connect(dev));
    const int copy = DirectPlugin::held(dev.token(), "socket");
    REQUIRE(copy >= 0);
    REQUIRE(server.wait_clients(1));

    CHECK(lose_other_descriptors(copy) == 1);
    CHECK_FALSE(server.wait_clients(0, 200ms));  // still connected, through the copy
    CHECK(server.disconnected().empty());
    DirectPlugin::drop_held(dev.token());  // the host lets go
    CHECK(server.wait_clients(0));
    dev.close();  // on what is left of it: its socket now is /dev/null
}

TEST_CASE("filterport share_fd: a host that keeps no descriptors is normal, one that fails costs one warning")
{
    TempDir dir;
    const std::string path = (dir / "Port").string();
    Server server(path, {});
    REQUIRE(server.status() == DEVHOST_OK);
    DirectPlugin::clear_log();
    SECTION("E_UNSUPPORTED (the in-process host): connect works, nothing logged, nothing dropped")
    {
        DirectPlugin::set_share_answer(DEVHOST_E_UNSUPPORTED);
        DirectDevice dev(direct(), path);
        require_ok(dev.opened());
        require_ok(connect(dev));
        std::string reply;
        require_ok(request(dev, "hello", &reply));
        CHECK(reply == "hello");
        require_ok(dev.disconnect());
        CHECK(server.wait_clients(0));
        require_ok(dev.close());
        auto calls = DirectPlugin::share_calls();
        REQUIRE(calls.size() == 1);
        CHECK(calls[0].role == "socket");
        CHECK(calls[0].answer == DEVHOST_E_UNSUPPORTED);
        CHECK(DirectPlugin::warnings().empty());
    }
    SECTION("E_IO: connect works, one warning naming the port and the status, nothing dropped")
    {
        DirectPlugin::set_share_answer(DEVHOST_E_IO);
        DirectDevice dev(direct(), path);
        require_ok(dev.opened());
        require_ok(connect(dev));
        CHECK(DirectPlugin::warnings() ==
              std::vector<std::string>{"port " + path +
                                       ": share_fd (role socket): DEVHOST_E_IO: the device works, but the host does "
                                       "not hold it should this process die"});
        std::string reply;
        require_ok(request(dev, "hello", &reply));
        CHECK(reply == "hello");
        require_ok(dev.close());
        CHECK(DirectPlugin::share_calls().size() == 1);
        CHECK(DirectPlugin::warnings().size() == 1);
    }
    DirectPlugin::set_share_answer(DEVHOST_E_UNSUPPORTED);
}
