// Serial through the devhost binary, the plugin in the devhost process
// against the plugin in a worker: the serial group's 64 B request/reply and
// 4 KiB streaming, each devhost side a `devhost run` of a generated config
// (one serial device: open, N `request` or `write` steps, [read 1], close),
//   isolation = none   the engine runs the serial plugin in `devhost` itself
//   isolation = class  a `devhost __worker` runs the pipeline, the
//                      supervisor watches it
// against the same plain loop as serial.cpp (write, poll, read on a raw pty
// slave), all three in one sample: ten chunks, the three sides in rotating
// order within each, the same peer process, a pty each.
//
// A devhost side's time comes from its own step records: from the end of
// its `open` step to the end of its last step before `close`, so the
// process's start-up and the worker's (the startup group's figures) are
// outside it and the records' formatting and writes are inside it.
#include "bench.hpp"

#include <array>
#include <fstream>

#include <unistd.h>

namespace bench {
namespace {

constexpr size_t message_size = 64;
constexpr size_t stream_block = 4096;
constexpr int chunks = 10;

enum Side { Baseline, None, Class, sides };
const char *const isolation_word[] = {"", "none", "class"};

// One devhost side: its config and its records.
struct RunSide {
    fs::path config, records;
};

// The config of one serial device on `path`, `count` times `body`, then
// `tail`; records to `records`.
RunSide write_config(const Params &p, const char *isolation, const std::string &path, const std::string &body,
                     int count, const std::string &tail)
{
    const std::string stem = std::string("isolation-") + isolation;
    RunSide s{p.work_dir / (stem + ".ini"), p.work_dir / (stem + "-records.jsonl")};
    std::string text = "[host]\nlog-level = warn\nisolation = " + std::string(isolation) +
                       "\noutput = " + s.records.string() + "\n[device s]\nclass = serial\npath = " + path +
                       "\nstep = open\n";
    text.reserve(text.size() + body.size() * size_t(count) + 64);
    for (int i = 0; i < count; i++)
        text += body;
    text += tail + "step = close\n";
    write_file(s.config, text);
    return s;
}

// Runs one chunk with `devhost run` and returns its seconds from the end of
// `open` to the end of the last step before `close`; every one of the
// `steps` records between them must be DEVHOST_OK.
double run_chunk(const Params &p, const RunSide &side, size_t steps)
{
    fs::remove(side.records);
    const ProcessRun run = run_process({(p.bin_dir / "devhost").string(), "run", side.config.string()});
    if (run.exit_code != 0)
        fail("devhost run " + side.config.string() + " exited with " + std::to_string(run.exit_code));
    std::ifstream in(side.records);
    std::string line;
    double opened = -1, last = -1;
    size_t between = 0;
    while (std::getline(in, line)) {
        const std::string step = record_field(line, "step");
        if (record_field(line, "status") != "DEVHOST_OK")
            fail("devhost run " + side.config.string() + ": a step failed: " + line.substr(0, 300));
        if (step.rfind("open", 0) == 0) {
            opened = record_time(line);
        } else if (step.rfind("close", 0) != 0 && opened >= 0) {
            last = record_time(line);
            between++;
        }
    }
    if (opened < 0 || between != steps || last < opened)
        fail("devhost run " + side.config.string() + ": expected open, " + std::to_string(steps) +
             " steps and close in " + side.records.string() + ", found " + std::to_string(between));
    // A chunk is some milliseconds: a record's microseconds are exact enough.
    return std::max(last - opened, 1e-6);
}

// One sample of the three sides; rates in round trips/s or MiB/s.
std::array<double, sides> sample(const Params &p, int count, bool stream)
{
    std::vector<Pty> ptys{open_pty(), open_pty(), open_pty()};
    const std::string base_path = ptys[Baseline].slave;
    const std::string paths[] = {"", ptys[None].slave, ptys[Class].slave};
    const int per = std::max(1, count / chunks);
    SerialPeer peer(ptys, stream ? SerialPeer::Mode::Sink : SerialPeer::Mode::Echo, size_t(per) * stream_block);

    std::string msg(message_size - 1, 'i');
    std::string body = "step = request \"" + msg + "\\n\" until=\"\\n\"\n", tail;
    msg.push_back('\n');
    if (stream) {
        msg = std::string(stream_block, 'x');
        body = "step = write \"" + msg + "\"\n";
        tail = "step = read 1\n";
    }
    const size_t steps = size_t(per) + (stream ? 1 : 0);
    RunSide run[sides];
    for (int s : {None, Class})
        run[s] = write_config(p, isolation_word[s], paths[s], body, per, tail);

    const int fd = open_raw_slave(base_path);
    auto baseline_chunk = [&] {
        char buf[message_size];
        for (int i = 0; i < per; i++) {
            if (!write_all(fd, msg.data(), msg.size()))
                fail("baseline: write failed");
            if (!stream)
                read_exactly(fd, buf, message_size);
        }
        if (stream)
            read_exactly(fd, buf, 1);
    };
    std::array<double, sides> seconds{};
    for (int c = 0; c < chunks; c++)
        for (int k = 0; k < sides; k++) {
            const int s = (c + k) % sides;
            if (s == Baseline) {
                const auto start = Clock::now();
                baseline_chunk();
                seconds[s] += seconds_since(start);
            } else {
                seconds[s] += run_chunk(p, run[s], steps);
            }
        }
    ::close(fd);
    const double unit = stream ? double(stream_block) / (1024.0 * 1024.0) : 1.0;
    std::array<double, sides> rates{};
    for (int s = 0; s < sides; s++)
        rates[s] = double(per) * chunks * unit / seconds[s];
    return rates;
}

}  // namespace

void bench_serial_isolation(const Params &p, Report &report)
{
    const int rt = p.smoke ? 200 : 20000;
    const int blocks = p.smoke ? 64 : 2048;  // 8 MiB a sample, as the in-process engine figure
    for (bool stream : {false, true}) {
        const std::string what = stream ? "4 KiB streaming" : "64 B request/reply";
        const std::string unit = stream ? "MiB/s" : "round trips/s";
        const std::string loop = stream ? "write(2) of 4 KiB blocks on a raw pty slave" : "write/poll/read on a raw pty slave";
        const std::string note = "devhost run of a generated config, timed by its records from the end of open to the "
                                 "last step before close; 10 chunks a sample, the three sides in rotating order, same "
                                 "peer process, a pty each";
        Result none{"serial", what + ", devhost run, isolation=none", unit, true, loop, {}, {}, note};
        Result cls{"serial", what + ", devhost run, isolation=class", unit, true, loop, {}, {}, note};
        Result vs{"serial", what + ", isolation=class against none", unit, true,
                  "the same through devhost run with isolation = none", {}, {}, note};
        for (int i = 0; i < p.reps; i++) {
            const auto r = sample(p, stream ? blocks : rt, stream);
            none.devhost.samples.push_back(r[None]);
            none.baseline.samples.push_back(r[Baseline]);
            cls.devhost.samples.push_back(r[Class]);
            cls.baseline.samples.push_back(r[Baseline]);
            vs.devhost.samples.push_back(r[Class]);
            vs.baseline.samples.push_back(r[None]);
        }
        report.add(none);
        report.add(cls);
        report.add(vs);
    }
}

}  // namespace bench
