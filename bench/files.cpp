// Files: bulk data through `read N to=FILE` and `write from=FILE`
// (host/file_transfer.hpp).
//   raw image to a file: `devhost run` of a config whose one step reads the
//     raw group's 256 MiB file (8 MiB in smoke mode) to a file, against
//     `dd bs=64K` copying the same file; both processes timed whole, the
//     source in the page cache, the copy a fresh file each time
//   file to a pty: the engine running `write from=FILE` steps of 1 MiB each
//     (8 a sample; 1 in smoke mode) to a sink peer, then reading its
//     one-byte acknowledgement, against a plain loop that reads the file in
//     the same 1 MiB chunks and write(2)s each to a raw pty slave, then reads
//     the same acknowledgement; both in 10 alternating chunks a sample
#include "bench.hpp"

#include <file_transfer.hpp>

#include <cerrno>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace bench {
namespace {

double mib_per_s(uint64_t bytes, double seconds) { return double(bytes) / seconds / (1024.0 * 1024.0); }

// One timed run of `argv` (stdout and stderr discarded) moving `bytes`.
double timed_copy(const std::vector<std::string> &argv, const fs::path &out, uint64_t bytes)
{
    fs::remove(out);
    const ProcessRun r = run_process(argv);
    if (r.exit_code != 0)
        fail(argv[0] + " exited " + std::to_string(r.exit_code));
    if (fs::file_size(out) != bytes)
        fail(argv[0] + " left " + std::to_string(fs::file_size(out)) + " bytes in " + out.string());
    return mib_per_s(bytes, r.wall_ms / 1000.0);
}

void image_to_file(const Params &p, Report &report)
{
    const uint64_t size = (p.smoke ? 8ull : 256ull) << 20;
    const fs::path image = raw_file(p, size), out = p.work_dir / "files-copy.bin";
    const fs::path config = p.work_dir / "files-read.ini";
    write_file(config, "[host]\nlog-level = warn\noutput = " + (p.work_dir / "files-records.jsonl").string() +
                           "\n[device r]\nclass = raw\npath = " + image.string() + "\nstep = open\nstep = read " +
                           std::to_string(size) + " to=" + out.string() + " timeout=120s\nstep = close\n");
    timed_copy({"/bin/dd", "if=" + image.string(), "of=" + out.string(), "bs=64K"}, out, size);  // page cache
    Result r{"files", "raw image to a file, read to= (devhost run)", "MiB/s", true, "dd bs=64K of the same file",
             {}, {}, ""};
    r.note = "whole processes timed; 1 MiB chunks against dd's 64 KiB blocks; source in the page cache";
    report.add(compare(p, r, [&] { return timed_copy({(p.bin_dir / "devhost").string(), "run", config.string()},
                                                     out, size); },
                       [&] { return timed_copy({"/bin/dd", "if=" + image.string(), "of=" + out.string(),
                                                "bs=64K"}, out, size); }));
}

// The sink peer's one-byte acknowledgement, within 5 s.
void read_ack(int fd)
{
    for (;;) {
        pollfd pf{fd, POLLIN, 0};
        if (::poll(&pf, 1, 5000) == 0)
            fail("baseline: no acknowledgement within 5 s");
        char c;
        const ssize_t n = ::read(fd, &c, 1);
        if (n == 1)
            return;
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            fail(std::string("read: ") + std::strerror(errno));
    }
}

// The plain loop: the file read in file_chunk_bytes chunks, each written
// whole to the pty, `count` times; then the acknowledgement.
void write_loop(int fd, const fs::path &file, int count, std::vector<char> &buf)
{
    for (int i = 0; i < count; i++) {
        const int in = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
        ssize_t n;
        while ((n = ::read(in, buf.data(), buf.size())) > 0)
            if (!write_all(fd, buf.data(), size_t(n)))
                fail(std::string("write: ") + std::strerror(errno));
        ::close(in);
    }
    read_ack(fd);
}

// One sample of each side, taken together in 10 alternating chunks against
// one sink peer, a pty each. Returns {devhost, baseline} MiB/s.
std::pair<double, double> file_to_pty(const Params &p, const fs::path &file, int per)
{
    std::vector<Pty> ptys{open_pty(), open_pty()};
    const std::string base_path = ptys[0].slave, dev_path = ptys[1].slave;
    SerialPeer peer(ptys, SerialPeer::Mode::Sink, size_t(per) * devhost::file_chunk_bytes);
    EnginePipeline pipeline(p, "serial", dev_path, "step = write from=" + file.string() + "\n", per,
                            "step = read 1\n");
    const int fd = open_raw_slave(base_path);
    std::vector<char> buf(devhost::file_chunk_bytes);
    double t_dev = 0, t_base = 0;
    const int chunks = 10;
    for (int c = 0; c < chunks; c++)
        for (int side = 0; side < 2; side++) {
            const bool devhost_turn = (side == 0) == (c % 2 == 0);
            const auto start = Clock::now();
            if (devhost_turn)
                pipeline.run();  // its open and close are inside the time
            else
                write_loop(fd, file, per, buf);
            (devhost_turn ? t_dev : t_base) += seconds_since(start);
        }
    ::close(fd);
    const uint64_t bytes = uint64_t(per) * chunks * devhost::file_chunk_bytes;
    return {mib_per_s(bytes, t_dev), mib_per_s(bytes, t_base)};
}

}  // namespace

void bench_files(const Params &p, Report &report)
{
    image_to_file(p, report);

    const fs::path file = p.work_dir / "files-1MiB.bin";
    write_file(file, std::string(devhost::file_chunk_bytes, 'x'));
    const int per = p.smoke ? 1 : 8;
    Result r{"files", "1 MiB files to a pty, write from= (engine)", "MiB/s", true,
             "read(2) of the file in 1 MiB chunks, write(2) of each to a raw pty slave", {}, {}, ""};
    r.note = std::to_string(per) + " MiB a chunk, 10 alternating chunks a sample, same sink peer, a pty each";
    for (int i = 0; i < p.reps; i++) {
        auto [d, b] = file_to_pty(p, file, per);
        r.devhost.samples.push_back(d);
        r.baseline.samples.push_back(b);
    }
    report.add(r);
}

}  // namespace bench
