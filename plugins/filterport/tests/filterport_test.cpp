// The filterport plugin, loaded by the host's loader and driven through
// devhost::Device, against real port servers: the port library in this
// process, devhost-vdev filterport-echo, and raw socket servers.
#include "devices.hpp"
#include "port_test_util.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <dirent.h>
#include <fcntl.h>
#include <future>
#include <set>
#include <sys/stat.h>
#include <thread>

using namespace porttest;
using devhost::test::Child;
using devhost::test::TempDir;
using devhost::test::start_waiting;

namespace {

// The socket descriptors this process holds.
std::set<int> socket_fds()
{
    std::set<int> fds;
    for (const auto &e : fs::directory_iterator("/proc/self/fd")) {
        std::error_code ec;
        auto target = fs::read_symlink(e.path(), ec);
        if (!ec && target.string().rfind("socket:", 0) == 0)
            fds.insert(std::stoi(e.path().filename().string()));
    }
    return fds;
}

// The one socket that appeared between two snapshots and is connected to
// `port` (a client side, not the server's accepted end), or -1.
int new_fd(const std::set<int> &before, const std::set<int> &after, const fs::path &port)
{
    int found = -1, count = 0;
    for (int fd : after) {
        if (before.count(fd))
            continue;
        sockaddr_un a{};
        socklen_t len = sizeof a;
        if (getpeername(fd, reinterpret_cast<sockaddr *>(&a), &len) == 0 && port == a.sun_path)
            found = fd, count++;
    }
    return count == 1 ? found : -1;
}

// This process's client ends of connections to `port`.
std::set<int> client_fds(const fs::path &port)
{
    std::set<int> out;
    for (int fd : socket_fds()) {
        sockaddr_un a{};
        socklen_t len = sizeof a;
        if (getpeername(fd, reinterpret_cast<sockaddr *>(&a), &len) == 0 && port == a.sun_path)
            out.insert(fd);
    }
    return out;
}

}  // namespace

TEST_CASE("open checks the port exists and is a socket, without connecting", "[filterport][open]")
{
    TempDir dir;
    Port missing;
    auto o = missing.open(dir / "Nope");
    CHECK(o.status == DEVHOST_E_NOT_FOUND);
    CHECK(o.message == "no port at " + (dir / "Nope").string() + " (is its server running?)");

    devhost::test::write_file(dir / "file", "x");
    Port file;
    auto f = file.open(dir / "file");
    CHECK(f.status == DEVHOST_E_INVALID);
    CHECK(f.message == (dir / "file").string() + " is not a filter port (not a socket)");

    Server server(dir / "P", {});
    Port p;
    REQUIRE(p.open(dir / "P").ok());
    CHECK(server.clients().empty());
    CHECK(server.peers().empty());
    CHECK(p.info()["connected"] == "no");
}

