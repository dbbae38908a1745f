// devhost serve's control API (issue 19) over real Unix sockets: a real
// control::Server over a scripted Handler (control_test_server, or one in
// this process), the devhost binary's clients (status, call, reset,
// reload, monitor) against it, raw clients sending bad frames, a monitor
// that does not read, the socket's file (mode, owner, directory, a live or
// stale one in its place), and clients of another uid (setpriv) refused.
#include "config.hpp"
#include "control_server.hpp"
#include "control_wire.hpp"
#include "devhost_test.hpp"
#include "common/text.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <csignal>
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sstream>
#include <thread>
#include <unistd.h>

using namespace devhost;
using namespace devhost::test;
using nlohmann::json;

namespace {

const char *const server_exe = DEVHOST_CONTROL_TEST_SERVER;

// control_test_server in the background: its stdin a pipe the test writes
// ("publish JSON"), its end closing that pipe.
class TestServer {
public:
    TestServer(const fs::path &socket, const fs::path &dir, std::vector<std::string> args = {},
               mode_t umask_value = 022)
    {
        int p[2];
        REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
        in_ = p[1];
        const int read_end = p[0];
        std::vector<std::string> argv{server_exe, socket.string()};
        argv.insert(argv.end(), args.begin(), args.end());
        ProcessOptions options;
        options.before_exec = [read_end, umask_value] {
            ::dup2(read_end, 0);
            ::umask(umask_value);
        };
        child_ = std::make_unique<Child>(argv, dir, options);
        ::close(read_end);
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (out().find("ready") == std::string::npos && out().find("error:") == std::string::npos &&
               std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(5ms);
    }
    ~TestServer() { stop(); }
    bool ready() const { return child_->out().find("ready") != std::string::npos; }
    void send(const std::string &line) { REQUIRE(::write(in_, (line + "\n").data(), line.size() + 1) > 0); }
    ProcessResult stop()
    {
        if (in_ >= 0)
            ::close(std::exchange(in_, -1));
        return child_->wait(10s);
    }
    std::string out() const { return child_->out(); }
    std::string err() const { return child_->err(); }
    pid_t pid() const { return child_->pid(); }

private:
    int in_ = -1;
    std::unique_ptr<Child> child_;
};

ProcessResult devhost_at(const fs::path &socket, std::vector<std::string> args)
{
    args.insert(args.begin(), {"--socket", socket.string()});
    return run_devhost(args, ProcessOptions{10s});
}

// A raw client: the bytes sent, every reply until the server closes.
int connect_to(const fs::path &socket)
{
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
    return fd;
}

void send_all(int fd, const std::string &bytes)
{
    size_t sent = 0;
    while (sent < bytes.size()) {
        ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0)
            return;  // the server may close early on a frame too long
        sent += static_cast<size_t>(n);
    }
}

// Replies read until `count` came (0: until the server closes), each within 5 s.
std::vector<json> replies(int fd, size_t count = 0, bool *closed = nullptr)
{
    std::vector<json> out;
    control::FrameReader reader(control::max_reply);
    for (;;) {
        while (auto frame = reader.next())
            out.push_back(json::parse(*frame));
        if (count && out.size() >= count)
            return out;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 5000) != 1)
            return out;
        char buf[65536];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) {
            if (closed)
                *closed = true;
            return out;
        }
        reader.feed(buf, static_cast<size_t>(n));
    }
}

std::string unescape_frame(const std::string &field)
{
    std::string out;
    for (size_t i = 0; i < field.size(); i++) {
        if (field.compare(i, 2, "\\0") == 0) {
            out.push_back('\0');
            i++;
        } else if (field.compare(i, 5, "{big}") == 0) {
            out += std::string(70000, 'x');
            i += 4;
        } else {
            out.push_back(field[i]);
        }
    }
    return out;
}

// A directory others may traverse (nobody must reach the socket to be
// refused by it, not by the directory).
fs::path open_dir(const TempDir &tmp)
{
    ::chmod(tmp.path().c_str(), 0755);
    return tmp.path();
}

