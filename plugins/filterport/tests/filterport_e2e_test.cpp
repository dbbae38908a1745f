// The filterport class through the devhost binary: the example configs
// (configs/examples/filterport-*.ini) as shipped, the snippet proposed for
// configs/default.ini, and `devhost check` on each.
#include "devhost_test.hpp"

#include <catch2/catch.hpp>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace devhost::test;

namespace {

fs::path example(const std::string &name) { return source_dir() / "configs" / "examples" / name; }

// The records of one step kind ("get-message", "reply", ...).
std::vector<std::string> records_of(const std::string &out, const std::string &step)
{
    std::vector<std::string> found;
    for (const auto &l : lines(out))
        if (l.find("\"step\":\"" + step) != std::string::npos)
            found.push_back(l);
    return found;
}

// The filterport part proposed for configs/default.ini: a virtual echo port,
// a request, and the port's own message answered.
const char *const k_default_snippet = R"(# A filter communication port, served by a virtual echo port that the host
# starts like the other virtual devices: requests come back as sent, and the
# message the port sends is answered. Your own port: configs/examples/filterport-*.ini.
[virtual port]
kind = filterport-echo
port = devhost-default-echo
send-every = 100ms
message = ping

[device port]
class = filterport
path = virtual:port
step = open
step = connect context="devhost"
step = info
step = request "hello, port" expect="hello, port"
step = get-message expect="ping"
step = reply "pong"
step = disconnect
step = close
)";

}  // namespace

TEST_CASE("devhost check accepts every filterport example config", "[filterport][e2e]")
{
    for (const char *name : {"filterport-echo.ini", "filterport-filefilter.ini"}) {
        auto r = run_devhost({"check", example(name).string()});
        INFO(name << ": " << r.err);
        CHECK(r.exit_code == 0);
        CHECK(r.out.find(": ok: 1 device(s)") != std::string::npos);
    }
}

TEST_CASE("configs/examples/filterport-echo.ini: requests echoed, the port's message answered", "[filterport][e2e]")
{
    auto r = run_devhost({"run", example("filterport-echo.ini").string()}, {.timeout = 60s});
    INFO(r.out << r.err);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 0);
    auto requests = records_of(r.out, "request");
    REQUIRE(requests.size() == 2);
    CHECK(requests[0].find(R"("status":"DEVHOST_OK")") != std::string::npos);
    CHECK(requests[0].find(R"("text":"hello, port")") != std::string::npos);
    CHECK(requests[1].find(R"("hex":"00010203")") != std::string::npos);
    auto messages = records_of(r.out, "get-message");
    REQUIRE(messages.size() == 1);
    CHECK(messages[0].find(R"("text":"ping","message_id":)") != std::string::npos);
    auto info = records_of(r.out, "info");
    REQUIRE(info.size() == 1);
    CHECK(info[0].find(R"("connected":"yes","handle":"async")") != std::string::npos);
    // The echo port logged the reply it got.
    CHECK(r.err.find("replied \"pong\"") != std::string::npos);
    CHECK(r.err.find("1 pipeline(s) succeeded") != std::string::npos);
}

TEST_CASE("the filterport snippet proposed for configs/default.ini runs and passes check", "[filterport][e2e]")
{
    TempDir dir;
    auto cfg = dir / "default-filterport.ini";
    // The snippet as proposed, but serving its port in this test's directory,
    // so that a run of the real default config at the same time (the e2e
    // suite runs it) does not find its socket taken.
    std::string snippet = k_default_snippet;
    const std::string kind = "kind = filterport-echo\n";
    REQUIRE(snippet.find(kind) != std::string::npos);
    snippet.insert(snippet.find(kind) + kind.size(), "port-dir = " + dir.path().string() + "\n");
    write_file(cfg, std::string("[host]\nlog-level = info\noutput = -\ntimeout = 2s\n\n") + snippet);
    auto c = run_devhost({"check", cfg.string()});
    INFO(c.err);
    CHECK(c.exit_code == 0);
    auto r = run_devhost({"run", cfg.string()}, {.timeout = 60s});
    INFO(r.out << r.err);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 0);
    CHECK(records_of(r.out, "close").size() == 1);
    CHECK(records_of(r.out, "reply").at(0).find(R"("status":"DEVHOST_OK")") != std::string::npos);
    CHECK(r.out.find("DEVHOST_E_") == std::string::npos);
}

TEST_CASE("configs/examples/filterport-filefilter.ini decides opens for devhost-filefilter", "[filterport][e2e]")
{
    int probe = ::fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, O_RDONLY);
    if (probe < 0) {
        DEVHOST_SKIP(std::string("fanotify permission events are unavailable here: ") + std::strerror(errno));
    }
    ::close(probe);
    TempDir tmp;
    fs::path root = fs::canonical(tmp.path());
    fs::path watched = root / "guarded", ports = root / "ports", logs = root / "logs";
    for (const auto &d : {watched, ports, logs})
        fs::create_directories(d);
    write_file(watched / "file", "hello\n");

    // The example as shipped, but with the port directory of this test.
    std::string text = read_file(example("filterport-filefilter.ini"));
    auto host = text.find("[host]\n");
    REQUIRE(host != std::string::npos);
    text.insert(host + 7, "port-dir = " + ports.string() + "\n");
    auto cfg = logs / "decider.ini";
    write_file(cfg, text);

    Child server({(bin_dir() / "devhost-filefilter").string(), "--watch=" + watched.string(),
                  "--port-dir=" + ports.string(), "--timeout=30000", "--default=allow"},
                 logs);
    REQUIRE(server.wait_for_output("READY " + (ports / "FileFilter").string(), 20s));
    Child pipeline({devhost_exe().string(), "run", cfg.string()}, logs);
    REQUIRE(server.wait_for_output("client 1 connected", 20s));

    // Each open from a child process: 0 if allowed, else its errno.
    auto open_in_child = [](const fs::path &file) {
        pid_t pid = ::fork();
        if (pid == 0) {
            int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
            ::_exit(fd >= 0 ? 0 : (errno & 0xff));
        }
        int status = 0;
        auto end = std::chrono::steady_clock::now() + 60s;  // against hangs only
        while (::waitpid(pid, &status, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() > end) {
                ::kill(pid, SIGKILL);
                ::waitpid(pid, &status, 0);
                return -1;
            }
            ::usleep(2000);
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    };
    CHECK(open_in_child(watched / "file") == 0);
    CHECK(open_in_child(watched / "file") == EPERM);

    auto r = pipeline.wait(60s);
    INFO(r.out << r.err);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 0);
    CHECK(records_of(r.out, "request \\\"list\\\"").at(0).find("\"text\":\"" + watched.string()) !=
          std::string::npos);
    auto messages = records_of(r.out, "get-message");
    REQUIRE(messages.size() == 2);
    CHECK(messages[1].find("path=" + (watched / "file").string()) != std::string::npos);
    auto stats = records_of(r.out, "request \\\"stats\\\"");
    REQUIRE(stats.size() == 1);
    CHECK(stats[0].find("events=2 allowed=1") != std::string::npos);

    server.signal(SIGTERM);
    auto s = server.wait(30s);
    CHECK(s.exit_code == 0);
}
