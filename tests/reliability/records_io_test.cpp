// Records are whole lines, always (README, "Records"): each record is one
// write (a SOCK_SEQPACKET stdout shows every write as a packet); a records
// file that an earlier run left ending mid-line gets a newline first; when
// records can no longer be written (a full tmpfs mounted here, /dev/full, a
// pipe whose reader closed) every pipeline stops at once, even one sleeping
// for a minute, unwinds and the run exits 1 saying so. A FIFO with no reader
// or a reader that takes nothing, as --output or --log-file, never hangs
// `check`, and in `run` SIGTERM ends a run blocked on its output well within
// the grace period.
#include "devhost_test.hpp"
#include "devices.hpp"

#include <catch2/catch.hpp>
#include <csignal>
#include <cstring>
#include <optional>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace devhost::test;

namespace {

using Clock = std::chrono::steady_clock;

// Device a: a few steps, the second a short sleep; device b: holds its loop
// device and sleeps a minute, so a run that ends early proves b was stopped.
const char *two_devices = "[device a]\nclass = loop\npath = loop:a\nstep = open\nstep = sleep 500ms\n"
                          "step = write \"abc\"\nstep = read exactly=3\nstep = close\n"
                          "[device b]\nclass = loop\npath = loop:b\nstep = open\nstep = lock\n"
                          "step = sleep 1m\nstep = unlock\nstep = close\n";

// What every run that lost its records says; when b held its device at the
// time, that b was released.
void check_stopped_for_records(const ProcessResult &r, const std::string &reason, bool b_held)
{
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.term_signal == 0);
    CHECK(r.err.find("cannot write step records: " + reason) != std::string::npos);
    CHECK(r.err.find("step records can no longer be written: stopping every pipeline and releasing its devices") !=
          std::string::npos);
    if (b_held) {
        CHECK(r.err.find("b: step 'sleep 1m' (line ") != std::string::npos);
        CHECK(r.err.find("failed: DEVHOST_E_CANCELLED: sleep cancelled") != std::string::npos);
        CHECK(r.err.find("b: unlock (unwinding what the pipeline held)") != std::string::npos);
        CHECK(r.err.find("b: close (unwinding what the pipeline held)") != std::string::npos);
    }
    CHECK(r.err.find("step records could not all be written: the run is not complete") != std::string::npos);
}

double seconds_since(Clock::time_point start)
{
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// A tmpfs of `size` mounted on `dir` by this test, unmounted on scope exit.
struct TinyTmpfs {
    TinyTmpfs(const fs::path &where, const std::string &size) : dir(where)
    {
        fs::create_directory(dir);
        mounted = mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, ("size=" + size).c_str()) == 0;
    }
    ~TinyTmpfs()
    {
        if (mounted && umount(dir.c_str()) != 0)
            umount2(dir.c_str(), MNT_DETACH);
    }
    bool resize(const std::string &size)
    {
        return mount("tmpfs", dir.c_str(), "tmpfs", MS_REMOUNT | MS_NOSUID | MS_NODEV, ("size=" + size).c_str()) == 0;
    }
    fs::path dir;
    bool mounted = false;
};

}  // namespace

TEST_CASE("each record is written with one write", "[records][e2e]")
{
    TempDir dir;
    std::string ini = two_devices;
    write_file(dir / "c.ini", ini.replace(ini.find("sleep 1m"), 8, "sleep 10ms"));
    // A SOCK_SEQPACKET stdout keeps every write(2) a packet of its own.
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    ProcessOptions options;
    const int out = sv[1];
    options.before_exec = [out] { dup2(out, STDOUT_FILENO); };
    auto r = run_devhost({"run", (dir / "c.ini").string()}, options);
    close(sv[1]);
    CHECK(r.exit_code == 0);
    std::vector<std::string> packets;
    char buf[65536];
    for (ssize_t n; (n = recv(sv[0], buf, sizeof buf, MSG_DONTWAIT)) > 0;)
        packets.emplace_back(buf, static_cast<size_t>(n));
    close(sv[0]);
    REQUIRE(packets.size() == 10);
    for (const auto &p : packets) {
        CHECK(p.rfind("{\"time\":", 0) == 0);
        CHECK(p.find('\n') == p.size() - 1);
        CHECK(p.substr(p.size() - 2) == "}\n");
    }
}

