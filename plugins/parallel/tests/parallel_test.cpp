// The parallel plugin on devhost-vdev's virtual parallel port (a real
// process serving a real Unix socket): the seed's sequence, sharing with
// claim and release across devices and processes, the exclusive rule, IEEE
// 1284 modes, info, the strobe handshake and the driver write, faults,
// unplug, malformed replies, and end-to-end runs of the devhost binary.
#include "devhost_test.hpp"
#include "devices.hpp"
#include "vport_peer.hpp"

#include "device.hpp"
#include "loader.hpp"

#include <devhost/vport_wire.h>

#include <catch2/catch.hpp>

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <future>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

using namespace devhost;
using namespace devhost::test;

namespace {

std::shared_ptr<const Plugin> parallel_plugin() { return loaded_plugin(plugin_dir() / "parallel.so"); }

std::unique_ptr<Device> make_device(const std::string &name = "lpt")
{
    return std::make_unique<Device>(parallel_plugin(), name);
}

Outcome open_on(Device &dev, const std::string &path, std::map<std::string, std::string> options = {})
{
    OpenRequest request;
    request.path = path;
    request.options = std::move(options);
    return dev.open(request);
}

std::unique_ptr<Device> opened(const std::string &path, std::map<std::string, std::string> options = {},
                               const std::string &name = "lpt")
{
    auto dev = make_device(name);
    Outcome o = open_on(*dev, path, std::move(options));
    INFO(o.message);
    REQUIRE(o.ok());
    return dev;
}

Outcome connect(Device &dev, std::vector<std::pair<std::string, std::string>> args = {})
{
    ConnectRequest request;
    request.args = std::move(args);
    request.timeout_ms = 2000;
    return dev.connect(request);
}

using Result = TransferResult;

std::map<std::string, std::string> info(Device &dev)
{
    InfoList list;
    Outcome o = dev.info(list);
    INFO(o.message);
    REQUIRE(o.ok());
    return {list.begin(), list.end()};
}

// The descriptors this process has open.
std::set<int> open_fds()
{
    std::set<int> fds;
    for (const auto &e : fs::directory_iterator("/proc/self/fd"))
        fds.insert(std::stoi(e.path().filename().string()));
    return fds;
}

// A device opened on the port, with the socket it talks to the server on
// (the one socket its open added to this process), for barriers on what the
// server has received.
struct Client {
    std::unique_ptr<Device> dev;
    int sock = -1;
};

Client client(const std::string &path, const std::string &name)
{
    const auto before = open_fds();
    Client c{opened(path, {}, name)};
    for (int fd : open_fds()) {
        struct stat st {};
        if (!before.count(fd) && ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) {
            REQUIRE(c.sock < 0);  // exactly one new socket
            c.sock = fd;
        }
    }
    REQUIRE(c.sock >= 0);
    return c;
}

// Starts `call` (a claim of a held port) on a thread of its own and returns
// once it is in the server's hands (start_waiting): the thread sleeps in
// poll after sending, and the server has read all `c` sent (SIOCOUTQ 0: the
// kernel frees what the peer reads). The server handles one message at a
// time, so a request sent after this returns is handled after this one.
std::future<Outcome> start_at_server(const Client &c, std::function<Outcome()> call)
{
    return start_waiting(std::move(call), [sock = c.sock] {
        int unread = -1;
        return ::ioctl(sock, SIOCOUTQ, &unread) == 0 && unread == 0;
    });
}

}  // namespace

TEST_CASE("parallel declares a shared class whose transfers need the lock", "[parallel]")
{
    auto p = parallel_plugin();
    CHECK(p->device_class() == "parallel");
    CHECK((p->flags() & DEVHOST_PLUGIN_SHARED_PATHS) != 0);
    CHECK(p->transfer_requires() == DEVHOST_REQUIRES_LOCKED);
    CHECK(p->lock_requires() == 0);
    CHECK(p->supports_op(DEVHOST_OP_WRITE));
    CHECK(p->supports_op(DEVHOST_OP_READ));
    CHECK(p->supports_op(DEVHOST_OP_CONTROL));
    CHECK_FALSE(p->supports_op(DEVHOST_OP_REQUEST));
    for (const char *name : {"read-status", "read-control", "read-data"}) {
        REQUIRE(p->find_control(name));
        CHECK(p->find_control(name)->flags == 0);
    }
    for (const char *name : {"write-control", "write-data"}) {
        REQUIRE(p->find_control(name));
        CHECK(p->find_control(name)->flags == DEVHOST_CONTROL_MODIFIES);
    }
    REQUIRE(p->find_option("exclusive"));
    CHECK(p->find_option("exclusive")->type == DEVHOST_OPTION_BOOL);
    REQUIRE(p->find_option("mode"));
    CHECK(p->find_option("mode")->choices == std::vector<std::string>{"compat", "nibble", "byte", "ecp", "epp"});
    REQUIRE(p->find_option("write-method"));
    REQUIRE(p->find_option("fallback"));
    REQUIRE(p->find_option("claim-timeout"));
}