std::vector<std::string> as_nobody(std::vector<std::string> argv, const std::string &groups = "")
{
    argv.insert(argv.begin(), {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534"});
    argv.insert(argv.begin() + 3, groups.empty() ? "--clear-groups" : "--groups=" + groups);
    return argv;
}

}  // namespace

TEST_CASE("status lists the devices as a table and as JSON")
{
    TempDir tmp;
    const fs::path socket = tmp / "control";
    TestServer server(socket, tmp.path());
    REQUIRE(server.ready());
    auto r = devhost_at(socket, {"status"});
    CHECK(r.exit_code == 0);
    CHECK(r.err == "");
    CHECK(r.out ==
          "DEVICE   CLASS     STATE   GEN  LAST SUCCESS          OK  FAILED  SKIPPED  MESSAGE\n"
          "scale    serial    idle    3    2026-11-30T12:00:00Z  41  2       1        -\n"
          "printer  parallel  failed  1    -                     0   5       0        restart budget spent\n"
          "slow     loop      idle    1    -                     0   0       0        -\n");
    r = devhost_at(socket, {"status", "--json"});
    CHECK(r.exit_code == 0);
    json j = json::parse(r.out);
    REQUIRE(j["devices"].size() == 3);
    CHECK(j["devices"][0]["device"] == "scale");
    CHECK(j["devices"][0]["last_success"] == "2026-11-30T12:00:00Z");
    CHECK(j["devices"][1]["last_success"].is_null());
    CHECK(j["devices"][1]["state"] == "failed");
}

TEST_CASE("call prints the body's records and fails with it: reset and reload answer")
{
    TempDir tmp;
    const fs::path socket = tmp / "control";
    TestServer server(socket, tmp.path());
    REQUIRE(server.ready());
    auto r = devhost_at(socket, {"call", "scale"});
    CHECK(r.exit_code == 0);
    REQUIRE(lines(r.out).size() == 2);
    CHECK(json::parse(lines(r.out)[0])["step"] == "read");
    CHECK(json::parse(lines(r.out)[1])["step"] == "write");

    r = devhost_at(socket, {"call", "printer"});
    CHECK(r.exit_code == 1);
    CHECK(json::parse(r.out)["code"] == -5);
    CHECK(r.err == "devhost: error: call printer: 1 step(s) failed\n");

    const auto start = std::chrono::steady_clock::now();
    r = devhost_at(socket, {"call", "slow"});  // its reply comes from the loop 300 ms later
    CHECK(r.exit_code == 0);
    CHECK(elapsed_ms(start) >= 300);
    CHECK(json::parse(r.out)["device"] == "slow");

    for (const char *cmd : {"call", "reset"}) {
        r = devhost_at(socket, {cmd, "nosuch"});
        CHECK(r.exit_code == 7);
        CHECK(r.err == "devhost: error: no device 'nosuch' is served (see devhost status)\n");
    }

    r = devhost_at(socket, {"reset", "scale"});
    CHECK(r.exit_code == 1);
    CHECK(r.err == "devhost: error: reset: scale is not failed\n");
    r = devhost_at(socket, {"reset", "printer"});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "printer: reset\n");
    CHECK(json::parse(devhost_at(socket, {"status", "--json"}).out)["devices"][1]["state"] == "setup");

    r = devhost_at(socket, {"reload"});
    CHECK(r.exit_code == 0);
    CHECK(r.out == "reloaded\n");
    TempDir tmp2;
    TestServer failing(tmp2 / "control", tmp2.path(), {"--reload-fails"});
    REQUIRE(failing.ready());
    r = devhost_at(tmp2 / "control", {"reload"});
    CHECK(r.exit_code == 1);
    CHECK(r.err == "devhost: error: reload: /etc/devhost/devhost.ini:3: [host] bogus: unknown key\n");
}

