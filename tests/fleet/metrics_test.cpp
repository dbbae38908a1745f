// devhost serve's metrics endpoint (issue 16, item 4): [metrics] listen on
// a free loopback port, scraped over HTTP by a real client (curl) while a
// device's body runs every 200 ms: the counters move, the gauges hold the
// device's state. A port another socket holds ends serve with one line.
#include "broker.hpp"
#include "devhost_test.hpp"

#include <catch2/catch.hpp>

#include <csignal>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <regex>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace devhost::test;

namespace {

std::string config(const TempDir &dir, int port)
{
    return "[host]\ncontrol-socket = " + (dir / "control").string() + "\n[metrics]\nlisten = 127.0.0.1:" +
           std::to_string(port) +
           "\n[device a]\nclass = loop\npath = loop:a\nsetup = open\nbody = write \"hi\"\nbody = read exactly=2\n"
           "teardown = close\nrun = every 200ms\n";
}

std::string curl_missing()
{
    return fs::exists("/usr/bin/curl") ? "" : "curl is not installed (apt-get install curl)";
}

std::string scrape(int port)
{
    const auto r = run_process(
        {"/usr/bin/curl", "-sS", "--max-time", "5", "http://127.0.0.1:" + std::to_string(port) + "/metrics"},
        {.timeout = 10s});
    return r.exit_code == 0 ? r.out : "";
}

// The value of the sample `series` (name and labels as printed), or -1.
double value(const std::string &text, const std::string &series)
{
    for (const auto &line : lines(text))
        if (line.rfind(series + " ", 0) == 0)
            return std::stod(line.substr(series.size() + 1));
    return -1;
}

const std::string labels = "class=\"loop\",device=\"a\"";

}  // namespace

TEST_CASE("metrics scraped over HTTP show the device's counters moving")
{
    if (const std::string why = curl_missing(); !why.empty())
        DEVHOST_SKIP(why);
    TempDir dir;
    const int port = free_port();
    write_file(dir / "m.ini", config(dir, port));
    Child devhost({devhost_exe().string(), "serve", "--output", (dir / "m.jsonl").string(), "--socket",
                   (dir / "m.control").string(), (dir / "m.ini").string()},
                  dir.path());
    const std::string ok_bodies = "devhost_device_bodies_total{" + labels + ",result=\"ok\"}";
    std::string first;
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < until && value(first, ok_bodies) < 1) {
        std::this_thread::sleep_for(200ms);
        first = scrape(port);
    }
    INFO(devhost.err() << first);
    REQUIRE(value(first, ok_bodies) >= 1);
    CHECK(first.find("# TYPE devhost_device_bodies_total counter") != std::string::npos);
    CHECK(value(first, "devhost_device_state{" + labels + ",state=\"idle\"}") +
              value(first, "devhost_device_state{" + labels + ",state=\"running\"}") ==
          1);
    CHECK(value(first, "devhost_device_state{" + labels + ",state=\"failed\"}") == 0);
    CHECK(value(first, "devhost_device_generation{" + labels + "}") == 1);
    CHECK(value(first, "devhost_device_stale{" + labels + "}") == 0);
    CHECK(value(first, "devhost_device_worker_restarts_total{" + labels + "}") == 0);
    CHECK(value(first, "devhost_device_bodies_total{" + labels + ",result=\"failed\"}") == 0);
    CHECK(value(first, "devhost_devices") == 1);
    const double last = value(first, "devhost_device_last_success_timestamp_seconds{" + labels + "}");
    CHECK(last > static_cast<double>(std::time(nullptr)) - 60);
    CHECK(last <= static_cast<double>(std::time(nullptr)));
    const std::string ok_steps = "devhost_device_steps_total{" + labels + ",status=\"DEVHOST_OK\"}";
    CHECK(value(first, ok_steps) >= 3);  // open, write, read

    // Later: more bodies, more steps.
    std::this_thread::sleep_for(1500ms);
    const std::string second = scrape(port);
    INFO(second);
    CHECK(value(second, ok_bodies) >= value(first, ok_bodies) + 3);
    CHECK(value(second, ok_steps) >= value(first, ok_steps) + 6);
    // The worker killed: the restart is counted, with the next generation.
    for (pid_t w : workers_of(devhost.pid()))
        ::kill(w, SIGKILL);
    std::string third;
    const auto until2 = std::chrono::steady_clock::now() + 20s;
    // (the restarts come with the next refresh, within a second)
    while (std::chrono::steady_clock::now() < until2 &&
           (value(third, "devhost_device_generation{" + labels + "}") < 2 ||
            value(third, "devhost_device_worker_restarts_total{" + labels + "}") < 1)) {
        std::this_thread::sleep_for(200ms);
        third = scrape(port);
    }
    INFO(third);
    CHECK(value(third, "devhost_device_worker_restarts_total{" + labels + "}") == 1);
    CHECK(value(third, "devhost_device_generation{" + labels + "}") == 2);
}

TEST_CASE("metrics on a port already taken end serve with one line")
{
    TempDir dir;
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 1) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
    const int port = ntohs(a.sin_port);
    write_file(dir / "m.ini", config(dir, port));
    const auto r = run_devhost({"serve", "--output", (dir / "m.jsonl").string(), "--socket",
                                (dir / "m.control").string(), (dir / "m.ini").string()},
                               {.timeout = 20s});
    ::close(fd);
    INFO(r.err);
    CHECK(r.exit_code == 2);
    const auto errs = lines(r.err);
    REQUIRE(!errs.empty());
    CHECK(errs.back().find((dir / "m.ini").string() + ":4: [metrics] listen: cannot listen on 127.0.0.1:" +
                           std::to_string(port) + ": ") != std::string::npos);
}

TEST_CASE("metrics show the MQTT spool filling while no broker answers")
{
    if (const std::string why = curl_missing(); !why.empty())
        DEVHOST_SKIP(why);
    TempDir dir;
    const int port = free_port();
    // Nothing listens on the broker's port (a free one): every record waits
    // in the spool (in memory: no state-dir).
    write_file(dir / "m.ini", config(dir, port) + "[mqtt]\nbroker = mqtt://127.0.0.1:" + std::to_string(free_port()) +
                                  "\nnode = n1\n");
    Child devhost({devhost_exe().string(), "serve", "--output", (dir / "m.jsonl").string(), "--socket",
                   (dir / "m.control").string(), (dir / "m.ini").string()},
                  dir.path());
    std::string text;
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < until && value(text, "devhost_mqtt_spool_messages") < 6) {
        std::this_thread::sleep_for(200ms);
        text = scrape(port);
    }
    INFO(devhost.err() << text);
    CHECK(value(text, "devhost_mqtt_spool_messages") >= 6);  // two bodies' records, at least
    CHECK(value(text, "devhost_mqtt_spool_bytes") > 6 * 100);
    CHECK(value(text, "devhost_mqtt_spool_dropped_total") == 0);
    CHECK(text.find("# TYPE devhost_mqtt_spool_dropped_total counter") != std::string::npos);
}