TEST_CASE("parallel runs the seed's sequence on a virtual printer", "[parallel]")
{
    VPort port("seed");
    auto dev = opened(port.path());
    REQUIRE(connect(*dev, {{"mode", "compat"}}).ok());
    auto i = info(*dev);
    CHECK(i["backend"] == "vport");
    CHECK(i["mode"] == "compat");
    CHECK(i["modes"] == "pcspp,tristate,ecp,compat");
    CHECK(i["busy"] == "no");
    CHECK(i["select"] == "yes");
    CHECK(i["paper-out"] == "no");
    CHECK(i["error"] == "no");
    CHECK(i["claimed"] == "no");
    CHECK(i["device-id"].find("CLS:PRINTER;") != std::string::npos);
    REQUIRE(dev->lock(1000).ok());
    CHECK(info(*dev)["claimed"] == "yes");
    Result w = write(*dev, "Hello, printer\f", 5000);
    INFO(w.outcome.message);
    REQUIRE(w.outcome.ok());
    CHECK(w.out_done == 15);
    Result st = control(*dev, "read-status");
    REQUIRE(st.outcome.ok());
    CHECK(st.data == std::string(1, '\xd8'));
    REQUIRE(dev->disconnect().ok());
    REQUIRE(dev->unlock().ok());
    REQUIRE(dev->close().ok());
    CHECK(port.printed() == "Hello, printer\f");

    // Nothing after close.
    CHECK(dev->lock(100).status == DEVHOST_E_STATE);
    CHECK(write(*dev, "x", 5000).outcome.status == DEVHOST_E_STATE);
    InfoList list;
    CHECK(dev->info(list).status == DEVHOST_E_STATE);
    CHECK(connect(*dev, {{"mode", "compat"}}).status == DEVHOST_E_STATE);
    CHECK(dev->disconnect().status == DEVHOST_E_STATE);
    CHECK(dev->unlock().status == DEVHOST_E_STATE);
    CHECK(control(*dev, "read-status").outcome.status == DEVHOST_E_STATE);
    CHECK(transfer(*dev, {.op = DEVHOST_OP_READ, .capacity = 4, .timeout_ms = 5000}).outcome.status == DEVHOST_E_STATE);
    CHECK(dev->close().status == DEVHOST_E_STATE);
    CHECK(port.printed() == "Hello, printer\f");
}

TEST_CASE("parallel writes through the driver method in chunks", "[parallel]")
{
    VPort port("driver");
    auto dev = opened(port.path(), {{"write-method", "driver"}});
    REQUIRE(dev->lock(1000).ok());
    std::string page;
    for (int i = 0; page.size() < 10000; i++)
        page += "line " + std::to_string(i) + "\r\n";
    Result w = write(*dev, page, 5000);
    INFO(w.outcome.message);
    REQUIRE(w.outcome.ok());
    CHECK(w.out_done == page.size());
    REQUIRE(dev->unlock().ok());
    REQUIRE(dev->close().ok());
    CHECK(port.printed() == page);
}

TEST_CASE("parallel refuses transfers without the claim", "[parallel]")
{
    VPort port("nolock");
    auto dev = opened(port.path());
    Result w = write(*dev, "x", 5000);
    CHECK(w.outcome.status == DEVHOST_E_STATE);
    CHECK_THAT(w.outcome.message, Catch::Contains("lock"));

    // The plugin checks too, when its hook is called directly.
    const devhost_hooks &hooks = parallel_plugin()->hooks();
    devhost_open_params params{};
    params.struct_size = sizeof params;
    params.device_name = "raw";
    params.path = "vport:nolock";
    params.configured_path = params.path;
    params.timeout_ms = 1000;
    params.cancel_fd = -1;
    devhost_error err{};
    err.struct_size = sizeof err;
    devhost_device *handle = nullptr;
    REQUIRE(hooks.open(&params, &handle, &err) == DEVHOST_OK);
    const uint8_t byte = 'x';
    devhost_transfer x{};
    x.struct_size = sizeof x;
    x.op = DEVHOST_OP_WRITE;
    x.out = &byte;
    x.out_len = 1;
    x.timeout_ms = 1000;
    CHECK(hooks.transfer(handle, &x, &err) == DEVHOST_E_STATE);
    CHECK_THAT(std::string(err.message), Catch::Contains("lock first"));
    CHECK(hooks.close(handle, &err) == DEVHOST_OK);
    CHECK(port.printed().empty());
}