TEST_CASE("monitor streams the states then each event until serve stops")
{
    TempDir tmp;
    const fs::path socket = tmp / "control";
    TestServer server(socket, tmp.path());
    REQUIRE(server.ready());
    Child text({devhost_exe().string(), "--socket", socket.string(), "monitor"}, tmp.path());
    Child as_json({devhost_exe().string(), "--socket", socket.string(), "monitor", "--json"}, tmp.path());
    REQUIRE(text.wait_for_output("slow: idle (generation 1)\n", 10s));
    REQUIRE(as_json.wait_for_output("\"devices\"", 10s));
    server.send(R"(publish {"event":"state","device":"scale","state":"waiting-for-device","generation":3,"message":"removed"})");
    server.send(R"(publish {"event":"record","record":{"device":"scale","step":"read","code":0}})");
    REQUIRE(text.wait_for_output("\"step\":\"read\"", 10s));
    REQUIRE(as_json.wait_for_output("\"step\":\"read\"", 10s));
    CHECK(text.out() ==
          "scale: idle (generation 3)\n"
          "printer: failed (generation 1)\n"
          "slow: idle (generation 1)\n"
          "scale: waiting-for-device (generation 3): removed\n"
          "{\"code\":0,\"device\":\"scale\",\"step\":\"read\"}\n");
    auto js = lines(as_json.out());
    REQUIRE(js.size() == 3);
    CHECK(json::parse(js[0])["devices"].size() == 3);
    CHECK(json::parse(js[1])["state"] == "waiting-for-device");
    CHECK(json::parse(js[2])["record"]["step"] == "read");
    Child stopped({devhost_exe().string(), "--socket", socket.string(), "monitor"}, tmp.path());
    REQUIRE(stopped.wait_for_output("slow: idle", 10s));
    stopped.signal(SIGINT);
    auto s = stopped.wait(10s);
    CHECK(s.exit_code == 0);  // interrupted: the end a monitor expects
    CHECK(s.err == "");
    server.stop();
    auto r = text.wait(10s);
    CHECK(r.exit_code == 1);
    CHECK(r.err == "devhost: error: devhost serve closed the connection on " + socket.string() + "\n");
    CHECK(as_json.wait(10s).exit_code == 1);
}

TEST_CASE("no server: exit 5 with what is missing")
{
    TempDir tmp;
    auto r = devhost_at(tmp / "control", {"status"});
    CHECK(r.exit_code == 5);
    CHECK(r.err == "devhost: error: devhost serve is not running (no socket at " + (tmp / "control").string() + ")\n");
    {  // a dead server's socket: nothing listens
        TestServer server(tmp / "control", tmp.path());
        REQUIRE(server.ready());
    }
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, (tmp / "stale").c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
    ::close(fd);
    r = devhost_at(tmp / "stale", {"reload"});
    CHECK(r.exit_code == 5);
    CHECK(r.err == "devhost: error: devhost serve is not running (nothing listens on " + (tmp / "stale").string() + ")\n");
    CHECK(!fs::exists(tmp / "control"));  // the server removed its socket when it stopped
}

TEST_CASE("bad frames get an error reply naming what was wrong and the connection is closed")
{
    TempDir tmp;
    const fs::path socket = tmp / "control";
    TestServer server(socket, tmp.path());
    REQUIRE(server.ready());
    const std::string table = read_file(source_dir() / "tests/bad-inputs/control-frames.tsv");
    int rows = 0;
    for (const auto &line : lines(table)) {
        if (line.empty() || line[0] == '#')
            continue;
        const auto cols = text::split(line, '\t');
        REQUIRE(cols.size() == 3);
        INFO("frame: " << cols[0]);
        int fd = connect_to(socket);
        send_all(fd, unescape_frame(cols[0]));
        bool closed = false;
        auto got = replies(fd, 0, &closed);
        ::close(fd);
        CHECK(closed);
        REQUIRE(!got.empty());
        for (size_t i = 0; i + 1 < got.size(); i++)
            CHECK(!got[i].contains("error"));
        CHECK(got.back()["error"] == cols[1]);
        CHECK(got.back()["parameters"]["message"] == cols[2]);
        rows++;
    }
    CHECK(rows >= 10);
    // The server still serves.
    CHECK(devhost_at(socket, {"status"}).exit_code == 0);
}

