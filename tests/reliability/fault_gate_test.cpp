// Fault injection is a test mode (issue 15): the devhost binary refuses a
// config's `fault =` lines, one line each and exit 2, unless [host]
// allow-faults = true or --allow-faults says so, so a stray line in a
// production config can neither start a run nor crash a device; and the
// `hang` action is a hook stuck for good: past its deadline and through a
// stop signal's cancel it sleeps on, in an interruptible sleep that SIGKILL
// ends at once.
#include "devhost_test.hpp"
#include "devices.hpp"

#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>
#include <sys/syscall.h>
#include <thread>

using namespace devhost;
using namespace std::chrono_literals;

namespace {

const char *const two_devices = "[device a]\nclass = loop\npath = loop:a\nstep = open\nfault = open:fail=busy\n"
                                "step = close\n"
                                "[device b]\nclass = loop\npath = loop:b\nstep = open\nfault = close:crash\n";

std::string refusal(const std::string &file, int line, const std::string &device, const std::string &fault)
{
    return "devhost: error: " + file + ":" + std::to_string(line) + ": [device " + device +
           "] fault: fault injection is a test mode: 'fault = " + fault +
           "' needs [host] allow-faults = true (or --allow-faults)\n";
}

bool asleep_in_nanosleep(pid_t pid)
{
    return test::process_asleep_in(pid, SYS_clock_nanosleep) || test::process_asleep_in(pid, SYS_nanosleep);
}

// The scheduler state (R, S, D...) of the thread of `pid` asleep in a
// nanosleep, or 0 if none is.
char nanosleep_thread_state(pid_t pid)
{
    std::error_code ec;
    for (const auto &task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
        std::ifstream syscall(task.path() / "syscall");
        long nr = -1;
        if (!(syscall >> nr) || (nr != SYS_clock_nanosleep && nr != SYS_nanosleep))
            continue;
        std::ifstream stat_file(task.path() / "stat");
        std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
        const size_t close = stat.rfind(')');  // the name may hold spaces; the state follows it
        return close == std::string::npos || close + 2 >= stat.size() ? 0 : stat[close + 2];
    }
    return 0;
}

}  // namespace

TEST_CASE("devhost check refuses every fault line without allow-faults, one line each, exit 2", "[faults][e2e]")
{
    test::TempDir dir;
    const auto file = (dir / "f.ini").string();
    test::write_file(file, two_devices);
    auto r = test::run_devhost({"check", file});
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err == refusal(file, 5, "a", "open:fail=busy") + refusal(file, 11, "b", "close:crash"));

    // [host] allow-faults = false is the same; a malformed value is its own mistake.
    test::write_file(file, std::string("[host]\nallow-faults = false\n") + two_devices);
    r = test::run_devhost({"check", file});
    CHECK(r.exit_code == 2);
    CHECK(r.err == refusal(file, 7, "a", "open:fail=busy") + refusal(file, 13, "b", "close:crash"));
    test::write_file(file, std::string("[host]\nallow-faults = sure\n") + two_devices);
    r = test::run_devhost({"check", file});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("devhost: error: " + file + ":2: [host] allow-faults: expected true or false, got 'sure'\n") ==
          0);
}

TEST_CASE("devhost check accepts fault lines with [host] allow-faults = true or --allow-faults", "[faults][e2e]")
{
    test::TempDir dir;
    const auto file = (dir / "f.ini").string();
    const std::string ok = file + ": ok: 2 device(s), 3 step(s), 0 virtual device(s)\n";
    test::write_file(file, two_devices);
    for (const auto &args : std::vector<std::vector<std::string>>{{"check", "--allow-faults", file},
                                                                   {"--allow-faults", "check", file}}) {
        auto r = test::run_devhost(args);
        INFO(r.err);
        CHECK(r.exit_code == 0);
        CHECK(r.out == ok);
    }
    test::write_file(file, std::string("[host]\nallow-faults = true\n") + two_devices);
    auto r = test::run_devhost({"check", file});
    CHECK(r.exit_code == 0);
    CHECK(r.out == ok);
    // The command line wins over the config.
    test::write_file(file, std::string("[host]\nallow-faults = false\n") + two_devices);
    r = test::run_devhost({"check", "--allow-faults", file});
    CHECK(r.exit_code == 0);
    CHECK(r.out == ok);
}