TEST_CASE("parallel shares the port: a second client waits for the claim", "[parallel]")
{
    VPort port("shared");
    auto a = opened(port.path(), {}, "a");
    auto b = opened(port.path(), {}, "b");
    REQUIRE(a->lock(1000).ok());
    Outcome o = b->lock(200);
    CHECK(o.status == DEVHOST_E_TIMEOUT);
    CHECK_THAT(o.message, Catch::Contains("still claimed by another client"));
    CHECK(write(*a, "A", 5000).outcome.ok());
    REQUIRE(a->unlock().ok());
    REQUIRE(b->lock(1000).ok());
    CHECK(write(*b, "B", 5000).outcome.ok());
    // a lost the claim: the host and the plugin both refuse its transfers.
    CHECK(write(*a, "!", 5000).outcome.status == DEVHOST_E_STATE);
    REQUIRE(b->unlock().ok());
    CHECK(port.printed() == "AB");
}

TEST_CASE("parallel waiters get the claim in order, each release wakes the next", "[parallel]")
{
    VPort port("fifo");
    auto a = opened(port.path(), {}, "a");
    Client b = client(port.path(), "b");
    Client c = client(port.path(), "c");
    REQUIRE(a->lock(1000).ok());
    std::atomic<int> order{0};
    int b_rank = 0, c_rank = 0;
    // b's claim is in the server's queue before c asks (the barrier orders
    // the two requests), and c's before a releases.
    auto fb = start_at_server(b, [&] {
        Outcome o = b.dev->lock(20000);
        b_rank = ++order;
        if (o.ok()) {
            write(*b.dev, "B", 5000);
            b.dev->unlock();
        }
        return o;
    });
    auto fc = start_at_server(c, [&] {
        Outcome o = c.dev->lock(20000);
        c_rank = ++order;
        if (o.ok()) {
            write(*c.dev, "C", 5000);
            c.dev->unlock();
        }
        return o;
    });
    CHECK(order == 0);  // both still waiting while a holds the port
    write(*a, "A", 5000);
    REQUIRE(a->unlock().ok());
    REQUIRE(fb.wait_for(10s) == std::future_status::ready);
    REQUIRE(fc.wait_for(10s) == std::future_status::ready);
    CHECK(fb.get().ok());
    CHECK(fc.get().ok());
    CHECK(b_rank == 1);
    CHECK(c_rank == 2);
    CHECK(port.printed() == "ABC");
}

TEST_CASE("parallel lock honours cancel and leaves the queue", "[parallel]")
{
    VPort port("cancel");
    auto a = opened(port.path(), {}, "a");
    Client bc = client(port.path(), "b");
    Device *b = bc.dev.get();
    auto c = opened(port.path(), {}, "c");
    REQUIRE(a->lock(1000).ok());
    auto fb = start_at_server(bc, [&] { return b->lock(-1); });  // b is in the line
    b->cancel();
    REQUIRE(fb.wait_for(10s) == std::future_status::ready);
    CHECK(fb.get().status == DEVHOST_E_CANCELLED);
    REQUIRE(a->unlock().ok());
    // b left the line: c gets the port at once.
    CHECK(c->lock(1000).ok());
    CHECK(c->unlock().ok());
}

TEST_CASE("parallel exclusive opens refuse to share", "[parallel]")
{
    VPort port("excl");
    auto a = opened(port.path(), {{"exclusive", "true"}}, "a");
    CHECK(info(*a)["exclusive"] == "yes");
    {
        auto b = make_device("b");
        Outcome o = open_on(*b, port.path(), {{"exclusive", "true"}});
        CHECK(o.status == DEVHOST_E_BUSY);
        CHECK_THAT(o.message, Catch::Contains("exclusive open refused"));
        auto c = make_device("c");
        o = open_on(*c, port.path());
        CHECK(o.status == DEVHOST_E_BUSY);
        CHECK_THAT(o.message, Catch::Contains("held exclusively"));
    }
    REQUIRE(a->close().ok());
    // Once it is closed, others may open; then an exclusive open is refused.
    auto d = opened(port.path(), {}, "d");
    auto e = make_device("e");
    CHECK(open_on(*e, port.path(), {{"exclusive", "true"}}).status == DEVHOST_E_BUSY);
    REQUIRE(d->close().ok());
    auto f = opened(port.path(), {{"exclusive", "true"}}, "f");
    CHECK(f->lock(1000).ok());
}

TEST_CASE("parallel connect negotiates the mode, refuses or falls back", "[parallel]")
{
    VPort port("modes", {"--modes=compat,nibble,ecp"});
    auto dev = opened(port.path());
    REQUIRE(connect(*dev, {{"mode", "ecp"}}).ok());
    CHECK(info(*dev)["mode"] == "ecp");
    REQUIRE(dev->disconnect().ok());
    CHECK(info(*dev)["mode"] == "compat");

    Outcome o = connect(*dev, {{"mode", "epp"}});
    CHECK(o.status == DEVHOST_E_PROTOCOL);
    CHECK_THAT(o.message, Catch::Contains("'epp'"));
    CHECK_FALSE(dev->is_connected());

    {
        LogCapture log(spdlog::level::trace);
        REQUIRE(connect(*dev, {{"mode", "byte"}, {"fallback", "true"}}).ok());
        CHECK_THAT(log.text(), Catch::Contains("mode 'byte' refused") && Catch::Contains("falling back to compat"));
    }
    CHECK(info(*dev)["mode"] == "compat");
    REQUIRE(dev->disconnect().ok());

    o = connect(*dev, {{"mode", "turbo"}});
    CHECK(o.status == DEVHOST_E_INVALID);
    CHECK_THAT(o.message, Catch::Contains("mode=turbo"));
    o = connect(*dev, {{"speed", "fast"}});
    CHECK(o.status == DEVHOST_E_INVALID);
    CHECK_THAT(o.message, Catch::Contains("unknown argument 'speed'"));

    // The option gives the default mode.
    auto nibble = opened(port.path(), {{"mode", "nibble"}}, "nibble");
    REQUIRE(connect(*nibble).ok());
    CHECK(info(*nibble)["mode"] == "nibble");
}

