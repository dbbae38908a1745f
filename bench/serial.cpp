// Serial: 64-byte request/reply round trips and 4 KiB streaming over a pty
// pair whose far end is a plain echo (or sink) peer in another process.
//   devhost (engine): a generated config of N `request` steps, parsed and
//     checked by the host, run by its pipeline engine (records written to a
//     file, as `devhost run -o FILE` would), the serial plugin through the ABI
//   devhost (device): the host's Device API in a loop, plugin through the ABI
//   baseline: write, poll, read on the pty slave in raw mode
// The same through `devhost run` with isolation = none and = class:
// serial_isolation.cpp.
#include "bench.hpp"

#include <device.hpp>

#include <cerrno>
#include <cstring>

#include <fcntl.h>
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

devhost::Outcome must(devhost::Outcome o, const char *what)
{
    if (!o.ok())
        fail(std::string(what) + ": " + devhost_status_name(o.status) + ": " + o.message);
    return o;
}

// One sample of each side of the 64-byte round trip, taken together: both
// talk to the same echo process, each over a pty of its own, in ten
// alternating chunks, so that both see the same load from the rest of the
// machine. Returns {devhost, baseline} round trips per second.
//
// Streaming (`stream`): each chunk writes `count`/10 blocks of 4 KiB and
// waits for the sink peer's one-byte acknowledgement of the chunk. Returns
// MiB/s then.
std::pair<double, double> interleaved(const Params &p, int count, bool engine, bool stream)
{
    auto plugin = load_plugin(p, "serial");
    std::vector<Pty> ptys{open_pty(), open_pty()};
    const std::string base_path = ptys[0].slave, dev_path = ptys[1].slave;
    const int chunks = 10;
    const int per = std::max(1, count / chunks);
    SerialPeer peer(ptys, stream ? SerialPeer::Mode::Sink : SerialPeer::Mode::Echo, size_t(per) * stream_block);
    const std::string msg = stream ? std::string(stream_block, 'x') : request_message();

    int fd = open_raw_slave(base_path);
    auto baseline_chunk = [&] {
        char buf[message_size];
        for (int i = 0; i < per; i++) {
            if (!write_all(fd, msg.data(), msg.size()))
                fail(std::string("write: ") + std::strerror(errno));
            if (!stream)
                read_exactly(fd, buf, message_size);
        }
        if (stream)
            read_exactly(fd, buf, 1);
    };

    std::unique_ptr<EnginePipeline> pipeline;
    devhost::Device dev(plugin, "bench");
    std::vector<uint8_t> buf(4096);
    const uint8_t delim = '\n';
    if (engine && stream) {
        pipeline = std::make_unique<EnginePipeline>(p, "serial", dev_path, "step = write \"" + msg + "\"\n", per, "step = read 1\n");
    } else if (engine) {
        std::string body = msg;
        body.pop_back();
        pipeline = std::make_unique<EnginePipeline>(p, "serial", dev_path, "step = request \"" + body + "\\n\" until=\"\\n\"\n", per, "");
    } else {
        must(dev.open({.path = dev_path}), "open");
    }
    auto devhost_chunk = [&] {
        if (engine) {
            pipeline->run();  // its open and close are inside the time
            return;
        }
        for (int i = 0; stream && i < per; i++) {
            devhost_transfer x{};
            x.op = DEVHOST_OP_WRITE;
            x.timeout_ms = 5000;
            x.out = reinterpret_cast<const uint8_t *>(msg.data());
            x.out_len = msg.size();
            must(dev.transfer(x), "write");
        }
        if (stream) {
            devhost_transfer x{};
            x.op = DEVHOST_OP_READ;
            x.timeout_ms = 5000;
            x.in = buf.data();
            x.in_capacity = 1;
            must(dev.transfer(x), "read the acknowledgement");
            return;
        }
        for (int i = 0; i < per; i++) {
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
    };

    double t_dev = 0, t_base = 0;
    for (int c = 0; c < chunks; c++) {
        for (int side = 0; side < 2; side++) {
            const bool devhost_turn = (side == 0) == (c % 2 == 0);
            const auto start = Clock::now();
            if (devhost_turn)
                devhost_chunk();
            else
                baseline_chunk();
            (devhost_turn ? t_dev : t_base) += seconds_since(start);
        }
    }
    ::close(fd);
    if (!engine)
        must(dev.close(), "close");
    const double unit = stream ? double(stream_block) / (1024.0 * 1024.0) : 1.0;
    return {double(per) * chunks * unit / t_dev, double(per) * chunks * unit / t_base};
}

}  // namespace

void bench_serial(const Params &p, Report &report)
{
    const int rt = p.smoke ? 200 : 20000;
    const int blocks = p.smoke ? 64 : 8192;  // 32 MiB a sample
    struct Kind {
        const char *name;
        bool engine, stream;
    };
    const Kind kinds[] = {{"64 B request/reply, engine (config steps)", true, false},
                          {"64 B request/reply, Device API", false, false},
                          {"4 KiB streaming, engine (write steps)", true, true},
                          {"4 KiB streaming, Device API", false, true}};
    for (const Kind &k : kinds) {
        Result r{"serial", k.name, k.stream ? "MiB/s" : "round trips/s", true,
                 k.stream ? "write(2) of 4 KiB blocks on a raw pty slave" : "write/poll/read on a raw pty slave", {}, {},
                 ""};
        r.note = std::string(k.engine ? "records written to a file" : "") +
                 (k.engine && k.stream ? ", each carrying the 4 KiB as hex and text" : "") + (k.engine ? "; " : "") +
                 "both sides in 10 alternating chunks a sample, same peer process, a pty each";
        // The engine's records make streaming slow: a quarter of the blocks.
        const int count = k.stream ? (k.engine ? blocks / 4 : blocks) : rt;
        for (int i = 0; i < p.reps; i++) {
            auto [d, b] = interleaved(p, count, k.engine, k.stream);
            r.devhost.samples.push_back(d);
            r.baseline.samples.push_back(b);
        }
        report.add(r);
    }
    bench_serial_isolation(p, report);
}

}  // namespace bench
