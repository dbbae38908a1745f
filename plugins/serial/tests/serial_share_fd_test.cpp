// The serial plugin hands the host its tty (share_fd, role "tty") once it
// is open, exclusive and set up, and takes the host's copy back before its
// own final close (devhost/plugin_util.h, section 6). Against a real pty,
// through tests/support's DirectPlugin, whose share_fd answers what the
// test chooses and keeps copies as a supervisor would:
//   - the descriptor shared is the tty's open file that holds the flock and
//     the exclusive mode (a flock through the copy is the plugin's own);
//   - with the plugin's descriptor gone (its process died), the copy alone
//     keeps the tty exclusive: a second open by an unprivileged user fails
//     EBUSY until the host releases it (TIOCNXCL, close), then it succeeds;
//   - exclusive = false shares nothing;
//   - E_UNSUPPORTED (the in-process host) is silent, E_IO costs one warning;
//     open succeeds and the device works either way.
#include "devhost_test.hpp"
#include "devices.hpp"
#include "direct_plugin.hpp"

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

using namespace devhost;
using namespace devhost::test;

namespace {

DirectPlugin &plugin()
{
    static DirectPlugin p(plugin_dir() / "serial.so");
    return p;
}

void require_open(const DirectDevice &dev)
{
    INFO(dev.opened().message);
    REQUIRE(dev.opened().ok());
}

// Writes `bytes` through the device, which must take them all.
void write_through(DirectDevice &dev, const std::string &bytes)
{
    devhost_transfer x{};
    x.op = DEVHOST_OP_WRITE;
    x.timeout_ms = 2000;
    x.out = reinterpret_cast<const uint8_t *>(bytes.data());
    x.out_len = bytes.size();
    Outcome o = dev.transfer(x);
    INFO(o.message);
    REQUIRE(o.ok());
    CHECK(x.out_done == bytes.size());
}

// Whether a new open of `path` may take a flock on it now: "ok", or the
// errno's name.
std::string flock_from_new_open(const std::string &path)
{
    int fd = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return std::string("open: ") + strerror(errno);
    int rc = flock(fd, LOCK_EX | LOCK_NB);
    int e = errno;
    ::close(fd);
    return rc == 0 ? "ok" : e == EWOULDBLOCK ? "EWOULDBLOCK" : strerror(e);
}

// What an open of `path` by nobody (uid/gid 65534, no groups) ends in:
// "OK" or the errno's name ("EBUSY"); empty when it could not be run.
std::string open_as_nobody(const std::string &path)
{
    ProcessResult r = run_process({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                   "/usr/bin/python3", "-c",
                                   "import errno, os, sys\n"
                                   "try:\n"
                                   "    os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)\n"
                                   "    print('OK')\n"
                                   "except OSError as e:\n"
                                   "    print(errno.errorcode[e.errno])\n",
                                   path},
                                  ProcessOptions{10s});
    INFO(r.err);
    return r.exit_code == 0 ? r.out : std::string();
}

// Why the tests that open the tty as another user cannot run here, or "".
std::string nobody_unavailable()
{
    if (geteuid() != 0)
        return "needs root (to let nobody try the tty, through setpriv)";
    if (::access("/usr/bin/setpriv", X_OK) != 0 || ::access("/usr/bin/python3", X_OK) != 0)
        return "needs /usr/bin/setpriv and /usr/bin/python3";
    return "";
}

}  // namespace

TEST_CASE("serial share_fd: an exclusive open shares the tty, the open file that holds its flock and TIOCEXCL")
{
    Pty pty(PtyMode::raw);
    DirectPlugin::set_share_answer(DEVHOST_OK);
    DirectPlugin::clear_log();
    DirectDevice dev(plugin(), pty.path);
    require_open(dev);

    auto calls = DirectPlugin::share_calls();
    REQUIRE(calls.size() == 1);
    CHECK(calls[0].device == dev.token());
    CHECK(calls[0].role == "tty");
    CHECK(calls[0].answer == DEVHOST_OK);
    REQUIRE(calls[0].described);
    struct stat st;
    REQUIRE(::stat(pty.path.c_str(), &st) == 0);
    CHECK(S_ISCHR(calls[0].mode));
    CHECK(calls[0].rdev == st.st_rdev);
    CHECK(calls[0].dev == st.st_dev);
    CHECK(calls[0].ino == st.st_ino);
    CHECK((calls[0].status_flags & O_ACCMODE) == O_RDWR);

    const int copy = DirectPlugin::held(dev.token(), "tty");
    REQUIRE(copy >= 0);
    // flock belongs to the open file: through the copy it is the plugin's
    // own lock (taken again at once), from a new open it is refused.
    CHECK(flock(copy, LOCK_EX | LOCK_NB) == 0);
    CHECK(flock_from_new_open(pty.path) == "EWOULDBLOCK");
    int excl = 0;
    REQUIRE(ioctl(copy, TIOCGEXCL, &excl) == 0);
    CHECK(excl == 1);
    write_through(dev, "shared\n");
    CHECK(pty.receive(7) == "shared\n");

    // Close takes the copy back first (a drop: fd -1), then closes its own.
    Outcome closed = dev.close();
    INFO(closed.message);
    CHECK(closed.ok());
    calls = DirectPlugin::share_calls();
    REQUIRE(calls.size() == 2);
    CHECK(calls[1].device == dev.token());
    CHECK(calls[1].fd == -1);
    CHECK(calls[1].role == "tty");
    CHECK(DirectPlugin::held(dev.token(), "tty") == -1);
    CHECK(flock_from_new_open(pty.path) == "ok");
    CHECK(DirectPlugin::warnings().empty());
}