TEST_CASE("parallel reports the configured IEEE 1284 device ID", "[parallel]")
{
    VPort port("devid", {"--device-id=MFG:Acme;MDL:LX-300;CMD:ESCP;"});
    auto dev = opened(port.path());
    CHECK(info(*dev)["device-id"] == "MFG:Acme;MDL:LX-300;CMD:ESCP;");
}

TEST_CASE("parallel reads from the peripheral in reverse modes only", "[parallel]")
{
    VPort port("reverse", {"--reverse-data=status: ok"});
    auto dev = opened(port.path());
    REQUIRE(dev->lock(1000).ok());
    Result r = transfer(*dev, {.op = DEVHOST_OP_READ, .capacity = 16, .timeout_ms = 5000});
    CHECK(r.outcome.status == DEVHOST_E_STATE);
    CHECK_THAT(r.outcome.message, Catch::Contains("reverse mode"));
    REQUIRE(connect(*dev, {{"mode", "nibble"}}).ok());
    r = transfer(*dev, {.op = DEVHOST_OP_READ_EXACT, .capacity = 6, .timeout_ms = 5000});
    REQUIRE(r.outcome.ok());
    CHECK(r.data == "status");
    r = transfer(*dev, {.op = DEVHOST_OP_READ_EXACT, .capacity = 10, .timeout_ms = 300});
    CHECK(r.outcome.status == DEVHOST_E_TIMEOUT);
    CHECK(r.data == ": ok");
}

TEST_CASE("parallel control codes read and write the registers", "[parallel]")
{
    VPort port("regs");
    auto dev = opened(port.path());
    REQUIRE(dev->lock(1000).ok());
    CHECK(control(*dev, "read-control").data == std::string(1, '\x0c'));
    REQUIRE(control(*dev, "write-data", "\x55").outcome.ok());
    CHECK(control(*dev, "read-data").data == "\x55");
    REQUIRE(control(*dev, "write-control", std::string(1, '\x04')).outcome.ok());
    CHECK(control(*dev, "read-control").data == std::string(1, '\x04'));
    Result bad = control(*dev, "write-control", "ab");
    CHECK(bad.outcome.status == DEVHOST_E_INVALID);
    CHECK_THAT(bad.outcome.message, Catch::Contains("exactly 1 input byte"));
    Result unknown = transfer(*dev, {.op = DEVHOST_OP_CONTROL, .capacity = 4, .timeout_ms = 1000, .control_code = 99});
    CHECK(unknown.outcome.status == DEVHOST_E_UNSUPPORTED);
    // Strobing by hand prints the data byte, as a printer would.
    REQUIRE(control(*dev, "write-control", std::string(1, '\x0c')).outcome.ok());
    REQUIRE(control(*dev, "write-data", "Z").outcome.ok());
    REQUIRE(control(*dev, "write-control", std::string(1, '\x0d')).outcome.ok());
    REQUIRE(control(*dev, "write-control", std::string(1, '\x0c')).outcome.ok());
    CHECK(port.printed() == "Z");
}

TEST_CASE("parallel decodes printer faults and never hangs on them", "[parallel]")
{
    SECTION("paper out")
    {
        VPort port("paper", {"--fault=paper-out"});
        auto dev = opened(port.path());
        auto i = info(*dev);
        CHECK(i["paper-out"] == "yes");
        CHECK(i["error"] == "yes");
        CHECK(i["busy"] == "yes");
        REQUIRE(dev->lock(1000).ok());
        Result w = write(*dev, "page", 5000);
        CHECK(w.outcome.status == DEVHOST_E_IO);
        CHECK_THAT(w.outcome.message, Catch::Contains("paper out"));
        CHECK(w.out_done == 0);
    }
    SECTION("offline")
    {
        VPort port("offline", {"--fault=offline"});
        auto dev = opened(port.path(), {{"write-method", "driver"}});
        CHECK(info(*dev)["select"] == "no");
        REQUIRE(dev->lock(1000).ok());
        Result w = write(*dev, "page", 5000);
        CHECK(w.outcome.status == DEVHOST_E_IO);
        CHECK_THAT(w.outcome.message, Catch::Contains("offline"));
    }
    SECTION("busy forever, handshake and driver")
    {
        VPort port("busy", {"--fault=busy-forever"});
        for (const char *method : {"handshake", "driver"}) {
            auto dev = opened(port.path(), {{"write-method", method}});
            CHECK(info(*dev)["busy"] == "yes");
            REQUIRE(dev->lock(1000).ok());
            Result w = write(*dev, "page", 300);
            INFO(method);
            CHECK(w.outcome.status == DEVHOST_E_TIMEOUT);
            CHECK_THAT(w.outcome.message, Catch::Contains("stayed busy"));
            CHECK(w.out_done == 0);
        }
        CHECK(port.printed().empty());
    }
}