TEST_CASE("devhost run with a fault line and no allow-faults starts nothing and exits 2", "[faults][e2e]")
{
    test::TempDir dir;
    const auto file = (dir / "f.ini").string();
    const auto out = dir / "records.jsonl";
    test::write_file(file, two_devices);
    auto r = test::run_devhost({"run", "-o", out.string(), file});
    CHECK(r.exit_code == 2);
    CHECK(r.err == refusal(file, 5, "a", "open:fail=busy") + refusal(file, 11, "b", "close:crash"));
    CHECK_FALSE(fs::exists(out));

    // Allowed, the same faults are injected: a fails busy, b crashes its
    // worker (one per device here) at its close, which devhost records.
    test::write_file(file, two_devices + std::string("[host]\nisolation = device\n"));
    r = test::run_devhost({"run", "--allow-faults", "-o", out.string(), file});
    INFO(r.err);
    CHECK(r.term_signal == 0);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("a: injecting fault 'open:fail=busy'") != std::string::npos);
    const std::string records = test::read_file(out);
    CHECK(records.find(R"("device":"a","seq":1,"step":"open","line":4,"status":"DEVHOST_E_BUSY")") !=
          std::string::npos);
    CHECK(records.find(R"("device":"b",)") != std::string::npos);
    CHECK(records.find(R"("device":"b","seq":2,"step":"close","status":"DEVHOST_E_HOST_FAILED")") != std::string::npos);
    // SIGSEGV from the kernel; SIGABRT when a sanitizer caught it first.
    CHECK((records.find("was killed by signal 11 (Segmentation fault) while its close hook ran") != std::string::npos ||
           records.find("was killed by signal 6 (Aborted) while its close hook ran") != std::string::npos));
}

TEST_CASE("devhost probe takes --allow-faults like run", "[faults][e2e]")
{
    auto r = test::run_devhost({"probe", "--allow-faults", "--class", "loop", "loop:probe"});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(test::lines(r.out).size() == 3);
}

TEST_CASE("an injected hang ignores its deadline and the cancel, and SIGKILL ends it at once", "[faults][e2e]")
{
    test::TempDir dir;
    const auto file = dir / "h.ini";
    const auto out = dir / "records.jsonl";
    // In the devhost process itself (isolation = none): the hook as it is.
    test::write_file(file, "[host]\nallow-faults = true\nisolation = none\n[device h]\nclass = loop\npath = loop:h\n"
                           "fault = transfer@1:hang\nstep = open\nstep = write \"abc\" timeout=200ms\nstep = close\n");
    test::Child run({test::devhost_exe().string(), "run", "-o", out.string(), file.string()}, dir.path());
    REQUIRE(run.wait_for_output("h: injecting fault 'transfer@1:hang'", 10s));
    for (int i = 0; i < 10000 && !asleep_in_nanosleep(run.pid()); i++)
        std::this_thread::sleep_for(1ms);
    REQUIRE(asleep_in_nanosleep(run.pid()));

    // Well past the step's deadline: still inside the hook, nothing recorded
    // after open, and the sleep is an interruptible one (S, never D).
    std::this_thread::sleep_for(600ms);
    CHECK(run.wait(0ms).timed_out);
    CHECK(test::lines(test::read_file(out)).size() == 1);
    CHECK(nanosleep_thread_state(run.pid()) == 'S');

    // A stop signal cancels every pipeline: the hook ignores it too (the
    // host would abandon it only after its 5 s stop grace).
    run.signal(SIGINT);
    std::this_thread::sleep_for(1s);
    CHECK(run.wait(0ms).timed_out);
    CHECK(asleep_in_nanosleep(run.pid()));
    CHECK(test::lines(test::read_file(out)).size() == 1);

    const auto killed_at = std::chrono::steady_clock::now();
    run.signal(SIGKILL);
    auto done = run.wait(5s);
    REQUIRE_FALSE(done.timed_out);
    CHECK(done.term_signal == SIGKILL);
    CHECK(test::elapsed_ms(killed_at) < 1000);
}