TEST_CASE("an unknown device is an error reply on a connection that stays open and calls are answered in order")
{
    TempDir tmp;
    const fs::path socket = tmp / "control";
    TestServer server(socket, tmp.path());
    REQUIRE(server.ready());
    int fd = connect_to(socket);
    send_all(fd, control::encode({{"method", "devhost.Call"}, {"parameters", {{"device", "nosuch"}}}}) +
                     control::encode({{"method", "devhost.List"}}) +
                     control::encode({{"method", "devhost.Reset"}, {"parameters", {{"device", "printer"}}}}));
    auto got = replies(fd, 3);
    ::close(fd);
    REQUIRE(got.size() == 3);
    CHECK(got[0] == json::parse(R"({"error":"devhost.NoSuchDevice","parameters":{"message":"no device 'nosuch' is served"}})"));
    CHECK(got[1]["parameters"]["devices"].size() == 3);
    CHECK(got[2] == json::parse(R"({"parameters":{}})"));
}

TEST_CASE("a client that hangs up while its call runs is forgotten without spinning the loop")
{
    TempDir tmp;
    const fs::path socket = tmp / "control";
    TestServer server(socket, tmp.path());
    REQUIRE(server.ready());
    const long before = cpu_ticks(server.pid());
    for (int i = 0; i < 3; i++) {
        int fd = connect_to(socket);
        send_all(fd, control::encode({{"method", "devhost.Call"}, {"parameters", {{"device", "slow"}}}}));
        ::close(fd);  // gone before the reply, 300 ms later
    }
    std::this_thread::sleep_for(600ms);
    INFO("ticks " << cpu_ticks(server.pid()) - before);
    CHECK(cpu_ticks(server.pid()) - before < 5);  // a spinning loop took 0.1 s and more
    CHECK(devhost_at(socket, {"status"}).exit_code == 0);
}

namespace {

// The in-process server's handler: one device, nothing to do.
struct QuietHandler : control::Handler {
    json list() override { return json::array({{{"device", "d"}, {"state", "idle"}}}); }
    void call(const std::string &, std::function<void(json)> done) override { done({{"records", json::array()}}); }
    json reset(const std::string &) override { return json::object(); }
    json reload() override { return json::object(); }
};

}  // namespace

TEST_CASE("a monitor that does not read is dropped: the others get every event and publish never waits")
{
    TempDir tmp;
    QuietHandler handler;
    control::ServerSettings settings;
    settings.path = (tmp / "control").string();
    control::Server server(handler, settings);
    const std::string monitor = control::encode({{"method", "devhost.Monitor"}});
    int reader = connect_to(tmp / "control");
    int sleeper = connect_to(tmp / "control");
    send_all(reader, monitor);
    send_all(sleeper, monitor);
    for (int i = 0; i < 100 && server.subscribers() < 2; i++) {
        pollfd p{server.fd(), POLLIN, 0};
        ::poll(&p, 1, 50);
        server.process();
    }
    REQUIRE(server.subscribers() == 2);
    ::fcntl(reader, F_SETFL, O_NONBLOCK);
    control::FrameReader frames(control::max_reply);
    size_t events = 0;
    const std::string pad(4096, 'x');
    const int sent = 2000;  // 8 MiB: far more than a socket buffer and max_output
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < sent; i++) {
        server.publish({{"event", "flood"}, {"n", i}, {"pad", pad}});
        server.process();
        for (;;) {  // the reader keeps up
            char buf[65536];
            ssize_t n = ::read(reader, buf, sizeof buf);
            if (n <= 0)
                break;
            frames.feed(buf, static_cast<size_t>(n));
            while (auto f = frames.next())
                events += json::parse(*f)["parameters"].contains("event");
        }
    }
    const int64_t took = elapsed_ms(start);
    for (int i = 0; i < 200 && events < sent; i++) {
        pollfd p{reader, POLLIN, 0};
        ::poll(&p, 1, 10);
        server.process();
        char buf[65536];
        ssize_t n = ::read(reader, buf, sizeof buf);
        if (n > 0) {
            frames.feed(buf, static_cast<size_t>(n));
            while (auto f = frames.next())
                events += json::parse(*f)["parameters"].contains("event");
        }
    }
    CHECK(events == sent);
    CHECK(server.subscribers() == 1);
    CHECK(took < 10000);
    // The dropped one reads what was sent before the drop, then the end.
    bool closed = false;
    auto got = replies(sleeper, 0, &closed);
    CHECK(closed);
    CHECK(got.size() < static_cast<size_t>(sent));
    ::close(reader);
    ::close(sleeper);
}