TEST_CASE("parallel reports an unplugged port as removed", "[parallel]")
{
    for (const char *method : {"handshake", "driver"}) {
        VPort port(std::string("unplug-") + method, {"--unplug-after=5"});
        auto dev = opened(port.path(), {{"write-method", method}});
        REQUIRE(dev->lock(1000).ok());
        Result w = write(*dev, "0123456789", 5000);
        INFO(method);
        CHECK(w.outcome.status == DEVHOST_E_REMOVED);
        CHECK(port.printed() == "01234");
        CHECK(w.out_done <= 5);
        InfoList list;
        CHECK(dev->info(list).status == DEVHOST_E_REMOVED);
        CHECK(dev->close().ok());
        // The port is gone: a new open finds nothing.
        auto again = make_device();
        CHECK(open_on(*again, port.path()).status == DEVHOST_E_NOT_FOUND);
    }
}

TEST_CASE("parallel close releases a forgotten claim and logs it", "[parallel]")
{
    VPort port("forgot");
    auto a = opened(port.path(), {}, "a");
    auto b = opened(port.path(), {}, "b");
    REQUIRE(a->lock(1000).ok());
    {
        LogCapture log(spdlog::level::trace);
        REQUIRE(a->close().ok());
        CHECK_THAT(log.text(), Catch::Contains("released the port on close because the pipeline did not unlock it"));
    }
    CHECK(b->lock(1000).ok());
}

TEST_CASE("parallel: a client process that dies holding the claim wakes the next", "[parallel][e2e]")
{
    VPort port("dies");
    const fs::path config = port.dir() / "holder.ini";
    write_file(config, "[host]\noutput = -\n\n[device holder]\nclass = parallel\npath = " + port.path() +
                           "\nstep = open\nstep = lock timeout=2s\nstep = write \"held;\"\nstep = sleep 60s\n");
    ProcessOptions env;
    env.env[VPORT_DIR_ENV] = port.vport_dir().string();
    Child holder({devhost_exe().string(), "run", "--plugin-path", plugin_dir().string(), config.string()}, port.dir(),
                 env);
    REQUIRE(holder.wait_for_output("\"step\":\"write", 10s));
    Client waiter_client = client(port.path(), "waiter");
    Device *waiter = waiter_client.dev.get();
    CHECK(waiter->lock(200).status == DEVHOST_E_TIMEOUT);
    auto waiting = start_at_server(waiter_client, [&] { return waiter->lock(20000); });  // in the line
    holder.signal(SIGKILL);  // no unlock, no close: the kernel closes its socket
    REQUIRE(waiting.wait_for(20s) == std::future_status::ready);
    Outcome o = waiting.get();
    INFO(o.message);
    CHECK(o.ok());
    CHECK(write(*waiter, "next;", 5000).outcome.ok());
    CHECK(waiter->unlock().ok());
    CHECK(waiter->close().ok());
    CHECK(port.printed() == "held;next;");
}

TEST_CASE("parallel: unplugging the port ends a wait for the claim with removed", "[parallel]")
{
    VPort port("unplug-wait", {"--unplug-after=3"});
    auto holder = opened(port.path(), {}, "holder");
    Client waiter_client = client(port.path(), "waiter");
    Device *waiter = waiter_client.dev.get();
    REQUIRE(holder->lock(1000).ok());
    auto waiting = start_at_server(waiter_client, [&] { return waiter->lock(20000); });  // in the line
    CHECK(write(*holder, "abcdef", 5000).outcome.status == DEVHOST_E_REMOVED);
    REQUIRE(waiting.wait_for(20s) == std::future_status::ready);
    Outcome o = waiting.get();
    INFO(o.message);
    CHECK(o.status == DEVHOST_E_REMOVED);
    CHECK(port.printed() == "abc");
    // Removed devices still close cleanly.
    CHECK(holder->close().ok());
    CHECK(waiter->close().ok());
}

