// The serve group: `devhost serve` of N serial devices (serve_config.hpp),
// each running a 64-byte request/reply body every 10 ms on a pty of its own
// against one echo peer process, measured over a window that starts once
// every device is set up:
// - bodies completed per second (the per-device counters of the control
//   API's devhost.List, what `devhost status --json` prints), against the
//   rate asked (N / period), as the "baseline";
// - ticks skipped per second (a tick that finds its body still running) and
//   bodies failed in the window;
// - the supervisor's CPU time (user + system, /proc/PID/stat of the serve
//   process, not of its workers) per body completed;
// - the resident set (VmRSS) of the supervisor and of its workers (summed)
//   at the window's end.
// And the time from a device's return to its first body (issue 19 item 6):
// one device on a link to its pty, the link removed (serve tears the device
// down and waits for it) and made again, as udev makes a node's link; the
// time from the link's making to the record time of the first successful
// body of the next generation. (The kernel's own announcement of a USB
// device is timed in the QEMU guest: tests/serve/hil.)
#include "bench.hpp"
#include "serve_config.hpp"

#include "devhost_test.hpp"  // Child, cpu_ticks, workers_of

#include <control_client.hpp>
#include <control_wire.hpp>

#include <cmath>
#include <csignal>
#include <fstream>
#include <thread>

#include <unistd.h>

namespace bench {

namespace {

using json = nlohmann::json;

// The devices' counters, summed, from one devhost.List call.
struct Counters {
    double ok = 0, failed = 0, skipped = 0;
    int set_up = 0;  // devices idle or running (their setup done)
    int waiting = 0; // devices waiting for their device
};

Counters counters(const fs::path &socket)
{
    devhost::control::Client client;
    if (!client.connect(socket.string()) || !client.send(devhost::control::method_list, json::object()))
        fail("serve: control socket " + socket.string() + ": " + client.error());
    const auto reply = client.receive(30000);
    if (!reply)
        fail("serve: no reply to devhost.List: " + client.error());
    Counters c;
    for (const auto &d : (*reply)["parameters"].value("devices", json::array())) {
        c.ok += d.value("bodies_ok", 0.0);
        c.failed += d.value("bodies_failed", 0.0);
        c.skipped += d.value("ticks_skipped", 0.0);
        const std::string state = d.value("state", "");
        c.set_up += state == "idle" || state == "running";
        c.waiting += state == "waiting-for-device";
    }
    return c;
}

// VmRSS of process `pid` in KiB (0 when it is gone).
double rss_kib(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0)
            return std::stod(line.substr(6));
    return 0;
}

struct Sample {
    double completed = 0, asked = 0, skipped = 0, failed = 0;  // per second, except failed
    double cpu_us_per_body = 0, supervisor_rss = 0, workers_rss = 0;
    size_t workers = 0;
};

}  // namespace