TEST_CASE("serial share_fd: once the plugin's descriptor is gone, the host's copy alone keeps the tty exclusive")
{
    const std::string why = nobody_unavailable();
    if (!why.empty())
        DEVHOST_SKIP(why);
    Pty pty(PtyMode::raw);
    REQUIRE(fchmod(pty.slave, 0666) == 0);  // so that only TIOCEXCL can refuse nobody
    REQUIRE(open_as_nobody(pty.path) == "OK\n");

    DirectPlugin::set_share_answer(DEVHOST_OK);
    DirectDevice dev(plugin(), pty.path);
    require_open(dev);
    const int copy = DirectPlugin::held(dev.token(), "tty");
    REQUIRE(copy >= 0);
    CHECK(open_as_nobody(pty.path) == "EBUSY\n");

    // The plugin's process dies: its descriptor goes, the host's stays.
    CHECK(lose_other_descriptors(copy, {pty.slave}) == 1);
    CHECK(open_as_nobody(pty.path) == "EBUSY\n");
    CHECK(flock_from_new_open(pty.path) == "EWOULDBLOCK");

    // The host releases what it held: TIOCNXCL, then close.
    CHECK(ioctl(copy, TIOCNXCL) == 0);
    DirectPlugin::drop_held(dev.token());
    CHECK(open_as_nobody(pty.path) == "OK\n");
    CHECK(flock_from_new_open(pty.path) == "ok");
    dev.close();  // on what is left of it: its descriptor now is /dev/null
}

TEST_CASE("serial share_fd: exclusive = false shares nothing")
{
    Pty pty(PtyMode::raw);
    DirectPlugin::set_share_answer(DEVHOST_OK);
    DirectDevice dev(plugin(), pty.path, {{"exclusive", "false"}});
    require_open(dev);
    CHECK(DirectPlugin::share_calls().empty());
    dev.close();
    CHECK(DirectPlugin::share_calls().empty());
}

TEST_CASE("serial share_fd: a host that keeps no descriptors is normal, one that fails costs one warning")
{
    Pty pty(PtyMode::raw);
    DirectPlugin::clear_log();
    SECTION("E_UNSUPPORTED (the in-process host): open works, nothing logged, nothing dropped")
    {
        DirectPlugin::set_share_answer(DEVHOST_E_UNSUPPORTED);
        DirectDevice dev(plugin(), pty.path);
        require_open(dev);
        write_through(dev, "in-process\n");
        CHECK(pty.receive(11) == "in-process\n");
        CHECK(dev.close().ok());
        auto calls = DirectPlugin::share_calls();
        REQUIRE(calls.size() == 1);
        CHECK(calls[0].role == "tty");
        CHECK(calls[0].answer == DEVHOST_E_UNSUPPORTED);
        CHECK(DirectPlugin::warnings().empty());
    }
    SECTION("E_IO: open works, one warning naming the tty and the status, nothing dropped")
    {
        DirectPlugin::set_share_answer(DEVHOST_E_IO);
        DirectDevice dev(plugin(), pty.path);
        require_open(dev);
        CHECK(DirectPlugin::warnings() ==
              std::vector<std::string>{"serial: " + pty.path +
                                       ": share_fd (role tty): DEVHOST_E_IO: the device works, but the host does "
                                       "not hold it should this process die"});
        write_through(dev, "no net\n");
        CHECK(pty.receive(7) == "no net\n");
        CHECK(dev.close().ok());
        CHECK(DirectPlugin::share_calls().size() == 1);
        CHECK(DirectPlugin::warnings().size() == 1);
    }
    DirectPlugin::set_share_answer(DEVHOST_E_UNSUPPORTED);
}