TEST_CASE("parallel refuses bad paths with one clear line", "[parallel]")
{
    TempDir dir;
    setenv(VPORT_DIR_ENV, (dir / "vport").c_str(), 1);
    struct Case {
        std::string path;
        devhost_status status;
        std::string text;
    };
    for (const Case &c : {Case{"vport:nobody", DEVHOST_E_NOT_FOUND, "no virtual port is served"},
                          Case{"vport:", DEVHOST_E_INVALID, "1 to 64 characters"},
                          Case{"vport:../etc", DEVHOST_E_INVALID, "A-Z a-z 0-9"},
                          Case{"vport:" + (dir / "none.sock").string(), DEVHOST_E_NOT_FOUND,
                               "no virtual port is served at " + (dir / "none.sock").string()},
                          Case{"vport:/" + std::string(120, 'a'), DEVHOST_E_INVALID, "socket path is too long"},
                          Case{"LPT1", DEVHOST_E_INVALID, "neither /dev/parportN nor vport:NAME"},
                          Case{"/dev/null", DEVHOST_E_INVALID, "not a ppdev port"},
                          Case{"/dev/parport-none-here", DEVHOST_E_NOT_FOUND, "no such parallel port"}}) {
        auto dev = make_device();
        Outcome o = open_on(*dev, c.path);
        INFO(c.path << ": " << o.message);
        CHECK(o.status == c.status);
        CHECK_THAT(o.message, Catch::Contains(c.text));
        CHECK(o.message.find('\n') == std::string::npos);
    }
}

TEST_CASE("parallel opens vport:/ABS/PATH as announced by a peer given DEVHOST_VDEV_DIR", "[parallel]")
{
    TempDir dir;
    // DEVHOST_VPORT_DIR points elsewhere: the absolute path alone must lead there.
    setenv(VPORT_DIR_ENV, (dir / "elsewhere").c_str(), 1);
    ProcessOptions options;
    options.env["DEVHOST_VDEV_DIR"] = dir.path().string();
    Child peer({(bin_dir() / "devhost-vdev").string(), "parallel-port", "--name=lpt", "--output=" + (dir / "out").string()},
               dir.path(), options);
    const std::string socket = (dir / "lpt.sock").string();
    bool ready = peer.wait_for_output("READY vport:" + socket + "\n", 10s);
    INFO(peer.err());
    REQUIRE(ready);
    {
        auto dev = make_device();
        Outcome o = open_on(*dev, "vport:" + socket);
        INFO(o.message);
        CHECK(o.ok());
        CHECK(dev->close().ok());
    }
    peer.signal(SIGTERM);
    CHECK(peer.wait(5s).exit_code == 0);
    CHECK_FALSE(fs::exists(fs::symlink_status(socket)));
}

TEST_CASE("parallel finds the virtual port's socket without DEVHOST_VPORT_DIR", "[parallel]")
{
    // Restores the process environment whatever happens.
    struct Env {
        std::string vport, xdg;
        bool had_vport, had_xdg;
        Env()
        {
            const char *v = std::getenv(VPORT_DIR_ENV), *x = std::getenv("XDG_RUNTIME_DIR");
            had_vport = v != nullptr, had_xdg = x != nullptr;
            vport = v ? v : "", xdg = x ? x : "";
        }
        ~Env()
        {
            had_vport ? setenv(VPORT_DIR_ENV, vport.c_str(), 1) : unsetenv(VPORT_DIR_ENV);
            had_xdg ? setenv("XDG_RUNTIME_DIR", xdg.c_str(), 1) : unsetenv("XDG_RUNTIME_DIR");
        }
    } saved;
    TempDir dir;
    char out[108];

    setenv(VPORT_DIR_ENV, "/somewhere/else", 1);
    REQUIRE(vport_dir_candidate(0, out, sizeof out));
    CHECK(std::string(out) == "/somewhere/else");
    CHECK_FALSE(vport_dir_candidate(1, out, sizeof out));

    unsetenv(VPORT_DIR_ENV);
    setenv("XDG_RUNTIME_DIR", dir.path().c_str(), 1);
    std::vector<std::string> candidates;
    for (int i = 0; vport_dir_candidate(i, out, sizeof out); i++)
        candidates.push_back(out);
    CHECK(candidates == std::vector<std::string>{VPORT_DEFAULT_DIR, (dir / "devhost" / "vport").string()});
    unsetenv("XDG_RUNTIME_DIR");
    CHECK_FALSE(vport_dir_candidate(1, out, sizeof out));  // never a fallback under /tmp

    // A peer serving in the second directory (the first has no such socket)
    // is found there by a client that has no DEVHOST_VPORT_DIR.
    const std::string name = "fallback-" + std::to_string(getpid());
    const fs::path served = dir / "devhost" / "vport";
    ProcessOptions options;
    options.env[VPORT_DIR_ENV] = served.string();
    Child peer({(bin_dir() / "devhost-vdev").string(), "parallel-port", "--name=" + name,
                "--output=" + (dir / "out").string()},
               dir.path(), options);
    bool ready = peer.wait_for_output("READY vport:" + name + "\n", 10s);
    INFO(peer.err());
    REQUIRE(ready);
    setenv("XDG_RUNTIME_DIR", dir.path().c_str(), 1);
    {
        auto dev = make_device();
        Outcome o = open_on(*dev, "vport:" + name);
        INFO(o.message);
        CHECK(o.ok());
        CHECK(dev->close().ok());
    }
    peer.signal(SIGTERM);
    CHECK(peer.wait(5s).exit_code == 0);
}

