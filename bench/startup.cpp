// Start-up and scale, both through the devhost binary itself.
//   start-up: wall time and peak RSS (wait4's ru_maxrss) of `devhost check`
//     and `devhost run` on a small config (one loop device), against spawning
//     /bin/true (the floor of any process start); each plugin's load time,
//     first load in a fresh process
//   scale: N devices (1, 16, 128, 512) on N ptys served by one echo peer
//     process, each device doing `request` steps, all run by one
//     `devhost run`; aggregate round trips/s and the host's RSS per device
#include "bench.hpp"

#include <algorithm>
#include <iostream>
#include <cstdlib>
#include <fstream>
#include <map>

namespace bench {
namespace {

std::string message()
{
    return std::string(63, 'r');
}

// A config of `devices` serial devices, each opening its pty, doing
// `steps` request/reply round trips and closing.
std::string scale_config(const std::vector<std::string> &slaves, int steps, const fs::path &records,
                         const std::string &settle)
{
    std::string text = "[host]\nlog-level = warn\noutput = " + records.string() + "\n";
    std::string body;
    for (int i = 0; i < steps; i++)
        body += "step = request \"" + message() + "\\n\" until=\"\\n\"\n";
    for (size_t d = 0; d < slaves.size(); d++)
        text += "[device d" + std::to_string(d) + "]\nclass = serial\npath = " + slaves[d] + "\nstep = open\nstep = sleep " + settle + "\n" + body +
                "step = close\n";
    return text;
}

// Runs `devhost-bench --load-plugin FILE` and reads the milliseconds it
// prints: the host's libraries are loaded there, the plugin is not yet.
double load_in_fresh_process(const fs::path &file)
{
    const std::string self = fs::read_symlink("/proc/self/exe").string();
    const std::string command = "'" + self + "' --load-plugin '" + file.string() + "'";
    FILE *out = popen(command.c_str(), "r");
    if (!out)
        fail("popen " + command);
    double ms = -1;
    int got = std::fscanf(out, "%lf", &ms);
    if (pclose(out) != 0 || got != 1)
        fail("cannot measure loading " + file.string());
    return ms;
}

}  // namespace

void bench_startup(const Params &p, Report &report)
{
    const std::string devhost = (p.bin_dir / "devhost").string();
    // A small config: one loop device through every kind of step it takes
    // (the default config starts virtual peers, which is not the host's cost).
    const fs::path small = p.work_dir / "small.ini";
    write_file(small, "[host]\nlog-level = warn\noutput = -\n\n[device loopback]\nclass = loop\npath = loop:default\n"
                      "step = open\nstep = info\nstep = lock timeout=1s\nstep = write \"hello, devhost\\r\\n\"\n"
                      "step = read until=\"\\r\\n\" expect=\"hello\"\nstep = request \"ping\" expect=\"ping\"\n"
                      "step = unlock\nstep = close\n");
    const std::string config = small.string();
    auto measure = [&](const std::vector<std::string> &argv, bool rss) {
        ProcessRun run = run_process(argv);
        if (run.exit_code != 0)
            fail(argv[0] + " " + argv[1] + " exited with " + std::to_string(run.exit_code));
        return rss ? double(run.max_rss_kib) : run.wall_ms;
    };
    for (const char *command : {"check", "run"}) {
        const std::vector<std::string> argv{devhost, command, config};
        const std::vector<std::string> floor{"/bin/true", "x"};
        Result r{"startup", std::string("devhost ") + command + " small.ini: wall", "ms", false,
                 "/bin/true (process start floor)", {}, {}, ""};
        r.note = "one loop device, 8 steps; every plugin in the build tree loaded; records and log to /dev/null";
        report.add(compare(p, r, [&] { return measure(argv, false); }, [&] { return measure(floor, false); }));
        r = {"startup", std::string("devhost ") + command + " small.ini: peak RSS", "KiB", false,
             "/bin/true (process start floor)", {}, {}, ""};
        report.add(compare(p, r, [&] { return measure(argv, true); }, [&] { return measure(floor, true); }));
    }

    std::vector<fs::path> plugins;
    for (const auto &entry : fs::directory_iterator(p.plugin_dir))
        if (entry.path().extension() == ".so")
            plugins.push_back(entry.path());
    std::sort(plugins.begin(), plugins.end());
    for (const fs::path &file : plugins) {
        Result r{"startup", "load " + file.filename().string(), "ms", false, "", {}, {}, ""};
        r.note = "PluginRegistry::load_file (dlopen, negotiate, descriptor copy), first load in a fresh process";
        for (int i = 0; i < p.reps; i++)
            r.devhost.samples.push_back(load_in_fresh_process(file));
        report.add(r);
    }
}

double load_plugin_here(const fs::path &file)
{
    devhost::PluginRegistry registry;
    const auto start = Clock::now();
    if (!registry.load_file(file))
        fail("plugin refused: " + file.string());
    return seconds_since(start) * 1000;
}

namespace {

// Seconds since midnight UTC of a record's "time" (2026-11-21T20:27:23.123456Z).
double record_time(const std::string &line)
{
    auto at = line.find("\"time\":\"");
    if (at == std::string::npos || line.size() < at + 8 + 27)
        return -1;
    const std::string t = line.substr(at + 8 + 11, 15);  // HH:MM:SS.ffffff
    return std::stoi(t.substr(0, 2)) * 3600.0 + std::stoi(t.substr(3, 2)) * 60.0 + std::stod(t.substr(6));
}

std::string record_field(const std::string &line, const char *key)
{
    const std::string k = std::string("\"") + key + "\":\"";
    auto at = line.find(k);
    if (at == std::string::npos)
        return "";
    at += k.size();
    return line.substr(at, line.find('"', at) - at);
}

// Aggregate request rate while every device was running: from the moment
// the last device finished its first request to the moment the first device
// finished its last one, counting the requests that ended in between (each
// record is written as its step ends).
double steady_rate(const fs::path &records)
{
    std::ifstream in(records);
    std::string line;
    struct Span {
        double first = -1, last = -1;
    };
    std::map<std::string, Span> spans;
    std::vector<double> requests;
    while (std::getline(in, line)) {
        const std::string step = record_field(line, "step");
        const double t = record_time(line);
        Span &s = spans[record_field(line, "device")];
        if (step.rfind("request", 0) == 0) {
            if (s.first < 0)
                s.first = t;
            s.last = t;
            requests.push_back(t);
        }
    }
    double t0 = 0, t1 = 1e30;
    for (const auto &[name, s] : spans) {
        t0 = std::max(t0, s.first);
        t1 = std::min(t1, s.last);
    }
    size_t n = 0;
    for (double t : requests)
        n += t > t0 && t <= t1;
    if (t1 <= t0 || n == 0) {
        // On a loaded machine (or with the smoke run's few steps) a device
        // can finish before another starts: fall back to the whole run's
        // rate, and say so.
        if (requests.size() < 2)
            fail("scale: fewer than two request records in " + records.string());
        const auto [lo, hi] = std::minmax_element(requests.begin(), requests.end());
        std::cerr << "devhost-bench: scale: the devices' request spans do not overlap in " << records.string()
                  << "; rate over the whole run instead\n";
        return *hi > *lo ? double(requests.size() - 1) / (*hi - *lo) : 0;
    }
    return double(n) / (t1 - t0);
}

}  // namespace

void bench_scale(const Params &p, Report &report)
{
    const std::vector<int> sizes = p.smoke ? std::vector<int>{1, 4} : std::vector<int>{1, 16, 128, 512};
    // Round trips a rate run, all devices together (at least 200 a device).
    const int total = p.smoke ? 400 : 20480;
    // Every device sleeps this long after its open (the peer's gate then
    // starts them together).
    const std::string settle = p.smoke ? "10ms" : "100ms";
    const std::string devhost = (p.bin_dir / "devhost").string();
    const fs::path records = p.work_dir / "scale-records.jsonl";
    double rss_one = 0;
    for (int n : sizes) {
        // Enough steps that every device is still busy for a while after the
        // peer's gate lets them all go.
        const int steps = std::max(p.smoke ? 20 : 200, total / n);
        Result rate{"scale", std::to_string(n) + " devices: aggregate request/reply", "round trips/s", true, "", {}, {}, ""};
        rate.note = "one `devhost run`, " + std::to_string(steps) + " request steps a device after a " + settle +
                    " sleep; the peer holds every reply until each device has sent its first request; rate from the records while all devices ran";
        Result rss{"scale", std::to_string(n) + " devices: host peak RSS", "KiB", false, "", {}, {}, ""};
        rss.note = "a separate run where every device has the same pipeline: open, sleep, 10 requests, close";
        Result per{"scale", std::to_string(n) + " devices: RSS per device over 1 device", "KiB", false, "", {}, {}, ""};
        per.note = "(peak RSS(N) - median peak RSS(1)) / (N-1), same per-device pipeline";
        for (int rep = 0; rep < p.reps; rep++) {
            for (int k = 0; k < 2; k++) {
                const bool measuring_rate = k == 0;
                std::vector<Pty> ptys;
                std::vector<std::string> slaves;
                for (int d = 0; d < n; d++) {
                    ptys.push_back(open_pty());
                    slaves.push_back(ptys.back().slave);
                }
                // Gated: no device gets its first reply before every device
                // has sent its first request.
                SerialPeer peer(ptys, measuring_rate ? SerialPeer::Mode::GatedEcho : SerialPeer::Mode::Echo);
                const fs::path config = p.work_dir / "scale.ini";
                write_file(config, scale_config(slaves, measuring_rate ? steps : 10, records,
                                                settle));
                fs::remove(records);
                ProcessRun run = run_process({devhost, "run", config.string()});
                if (run.exit_code != 0)
                    fail("scale: devhost run with " + std::to_string(n) + " devices exited with " +
                         std::to_string(run.exit_code));
                if (measuring_rate)
                    rate.devhost.samples.push_back(steady_rate(records));
                else
                    rss.devhost.samples.push_back(double(run.max_rss_kib));
            }
        }
        if (n == 1)
            rss_one = rss.devhost.median();
        else
            for (double s : rss.devhost.samples)
                per.devhost.samples.push_back((s - rss_one) / (n - 1));
        report.add(rate);
        report.add(rss);
        if (n > 1)
            report.add(per);
    }
}

}  // namespace bench
