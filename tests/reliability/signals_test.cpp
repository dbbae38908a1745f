// Stop signals against `devhost run` (README, "Signals"): any burst of stop
// signals lets the unwind of 200 held devices finish and record every step;
// only the same SIGINT or SIGTERM again, a second or more after it first
// came, skips what remains of the unwind; a different signal or SIGHUP never
// does. The held devices are loop devices blocked in a read until cancelled,
// their records read slowly from a FIFO so that the signals meet the unwind;
// a stop that lasts is made by a records FIFO that nobody reads (the host
// waits for its reader until half-way through the grace).
#include "devhost_test.hpp"
#include "devices.hpp"

#include <catch2/catch.hpp>
#include <csignal>
#include <fcntl.h>
#include <atomic>
#include <map>
#include <mutex>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace devhost::test;

namespace {

constexpr int held_devices = 200;

// `count` loop devices, each opened, locked and blocked in a read until the
// run is cancelled.
std::string held_config(int count)
{
    std::string ini = "[host]\ntimeout = 5m\n";
    for (int i = 0; i < count; i++)
        ini += "[device d" + std::to_string(i) + "]\nclass = loop\npath = loop:d" + std::to_string(i) +
               "\nstep = open\nstep = lock\nstep = read 1\nstep = close\n";
    return ini;
}

size_t count(const std::string &text, const std::string &needle)
{
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
        n++;
    return n;
}

// Reads a FIFO slowly (512 bytes every 2 ms) on a thread of its own, as a
// slow consumer of the records would: the 200 devices' unwind records then
// take most of a second to go through, so the signals come during the
// unwind. The reader is open before the host opens the FIFO.
class SlowReader {
public:
    explicit SlowReader(const fs::path &fifo)
    {
        REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
        fd_ = open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        REQUIRE(fd_ >= 0);
        thread_ = std::thread([this] { run(); });
    }
    ~SlowReader()
    {
        stop_ = true;
        thread_.join();
        close(fd_);
    }
    std::string text()
    {
        std::lock_guard lock(mutex_);
        return text_;
    }
    // Waits until the writer closed (the host ended) and all was read.
    bool wait_eof(std::chrono::seconds timeout)
    {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!eof_ && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return eof_;
    }

private:
    void run()
    {
        bool had_writer = false;
        while (!stop_) {
            char buf[512];
            const ssize_t n = read(fd_, buf, sizeof buf);
            if (n > 0) {
                had_writer = true;
                std::lock_guard lock(mutex_);
                text_.append(buf, static_cast<size_t>(n));
            } else if (n == 0 && had_writer) {
                eof_ = true;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    }
    int fd_ = -1;
    std::mutex mutex_;
    std::string text_;
    std::atomic<bool> stop_{false}, eof_{false};
    std::thread thread_;
};

// Starts a run of 200 held devices whose records a slow reader takes, waits
// until every one holds its lock, sends `signals` (20 ms apart: each is
// delivered on its own, since a signal sent while the same one is pending
// merges with it, and all come within a second and during the unwind), and
// checks that the run ended with 4 and that every device's unwind is
// recorded: read cancelled, unlock, close.
void burst_leaves_every_unwind_record(const std::vector<int> &signals)
{
    TempDir dir;
    write_file(dir / "held.ini", held_config(held_devices));
    const auto fifo = dir / "records.fifo";
    SlowReader reader(fifo);
    Child run({devhost_exe().string(), "run", "-o", fifo.string(), (dir / "held.ini").string()}, dir.path());
    size_t held = 0;
    for (int i = 0; i < 3000 && held < 2 * held_devices; i++) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        held = lines(reader.text()).size();
    }
    REQUIRE(held == 2 * held_devices);  // open and lock of each
    for (int sig : signals) {
        run.signal(sig);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    auto r = run.wait(std::chrono::seconds(30));
    REQUIRE_FALSE(r.timed_out);
    REQUIRE(reader.wait_eof(std::chrono::seconds(10)));
    INFO(r.err.substr(0, 2000));
    CHECK(r.exit_code == 4);
    CHECK(r.term_signal == 0);
    CHECK(r.err.find("received again") == std::string::npos);
    CHECK(r.err.find("cannot write step records") == std::string::npos);

    const auto records = lines(reader.text());
    CHECK(records.size() == 5 * held_devices);
    std::map<std::string, std::vector<std::string>> by_device;
    for (const auto &line : records)
        by_device[device_of(line)].push_back(line);
    REQUIRE(by_device.size() == held_devices);
    size_t complete = 0;
    for (const auto &[device, steps] : by_device) {
        INFO(device);
        bool ok = steps.size() == 5 && steps[2].find(R"("step":"read 1")") != std::string::npos &&
                  steps[2].find(R"("status":"DEVHOST_E_CANCELLED")") != std::string::npos &&
                  steps[3].find(R"("seq":4,"step":"unlock","status":"DEVHOST_OK")") != std::string::npos &&
                  steps[3].find(R"("unwind":true)") != std::string::npos &&
                  steps[4].find(R"("seq":5,"step":"close","status":"DEVHOST_OK")") != std::string::npos &&
                  steps[4].find(R"("unwind":true)") != std::string::npos;
        complete += ok;
    }
    CHECK(complete == held_devices);
}

// A run whose only pipeline's first record waits for the FIFO's reader;
// `first` is sent, then `second` 1.2 s later (while the stop still waits
// for the reader: it gives up 2.5 s after the first signal).
ProcessResult two_signals(int first, int second)
{
    TempDir dir;
    FullFifo fifo(dir / "records.fifo");
    write_file(dir / "one.ini", "[host]\nallow-faults = true\n"
                                "[device a]\nclass = loop\npath = loop:a\nfault = open:fail=busy\nstep = open\n");
    Child run({devhost_exe().string(), "run", "-o", fifo.path.string(), (dir / "one.ini").string()}, dir.path());
    REQUIRE(run.wait_for_output("injecting fault 'open:fail=busy'", std::chrono::seconds(20)));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // into the record's write
    run.signal(first);
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    run.signal(second);
    auto r = run.wait(std::chrono::seconds(20));
    REQUIRE_FALSE(r.timed_out);
    return r;
}

}  // namespace

TEST_CASE("SIGTERM, SIGINT and SIGHUP together let 200 held devices unwind, every step recorded",
          "[signals][e2e]")
{
    burst_leaves_every_unwind_record({SIGTERM, SIGINT, SIGHUP});
}

TEST_CASE("ten SIGTERMs let 200 held devices unwind, every step recorded", "[signals][e2e]")
{
    burst_leaves_every_unwind_record(std::vector<int>(10, SIGTERM));
}

TEST_CASE("the same SIGINT or SIGTERM again a second later skips what remains of the unwind", "[signals][e2e]")
{
    for (int sig : {SIGINT, SIGTERM}) {
        auto r = two_signals(sig, sig);
        INFO(r.err);
        CHECK(r.exit_code == 4);
        CHECK(r.err.find(std::string(sig == SIGINT ? "SIGINT" : "SIGTERM") +
                         " received again: exiting now without finishing the unwind") != std::string::npos);
        // It did not wait for the records to give up.
        CHECK(r.err.find("cannot write step records") == std::string::npos);
    }
}

TEST_CASE("a different stop signal, or SIGHUP again, does not cut the unwind short", "[signals][e2e]")
{
    const std::pair<int, int> cases[] = {{SIGTERM, SIGINT}, {SIGINT, SIGTERM}, {SIGHUP, SIGHUP}};
    for (const auto &[first, second] : cases) {
        auto r = two_signals(first, second);
        INFO(r.err);
        CHECK(r.exit_code == 4);
        CHECK(r.err.find("received again") == std::string::npos);
        CHECK(r.err.find(std::string(second == SIGINT ? "SIGINT" : second == SIGTERM ? "SIGTERM" : "SIGHUP") +
                         " received: already stopping; the unwind goes on") != std::string::npos);
        // The stop ran its course: the record waiting for the reader gave up.
        CHECK(r.err.find("cannot write step records: the reader took nothing for too long after the stop") !=
              std::string::npos);
        CHECK(count(r.err, "cancelling pipelines") == 1);
    }
}
