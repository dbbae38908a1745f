// Serial: 64-byte request/reply round trips and 4 KiB streaming over a pty
// pair whose far end is a plain echo (or sink) peer in another process.
//   devhost (engine): a generated config of N `request` steps, parsed and
//     checked by the host, run by its pipeline engine (records written to a
//     file, as `devhost run -o FILE` would), the serial plugin through the ABI
//   devhost (device): the host's Device API in a loop, plugin through the ABI
//   baseline: write, poll, read on the pty slave in raw mode
#include "bench.hpp"

#include <check.hpp>
#include <config.hpp>
#include <device.hpp>
#include <pipeline.hpp>
#include <records.hpp>

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

namespace bench {
namespace {

constexpr size_t message_size = 64;
constexpr size_t stream_block = 4096;

// 63 printable bytes and a newline: the reply's delimiter.
std::string request_message()
{
    std::string m;
    for (size_t i = 0; i + 1 < message_size; i++)
        m.push_back(char('a' + i % 26));
    m.push_back('\n');
    return m;
}

int open_raw_slave(const std::string &path)
{
    int fd = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        fail("open " + path + ": " + std::strerror(errno));
    termios t{};
    tcgetattr(fd, &t);
    cfmakeraw(&t);
    tcsetattr(fd, TCSANOW, &t);
    return fd;
}

void write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = ::write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            pollfd p{fd, POLLOUT, 0};
            ::poll(&p, 1, 5000);
            continue;
        }
        if (n <= 0)
            fail(std::string("write: ") + std::strerror(errno));
        data += n;
        len -= size_t(n);
    }
}

// Reads until `want` bytes have arrived.
void read_exactly(int fd, char *buf, size_t want)
{
    size_t got = 0;
    while (got < want) {
        pollfd p{fd, POLLIN, 0};
        int r = ::poll(&p, 1, 5000);
        if (r == 0)
            fail("baseline: no reply within 5 s");
        if (r < 0 && errno == EINTR)
            continue;
        ssize_t n = ::read(fd, buf + got, want - got);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            fail(std::string("read: ") + std::strerror(errno));
        got += size_t(n);
    }
}

double baseline_round_trips(int count)
{
    std::vector<Pty> ptys{open_pty()};
    const std::string slave = ptys[0].slave;
    SerialPeer peer(ptys, SerialPeer::Mode::Echo);
    int fd = open_raw_slave(slave);
    const std::string msg = request_message();
    char buf[message_size];
    const auto start = Clock::now();
    for (int i = 0; i < count; i++) {
        write_all(fd, msg.data(), msg.size());
        read_exactly(fd, buf, message_size);
    }
    double s = seconds_since(start);
    ::close(fd);
    return count / s;
}

double baseline_stream(int blocks)
{
    std::vector<Pty> ptys{open_pty()};
    const std::string slave = ptys[0].slave;
    SerialPeer peer(ptys, SerialPeer::Mode::Sink, size_t(blocks) * stream_block);
    int fd = open_raw_slave(slave);
    std::string block(stream_block, 'x');
    char ack;
    const auto start = Clock::now();
    for (int i = 0; i < blocks; i++)
        write_all(fd, block.data(), block.size());
    read_exactly(fd, &ack, 1);
    double s = seconds_since(start);
    ::close(fd);
    return double(blocks) * stream_block / s / (1024.0 * 1024.0);
}

devhost::Outcome must(devhost::Outcome o, const char *what)
{
    if (!o.ok())
        fail(std::string(what) + ": " + devhost_status_name(o.status) + ": " + o.message);
    return o;
}

double device_round_trips(const Params &p, int count)
{
    auto plugin = load_plugin(p, "serial");
    std::vector<Pty> ptys{open_pty()};
    const std::string slave = ptys[0].slave;
    SerialPeer peer(ptys, SerialPeer::Mode::Echo);
    devhost::Device dev(plugin, "bench");
    must(dev.open({.path = slave}), "open");
    const std::string msg = request_message();
    const uint8_t delim = '\n';
    std::vector<uint8_t> buf(4096);
    const auto start = Clock::now();
    for (int i = 0; i < count; i++) {
        devhost_transfer x{};
        x.op = DEVHOST_OP_REQUEST;
        x.timeout_ms = 5000;
        x.out = reinterpret_cast<const uint8_t *>(msg.data());
        x.out_len = msg.size();
        x.in = buf.data();
        x.in_capacity = buf.size();
        x.delimiter = &delim;
        x.delimiter_len = 1;
        must(dev.transfer(x), "request");
        if (x.in_len != message_size)
            fail("device: short reply");
    }
    double s = seconds_since(start);
    must(dev.close(), "close");
    return count / s;
}

