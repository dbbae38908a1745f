// libdevhost-port on its own, driven by raw socket clients: connect with a
// context, limits, refusals, credentials, malformed frames, messages from the
// server with timeouts, removal and close.
#include "port_test_util.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>

using namespace porttest;
using devhost::test::TempDir;

TEST_CASE("a client connects with its context and its requests are answered by id", "[port]")
{
    TempDir dir;
    Server server(dir / "P", {});
    REQUIRE(server.status() == DEVHOST_OK);
    RawClient c(dir / "P");
    auto w = c.hello("ctx-bytes");
    REQUIRE(w);
    CHECK(w->type == DEVHOST_PORT_FRAME_WELCOME);
    CHECK(w->status == DEVHOST_OK);
    REQUIRE(server.contexts() == std::vector<std::string>{"ctx-bytes"});
    REQUIRE(server.peers().size() == 1);
    CHECK(server.peers()[0].pid == getpid());
    CHECK(server.peers()[0].uid == getuid());
    REQUIRE(c.send(DEVHOST_PORT_FRAME_REQUEST, 5, "abc"));
    auto r = c.recv();
    REQUIRE(r);
    CHECK(r->type == DEVHOST_PORT_FRAME_RESPONSE);
    CHECK(r->id == 5);
    CHECK(r->payload == "abc");
    CHECK(server.clients().size() == 1);
}

TEST_CASE("a request the server's callback fails carries the status and message", "[port]")
{
    TempDir dir;
    Server::Options o;
    o.on_message = [](uint64_t, const std::string &in, std::string &out) {
        if (in == "bad") {
            out = "bad is not a command";
            return DEVHOST_E_INVALID;
        }
        out = in;
        return DEVHOST_OK;
    };
    Server server(dir / "P", o);
    RawClient c(dir / "P");
    REQUIRE(c.hello());
    c.send(DEVHOST_PORT_FRAME_REQUEST, 1, "bad");
    auto r = c.recv();
    REQUIRE(r);
    CHECK(r->status == DEVHOST_E_INVALID);
    CHECK(r->payload == "bad is not a command");
}

TEST_CASE("many requests in flight from several clients get replies matched by id", "[port]")
{
    TempDir dir;
    Server server(dir / "P", {});
    constexpr int clients = 4, per_client = 64;
    std::vector<std::future<int>> results;
    for (int i = 0; i < clients; i++) {
        results.push_back(std::async(std::launch::async, [&, i] {
            RawClient c(dir / "P");
            if (!c.hello())
                return -1;
            // All requests go out before any response is read.
            for (int k = 0; k < per_client; k++)
                c.send(DEVHOST_PORT_FRAME_REQUEST, 1000u * i + k, "c" + std::to_string(i) + "-" + std::to_string(k));
            int matched = 0;
            for (int k = 0; k < per_client; k++) {
                auto r = c.recv();
                if (!r || r->type != DEVHOST_PORT_FRAME_RESPONSE)
                    return -2;
                uint64_t n = r->id - 1000u * i;
                matched += r->payload == "c" + std::to_string(i) + "-" + std::to_string(n);
            }
            return matched;
        }));
    }
    for (auto &r : results)
        CHECK(r.get() == per_client);
}

TEST_CASE("the port refuses clients over its maximum of connections", "[port]")
{
    TempDir dir;
    Server::Options o;
    o.max_connections = 2;
    Server server(dir / "P", o);
    auto a = std::make_unique<RawClient>(dir / "P");
    RawClient b(dir / "P");
    REQUIRE(a->hello()->status == DEVHOST_OK);
    REQUIRE(b.hello()->status == DEVHOST_OK);
    RawClient c(dir / "P");
    auto w = c.hello();
    REQUIRE(w);
    CHECK(w->status == DEVHOST_E_BUSY);
    CHECK(w->payload == "port " + (dir / "P").string() + " is full: it already has its maximum of 2 connections");
    CHECK(c.closed());
    a.reset();
    REQUIRE(server.wait_clients(1));
    RawClient d(dir / "P");
    CHECK(d.hello()->status == DEVHOST_OK);
}

TEST_CASE("the connect callback refuses with a status and message the client receives", "[port]")
{
    TempDir dir;
    Server::Options o;
    o.on_connect = [](uint64_t, const devhost_port_peer &, const std::string &ctx, std::string &why) {
        if (ctx == "key")
            return DEVHOST_OK;
        why = "context '" + ctx + "' is not the key";
        return DEVHOST_E_ACCESS;
    };
    Server server(dir / "P", o);
    RawClient bad(dir / "P");
    auto w = bad.hello("nope");
    REQUIRE(w);
    CHECK(w->status == DEVHOST_E_ACCESS);
    CHECK(w->payload == "context 'nope' is not the key");
    CHECK(bad.closed());
    RawClient good(dir / "P");
    CHECK(good.hello("key")->status == DEVHOST_OK);
    CHECK(server.disconnected().empty());  // a refused client was never connected
}

