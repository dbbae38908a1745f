// The parallel plugin hands the host the descriptor that holds the port's
// registration and claims once open (share_fd: "vport" for the connection
// to a virtual port's server, "ppdev" for /dev/parportN), and takes the
// host's copy back before its own close (devhost/plugin_util.h, section
// 6). Against a real devhost-vdev parallel-port peer, through tests/support's
// DirectPlugin, whose share_fd answers what the test chooses and keeps
// copies as a supervisor would:
//   - the descriptor shared is the connection to the port's server;
//   - with the plugin's descriptor gone while it holds the claim (its
//     process died), the copy alone keeps the claim: another client still
//     waits; once the host lets go, that client gets the port;
//   - a normal close drops the copy first, and the next client gets the port;
//   - E_UNSUPPORTED (the in-process host) is silent, E_IO costs one
//     warning; open succeeds and the port works either way.
// /dev/parportN ("ppdev") needs the real driver: the hil guest's ground, not
// this machine's.
#include "devhost_test.hpp"
#include "direct_plugin.hpp"
#include "vport_peer.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

using namespace devhost;
using namespace devhost::test;

namespace {

DirectPlugin &plugin()
{
    static DirectPlugin p(plugin_dir() / "parallel.so");
    return p;
}

void require_ok(const Outcome &o)
{
    INFO(o.message);
    REQUIRE(o.ok());
}

// The pid of the process at the other end of the Unix socket `fd`, or -1.
pid_t peer_pid(int fd)
{
    struct ucred cred{};
    socklen_t len = sizeof cred;
    return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 ? cred.pid : -1;
}

}  // namespace

TEST_CASE("parallel share_fd: a vport open shares its connection, which alone keeps the claim once the plugin's is gone",
          "[parallel]")
{
    VPort port("share-claim");
    DirectPlugin::set_share_answer(DEVHOST_OK);
    DirectPlugin::clear_log();
    DirectDevice first(plugin(), port.path(), {}, 2000);
    require_ok(first.opened());

    auto calls = DirectPlugin::share_calls();
    REQUIRE(calls.size() == 1);
    CHECK(calls[0].device == first.token());
    CHECK(calls[0].role == "vport");
    CHECK(calls[0].answer == DEVHOST_OK);
    REQUIRE(calls[0].described);
    CHECK(S_ISSOCK(calls[0].mode));
    const int copy = DirectPlugin::held(first.token(), "vport");
    REQUIRE(copy >= 0);
    CHECK(peer_pid(copy) == port.child().pid());

    require_ok(first.lock(2000));
    DirectDevice second(plugin(), port.path(), {}, 2000);
    require_ok(second.opened());
    CHECK(second.lock(200).status == DEVHOST_E_TIMEOUT);

    SECTION("the plugin's descriptor gone: the claim stays until the host lets go, then the next client gets it")
    {
        CHECK(lose_other_descriptors(copy) == 1);
        Outcome waited = second.lock(300);
        CHECK(waited.status == DEVHOST_E_TIMEOUT);
        CHECK_THAT(waited.message, Catch::Contains("still claimed by another client"));
        DirectPlugin::drop_held(first.token());
        require_ok(second.lock(2000));
        CHECK(DirectPlugin::warnings().empty());
        // What is left of first talks to /dev/null: its close warns that it
        // releases a claim, which fails.
        DirectPlugin::set_deadline_in(500ms);
        first.close();
        DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);
        DirectPlugin::clear_log();
    }
    SECTION("closed: the copy is dropped first, and the next client gets the port")
    {
        require_ok(first.unlock());
        require_ok(first.close());
        calls = DirectPlugin::share_calls();
        REQUIRE(calls.size() == 3);  // first's share, second's share, first's drop
        CHECK(calls[2].device == first.token());
        CHECK(calls[2].fd == -1);
        CHECK(calls[2].role == "vport");
        CHECK(DirectPlugin::held(first.token(), "vport") == -1);
        require_ok(second.lock(2000));
    }
    require_ok(second.unlock());
    CHECK(second.close().ok());
    CHECK(DirectPlugin::warnings().empty());
    DirectPlugin::set_share_answer(DEVHOST_E_UNSUPPORTED);
}

TEST_CASE("parallel share_fd: a host that keeps no descriptors is normal, one that fails costs one warning",
          "[parallel]")
{
    VPort port("share-answers");
    DirectPlugin::clear_log();
    SECTION("E_UNSUPPORTED (the in-process host): open works, nothing logged, nothing dropped")
    {
        DirectPlugin::set_share_answer(DEVHOST_E_UNSUPPORTED);
        DirectDevice dev(plugin(), port.path(), {}, 2000);
        require_ok(dev.opened());
        require_ok(dev.lock(2000));
        require_ok(dev.unlock());
        CHECK(dev.close().ok());
        auto calls = DirectPlugin::share_calls();
        REQUIRE(calls.size() == 1);
        CHECK(calls[0].role == "vport");
        CHECK(calls[0].answer == DEVHOST_E_UNSUPPORTED);
        CHECK(DirectPlugin::warnings().empty());
    }
    SECTION("E_IO: open works, one warning naming the port and the status, nothing dropped")
    {
        DirectPlugin::set_share_answer(DEVHOST_E_IO);
        DirectDevice dev(plugin(), port.path(), {}, 2000);
        require_ok(dev.opened());
        CHECK(DirectPlugin::warnings() ==
              std::vector<std::string>{port.path() +
                                       ": share_fd (role vport): DEVHOST_E_IO: the device works, but the host does "
                                       "not hold it should this process die"});
        require_ok(dev.lock(2000));
        require_ok(dev.unlock());
        CHECK(dev.close().ok());
        CHECK(DirectPlugin::share_calls().size() == 1);
        CHECK(DirectPlugin::warnings().size() == 1);
    }
    DirectPlugin::set_share_answer(DEVHOST_E_UNSUPPORTED);
}
