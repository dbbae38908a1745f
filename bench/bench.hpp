// devhost-bench: devhost against plain-syscall baselines on the same kernel
// objects, in the same run. Each comparison repeats both sides, alternating
// which goes first, and reports median, min and max of each side and the
// ratio of the medians. Nothing here is asserted: the figures are printed and
// written as JSON; bench/README.md says what bounds each one.
#pragma once

#include <check.hpp>
#include <config.hpp>
#include <loader.hpp>
#include <pipeline.hpp>
#include <records.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <sys/types.h>

namespace devhost::test {
class Child;  // tests/support/devhost_test.hpp
}

namespace bench {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start);

// What the whole run was asked to do.
struct Params {
    bool smoke = false;
    int reps = 5;
    fs::path bin_dir;     // devhost, devhost-vdev
    fs::path plugin_dir;  // serial.so, raw.so, ...
    fs::path source_dir;  // configs/
    fs::path work_dir;    // scratch files: ptys' configs, the raw file, records
    std::vector<std::string> only;  // groups to run; empty: all
    bool wants(const std::string &group) const;
};

// One side's samples.
struct Series {
    std::vector<double> samples;
    double median() const;
    double min() const;
    double max() const;
};

// One comparison: devhost's figure against the baseline's, or a devhost
// figure alone (baseline empty).
struct Result {
    std::string group;    // serial, port, raw, startup, scale
    std::string name;     // what was measured
    std::string unit;     // "round trips/s", "MiB/s", "ms", "KiB"
    bool higher_is_better = true;
    std::string baseline_name;  // what the baseline is
    Series devhost, baseline;
    std::string note;
};

class Report {
public:
    void add(Result r);
    // Prints one result as soon as it is complete.
    static void print(const Result &r);
    void write_json(const fs::path &file, const Params &params) const;

private:
    std::vector<Result> results_;
};

// Runs `devhost_side` and `baseline_side` reps times each, alternating the
// order, and returns the result with both series filled.
Result compare(const Params &p, Result r, const std::function<double()> &devhost_side,
               const std::function<double()> &baseline_side);

[[noreturn]] void fail(const std::string &what);

// Loads one plugin file from the build's plugin directory (throws on refusal).
std::shared_ptr<const devhost::Plugin> load_plugin(const Params &p, const std::string &device_class);

// A pseudo-terminal pair: the master stays with the peer, devhost or the
// baseline opens the slave by path.
struct Pty {
    int master = -1;
    std::string slave;
};
Pty open_pty();

// Opens a pty slave for a plain loop, in raw mode.
int open_raw_slave(const std::string &path);

// Reads until `want` bytes have arrived (each wait up to 5 s).
void read_exactly(int fd, char *buf, size_t want);

// A step record's "time" (2026-11-21T20:27:23.123456Z) in seconds since
// midnight UTC; -1 when it has none.
double record_time(const std::string &line);

// A step record's string field `key` ("" when absent).
std::string record_field(const std::string &line, const char *key);

// Writes all of data, waiting (up to 5 s at a time) while the fd is full;
// false on an error.
bool write_all(int fd, const char *data, size_t len);

// A virtual serial peer in a child process serving the masters of `ptys`:
// echo mode sends back every byte; sink mode swallows bytes and answers one
// 'K' each time `sink_total` more bytes have arrived; gated echo holds every
// echo until each pty has sent something, then echoes as echo mode does. The parent's copies of
// the master descriptors are closed. The child holds each slave open so the
// master never sees a hang-up between clients, and dies with its parent.
class SerialPeer {
public:
    enum class Mode { Echo, Sink, GatedEcho };
    SerialPeer(std::vector<Pty> &ptys, Mode mode, size_t sink_total = 0);
    ~SerialPeer();
    SerialPeer(const SerialPeer &) = delete;
    SerialPeer &operator=(const SerialPeer &) = delete;
    void stop();

private:
    pid_t pid_ = -1;
    int control_ = -1;  // closing it tells the child to exit
};

// A process started with stdout and stderr discarded: its wall time and
// peak RSS (ru_maxrss of wait4).
struct ProcessRun {
    int exit_code = -1;
    double wall_ms = 0;
    long max_rss_kib = 0;
};
ProcessRun run_process(const std::vector<std::string> &argv);

void write_file(const fs::path &file, const std::string &text);

// A generated config of one device of `device_class` on `path`: open,
// `body` repeated `count` times, `tail`, close. Parsed and checked once by
// the host, run by its pipeline engine as often as asked, the plugin through
// the ABI, records written to a file in the work directory (as `devhost run
// -o FILE` would).
class EnginePipeline {
public:
    EnginePipeline(const Params &p, const std::string &device_class, const std::string &path,
                   const std::string &body, int count, const std::string &tail);
    void run();

private:
    devhost::Config config_;
    devhost::PluginRegistry registry_;
    devhost::Plan plan_;
    std::unique_ptr<devhost::RecordWriter> records_;
    std::unique_ptr<devhost::Engine> engine_;
};

// The groups: each adds its results to the report.
void bench_serial(const Params &p, Report &report);
void bench_port(const Params &p, Report &report);
void bench_raw(const Params &p, Report &report);
void bench_startup(const Params &p, Report &report);
void bench_scale(const Params &p, Report &report);
void bench_files(const Params &p, Report &report);
// devhost serve: N devices with a periodic body (serve.cpp).
void bench_serve(const Params &p, Report &report);
// devhost serve publishing to a local MQTT broker (mqtt.cpp).
void bench_mqtt(const Params &p, Report &report);
// The serial group through `devhost run`, isolation = none against class.
void bench_serial_isolation(const Params &p, Report &report);

// The raw group's file of `size` bytes in the work directory (made once,
// kept between runs).
fs::path raw_file(const Params &p, uint64_t size);

// Loads one plugin file into a fresh registry; returns milliseconds.
double load_plugin_here(const fs::path &file);

// Waits (up to 60 s) until every one of `devices` devices of the `devhost
// serve` in `serve` is set up (idle or running), asking its control socket
// (serve.cpp); fails when serve ends first.
void wait_set_up(devhost::test::Child &serve, const fs::path &socket, int devices);

}  // namespace bench