double device_stream(const Params &p, int blocks)
{
    auto plugin = load_plugin(p, "serial");
    std::vector<Pty> ptys{open_pty()};
    const std::string slave = ptys[0].slave;
    SerialPeer peer(ptys, SerialPeer::Mode::Sink, size_t(blocks) * stream_block);
    devhost::Device dev(plugin, "bench");
    must(dev.open({.path = slave}), "open");
    std::string block(stream_block, 'x');
    uint8_t ack;
    const auto start = Clock::now();
    for (int i = 0; i < blocks; i++) {
        devhost_transfer x{};
        x.op = DEVHOST_OP_WRITE;
        x.timeout_ms = 5000;
        x.out = reinterpret_cast<const uint8_t *>(block.data());
        x.out_len = block.size();
        must(dev.transfer(x), "write");
    }
    devhost_transfer x{};
    x.op = DEVHOST_OP_READ;
    x.timeout_ms = 5000;
    x.in = &ack;
    x.in_capacity = 1;
    must(dev.transfer(x), "read ack");
    double s = seconds_since(start);
    must(dev.close(), "close");
    return double(blocks) * stream_block / s / (1024.0 * 1024.0);
}

// Runs a generated config's single device through the engine; returns the
// engine's wall time in seconds. The steps between open and close are
// `body` repeated `count` times.
double engine_run(const Params &p, const std::string &slave, const std::string &body, int count,
                  const std::string &tail)
{
    load_plugin(p, "serial");
    std::string text = "[host]\nlog-level = warn\n[device s]\nclass = serial\npath = " + slave + "\nstep = open\n";
    for (int i = 0; i < count; i++)
        text += body;
    text += tail + "step = close\n";
    std::vector<devhost::Diagnostic> diagnostics;
    devhost::Config config = devhost::parse_config(text, "bench-serial.ini", diagnostics);
    devhost::PluginRegistry registry;
    if (!registry.load_file(p.plugin_dir / "serial.so"))
        fail("cannot load serial.so");
    devhost::Plan plan = devhost::check_config(config, registry, diagnostics);
    if (!diagnostics.empty())
        fail("generated serial config: " + diagnostics.front().str());
    const fs::path records_file = p.work_dir / "serial-records.jsonl";
    fs::remove(records_file);
    devhost::RecordWriter records(records_file.string());
    devhost::Engine engine(records, 5000);
    const auto start = Clock::now();
    devhost::PipelineResult r = engine.run_device(plan.devices.at(0));
    double s = seconds_since(start);
    if (!r.ok)
        fail(std::string("engine: pipeline failed: ") + devhost_status_name(r.status));
    return s;
}

double engine_round_trips(const Params &p, int count)
{
    std::vector<Pty> ptys{open_pty()};
    const std::string slave = ptys[0].slave;
    SerialPeer peer(ptys, SerialPeer::Mode::Echo);
    std::string msg = request_message();
    msg.pop_back();
    return count / engine_run(p, slave, "step = request \"" + msg + "\\n\" until=\"\\n\"\n", count, "");
}

double engine_stream(const Params &p, int blocks)
{
    std::vector<Pty> ptys{open_pty()};
    const std::string slave = ptys[0].slave;
    SerialPeer peer(ptys, SerialPeer::Mode::Sink, size_t(blocks) * stream_block);
    const std::string step = "step = write \"" + std::string(stream_block, 'x') + "\"\n";
    double s = engine_run(p, slave, step, blocks, "step = read 1\n");
    return double(blocks) * stream_block / s / (1024.0 * 1024.0);
}

}  // namespace

void bench_serial(const Params &p, Report &report)
{
    const int rt = p.smoke ? 200 : 20000;
    const int blocks = p.smoke ? 64 : 8192;  // 32 MiB a sample
    const std::string base_rt = "write/poll/read on a raw pty slave";
    const std::string base_stream = "write(2) of 4 KiB blocks on a raw pty slave";

    Result r{"serial", "64 B request/reply, engine (config steps)", "round trips/s", true, base_rt, {}, {}, ""};
    r.note = "records written to a file; peer: plain echo process on the pty master";
    report.add(compare(p, r, [&] { return engine_round_trips(p, rt); }, [&] { return baseline_round_trips(rt); }));

    r = {"serial", "64 B request/reply, Device API", "round trips/s", true, base_rt, {}, {}, ""};
    report.add(compare(p, r, [&] { return device_round_trips(p, rt); }, [&] { return baseline_round_trips(rt); }));

    r = {"serial", "4 KiB streaming, engine (write steps)", "MiB/s", true, base_stream, {}, {}, ""};
    r.note = "each step's record carries the 4 KiB as hex and text";
    report.add(compare(p, r, [&] { return engine_stream(p, blocks / 4); }, [&] { return baseline_stream(blocks / 4); }));

    r = {"serial", "4 KiB streaming, Device API", "MiB/s", true, base_stream, {}, {}, ""};
    report.add(compare(p, r, [&] { return device_stream(p, blocks); }, [&] { return baseline_stream(blocks); }));
}

}  // namespace bench
