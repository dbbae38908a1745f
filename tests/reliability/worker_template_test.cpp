// The worker template (host/worker_template.hpp): workers are forked by a
// copy of devhost made at the start of the command, not exec'd; the
// supervisor still watches, kills and reaps them; the template goes with
// the supervisor and takes its workers along; with isolation = none there
// is none. Real devhost runs, real processes: workers found by their name
// (devhost-worker) under the supervisor.
#include "devhost_test.hpp"

#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>
#include <optional>
#include <sys/wait.h>
#include <unistd.h>

using namespace devhost;
using namespace devhost::test;

namespace {

std::string comm_of(pid_t pid) { return read_file("/proc/" + std::to_string(pid) + "/comm"); }

bool alive(pid_t pid)
{
    // A zombie still answers kill(0): read its state instead.
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    std::getline(stat, text);
    const auto close = text.rfind(')');
    return close != std::string::npos && close + 2 < text.size() && text[close + 2] != 'Z';
}

template <typename F>
bool await(F ready)
{
    for (int i = 0; i < 500; i++) {
        if (ready())
            return true;
        ::usleep(10000);
    }
    return false;
}

// A run of two loop devices, one worker each, both waiting in their
// transfer; its one child (the template) and the two workers.
struct TwoBlocked {
    TwoBlocked()
    {
        write_file(dir / "t.ini", "[host]\nallow-faults = true\nisolation = device\n"
                                  "[device a]\nclass = loop\npath = loop:a\nfault = transfer:block\nstep = open\n"
                                  "step = write \"abc\" timeout=20s\nstep = close\n"
                                  "[device b]\nclass = loop\npath = loop:b\nfault = transfer:block\nstep = open\n"
                                  "step = write \"abc\" timeout=20s\nstep = close\n");
        run.emplace(std::vector<std::string>{devhost_exe().string(), "run", "-o", "-", (dir / "t.ini").string()},
                    dir.path());
        REQUIRE(run->wait_for_output("a: injecting fault 'transfer:block'", 10s));
        REQUIRE(run->wait_for_output("b: injecting fault 'transfer:block'", 10s));
        const auto children = children_of(run->pid());
        REQUIRE(children.size() == 1);  // the template; no peers in this config
        templ = children[0];
        workers = workers_of(run->pid());
        REQUIRE(workers.size() == 2);
    }
    TempDir dir;
    std::optional<Child> run;
    pid_t templ = -1;
    std::vector<pid_t> workers;
};

}  // namespace

TEST_CASE("workers are forked by the one worker template, and a stopped run still records every unwind",
          "[worker-template]")
{
    TwoBlocked t;
    CHECK(comm_of(t.templ) != "devhost-worker\n");
    for (pid_t w : t.workers) {
        CHECK(parent_of(w) == t.templ);
        CHECK(comm_of(w) == "devhost-worker\n");
    }

    t.run->signal(SIGTERM);
    auto r = t.run->wait(10s);
    INFO("stderr:\n" << r.err << "\nrecords:\n" << r.out);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 4);
    for (const std::string device : {"a", "b"}) {
        int closes = 0;
        for (const auto &line : lines(r.out))
            closes += device_of(line) == device && line.find("\"step\":\"close\"") != std::string::npos &&
                      line.find("DEVHOST_OK") != std::string::npos;
        CHECK(closes == 1);
    }
    // The template ended with the run, and so did every worker.
    CHECK_FALSE(alive(t.templ));
    for (pid_t w : t.workers)
        CHECK_FALSE(alive(w));
}

TEST_CASE("a worker killed at its deadline is reaped through the template, and the next device runs",
          "[worker-template]")
{
    TempDir dir;
    write_file(dir / "t.ini", "[host]\nallow-faults = true\nkill-grace = 200ms\nisolation = device\n"
                              "[device stuck]\nclass = loop\npath = loop:s\nfault = transfer:hang\nstep = open\n"
                              "step = write \"abc\" timeout=300ms\nstep = close\n"
                              "[device fine]\nclass = loop\npath = loop:f\nstep = open\nstep = write \"abc\"\n"
                              "step = read exactly=3 expect=\"abc\"\nstep = close\n");
    auto r = run_devhost({"run", "-o", "-", (dir / "t.ini").string()}, {.timeout = 20s});
    INFO("stderr:\n" << r.err << "\nrecords:\n" << r.out);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 1);
    int fine_ok = 0;
    bool killed = false;
    for (const auto &line : lines(r.out)) {
        fine_ok += device_of(line) == "fine" && line.find("DEVHOST_OK") != std::string::npos;
        killed |= device_of(line) == "stuck" && line.find("DEVHOST_E_TIMEOUT") != std::string::npos &&
                  line.find("was killed") != std::string::npos;
    }
    CHECK(fine_ok == 4);
    CHECK(killed);
}

TEST_CASE("a killed worker template takes its workers along, and the run ends with their devices failed",
          "[worker-template]")
{
    TwoBlocked t;
    REQUIRE(::kill(t.templ, SIGKILL) == 0);
    auto r = t.run->wait(10s);
    INFO("stderr:\n" << r.err << "\nrecords:\n" << r.out);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 1);
    int failed = 0;
    for (const auto &line : lines(r.out))
        failed += line.find("DEVHOST_E_HOST_FAILED") != std::string::npos &&
                  line.find("was lost with the worker template that forked it") != std::string::npos;
    CHECK(failed == 2);
    for (pid_t w : t.workers)
        CHECK(await([&] { return !alive(w); }));
}

TEST_CASE("with isolation = none there is no worker template", "[worker-template]")
{
    TempDir dir;
    write_file(dir / "t.ini", "[host]\nallow-faults = true\nisolation = none\n"
                              "[device a]\nclass = loop\npath = loop:a\nfault = transfer:block\nstep = open\n"
                              "step = write \"abc\" timeout=20s\nstep = close\n");
    Child run({devhost_exe().string(), "run", "-o", "-", (dir / "t.ini").string()}, dir.path());
    REQUIRE(run.wait_for_output("a: injecting fault 'transfer:block'", 10s));
    CHECK(await([&] { return children_of(run.pid()).empty(); }));
    run.signal(SIGTERM);
    auto r = run.wait(10s);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 4);
}