void wait_set_up(devhost::test::Child &serve, const fs::path &socket, int devices)
{
    const auto until = Clock::now() + std::chrono::seconds(60);
    for (;;) {
        if (!serve.wait(std::chrono::milliseconds(0)).timed_out)
            fail("serve: devhost serve ended before its devices were set up: " + serve.err());
        std::error_code ec;
        if (fs::exists(socket, ec) && counters(socket).set_up == devices)
            return;
        if (Clock::now() > until)
            fail("serve: not every device was set up within 60 s: " + serve.err());
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

namespace {

// One `devhost serve` run: the window's figures.
Sample serve_once(const Params &p, const ServeShape &shape)
{
    std::vector<Pty> ptys;
    std::vector<std::string> slaves;
    for (int d = 0; d < shape.devices; d++) {
        ptys.push_back(open_pty());
        slaves.push_back(ptys.back().slave);
    }
    SerialPeer peer(ptys, SerialPeer::Mode::Echo);
    const fs::path work = fs::absolute(p.work_dir);  // serve wants an absolute --socket
    const fs::path config = work / "serve.ini", socket = work / "serve-control", records = work / "serve-records.jsonl";
    write_file(config, serve_config(slaves, shape.period, records.string()));
    fs::remove(records);
    fs::remove(socket);
    devhost::test::Child serve(
        {(p.bin_dir / "devhost").string(), "serve", "--socket", socket.string(), config.string()}, work);
    wait_set_up(serve, socket, shape.devices);

    const Counters c0 = counters(socket);
    const long cpu0 = devhost::test::cpu_ticks(serve.pid());
    const auto t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(shape.seconds));
    const Counters c1 = counters(socket);
    const long cpu1 = devhost::test::cpu_ticks(serve.pid());
    const double window = seconds_since(t0);

    Sample s;
    const double bodies = (c1.ok - c0.ok) + (c1.failed - c0.failed);
    s.completed = (c1.ok - c0.ok) / window;
    s.asked = shape.devices / shape.period_seconds;
    s.skipped = (c1.skipped - c0.skipped) / window;
    s.failed = c1.failed - c0.failed;
    s.cpu_us_per_body = bodies > 0 ? double(cpu1 - cpu0) * 1e6 / double(sysconf(_SC_CLK_TCK)) / bodies : 0;
    s.supervisor_rss = rss_kib(serve.pid());
    for (pid_t w : devhost::test::workers_of(serve.pid())) {
        s.workers_rss += rss_kib(w);
        s.workers++;
    }
    serve.signal(SIGTERM);
    const auto end = serve.wait(std::chrono::seconds(30));
    if (end.timed_out || end.exit_code != 0)
        fail("serve: devhost serve did not stop cleanly on SIGTERM (exit " + std::to_string(end.exit_code) +
             "): " + serve.err());
    peer.stop();
    fs::remove(records);
    return s;
}

// Seconds since midnight UTC, as record_time gives a record's.
double utc_seconds_of_day(std::chrono::system_clock::time_point t)
{
    const double since_epoch = std::chrono::duration<double>(t.time_since_epoch()).count();
    return since_epoch - 86400.0 * std::floor(since_epoch / 86400.0);
}

// One return: ms from the link made again to the first OK body of
// generation 2.
double return_once(const Params &p, const ServeShape &shape)
{
    std::vector<Pty> ptys{open_pty()};
    const std::string slave = ptys[0].slave;
    SerialPeer peer(ptys, SerialPeer::Mode::Echo);
    const fs::path work = fs::absolute(p.work_dir);
    const fs::path config = work / "return.ini", socket = work / "return-control", records = work / "return.jsonl",
                   link = work / "returning-tty";
    fs::remove(link);
    fs::remove(records);
    fs::remove(socket);
    fs::create_symlink(slave, link);
    write_file(config, serve_config({link.string()}, shape.period, records.string()));
    devhost::test::Child serve(
        {(p.bin_dir / "devhost").string(), "serve", "--socket", socket.string(), config.string()}, work);
    wait_set_up(serve, socket, 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(2100));  // past the flap window: settles in 20 ms
    fs::remove(link);
    const auto give_up = Clock::now() + std::chrono::seconds(30);
    while (counters(socket).waiting != 1) {
        if (Clock::now() > give_up)
            fail("serve: the device did not wait for its device within 30 s of its link's removal: " + serve.err());
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const auto back = std::chrono::system_clock::now();
    fs::create_symlink(slave, link);
    double first = -1;
    while (first < 0) {
        if (Clock::now() > give_up)
            fail("serve: no body of the next generation within 30 s of the device's return: " + serve.err());
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        std::ifstream in(records);
        for (std::string line; first < 0 && std::getline(in, line);)
            if (line.find("\"generation\":2,") != std::string::npos && record_field(line, "phase") == "body" &&
                record_field(line, "status") == "DEVHOST_OK")
                first = record_time(line);
    }
    serve.signal(SIGTERM);
    serve.wait(std::chrono::seconds(30));
    peer.stop();
    fs::remove(link);
    fs::remove(records);
    return (first - utc_seconds_of_day(back)) * 1000.0;
}

}  // namespace

void bench_serve(const Params &p, Report &report)
{
    const ServeShape shape = serve_shape(p.smoke);
    const std::string n = std::to_string(shape.devices) + " devices every " + shape.period;
    const std::string how = "devhost serve (isolation = class), 64 B request/reply bodies on ptys, one echo peer; a " +
                            std::to_string(int(shape.seconds)) + " s window after every setup";
    Result rate{"serve", n + ": bodies completed", "bodies/s", true, "the rate asked (devices / period)", {}, {}, how};
    Result skipped{"serve", n + ": ticks skipped", "ticks/s", false, "", {}, {}, "ticks that found their body still running"};
    Result failed{"serve", n + ": bodies failed in the window", "bodies", false, "", {}, {}, ""};
    Result cpu{"serve", n + ": supervisor CPU time per body", "us", false, "", {}, {},
               "user + system of the serve process (/proc/PID/stat), not its workers, over bodies completed or failed"};
    Result sup{"serve", n + ": supervisor RSS", "KiB", false, "", {}, {}, "VmRSS at the window's end"};
    Result wrk{"serve", n + ": workers' RSS (summed)", "KiB", false, "", {}, {}, "VmRSS at the window's end"};
    for (int rep = 0; rep < p.reps; rep++) {
        const Sample s = serve_once(p, shape);
        rate.devhost.samples.push_back(s.completed);
        rate.baseline.samples.push_back(s.asked);
        skipped.devhost.samples.push_back(s.skipped);
        failed.devhost.samples.push_back(s.failed);
        cpu.devhost.samples.push_back(s.cpu_us_per_body);
        sup.devhost.samples.push_back(s.supervisor_rss);
        wrk.devhost.samples.push_back(s.workers_rss);
        wrk.note = "VmRSS at the window's end, " + std::to_string(s.workers) + " worker(s)";
    }
    for (Result *r : {&rate, &skipped, &failed, &cpu, &sup, &wrk})
        report.add(*r);
    Result back{"serve", "a device's return to its first body (every " + shape.period + ")", "ms", false, "", {}, {},
                "its link made again (inotify) to the record time of the next generation's first OK body; goal < 100"};
    for (int rep = 0; rep < p.reps; rep++)
        back.devhost.samples.push_back(return_once(p, shape));
    report.add(back);
}

}  // namespace bench