TEST_CASE("a records file an earlier run left mid-line gets a newline before the first record", "[records][e2e]")
{
    TempDir dir;
    write_file(dir / "c.ini", "[device a]\nclass = loop\npath = loop:a\nstep = open\nstep = close\n");
    const auto out = dir / "records.jsonl";
    write_file(out, "{\"time\":\"2024-01-01T00:00:00.000000Z\",\"device\":\"a\",\"seq\":1,\"st");
    auto r = run_devhost({"run", "-o", out.string(), (dir / "c.ini").string()});
    CHECK(r.exit_code == 0);
    CHECK(r.err.find(out.string() + " does not end in a newline (a record an earlier run could not finish); "
                                    "starting on a new line") != std::string::npos);
    const auto l = lines(read_file(out));
    REQUIRE(l.size() == 3);
    CHECK(l[0].back() == 't');
    CHECK(l[1].rfind("{\"time\":", 0) == 0);
    CHECK(l[1].find(R"("step":"open","line":4,"status":"DEVHOST_OK")") != std::string::npos);
    CHECK(l[2].find(R"("step":"close","line":5,"status":"DEVHOST_OK")") != std::string::npos);
    // A file that ends in a newline is left as it is.
    r = run_devhost({"run", "-o", out.string(), (dir / "c.ini").string()});
    CHECK(r.err.find("does not end in a newline") == std::string::npos);
    CHECK(lines(read_file(out)).size() == 5);
}

TEST_CASE("a full file system stops every pipeline at once and the next run starts on a new line", "[records][e2e]")
{
    TempDir dir;
    TinyTmpfs tmpfs(dir / "tiny", "64k");
    if (!tmpfs.mounted) {
        DEVHOST_SKIP(std::string("mounting a tmpfs needs CAP_SYS_ADMIN (") + std::strerror(errno) + ")");
    }
    // Device a fills 64 KiB with records of 2 KiB writes (about 15 KiB of
    // JSON each) after half a second; b sleeps a minute holding its lock.
    std::string ini = "[device a]\nclass = loop\npath = loop:a\ncapacity = 1048576\nstep = open\n"
                      "step = sleep 500ms\n";
    for (int i = 0; i < 40; i++)
        ini += "step = write hex:" + std::string(4096, 'e') + "\n";
    ini += "step = close\n";
    ini += std::string(two_devices).substr(std::string(two_devices).find("[device b]"));
    write_file(dir / "fill.ini", ini);
    const auto out = tmpfs.dir / "records.jsonl";
    const auto start = Clock::now();
    auto r = run_devhost({"run", "-o", out.string(), (dir / "fill.ini").string()}, {std::chrono::seconds(30)});
    REQUIRE_FALSE(r.timed_out);
    CHECK(seconds_since(start) < 15);  // not b's minute
    check_stopped_for_records(r, "No space left on device", true);
    const size_t before = lines(read_file(out)).size();
    CHECK(before < 40);

    // With room again, a run appends whole lines after whatever was cut.
    REQUIRE(tmpfs.resize("4m"));
    write_file(dir / "c.ini", "[device c]\nclass = loop\npath = loop:c\nstep = open\nstep = close\n");
    r = run_devhost({"run", "-o", out.string(), (dir / "c.ini").string()});
    CHECK(r.exit_code == 0);
    const std::string text = read_file(out);
    CHECK(text.back() == '\n');
    const auto l = lines(text);
    REQUIRE(l.size() >= before + 2);
    CHECK(l[l.size() - 2].rfind("{\"time\":", 0) == 0);
    CHECK(l[l.size() - 2].find(R"("device":"c","seq":1,"step":"open")") != std::string::npos);
    CHECK(l.back().find(R"("device":"c","seq":2,"step":"close")") != std::string::npos);
    // Every line but (at most) the one cut short is a whole record.
    size_t whole = 0;
    for (const auto &line : l)
        whole += line.rfind("{\"time\":", 0) == 0 && line.back() == '}';
    CHECK(whole + 1 >= l.size());
}

TEST_CASE("records to /dev/full stop every pipeline at once", "[records][e2e]")
{
    TempDir dir;
    write_file(dir / "c.ini", two_devices);
    const auto start = Clock::now();
    auto r = run_devhost({"run", "-o", "/dev/full", (dir / "c.ini").string()}, {std::chrono::seconds(30)});
    REQUIRE_FALSE(r.timed_out);
    CHECK(seconds_since(start) < 15);  // not b's minute
    // The first record already fails: b may not have got its lock.
    check_stopped_for_records(r, "No space left on device", false);
}

TEST_CASE("records to a pipe whose reader closed stop every pipeline at once", "[records][e2e]")
{
    TempDir dir;
    write_file(dir / "c.ini", two_devices);
    int p[2];
    REQUIRE(pipe2(p, O_CLOEXEC) == 0);
    ProcessOptions options;
    const int out = p[1];
    options.before_exec = [out] { dup2(out, STDOUT_FILENO); };
    Child run({devhost_exe().string(), "run", (dir / "c.ini").string()}, dir.path(), options);
    close(p[1]);
    // Read until b holds its lock (and sleeps), then close the reader: a's
    // next record meets EPIPE.
    std::string seen;
    char buf[4096];
    for (ssize_t n; seen.find(R"("device":"b","seq":2,"step":"lock")") == std::string::npos &&
                    (n = read(p[0], buf, sizeof buf)) > 0;)
        seen.append(buf, static_cast<size_t>(n));
    REQUIRE(seen.find(R"("device":"b","seq":2,"step":"lock")") != std::string::npos);
    close(p[0]);
    const auto start = Clock::now();
    auto r = run.wait(std::chrono::seconds(30));
    REQUIRE_FALSE(r.timed_out);
    CHECK(seconds_since(start) < 15);
    check_stopped_for_records(r, "Broken pipe", true);
}