TEST_CASE("connect: each context and size combination of the rule", "[filterport][context]")
{
    TempDir dir;
    Server server(dir / "P", {});
    struct Case {
        std::optional<std::string> context;
        std::optional<uint32_t> size;
        devhost_status status;
        std::string seen_or_message;
    };
    const std::vector<Case> cases = {
        {std::nullopt, std::nullopt, DEVHOST_OK, ""},
        {std::nullopt, 0u, DEVHOST_OK, ""},
        {"abc", std::nullopt, DEVHOST_OK, "abc"},
        {"abc", 3u, DEVHOST_OK, "abc"},
        {"abcdef", 2u, DEVHOST_OK, "ab"},
        {std::string(65535, 'k'), std::nullopt, DEVHOST_OK, std::string(65535, 'k')},
        {"abc", 0u, DEVHOST_E_INVALID, "connect: a context needs a non-zero context size"},
        {std::nullopt, 5u, DEVHOST_E_INVALID, "connect: context-size=5 given without a context (no context needs size 0)"},
        {std::string(65536, 'k'), std::nullopt, DEVHOST_E_INVALID,
         "connect: context size 65536 does not fit in 16 bits (at most 65535)"},
        {std::nullopt, 70000u, DEVHOST_E_INVALID,
         "connect: context-size=70000 given without a context (no context needs size 0)"},
    };
    size_t accepted = 0;
    for (const auto &c : cases) {
        INFO("context " << (c.context ? std::to_string(c.context->size()) + " bytes" : "none") << ", size "
                        << (c.size ? std::to_string(*c.size) : "default"));
        Port p;
        REQUIRE(p.open(dir / "P").ok());
        auto o = p.connect(c.context, c.size);
        REQUIRE(o.status == c.status);
        if (c.status == DEVHOST_OK) {
            accepted++;
            REQUIRE(server.contexts().size() == accepted);
            CHECK(server.contexts().back() == c.seen_or_message);
            CHECK(p.dev.is_connected());
        } else {
            CHECK(o.message == c.seen_or_message);
            CHECK_FALSE(p.dev.is_connected());
            CHECK(p.dev.is_open());
            // Refused before any I/O: the server saw no connection, and no
            // descriptor was left behind.
            CHECK(server.peers().size() == accepted);
            CHECK(client_fds(dir / "P").empty());
        }
    }
}

TEST_CASE("connect arguments: sync=BOOL only", "[filterport][args]")
{
    TempDir dir;
    Server server(dir / "P", {});
    Port p;
    REQUIRE(p.open(dir / "P").ok());
    auto bad = p.connect(std::nullopt, std::nullopt, {{"sync", "maybe"}});
    CHECK(bad.status == DEVHOST_E_INVALID);
    CHECK(bad.message == "connect: sync=maybe: expected true or false");
    auto unknown = p.connect(std::nullopt, std::nullopt, {{"mode", "fast"}});
    CHECK(unknown.status == DEVHOST_E_INVALID);
    CHECK(unknown.message == "connect: unknown argument 'mode' (expected sync=BOOL)");
    CHECK(server.peers().empty());
}

TEST_CASE("a failed connect reports the server's refusal and leaves no descriptor", "[filterport][refuse]")
{
    TempDir dir;
    SECTION("maximum of connections: E_BUSY")
    {
        Server::Options o;
        o.max_connections = 1;
        Server server(dir / "P", o);
        Port a, b;
        REQUIRE(a.open(dir / "P").ok());
        REQUIRE(a.connect().ok());
        const auto fds_one = client_fds(dir / "P");
        CHECK(fds_one.size() == 1);
        REQUIRE(b.open(dir / "P").ok());
        auto r = b.connect();
        CHECK(r.status == DEVHOST_E_BUSY);
        CHECK(r.message == "port " + (dir / "P").string() + " refused the connection: port " + (dir / "P").string() +
                               " is full: it already has its maximum of 1 connection");
        CHECK(client_fds(dir / "P") == fds_one);
        REQUIRE(a.dev.disconnect().ok());
        REQUIRE(server.wait_clients(0));
        CHECK(b.connect().ok());
    }
    SECTION("the connect callback refuses: its status and message")
    {
        Server::Options o;
        o.on_connect = [](uint64_t, const devhost_port_peer &, const std::string &ctx, std::string &why) {
            why = "context '" + ctx + "' refused";
            return ctx == "open sesame" ? DEVHOST_OK : DEVHOST_E_ACCESS;
        };
        Server server(dir / "P", o);
        Port p;
        REQUIRE(p.open(dir / "P").ok());
        auto r = p.connect("let me in");
        CHECK(r.status == DEVHOST_E_ACCESS);
        CHECK(r.message == "port " + (dir / "P").string() + " refused the connection: context 'let me in' refused");
        CHECK(client_fds(dir / "P").empty());
        CHECK(p.connect("open sesame").ok());
    }
    SECTION("credentials not in the allowed list: E_ACCESS naming uid and gid")
    {
        Server::Options o;
        o.uids = {12345};
        o.gids = {12345};
        Server server(dir / "P", o);
        Port p;
        REQUIRE(p.open(dir / "P").ok());
        auto r = p.connect();
        CHECK(r.status == DEVHOST_E_ACCESS);
        CHECK(r.message.find("uid " + std::to_string(getuid()) + " gid " + std::to_string(getgid()) +
                             " is not allowed to connect") != std::string::npos);
        CHECK(client_fds(dir / "P").empty());
    }
    SECTION("the server went away after open: E_NOT_FOUND")
    {
        auto server = std::make_unique<Server>(dir / "P", Server::Options{});
        Port p;
        REQUIRE(p.open(dir / "P").ok());
        server.reset();
        auto r = p.connect();
        CHECK(r.status == DEVHOST_E_NOT_FOUND);
        CHECK(client_fds(dir / "P").empty());
    }
}