namespace {

// Forks a child that drops to nobody, connects and says HELLO. Its exit code:
// 0 welcomed, -status when refused, 100 connect failed (EACCES), 101 other.
int connect_as_nobody(const fs::path &path)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(102);
        int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
        if (connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0)
            _exit(errno == EACCES ? 100 : 101);
        uint8_t hello[DEVHOST_PORT_HEADER_SIZE];
        devhost_port_frame_encode(hello, sizeof hello, DEVHOST_PORT_FRAME_HELLO, 0, 0, 0, nullptr, 0);
        if (send(fd, hello, sizeof hello, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof hello))
            _exit(101);
        uint8_t buf[1024];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        devhost_port_frame f;
        if (n <= 0 || devhost_port_frame_decode(buf, static_cast<size_t>(n), 1000, &f, nullptr, 0) != DEVHOST_OK)
            _exit(101);
        _exit(-f.status);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("credentials: a client under another uid is refused, checked on every connect", "[port][uid]")
{
    if (getuid() != 0) {
        DEVHOST_SKIP("dropping to nobody needs root");
    }
    TempDir dir;
    chmod(dir.path().c_str(), 0755);
    Server::Options only_root;
    only_root.mode = 0666;
    only_root.uids = {0};
    Server server(dir / "P", only_root);
    CHECK(connect_as_nobody(dir / "P") == -DEVHOST_E_ACCESS);
    auto log = server.log();
    REQUIRE(!log.empty());
    CHECK(log.back().find("uid 65534 gid 65534 is not allowed to connect to port") != std::string::npos);
    CHECK(server.contexts().empty());  // the connect callback never ran
    RawClient root(dir / "P");
    CHECK(root.hello()->status == DEVHOST_OK);

    SECTION("a gid in the list admits the client")
    {
        Server::Options by_gid;
        by_gid.mode = 0666;
        by_gid.gids = {65534};
        Server g(dir / "G", by_gid);
        CHECK(connect_as_nobody(dir / "G") == 0);
    }
    SECTION("the socket file's mode keeps others out before credentials are looked at")
    {
        Server::Options closed;
        closed.mode = 0600;
        Server m(dir / "M", closed);
        CHECK(connect_as_nobody(dir / "M") == 100);
    }
}

TEST_CASE("malformed frames are refused with a clear error and the connection closed", "[port][malformed]")
{
    TempDir dir;
    Server::Options o;
    o.max_message_size = 16;
    Server server(dir / "P", o);
    auto expect_refusal = [&](const std::function<void(RawClient &)> &act, const std::string &why, bool hello = true) {
        RawClient c(dir / "P");
        if (hello)
            REQUIRE(c.hello()->status == DEVHOST_OK);
        act(c);
        auto e = c.recv();
        REQUIRE(e);
        CHECK(e->type == DEVHOST_PORT_FRAME_ERROR);
        CHECK(e->status == DEVHOST_E_PROTOCOL);
        CHECK(e->payload == why);
        CHECK(c.closed());
    };
    expect_refusal([](RawClient &c) { c.send_raw({1, 3, 0}); }, "short frame: 3 bytes, the header is 20");
    expect_refusal(
        [](RawClient &c) {
            auto f = encode(DEVHOST_PORT_FRAME_REQUEST, 1, "x");
            f[0] = 7;
            c.send_raw(f);
        },
        "wrong protocol version 7 (expected 1)");
    expect_refusal(
        [](RawClient &c) {
            auto f = encode(DEVHOST_PORT_FRAME_REQUEST, 1, "x");
            f[1] = 42;
            c.send_raw(f);
        },
        "unknown frame type 42");
    expect_refusal([](RawClient &c) { c.send(DEVHOST_PORT_FRAME_REQUEST, 1, std::string(17, 'o')); },
                   "oversized REQUEST frame: payload of 17 bytes, the bound is 16");
    expect_refusal([](RawClient &c) { c.send_raw(std::vector<uint8_t>(70000, 1)); },
                   "oversized frame: 70000 bytes, the bound is 65556");
    expect_refusal(
        [](RawClient &c) {
            auto f = encode(DEVHOST_PORT_FRAME_REQUEST, 1, "abc");
            f[16] = 9;
            c.send_raw(f);
        },
        "REQUEST frame length field says 9 bytes but 3 follow the header");
    expect_refusal([](RawClient &c) { c.send(DEVHOST_PORT_FRAME_REPLY, 77, "late?"); },
                   "REPLY to unknown message id 77");
    expect_refusal([](RawClient &c) { c.send(DEVHOST_PORT_FRAME_REQUEST, 1, "hi"); }, "expected HELLO first, got REQUEST",
                   false);
    expect_refusal([](RawClient &c) { c.send(DEVHOST_PORT_FRAME_HELLO, 0, ""); }, "second HELLO on a connected client");
    expect_refusal([](RawClient &c) { c.send(DEVHOST_PORT_FRAME_RESPONSE, 1, ""); }, "a client may not send RESPONSE");

    // The port still serves well-behaved clients.
    RawClient ok(dir / "P");
    REQUIRE(ok.hello()->status == DEVHOST_OK);
    ok.send(DEVHOST_PORT_FRAME_REQUEST, 9, "fine");
    CHECK(ok.recv()->payload == "fine");
}

TEST_CASE("the server sends a message and gets its reply, with a timeout", "[port][send]")
{
    TempDir dir;
    Server server(dir / "P", {});
    RawClient c(dir / "P");
    REQUIRE(c.hello()->status == DEVHOST_OK);
    REQUIRE(server.wait_clients(1));
    const uint64_t client = server.clients()[0];

    auto sent = std::async(std::launch::async, [&] { return server.send(client, "question", 5000); });
    auto m = c.recv();
    REQUIRE(m);
    CHECK(m->type == DEVHOST_PORT_FRAME_MESSAGE);
    CHECK(m->payload == "question");
    c.send(DEVHOST_PORT_FRAME_REPLY, m->id, "answer");
    auto r = sent.get();
    CHECK(r.status == DEVHOST_OK);
    CHECK(r.reply == "answer");

    SECTION("no reply in time is E_TIMEOUT, and the late reply is dropped without closing")
    {
        auto t = server.send(client, "slow", 100);
        CHECK(t.status == DEVHOST_E_TIMEOUT);
        CHECK(t.message == "client " + std::to_string(client) + " of port " + (dir / "P").string() +
                               " did not reply in time");
        auto late = c.recv();
        REQUIRE(late);
        c.send(DEVHOST_PORT_FRAME_REPLY, late->id, "too late");
        c.send(DEVHOST_PORT_FRAME_REQUEST, 3, "still there?");
        auto resp = c.recv();
        REQUIRE(resp);
        CHECK(resp->payload == "still there?");
    }
    SECTION("a reply over the caller's capacity is E_INVALID with the first bytes kept")
    {
        auto big = std::async(std::launch::async, [&] { return server.send(client, "q", 5000, 4); });
        auto q = c.recv();
        c.send(DEVHOST_PORT_FRAME_REPLY, q->id, "123456");
        auto b = big.get();
        CHECK(b.status == DEVHOST_E_INVALID);
        CHECK(b.reply == "1234");
    }
    SECTION("an unknown client is E_NOT_FOUND; a message over the bound is E_INVALID")
    {
        CHECK(server.send(client + 100, "x", 100).status == DEVHOST_E_NOT_FOUND);
        CHECK(server.send(client, std::string(DEVHOST_PORT_MAX_PAYLOAD + 1, 'x'), 100).status == DEVHOST_E_INVALID);
    }
}

TEST_CASE("send from a port callback is refused with E_STATE", "[port][send]")
{
    TempDir dir;
    std::atomic<devhost_port *> port{nullptr};
    std::atomic<int> seen{1};
    Server::Options o;
    o.on_message = [&](uint64_t id, const std::string &, std::string &out) {
        char buf[8];
        size_t len;
        devhost_error err{};
        err.struct_size = sizeof err;
        seen = devhost_port_send(port.load(), id, "x", 1, buf, sizeof buf, &len, 100, &err);
        out = err.message;
        return DEVHOST_OK;
    };
    Server server(dir / "P", o);
    port = server.port();
    RawClient c(dir / "P");
    REQUIRE(c.hello()->status == DEVHOST_OK);
    c.send(DEVHOST_PORT_FRAME_REQUEST, 1, "go");
    auto r = c.recv();
    REQUIRE(r);
    CHECK(seen == DEVHOST_E_STATE);
    CHECK(r->payload == "devhost_port_send called from a port callback (it would wait on itself)");
}

TEST_CASE("a client with a synchronous handle gets one message at a time", "[port][sync]")
{
    TempDir dir;
    Server server(dir / "P", {});
    RawClient c(dir / "P");
    REQUIRE(c.hello("", DEVHOST_PORT_HELLO_SYNC)->status == DEVHOST_OK);
    REQUIRE(server.wait_clients(1));
    CHECK(server.peers()[0].flags == DEVHOST_PORT_HELLO_SYNC);
    const uint64_t id = server.clients()[0];
    auto first = std::async(std::launch::async, [&] { return server.send(id, "one", 5000); });
    auto m1 = c.recv();
    REQUIRE(m1);
    auto second = std::async(std::launch::async, [&] { return server.send(id, "two", 5000); });
    CHECK_FALSE(c.recv(200ms));  // held back until "one" is answered
    c.send(DEVHOST_PORT_FRAME_REPLY, m1->id, "1");
    auto m2 = c.recv();
    REQUIRE(m2);
    CHECK(m2->payload == (m1->payload == "one" ? "two" : "one"));
    c.send(DEVHOST_PORT_FRAME_REPLY, m2->id, "2");
    CHECK(first.get().status == DEVHOST_OK);
    CHECK(second.get().status == DEVHOST_OK);
}

TEST_CASE("an asynchronous client may hold several messages and answer in any order", "[port][async]")
{
    TempDir dir;
    Server server(dir / "P", {});
    RawClient c(dir / "P");
    REQUIRE(c.hello()->status == DEVHOST_OK);
    REQUIRE(server.wait_clients(1));
    const uint64_t id = server.clients()[0];
    auto a = std::async(std::launch::async, [&] { return server.send(id, "a", 5000); });
    auto b = std::async(std::launch::async, [&] { return server.send(id, "b", 5000); });
    auto m1 = c.recv(), m2 = c.recv();
    REQUIRE(m1);
    REQUIRE(m2);
    c.send(DEVHOST_PORT_FRAME_REPLY, m2->id, m2->payload + "!");
    c.send(DEVHOST_PORT_FRAME_REPLY, m1->id, m1->payload + "!");
    CHECK(a.get().reply == "a!");
    CHECK(b.get().reply == "b!");
}

TEST_CASE("a client that goes away fails its pending message with E_REMOVED and runs disconnect", "[port][removal]")
{
    TempDir dir;
    Server server(dir / "P", {});
    auto c = std::make_unique<RawClient>(dir / "P");
    REQUIRE(c->hello()->status == DEVHOST_OK);
    REQUIRE(server.wait_clients(1));
    const uint64_t id = server.clients()[0];
    auto pending = std::async(std::launch::async, [&] { return server.send(id, "q", 10000); });
    REQUIRE(c->recv());
    c.reset();
    auto r = pending.get();
    CHECK(r.status == DEVHOST_E_REMOVED);
    CHECK(r.message == "client " + std::to_string(id) + " went away before replying");
    REQUIRE(server.wait_clients(0));
    // The callback runs just after the client leaves the list: wait for it.
    for (int i = 0; i < 500 && server.disconnected().empty(); i++)
        usleep(2000);
    CHECK(server.disconnected() == std::vector<uint64_t>{id});
}

TEST_CASE("closing the port disconnects every client and removes the socket", "[port][close]")
{
    TempDir dir;
    Server server(dir / "P", {});
    RawClient a(dir / "P"), b(dir / "P"), c(dir / "P");
    for (RawClient *x : {&a, &b, &c})
        REQUIRE(x->hello()->status == DEVHOST_OK);
    REQUIRE(server.wait_clients(3));
    const uint64_t first = server.clients()[0];
    auto pending = std::async(std::launch::async, [&] { return server.send(first, "q", 10000); });
    REQUIRE(a.recv());
    server.close();
    CHECK(pending.get().status == DEVHOST_E_REMOVED);
    CHECK(a.closed());
    CHECK(b.closed());
    CHECK(c.closed());
    CHECK(server.disconnected().size() == 3);
    CHECK_FALSE(fs::exists(dir / "P"));
}

TEST_CASE("create: the socket's mode, a busy path, a stale socket, a non-socket, a missing directory", "[port][create]")
{
    TempDir dir;
    Server::Options o;
    o.mode = 0640;
    Server server(dir / "P", o);
    REQUIRE(server.status() == DEVHOST_OK);
    struct stat st;
    REQUIRE(stat((dir / "P").c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 07777) == 0640);

    Server again(dir / "P", {});
    CHECK(again.status() == DEVHOST_E_BUSY);
    CHECK(again.error() == "port " + (dir / "P").string() + " is already served by another server");

    devhost::test::write_file(dir / "file", "x");
    Server file(dir / "file", {});
    CHECK(file.status() == DEVHOST_E_INVALID);
    CHECK(file.error() == "port path " + (dir / "file").string() + " exists and is not a socket");

    {
        // A socket left behind by a server that died.
        int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, (dir / "stale").c_str(), sizeof a.sun_path - 1);
        REQUIRE(bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
        close(fd);
    }
    Server stale(dir / "stale", {});
    CHECK(stale.status() == DEVHOST_OK);

    Server missing(dir / "no-such-dir" / "P", {});
    CHECK(missing.status() == DEVHOST_E_NOT_FOUND);
    Server long_path(dir / std::string(120, 'x'), {});
    CHECK(long_path.status() == DEVHOST_E_INVALID);
}