TEST_CASE("the socket's file is root:GROUP 0660 whatever the umask in a 0755 directory and refused in an open one")
{
    for (mode_t mask : {mode_t(0), mode_t(0777)}) {
        INFO("umask " << mask);
        TempDir tmp;
        const fs::path socket = tmp / "run/devhost/control";
        TestServer server(socket, tmp.path(), {"daemon"}, mask);
        REQUIRE(server.ready());
        struct stat st;
        REQUIRE(::lstat(socket.c_str(), &st) == 0);
        CHECK(S_ISSOCK(st.st_mode));
        CHECK((st.st_mode & 07777) == 0660);
        CHECK(st.st_uid == 0);
        CHECK(st.st_gid == ::getgrnam("daemon")->gr_gid);
        REQUIRE(::lstat((tmp / "run/devhost").c_str(), &st) == 0);
        CHECK((st.st_mode & 07777) == 0755);
        REQUIRE(::lstat((tmp / "run").c_str(), &st) == 0);
        CHECK((st.st_mode & 07777) == 0755);
    }
    TempDir tmp;
    {  // no group: root's alone
        TestServer server(tmp / "control", tmp.path(), {}, 0);
        REQUIRE(server.ready());
        struct stat st;
        REQUIRE(::lstat((tmp / "control").c_str(), &st) == 0);
        CHECK((st.st_mode & 07777) == 0600);
    }
    fs::create_directory(tmp / "open");
    ::chmod((tmp / "open").c_str(), 0777);
    TestServer refused(tmp / "open/control", tmp.path());
    CHECK(!refused.ready());
    CHECK(refused.out().find("error: control socket " + (tmp / "open/control").string() + ": ") != std::string::npos);
    CHECK(refused.out().find("writable by group or others") != std::string::npos);
    CHECK(refused.stop().exit_code == 1);
    CHECK(!fs::exists(tmp / "open/control"));
}

TEST_CASE("a live socket is refused and a stale one replaced: anything else in its place is refused")
{
    TempDir tmp;
    const fs::path socket = tmp / "control";
    {
        TestServer first(socket, tmp.path());
        REQUIRE(first.ready());
        TestServer second(socket, tmp.path());
        CHECK(!second.ready());
        CHECK(second.out() ==
              "error: control socket " + socket.string() + " is in use: another devhost serve is running\n");
        CHECK(second.stop().exit_code == 1);
        CHECK(devhost_at(socket, {"status"}).exit_code == 0);  // the first one still serves
    }
    // A dead server's socket: bound, nothing listening.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
    if (!fs::exists(socket))
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
    ::close(fd);
    REQUIRE(fs::is_socket(socket));
    {
        TestServer replaced(socket, tmp.path());
        CHECK(replaced.ready());
        CHECK(devhost_at(socket, {"status"}).exit_code == 0);
    }
    write_file(tmp / "file", "not a socket");
    TestServer refused(tmp / "file", tmp.path());
    CHECK(!refused.ready());
    CHECK(refused.out() == "error: control socket " + (tmp / "file").string() +
                               ": something that is not a socket is in its place; remove it\n");
    CHECK(read_file(tmp / "file") == "not a socket");
}

