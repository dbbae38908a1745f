// Start-up and scale, both through the devhost binary itself.
//   start-up: wall time and peak RSS (wait4's ru_maxrss) of `devhost check`
//     and `devhost run` on a small config (one loop device), with
//     isolation = class (the plugins in workers) and = none (in devhost),
//     against spawning /bin/true (the floor of any process start), and
//     class against none; each plugin's load time, first load in a fresh
//     process
//   scale: N devices (1, 16, 128, 512, 2048) on N ptys served by one echo peer
//     process, each device doing `request` steps, all run by one
//     `devhost run`; aggregate round trips/s and the host's RSS per device
#include "bench.hpp"
#include "scale_config.hpp"

#include <algorithm>
#include <iostream>
#include <cstdlib>
#include <fstream>
#include <map>

namespace bench {
namespace {

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

// Wall time and peak RSS of `devhost COMMAND` on the small config with
// isolation = class and = none and of /bin/true, the three in rotating
// order, 3 × reps samples each (a start is milliseconds); the class side's
// cost over none as a ratio and as the median of the paired differences.
void startup_command(const Params &p, Report &report, const std::string &command, const std::string (&configs)[2])
{
    const std::string devhost = (p.bin_dir / "devhost").string();
    const std::vector<std::string> argvs[3] = {
        {devhost, command, configs[0]}, {devhost, command, configs[1]}, {"/bin/true", "x"}};
    Series wall[3], rss[3], extra;
    const int reps = 3 * p.reps;
    for (int i = 0; i < reps; i++) {
        double ms[3] = {};
        for (int k = 0; k < 3; k++) {
            const int side = (i + k) % 3;
            const ProcessRun run = run_process(argvs[side]);
            if (run.exit_code != 0)
                fail(argvs[side][0] + " " + command + " " + argvs[side].back() + " exited with " +
                     std::to_string(run.exit_code));
            ms[side] = run.wall_ms;
            wall[side].samples.push_back(run.wall_ms);
            rss[side].samples.push_back(double(run.max_rss_kib));
        }
        extra.samples.push_back(ms[0] - ms[1]);
    }
    const std::string floor = "/bin/true (process start floor)";
    const std::string note = "one loop device, 8 steps; every plugin in the build tree loaded (class: checked here, "
                             "described and run by workers); records and log to /dev/null; " +
                             std::to_string(reps) + " samples a side, the sides in rotating order";
    const char *const names[] = {"isolation=class", "isolation=none"};
    for (int i = 0; i < 2; i++)
        report.add({"startup", "devhost " + command + " small.ini, " + names[i] + ": wall", "ms", false, floor,
                    wall[i], wall[2], note});
    report.add({"startup", "devhost " + command + " small.ini: wall, class against none", "ms", false,
                "the same with isolation=none", wall[0], wall[1], note});
    report.add({"startup", "devhost " + command + " small.ini: wall, class minus none (paired)", "ms", false, "",
                extra, {}, note});
    for (int i = 0; i < 2; i++)
        report.add({"startup", "devhost " + command + " small.ini, " + names[i] + ": peak RSS", "KiB", false, floor,
                    rss[i], rss[2],
                    note + (i == 0 ? "; ru_maxrss of wait4: the largest of the supervisor and its workers, not their sum" : "")});
}

}  // namespace

void bench_startup(const Params &p, Report &report)
{
    // A small config: one loop device through every kind of step it takes
    // (the default config starts virtual peers, which is not the host's cost).
    const std::string steps = "[device loopback]\nclass = loop\npath = loop:default\n"
                              "step = open\nstep = info\nstep = lock timeout=1s\nstep = write \"hello, devhost\\r\\n\"\n"
                              "step = read until=\"\\r\\n\" expect=\"hello\"\nstep = request \"ping\" expect=\"ping\"\n"
                              "step = unlock\nstep = close\n";
    // The same small config twice: the plugins in workers (class, the
    // default) and in the devhost process (none).
    const char *const isolations[] = {"class", "none"};
    std::string configs[2];
    for (int i = 0; i < 2; i++) {
        const fs::path small = p.work_dir / (std::string("small-") + isolations[i] + ".ini");
        write_file(small, "[host]\nlog-level = warn\noutput = -\nisolation = " + std::string(isolations[i]) + "\n\n" + steps);
        configs[i] = small.string();
    }
    for (const char *command : {"check", "run"})
        startup_command(p, report, command, configs);

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
    // The smoke run's shape is the full run's with smaller counts
    // (scale_config.hpp). Every device sleeps `settle` after its open (the
    // peer's gate then starts them together).
    const ScaleShape shape = scale_shape(p.smoke);
    const std::string &settle = shape.settle;
    const std::string devhost = (p.bin_dir / "devhost").string();
    const fs::path records = p.work_dir / "scale-records.jsonl";
    double rss_one = 0;
    for (int n : shape.sizes) {
        const int steps = shape.steps_for(n);
        Result rate{"scale", std::to_string(n) + " devices: aggregate request/reply", "round trips/s", true, "", {}, {}, ""};
        rate.note = "one `devhost run`, " + std::to_string(steps) + " request steps a device after a " + settle +
                    " sleep; the peer holds every reply until each device has sent its first request; rate from the records while all devices ran";
        Result rss{"scale", std::to_string(n) + " devices: host peak RSS", "KiB", false, "", {}, {}, ""};
        rss.note = "a separate run where every device has the same pipeline: open, sleep, " +
                   std::to_string(shape.rss_steps) + " requests, close";
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
                // One templated section on links tty0 .. ttyN-1 to the ptys.
                const fs::path config = p.work_dir / "scale.ini";
                const std::string paths = link_ptys(p.work_dir / "scale-ttys", slaves);
                write_file(config, scale_config(paths, n, measuring_rate ? steps : shape.rss_steps,
                                                records.string(), settle));
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