namespace {

// A server that answers HELLO properly and then a canned (bad) reply to
// whatever comes next; one connection.
class BadServer {
public:
    BadServer(const fs::path &dir, const std::string &name, std::string reply) : reply_(std::move(reply))
    {
        fs::create_directories(dir);
        setenv(VPORT_DIR_ENV, dir.c_str(), 1);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::string path = (dir / (name + ".sock")).string();
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        REQUIRE(bind(fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
        REQUIRE(listen(fd_, 1) == 0);
        thread_ = std::thread([this] { serve(); });
    }
    ~BadServer()
    {
        shutdown(fd_, SHUT_RDWR);
        thread_.join();
        close(fd_);
    }

private:
    void serve()
    {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0)
            return;
        uint8_t buf[VPORT_HEADER_SIZE + VPORT_MAX_PAYLOAD];
        if (recv(c, buf, sizeof buf, 0) >= VPORT_HEADER_SIZE) {
            uint8_t hello[VPORT_HEADER_SIZE] = {VPORT_CMD_HELLO, VPORT_OK, 0, 0, VPORT_PROTOCOL_VERSION, 0, 0, 0};
            send(c, hello, sizeof hello, MSG_NOSIGNAL);
        }
        while (recv(c, buf, sizeof buf, 0) > 0)  // until the client goes
            send(c, reply_.data(), reply_.size(), MSG_NOSIGNAL);
        close(c);
    }
    int fd_ = -1;
    std::string reply_;
    std::thread thread_;
};

}  // namespace

TEST_CASE("parallel answers malformed virtual-port replies with a protocol error", "[parallel]")
{
    TempDir dir;
    struct Case {
        std::string what;
        std::string reply;
        std::string text;
    };
    const std::string info_cmd(1, static_cast<char>(VPORT_CMD_INFO));
    for (const Case &c : {Case{"short", std::string("\x06\x00", 2), "2-byte message"},
                          Case{"wrong command", std::string("\x09\x00\x00\x00\x00\x00\x00\x00", 8), "answered command 9"},
                          Case{"unknown status", info_cmd + std::string("\x63\x00\x00\x00\x00\x00\x00", 7),
                               "unknown status 99"},
                          Case{"info too short", info_cmd + std::string("\x00\x00\x00\x11\x00\x00\x00\xd8", 8),
                               "malformed info reply"}}) {
        BadServer server(dir / "vp", "bad", c.reply);
        auto dev = opened("vport:bad");
        InfoList list;
        Outcome o = dev->info(list);
        INFO(c.what << ": " << o.message);
        CHECK(o.status == DEVHOST_E_PROTOCOL);
        CHECK_THAT(o.message, Catch::Contains(c.text));
        dev->close();
        fs::remove(dir / "vp" / "bad.sock");
    }
}

namespace {

// A raw protocol client of the virtual port, for requests the plugin never
// sends.
class RawClient {
public:
    explicit RawClient(const fs::path &socket)
    {
        fd_ = socket_fd();
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket.c_str());
        REQUIRE(::connect(fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
    }
    ~RawClient() { ::close(fd_); }
    // Sends a message and returns {echoed command, status, value}.
    std::array<uint32_t, 3> ask(const std::string &message)
    {
        REQUIRE(send(fd_, message.data(), message.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(message.size()));
        pollfd p{fd_, POLLIN, 0};
        REQUIRE(poll(&p, 1, 5000) == 1);  // a bound, not a timing check
        uint8_t reply[VPORT_HEADER_SIZE + VPORT_MAX_PAYLOAD];
        ssize_t n = recv(fd_, reply, sizeof reply, 0);
        REQUIRE(n >= VPORT_HEADER_SIZE);
        return {reply[0], reply[1], vport_get_u32(reply + 4)};
    }
    static std::string request(uint8_t cmd, uint32_t arg = 0, const std::string &payload = "")
    {
        std::string m(VPORT_HEADER_SIZE, '\0');
        m[0] = static_cast<char>(cmd);
        vport_put_u32(reinterpret_cast<uint8_t *>(m.data()) + 4, arg);
        return m + payload;
    }

private:
    static int socket_fd()
    {
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        return fd;
    }
    int fd_ = -1;
};

}  // namespace

TEST_CASE("parallel's virtual port answers malformed requests and keeps serving", "[parallel]")
{
    VPort port("rawreq");
    {
        RawClient raw(port.vport_dir() / "rawreq.sock");
        using R = std::array<uint32_t, 3>;
        CHECK(raw.ask(std::string("\x06\x00\x00", 3)) == R{VPORT_CMD_INFO, VPORT_E_INVALID, 0});
        CHECK(raw.ask(RawClient::request(VPORT_CMD_INFO)) == R{VPORT_CMD_INFO, VPORT_E_STATE, 0});
        CHECK(raw.ask(RawClient::request(VPORT_CMD_HELLO, 0, "raw")) ==
              R{VPORT_CMD_HELLO, VPORT_OK, VPORT_PROTOCOL_VERSION});
        CHECK(raw.ask(RawClient::request(VPORT_CMD_HELLO))[1] == VPORT_E_STATE);
        CHECK(raw.ask(RawClient::request(99)) == R{99, VPORT_E_UNSUPPORTED, 0});
        CHECK(raw.ask(RawClient::request(VPORT_CMD_WRITE, 0, std::string(VPORT_MAX_PAYLOAD + 1, 'x')))[1] ==
              VPORT_E_INVALID);
        CHECK(raw.ask(RawClient::request(VPORT_CMD_REG_READ, VPORT_REG_STATUS))[1] == VPORT_E_STATE);
        CHECK(raw.ask(RawClient::request(VPORT_CMD_RELEASE))[1] == VPORT_E_STATE);
        CHECK(raw.ask(RawClient::request(VPORT_CMD_CLAIM))[1] == VPORT_OK);
        CHECK(raw.ask(RawClient::request(VPORT_CMD_CLAIM))[1] == VPORT_E_STATE);
        CHECK(raw.ask(RawClient::request(VPORT_CMD_NEGOTIATE, 77))[1] == VPORT_E_INVALID);
        CHECK(raw.ask(RawClient::request(VPORT_CMD_REG_READ, 9))[1] == VPORT_E_INVALID);
        CHECK(raw.ask(RawClient::request(VPORT_CMD_WRITE))[1] == VPORT_E_INVALID);
        CHECK(raw.ask(RawClient::request(VPORT_CMD_READ, 0))[1] != VPORT_OK);
        CHECK(raw.ask(RawClient::request(VPORT_CMD_WRITE, 0, "ok")) == R{VPORT_CMD_WRITE, VPORT_OK, 2});
        // Leaves holding the claim: the port gives it to the next client.
    }
    auto dev = opened(port.path());
    REQUIRE(dev->lock(5000).ok());
    CHECK(write(*dev, "!", 5000).outcome.ok());
    CHECK(dev->close().ok());
    CHECK(port.printed() == "ok!");
}

TEST_CASE("parallel: two devhost processes contend for one claim", "[parallel][e2e]")
{
    VPort port("twoproc");
    auto config = [&](const std::string &name, const std::string &steps) {
        fs::path file = port.dir() / (name + ".ini");
        write_file(file, "[host]\noutput = -\n\n[device " + name + "]\nclass = parallel\npath = " + port.path() +
                             "\n" + steps);
        return file.string();
    };
    std::string first = config("first", "step = open\nstep = lock timeout=2s\nstep = write \"first;\"\n"
                                        "step = sleep 1500ms\nstep = unlock\nstep = close\n");
    std::string impatient = config("impatient", "step = open\nstep = lock timeout=100ms\nstep = close\n");
    std::string patient = config("patient", "step = open\nstep = lock timeout=20s\nstep = write \"second;\"\n"
                                            "step = unlock\nstep = close\n");
    ProcessOptions env;
    env.env[VPORT_DIR_ENV] = port.vport_dir().string();
    Child a({devhost_exe().string(), "run", "--plugin-path", plugin_dir().string(), first}, port.dir(), env);
    REQUIRE(a.wait_for_output("\"step\":\"lock timeout=2s\"", 10s));
    ProcessResult i =
        run_process({devhost_exe().string(), "run", "--plugin-path", plugin_dir().string(), impatient}, env);
    CHECK(i.exit_code == 1);
    CHECK_THAT(i.out, Catch::Contains("\"status\":\"DEVHOST_E_TIMEOUT\""));
    ProcessResult b = run_process({devhost_exe().string(), "run", "--plugin-path", plugin_dir().string(), patient}, env);
    INFO(b.out << b.err);
    CHECK(b.exit_code == 0);
    ProcessResult ra = a.wait(10s);
    CHECK(ra.exit_code == 0);
    CHECK(port.printed() == "first;second;");
}

TEST_CASE("parallel example config prints to its virtual printer", "[parallel][e2e]")
{
    TempDir dir;
    ProcessOptions options;
    options.env[VPORT_DIR_ENV] = (dir / "vport").string();
    options.cwd = dir.path();
    ProcessResult r = run_devhost(
        {"run", "--plugin-path", plugin_dir().string(), (source_dir() / "configs/examples/parallel-printer.ini").string()},
        options);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("\"device-id\":\"MFG:devhost;MDL:Virtual Printer"));
    std::string printed = read_file(dir / "printer-output.txt");
    CHECK_THAT(printed, Catch::StartsWith("devhost parallel printer test page"));
    CHECK_THAT(printed, Catch::EndsWith("\f"));
    // The virtual port is gone with the run: its socket was removed.
    CHECK_FALSE(fs::exists(dir / "vport" / "printer.sock"));
}