TEST_CASE("a FIFO with no reader as --output or --log-file is refused at once, never waited for",
          "[records][e2e]")
{
    TempDir dir;
    write_file(dir / "c.ini", "[device a]\nclass = loop\npath = loop:a\nstep = open\nstep = close\n");
    const auto fifo = dir / "nobody.fifo";
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    const ProcessOptions ten_seconds{std::chrono::seconds(10)};

    auto run = run_devhost({"run", "-o", fifo.string(), (dir / "c.ini").string()}, ten_seconds);
    REQUIRE_FALSE(run.timed_out);
    CHECK(run.exit_code == 2);
    CHECK(run.err == "devhost: error: --output: cannot open record output '" + fifo.string() +
                         "': a FIFO with no reader (nothing would read what is written)\n");

    auto log = run_devhost({"check", "--log-file", fifo.string(), (dir / "c.ini").string()}, ten_seconds);
    REQUIRE_FALSE(log.timed_out);
    CHECK(log.exit_code == 2);
    CHECK(log.err == "devhost: error: cannot set up logging: log file " + fifo.string() +
                         ": a FIFO with no reader (nothing would read what is written)\n");

    // check never opens the records output.
    auto check = run_devhost({"check", "-o", fifo.string(), (dir / "c.ini").string()}, ten_seconds);
    REQUIRE_FALSE(check.timed_out);
    CHECK(check.exit_code == 0);
}

TEST_CASE("a log FIFO whose reader takes nothing does not hang check: its lines are dropped", "[records][e2e]")
{
    TempDir dir;
    write_file(dir / "c.ini", "[device a]\nclass = loop\npath = loop:a\nstep = open\nstep = close\n");
    FullFifo fifo(dir / "log.fifo");
    const auto start = Clock::now();
    // A plugin directory that is not there: a warning for the log.
    auto r = run_devhost({"check", "--log-file", fifo.path.string(), "--plugin-path",
                          (dir / "none").string() + ":" + plugin_dir().string(), (dir / "c.ini").string()},
                         {std::chrono::seconds(20)});
    REQUIRE_FALSE(r.timed_out);
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(seconds_since(start) < 5);
    CHECK(r.err.find("devhost: warning: log file " + fifo.path.string() +
                     ": its reader takes nothing; log lines are dropped until it does") != std::string::npos);
    CHECK(r.err.find("plugin directory " + (dir / "none").string() + " does not exist; skipped") !=
          std::string::npos);
}

TEST_CASE("SIGTERM ends a run blocked on a records FIFO or pipe nobody reads, within the grace period",
          "[records][signals][e2e]")
{
    TempDir dir;
    // a's first record waits for the reader (its fault is logged just before);
    // b holds its device, blocked in a read.
    write_file(dir / "c.ini", "[host]\nallow-faults = true\n"
                              "[device a]\nclass = loop\npath = loop:a\nfault = open:fail=busy\nstep = open\n"
                              "[device b]\nclass = loop\npath = loop:b\nstep = open\nstep = lock\n"
                              "step = read 1 timeout=5m\nstep = close\n");
    for (const bool fifo_output : {true, false}) {
        SECTION(fifo_output ? "--output FIFO" : "stdout pipe")
        {
            std::optional<FullFifo> fifo;
            int p[2] = {-1, -1};
            std::vector<std::string> argv{devhost_exe().string(), "run"};
            ProcessOptions options;
            if (fifo_output) {
                fifo.emplace(dir / "records.fifo");
                argv.insert(argv.end(), {"-o", fifo->path.string()});
            } else {
                REQUIRE(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
                FullFifo::fill(p[1]);
                const int out = p[1];
                options.before_exec = [out] {
                    fcntl(out, F_SETFL, O_WRONLY);  // stdout itself blocks, as a shell's pipe would
                    dup2(out, STDOUT_FILENO);
                };
            }
            argv.push_back((dir / "c.ini").string());
            Child run(argv, dir.path(), options);
            REQUIRE(run.wait_for_output("injecting fault 'open:fail=busy'", std::chrono::seconds(20)));
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            const auto start = Clock::now();
            run.signal(SIGTERM);
            auto r = run.wait(std::chrono::seconds(20));
            const double took = seconds_since(start);
            for (int fd : p)
                if (fd >= 0)
                    close(fd);
            REQUIRE_FALSE(r.timed_out);
            INFO(r.err);
            CHECK(r.exit_code == 4);
            CHECK(took < 4.5);  // the grace is 5 s; the records give up half-way
            CHECK(r.err.find("cannot write step records: the reader took nothing for too long after the stop") !=
                  std::string::npos);
            CHECK(r.err.find("abandoning") == std::string::npos);
            CHECK(r.err.find("b: close (unwinding what the pipeline held)") != std::string::npos);
        }
    }
}
