// Resource limits end in a clean failure, never an abort (README,
// "Limits"): with real limits on a real `devhost run`
//
//   threads   a cgroup v1 pids controller child with a small pids.max
//   fds       RLIMIT_NOFILE
//   memory    RLIMIT_AS (ulimit -v), sized from a first run's peak
//
// the pipelines the limit hits fail with a status and a record, what they
// held is unwound with records, the others finish, and the run exits 1.
// And no record is larger than max_record_bytes, whatever a step moved: the
// record says which fields it summarised.
#include "devhost_test.hpp"
#include "real_devices.hpp"
#include "records.hpp"

#include <catch2/catch.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <set>
#include <sys/resource.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace devhost;
using namespace devhost::test;

namespace {

std::map<std::string, std::vector<std::string>> by_device(const std::string &records)
{
    std::map<std::string, std::vector<std::string>> devices;
    for (const auto &line : lines(records))
        devices[device_of(line)].push_back(line);
    return devices;
}

bool has(const std::string &line, const std::string &text) { return line.find(text) != std::string::npos; }

std::string repeat(const std::string &s, size_t times)
{
    std::string out;
    for (size_t i = 0; i < times; i++)
        out += s;
    return out;
}

// `count` loop devices that hold their lock a while (so the limit is met
// while the others still run), then release it.
// The engine's own limits, in one process (isolation = none, a section
// after the devices so their line numbers stay): the fd
// numbers and the address space counted here are the devhost process's.
// (Supervised, the same records come from each worker's engine.)
const std::string in_process = "[host]\nisolation = none\n";

std::string held_loops(int count, const std::string &hold)
{
    std::string ini;
    for (int i = 0; i < count; i++)
        ini += "[device d" + std::to_string(i) + "]\nclass = loop\npath = loop:d" + std::to_string(i) +
               "\nstep = open\nstep = lock\nstep = sleep " + hold + "\nstep = unlock\nstep = close\n";
    return ini;
}

// A child cgroup of the v1 pids controller with `max` tasks, removed on
// scope exit; join() gives the before_exec that moves the child into it.
class PidsCgroup {
public:
    explicit PidsCgroup(int max)
    {
        static int counter = 0;
        const fs::path root = "/sys/fs/cgroup/pids";
        if (!fs::exists(root / "cgroup.procs")) {
            why_ = "there is no cgroup v1 pids controller at " + root.string();
            return;
        }
        dir_ = root / ("devhost-limits-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
        if (mkdir(dir_.c_str(), 0755) != 0) {
            why_ = "cannot make " + dir_.string() + ": " + std::strerror(errno);
            dir_.clear();
            return;
        }
        write_file(dir_ / "pids.max", std::to_string(max));
        ok_ = read_file(dir_ / "pids.max") == std::to_string(max) + "\n";
        if (!ok_)
            why_ = "cannot set " + (dir_ / "pids.max").string();
    }
    ~PidsCgroup()
    {
        // The child has been waited for; its tasks leave the cgroup as they go.
        for (int i = 0; !dir_.empty() && i < 100 && rmdir(dir_.c_str()) != 0 && errno == EBUSY; i++)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    bool ok() const { return ok_; }
    const std::string &why() const { return why_; }
    std::function<void()> join() const
    {
        const std::string procs = (dir_ / "cgroup.procs").string();
        return [procs] {
            char pid[32];
            const int n = std::snprintf(pid, sizeof pid, "%d\n", getpid());
            const int fd = open(procs.c_str(), O_WRONLY | O_CLOEXEC);
            if (fd < 0 || write(fd, pid, static_cast<size_t>(n)) != n)
                _exit(125);  // not limited: the test must not pass by accident
            close(fd);
        };
    }

private:
    fs::path dir_;
    bool ok_ = false;
    std::string why_;
};

// Checks what every run a limit hit must show: exit 1, no signal, and each
// device either all its records OK or a failure whose record has `errno_`
// (and then the unwind of whatever it held). Returns {complete, failed}.
std::pair<int, int> check_failed_cleanly(const ProcessResult &r, const std::string &records, int devices,
                                         size_t steps, int errno_)
{
    INFO(r.err.substr(0, 3000));
    CHECK(r.term_signal == 0);
    CHECK(r.exit_code == 1);
    const auto all = by_device(records);
    CHECK(all.size() == size_t(devices));
    int complete = 0, failed = 0;
    for (const auto &[device, recs] : all) {
        INFO(device << ": " << recs.front());
        size_t ok = 0;
        for (const auto &line : recs)
            ok += has(line, "\"status\":\"DEVHOST_OK\"");
        if (ok == steps && recs.size() == steps) {
            complete++;
            continue;
        }
        failed++;
        const auto bad = std::find_if(recs.begin(), recs.end(),
                                      [](const std::string &l) { return !has(l, "\"status\":\"DEVHOST_OK\""); });
        REQUIRE(bad != recs.end());
        CHECK(has(*bad, ",\"errno\":" + std::to_string(errno_)));
        // Nothing after the failure but unwind records, all OK.
        for (auto it = bad + 1; it != recs.end(); ++it)
            CHECK((has(*it, "\"unwind\":true") && has(*it, "\"status\":\"DEVHOST_OK\"")));
    }
    return {complete, failed};
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif

// The peak virtual size (VmPeak, bytes) of process `pid`.
size_t vm_peak(pid_t pid)
{
    const std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
    const auto at = status.find("VmPeak:");
    return at == std::string::npos ? 0 : std::stoull(status.substr(at + 7)) * 1024;
}

}  // namespace

TEST_CASE("threads that cannot be created (cgroup pids.max) fail their pipelines with a record, not an abort",
          "[limits][e2e]")
{
    constexpr int devices = 24;
    PidsCgroup cgroup(10);  // the host's own threads and a few pipelines
    if (!cgroup.ok()) {
        DEVHOST_SKIP(cgroup.why());
    }
    TempDir dir;
    write_file(dir / "c.ini", held_loops(devices, "1s"));
    ProcessOptions options;
    options.before_exec = cgroup.join();
    auto r = run_devhost({"run", "-o", (dir / "r.jsonl").string(), (dir / "c.ini").string()}, options);
    REQUIRE(r.exit_code != 125);
    const std::string records = read_file(dir / "r.jsonl");
    const auto [complete, failed] = check_failed_cleanly(r, records, devices, 5, EAGAIN);
    CHECK(complete > 0);
    CHECK(failed > 0);
    for (const auto &[device, recs] : by_device(records))
        if (recs.size() == 1)
            CHECK((has(recs[0], "\"seq\":1,\"step\":\"open\",\"line\":") &&
                   has(recs[0], "\"status\":\"DEVHOST_E_NO_MEMORY\",\"code\":-10,") &&
                   has(recs[0], "\"message\":\"pipeline not started: cannot create its thread: Resource temporarily "
                                "unavailable; no step was run\",\"errno\":11}")));
    CHECK(has(r.err, "pipeline not started: cannot create its thread: Resource temporarily unavailable"));
    CHECK(has(r.err, std::to_string(failed) + " of " + std::to_string(devices) + " pipeline(s) failed"));
}

TEST_CASE("fds that run out (RLIMIT_NOFILE) fail the pipelines they hit with a record, the others finish",
          "[limits][e2e]")
{
#if defined(__SANITIZE_ADDRESS__)
    DEVHOST_SKIP("under ASan+UBSan, UBSan's vptr check probes memory through a pipe, which fails when the fds "
                 "run out, and reports a false 'invalid vptr' (the normal and TSan builds run this test; the pids.max "
                 "one covers the same record-and-unwind path here)");
#endif
    TempDir dir;
    // Every run starts with fds 0 to 2 only (whatever this test inherited),
    // so the numbers the host takes are the same each time.
    const auto stdio_only = [] { close_range(3, ~0U, 0); };
    // The fd numbers the host uses while it runs one held loop device (its
    // own: records, signals; and the device's cancel handle).
    std::set<int> used;
    {
        write_file(dir / "one.ini", held_loops(1, "2s") + in_process);
        const auto out = dir / "one.jsonl";
        ProcessOptions options;
        options.before_exec = stdio_only;
        Child run({devhost_exe().string(), "run", "-o", out.string(), (dir / "one.ini").string()}, dir.path(),
                  options);
        for (int i = 0; i < 500 && lines(read_file(out)).size() < 2; i++)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        REQUIRE(lines(read_file(out)).size() == 2);
        for (const auto &fd : fs::directory_iterator("/proc/" + std::to_string(run.pid()) + "/fd"))
            used.insert(std::stoi(fd.path().filename().string()));
    }
    // The limit that leaves `more` fds beyond those: the (more)th free number + 1.
    const auto limit_leaving = [&used](int more) {
        int n = 0;
        for (int free = 0; more > 0; n++)
            if (!used.count(n) && ++free == more)
                return rlim_t(n + 1);
        return rlim_t(n);
    };
    auto run_with_limit = [&](const std::string &ini, rlim_t max) {
        write_file(dir / "c.ini", ini + in_process);
        fs::remove(dir / "r.jsonl");
        ProcessOptions options;
        options.before_exec = [max, stdio_only] {
            stdio_only();
            rlimit limit{max, max};
            setrlimit(RLIMIT_NOFILE, &limit);
        };
        return run_devhost({"run", "-o", (dir / "r.jsonl").string(), (dir / "c.ini").string()}, options);
    };

    // 40 loop devices need an fd each (their cancel handle) and hold it a
    // second: far more than the limit leaves.
    constexpr int loops = 40;
    auto r = run_with_limit(held_loops(loops, "1s"), limit_leaving(15));
    std::string records = read_file(dir / "r.jsonl");
    const auto [done, failed] = check_failed_cleanly(r, records, loops, 5, EMFILE);
    CHECK(done > 0);
    CHECK(failed > 0);
    CHECK(has(records, "\"status\":\"DEVHOST_E_NO_MEMORY\",\"code\":-10,"));
    CHECK(has(records, "\"message\":\"pipeline not started: cannot make its cancel handle (eventfd): Too many "
                       "open files; no step was run\",\"errno\":24}"));

    // Room for exactly four cancel handles (the one counted in `used` and
    // three more): three held loop devices and a raw one, whose open (after
    // they took theirs) finds no fd left.
    const auto image = dir / "disk.img";
    reliability::make_image(image, 4096);
    r = run_with_limit("[device raw]\nclass = raw\npath = " + image.string() +
                           "\nstep = sleep 1s\nstep = open\nstep = read exactly=512\nstep = close\n" +
                           held_loops(3, "2s"),
                       limit_leaving(3));
    records = read_file(dir / "r.jsonl");
    INFO(records);
    CHECK(r.term_signal == 0);
    CHECK(r.exit_code == 1);
    std::map<std::string, std::vector<std::string>> devices = by_device(records);
    REQUIRE(devices.size() == 4);
    const auto &raw = devices["raw"];
    REQUIRE(raw.size() == 2);
    CHECK(has(raw[0], R"("step":"sleep 1s","line":4,"status":"DEVHOST_OK")"));
    CHECK(has(raw[1], R"("step":"open","line":5,"status":"DEVHOST_E_IO")"));
    CHECK(has(raw[1], "Too many open files"));
    CHECK(has(raw[1], ",\"errno\":24}"));
    for (const char *loop : {"d0", "d1", "d2"})
        CHECK(devices[loop].size() == 5);
    CHECK(has(r.err, "1 of 4 pipeline(s) failed"));
}

TEST_CASE("memory that cannot be allocated (ulimit -v) fails the step before its I/O and the device is unwound",
          "[limits][e2e]")
{
    if (sanitized) {
        DEVHOST_SKIP("ulimit -v cannot work under ASan or TSan, which reserve terabytes of address space "
                     "(the thread and fd limits cover the same record-and-unwind path there)");
    }
    TempDir dir;
    write_file(dir / "c.ini", "[device a]\nclass = loop\npath = loop:a\nstep = open\nstep = lock\n"
                              "step = sleep 1s\nstep = read 16777216 timeout=10ms\nstep = unlock\nstep = close\n" +
                                  in_process);
    // One arena: the buffer must come from new address space, not from a
    // thread arena's reserve.
    ProcessOptions options;
    options.env["MALLOC_ARENA_MAX"] = "1";
    const auto out = dir / "r.jsonl";
    size_t peak = 0;
    {
        Child first({devhost_exe().string(), "run", "-o", out.string(), (dir / "c.ini").string()}, dir.path(),
                    options);
        for (int i = 0; i < 500 && lines(read_file(out)).size() < 2; i++)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        REQUIRE(lines(read_file(out)).size() == 2);
        peak = vm_peak(first.pid());
    }  // killed
    REQUIRE(peak > 0);
    fs::remove(out);
    const rlim_t limit = peak + 4 * 1024 * 1024;  // room for small things, not for 16 MiB
    options.before_exec = [limit] {
        rlimit as{limit, limit};
        setrlimit(RLIMIT_AS, &as);
    };
    auto r = run_devhost({"run", "-o", out.string(), (dir / "c.ini").string()}, options);
    INFO(r.err);
    CHECK(r.term_signal == 0);
    CHECK(r.exit_code == 1);
    const auto l = lines(read_file(out));
    REQUIRE(l.size() == 6);
    CHECK(has(l[3], R"("step":"read 16777216 timeout=10ms","line":7,"status":"DEVHOST_E_NO_MEMORY","code":-10,)"));
    CHECK(has(l[3], R"("bytes":0,)"));
    CHECK(has(l[3], R"("message":"the host cannot allocate this step's 16777216-byte buffer","errno":12})"));
    CHECK(has(l[4], R"("seq":5,"step":"unlock","status":"DEVHOST_OK")"));
    CHECK(has(l[4], R"("unwind":true)"));
    CHECK(has(l[5], R"("seq":6,"step":"close","status":"DEVHOST_OK")"));
    CHECK(has(l[5], R"("unwind":true)"));
}

TEST_CASE("no record is larger than max_record_bytes, whatever it carries", "[limits][records]")
{
    // The worst of everything: bytes that escape longest, names, a message
    // and info far beyond their bounds.
    const std::vector<uint8_t> data(16 * 1024 * 1024, 0x80);
    InfoList info;
    for (int i = 0; i < 4096; i++)
        info.emplace_back(std::string(300, '\x01') + std::to_string(i), std::string(5000, '\x02'));
    Record r;
    r.device = std::string(5000, '\x03');
    r.seq = 1;
    r.step = std::string(5000, '"');
    r.status = DEVHOST_E_PROTOCOL;
    r.message = std::string(100000, '\x04');
    r.os_errno = 71;
    r.bytes = data.size();
    r.data = data.data();
    r.data_len = data.size();
    r.info = &info;
    const std::string line = RecordWriter::format(r);
    INFO(line.substr(line.size() - 200));
    CHECK(line.size() <= max_record_bytes);
    CHECK(line.find('\n') == line.size() - 1);
    CHECK(line.rfind("{\"time\":", 0) == 0);
    CHECK(has(line, "\"bytes\":16777216,\"hex\":\"" + repeat("80", record_data_shown) + "\","));
    CHECK(has(line, R"(,"errno":71,"summarised":["device","step","hex","text","info","message"]})"));
    CHECK(has(line, "... (100000 bytes)"));

    // An ordinary record says nothing of it.
    Record small;
    small.device = "a";
    small.step = "open";
    CHECK_FALSE(has(RecordWriter::format(small), "summarised"));
}

TEST_CASE("a step that moves more than a record can show is recorded, summarised", "[limits][records][e2e]")
{
    TempDir dir;
    const auto image = dir / "disk.img";
    {
        std::string content(2 * 1024 * 1024, 'z');
        write_file(image, content);
    }
    write_file(dir / "c.ini", "[device disk]\nclass = raw\npath = " + image.string() +
                                  "\nstep = open\nstep = read exactly=2097152\nstep = close\n");
    auto r = run_devhost({"run", (dir / "c.ini").string()});
    CHECK(r.exit_code == 0);
    const auto l = lines(r.out);
    REQUIRE(l.size() == 3);
    CHECK(l[1].size() < max_record_bytes);
    CHECK(has(l[1], "\"status\":\"DEVHOST_OK\",\"code\":0,"));
    CHECK(has(l[1], "\"bytes\":2097152,\"hex\":\"" + repeat("7a", record_data_shown) + "\","));
    CHECK(has(l[1], ",\"text\":\"" + std::string(record_data_shown, 'z') + "\","));
    CHECK_FALSE(has(l[1], std::string(record_data_shown + 1, 'z')));
    CHECK(has(l[1], R"("summarised":["hex","text"]})"));
}