TEST_CASE("a client of another uid is refused by the socket's mode and by the server's peer check")
{
    if (::geteuid() != 0)
        DEVHOST_SKIP("needs root to run a client as another user (setpriv)");
    TempDir tmp;
    const fs::path socket = open_dir(tmp) / "control";
    TestServer server(socket, tmp.path(), {"daemon"});
    REQUIRE(server.ready());
    const std::vector<std::string> status{devhost_exe().string(), "--socket", socket.string(), "status"};

    auto r = run_process(as_nobody(status), ProcessOptions{10s});  // 0660 root:daemon: connect fails
    CHECK(r.exit_code == 6);
    CHECK(r.err == "devhost: error: permission denied on " + socket.string() +
                       ": only root and the members of its group ([host] control-group) may use it\n");

    // A socket whose mode lets anyone connect: the server's own check refuses.
    REQUIRE(::chmod(socket.c_str(), 0666) == 0);
    r = run_process(as_nobody(status), ProcessOptions{10s});
    CHECK(r.exit_code == 6);
    CHECK(r.err == "devhost: error: permission denied: uid 65534 is not root and not in group 'daemon' "
                   "([host] control-group)\n");
    CHECK(server.err().find("refused pid") != std::string::npos);
    CHECK(server.err().find("uid 65534 is not root and not in group 'daemon'") != std::string::npos);
    const std::vector<std::string> call{devhost_exe().string(), "--socket", socket.string(), "call", "scale"};
    r = run_process(as_nobody(call), ProcessOptions{10s});
    CHECK(r.exit_code == 6);
    CHECK(r.out == "");

    // A member of the group (a supplementary group, as SO_PEERGROUPS sees it) may.
    const std::string gid = std::to_string(::getgrnam("daemon")->gr_gid);
    r = run_process(as_nobody(status, gid), ProcessOptions{10s});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("scale    serial") != std::string::npos);
    CHECK(devhost_at(socket, {"status"}).exit_code == 0);  // and root
}

TEST_CASE("without a control group only root may use the socket")
{
    if (::geteuid() != 0)
        DEVHOST_SKIP("needs root to run a client as another user (setpriv)");
    TempDir tmp;
    const fs::path socket = open_dir(tmp) / "control";
    TestServer server(socket, tmp.path());
    REQUIRE(server.ready());
    REQUIRE(::chmod(socket.c_str(), 0666) == 0);
    auto r = run_process(as_nobody({devhost_exe().string(), "--socket", socket.string(), "status"}, "1"),
                         ProcessOptions{10s});
    CHECK(r.exit_code == 6);
    CHECK(r.err == "devhost: error: permission denied: uid 65534 is not root (no [host] control-group is set)\n");
}

TEST_CASE("the server's settings come from [host] control-socket and control-group")
{
    TempDir tmp;
    write_file(tmp / "c.ini", "[host]\ncontrol-socket = /run/devhost/other\ncontrol-group = daemon\n"
                              "[device d]\nclass = loop\npath = loop:x\nstep = open\n");
    std::vector<Diagnostic> diags;
    Config config = load_config(tmp / "c.ini", diags);
    REQUIRE(diags.empty());
    auto s = control::server_settings(config.host);
    CHECK(s.path == "/run/devhost/other");
    REQUIRE(s.group);
    CHECK(*s.group == ::getgrnam("daemon")->gr_gid);
    CHECK(s.group_name == "daemon");

    write_file(tmp / "d.ini", "[device d]\nclass = loop\npath = loop:x\nstep = open\n");
    config = load_config(tmp / "d.ini", diags);
    REQUIRE(diags.empty());
    s = control::server_settings(config.host);
    CHECK(s.path == "/run/devhost/control");  // the defaults: root only
    CHECK(!s.group);
}