TEST_CASE("inheritance: a child process sees the handle only when asked", "[filterport][inherit]")
{
    TempDir dir;
    Server server(dir / "P", {});
    for (bool inherit : {false, true}) {
        INFO("inherit=" << inherit);
        Port p;
        REQUIRE(p.open(dir / "P", {}, inherit).ok());
        auto before = socket_fds();
        REQUIRE(p.connect().ok());
        int fd = new_fd(before, socket_fds(), dir / "P");
        REQUIRE(fd >= 0);
        CHECK(((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0) == !inherit);
        auto child = devhost::test::run_process(
            {"/bin/sh", "-c", "[ -S /proc/self/fd/" + std::to_string(fd) + " ] || [ -e /proc/self/fd/" +
                                  std::to_string(fd) + " ]"});
        CHECK((child.exit_code == 0) == inherit);
        CHECK(p.info()["inherit"] == (inherit ? "yes" : "no"));
    }
}

TEST_CASE("synchronous handle: one server message at a time", "[filterport][sync]")
{
    TempDir dir;
    Server server(dir / "P", {});
    Port p;
    REQUIRE(p.open(dir / "P", {{"sync", "false"}}).ok());
    auto before = socket_fds();
    REQUIRE(p.connect(std::nullopt, std::nullopt, {{"sync", "true"}}).ok());  // the argument overrides the option
    int fd = new_fd(before, socket_fds(), dir / "P");
    REQUIRE(fd >= 0);
    CHECK((fcntl(fd, F_GETFL) & O_NONBLOCK) == 0);  // a blocking descriptor
    CHECK(p.info()["handle"] == "sync");
    REQUIRE(server.wait_clients(1));
    CHECK(server.peers()[0].flags == DEVHOST_PORT_HELLO_SYNC);
    const uint64_t id = server.clients()[0];
    auto one = std::async(std::launch::async, [&] { return server.send(id, "one", 5000); });
    auto two = std::async(std::launch::async, [&] { return server.send(id, "two", 5000); });
    REQUIRE(p.get_message().ok());
    const std::string first = p.text();
    const uint64_t first_id = p.message_id;
    auto again = p.get_message(200);
    CHECK(again.status == DEVHOST_E_STATE);
    CHECK(again.message == "port " + (dir / "P").string() + ": synchronous handle: reply to message " +
                               std::to_string(first_id) + " before getting another");
    REQUIRE(p.reply(first_id, first + "!").ok());
    REQUIRE(p.get_message().ok());
    const std::string second = p.text();
    CHECK(std::set<std::string>{first, second} == std::set<std::string>{"one", "two"});
    REQUIRE(p.reply(p.message_id, second + "!").ok());
    CHECK(one.get().reply == "one!");
    CHECK(two.get().reply == "two!");
}

TEST_CASE("asynchronous handle: several server messages held and answered in any order", "[filterport][async]")
{
    TempDir dir;
    Server server(dir / "P", {});
    Port p;
    REQUIRE(p.open(dir / "P").ok());
    auto before = socket_fds();
    REQUIRE(p.connect().ok());
    int fd = new_fd(before, socket_fds(), dir / "P");
    REQUIRE(fd >= 0);
    CHECK((fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    CHECK(p.info()["handle"] == "async");
    REQUIRE(server.wait_clients(1));
    CHECK(server.peers()[0].flags == 0);
    const uint64_t id = server.clients()[0];
    auto a = std::async(std::launch::async, [&] { return server.send(id, "a", 5000); });
    auto b = std::async(std::launch::async, [&] { return server.send(id, "b", 5000); });
    REQUIRE(p.get_message().ok());
    auto m1 = std::make_pair(p.message_id, p.text());
    REQUIRE(p.get_message().ok());
    auto m2 = std::make_pair(p.message_id, p.text());
    CHECK(m1.first != m2.first);
    CHECK(p.info()["unanswered-messages"] == "2");
    REQUIRE(p.reply(m2.first, m2.second + "2").ok());
    REQUIRE(p.reply(m1.first, m1.second + "1").ok());
    auto ra = a.get().reply, rb = b.get().reply;
    CHECK(std::set<std::string>{ra, rb} == std::set<std::string>{m1.second + "1", m2.second + "2"});
}

TEST_CASE("requests from several devices at once get their own replies", "[filterport][request]")
{
    TempDir dir;
    Server server(dir / "P", {});
    constexpr int devices = 4, per_device = 50;
    std::vector<std::future<int>> results;
    for (int d = 0; d < devices; d++)
        results.push_back(std::async(std::launch::async, [&, d] {
            Port p("port" + std::to_string(d));
            if (!p.open(dir / "P").ok() || !p.connect().ok())
                return -1;
            int good = 0;
            for (int k = 0; k < per_device; k++) {
                std::string msg = "device " + std::to_string(d) + " request " + std::to_string(k);
                good += p.request(msg).ok() && p.text() == msg;
            }
            return good;
        }));
    for (auto &r : results)
        CHECK(r.get() == per_device);
}

TEST_CASE("get-message and reply: ids are checked", "[filterport][reply]")
{
    TempDir dir;
    Server server(dir / "P", {});
    Port p;
    REQUIRE(p.open(dir / "P").ok());
    REQUIRE(p.connect().ok());
    REQUIRE(server.wait_clients(1));
    const uint64_t id = server.clients()[0];
    auto unknown = p.reply(99, "x");
    CHECK(unknown.status == DEVHOST_E_INVALID);
    CHECK(unknown.message == "port " + (dir / "P").string() + ": no message with id 99 was received (get-message first)");

    auto sent = std::async(std::launch::async, [&] { return server.send(id, "verdict?", 5000); });
    REQUIRE(p.get_message().ok());
    CHECK(p.text() == "verdict?");
    const uint64_t mid = p.message_id;
    CHECK(mid != 0);
    REQUIRE(p.reply(mid, "allow").ok());
    CHECK(sent.get().reply == "allow");
    auto twice = p.reply(mid, "deny");
    CHECK(twice.status == DEVHOST_E_INVALID);
    CHECK(twice.message == "port " + (dir / "P").string() + ": message " + std::to_string(mid) + " was already answered");

    SECTION("a message larger than the buffer stays queued")
    {
        auto big = std::async(std::launch::async, [&] { return server.send(id, "0123456789", 5000); });
        auto small = p.get_message(3000, 4);
        CHECK(small.status == DEVHOST_E_INVALID);
        CHECK(small.message.find("does not fit the buffer of 4 (it stays queued)") != std::string::npos);
        REQUIRE(p.get_message(3000, 64).ok());
        CHECK(p.text() == "0123456789");
        REQUIRE(p.reply(p.message_id, "ok").ok());
        CHECK(big.get().status == DEVHOST_OK);
    }
}

TEST_CASE("deadlines: get-message, request to a slow server, and the stale response", "[filterport][timeout]")
{
    TempDir dir;
    Child echo({(devhost::test::bin_dir() / "devhost-vdev").string(), "filterport-echo", "--port-dir=" + dir.path().string(),
                "--port=Slow", "--delay=400ms"},
               dir.path());
    REQUIRE(echo.wait_for_output("READY", 10s));
    Port p;
    REQUIRE(p.open(dir / "Slow").ok());
    REQUIRE(p.connect().ok());
    auto none = p.get_message(100);
    CHECK(none.status == DEVHOST_E_TIMEOUT);
    CHECK(none.message == "port " + (dir / "Slow").string() + ": no message from the server in time");
    auto slow = p.request("first", 50);
    CHECK(slow.status == DEVHOST_E_TIMEOUT);
    CHECK(slow.message == "port " + (dir / "Slow").string() + ": no response to request 1 in time");
    // The response to "first" arrives later and is dropped, not taken as
    // the response to "second".
    REQUIRE(p.request("second", 5000).ok());
    CHECK(p.text() == "second");
}

TEST_CASE("removal: the server killed mid-request fails this and later transfers", "[filterport][removed]")
{
    TempDir dir;
    Child echo({(devhost::test::bin_dir() / "devhost-vdev").string(), "filterport-echo", "--port-dir=" + dir.path().string(),
                "--port=Doomed", "--delay=30s"},
               dir.path());
    REQUIRE(echo.wait_for_output("READY", 10s));
    Port p;
    REQUIRE(p.open(dir / "Doomed").ok());
    REQUIRE(p.connect().ok());
    REQUIRE(echo.wait_for_output("client 1 connected", 5s));
    auto requesting = start_waiting([&] { return p.request("are you there?", 20000); });
    echo.signal(SIGKILL);  // while the request waits for its response
    auto r = requesting.get();
    CHECK(r.status == DEVHOST_E_REMOVED);
    CHECK(r.message == "port " + (dir / "Doomed").string() + ": the server went away");
    CHECK(p.get_message(100).status == DEVHOST_E_REMOVED);
    CHECK(p.request("again", 100).status == DEVHOST_E_REMOVED);
    CHECK(p.reply(1, "x").status == DEVHOST_E_REMOVED);
    CHECK(p.dev.disconnect().ok());
    CHECK(p.dev.close().ok());
}

TEST_CASE("removal: the port closing ends a waiting get-message with E_REMOVED", "[filterport][removed]")
{
    TempDir dir;
    auto server = std::make_unique<Server>(dir / "P", Server::Options{});
    Port p;
    REQUIRE(p.open(dir / "P").ok());
    REQUIRE(p.connect().ok());
    REQUIRE(server->wait_clients(1));
    auto waiting = start_waiting([&] { return p.get_message(20000); });
    server.reset();  // while get-message waits
    auto r = waiting.get();
    CHECK(r.status == DEVHOST_E_REMOVED);
}

TEST_CASE("cancel ends a waiting transfer with E_CANCELLED", "[filterport][cancel]")
{
    TempDir dir;
    Server server(dir / "P", {});
    Port p;
    REQUIRE(p.open(dir / "P").ok());
    REQUIRE(p.connect().ok());
    auto waiting = start_waiting([&] { return p.get_message(-1); });
    p.dev.cancel();  // while get-message waits
    auto r = waiting.get();
    CHECK(r.status == DEVHOST_E_CANCELLED);
}

namespace {

// A hand-written server: accepts one client, answers its HELLO, then runs
// `script` on the connection.
struct RawServer {
    int listen_fd = -1, fd = -1;
    std::thread thread;
    RawServer(const fs::path &path, std::function<void(int)> script)
    {
        listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
        if (bind(listen_fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 || listen(listen_fd, 4) != 0)
            throw std::runtime_error("raw server: bind/listen failed");
        thread = std::thread([this, script] {
            fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
            uint8_t buf[70000];
            recv(fd, buf, sizeof buf, 0);  // HELLO
            auto w = encode(DEVHOST_PORT_FRAME_WELCOME, 0, "");
            send(fd, w.data(), w.size(), MSG_NOSIGNAL);
            script(fd);
        });
    }
    // The next frame the client sent, as raw bytes.
    static std::vector<uint8_t> next(int fd)
    {
        std::vector<uint8_t> buf(70000);
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0)
            return {};
        ssize_t n = recv(fd, buf.data(), buf.size(), 0);
        buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
        return buf;
    }
    ~RawServer()
    {
        if (thread.joinable())
            thread.join();
        if (fd >= 0)
            close(fd);
        close(listen_fd);
    }
};

}  // namespace

TEST_CASE("malformed frames from the server: E_PROTOCOL, an ERROR frame back, the connection closed",
          "[filterport][malformed]")
{
    TempDir dir;
    struct Case {
        std::string name;
        std::vector<uint8_t> frame;
        std::string message;
    };
    auto wrong_version = encode(DEVHOST_PORT_FRAME_RESPONSE, 1, "x");
    wrong_version[0] = 3;
    std::vector<Case> cases = {
        {"short", {1, 4, 0, 0}, "malformed frame from the server: short frame: 4 bytes, the header is 20"},
        {"version", wrong_version, "malformed frame from the server: wrong protocol version 3 (expected 1)"},
        {"unknown id", encode(DEVHOST_PORT_FRAME_RESPONSE, 99, "x"), "RESPONSE to unknown request id 99"},
        {"server sends REQUEST", encode(DEVHOST_PORT_FRAME_REQUEST, 1, "x"), "a server may not send REQUEST"},
        {"oversized", encode(DEVHOST_PORT_FRAME_RESPONSE, 1, std::string(100, 'x')),
         "malformed frame from the server: oversized RESPONSE frame: payload of 100 bytes, the bound is 64"},
    };
    int n = 0;
    for (const auto &c : cases) {
        INFO(c.name);
        const fs::path path = dir / ("raw" + std::to_string(n++));
        std::vector<uint8_t> client_error;
        RawServer server(path, [&](int fd) {
            RawServer::next(fd);  // the REQUEST
            send(fd, c.frame.data(), c.frame.size(), MSG_NOSIGNAL);
            client_error = RawServer::next(fd);
        });
        Port p;
        REQUIRE(p.open(path, {{"max-message", "64"}}).ok());
        REQUIRE(p.connect().ok());
        auto r = p.request("hello");
        CHECK(r.status == DEVHOST_E_PROTOCOL);
        CHECK(r.message == "port " + path.string() + ": " + c.message);
        CHECK(p.request("again").status == DEVHOST_E_PROTOCOL);
        server.thread.join();
        devhost_port_frame f;
        REQUIRE(devhost_port_frame_decode(client_error.data(), client_error.size(), 1000, &f, nullptr, 0) == DEVHOST_OK);
        CHECK(f.type == DEVHOST_PORT_FRAME_ERROR);
        CHECK(p.info()["connected"] == "no");  // the client's socket is closed
    }
}

TEST_CASE("info reports the port, the handle and the server", "[filterport][info]")
{
    TempDir dir;
    Server server(dir / "P", {});
    Port p;
    REQUIRE(p.open(dir / "P", {{"max-message", "1024"}}).ok());
    REQUIRE(p.connect().ok());
    auto info = p.info();
    CHECK(info["path"] == (dir / "P").string());
    CHECK(info["connected"] == "yes");
    CHECK(info["handle"] == "async");
    CHECK(info["max-message"] == "1024");
    CHECK(info["server-pid"] == std::to_string(getpid()));
    CHECK(info["server-uid"] == std::to_string(getuid()));
    CHECK(info["queued-messages"] == "0");
}
