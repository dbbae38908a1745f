// Injected faults in every hook: the host reports the right status, unwinds
// so nothing stays open, connected or locked, exits with the right code, and
// keeps the records it wrote, even when it crashes inside a hook. The proofs:
// the loop plugin's counters; for plugins on real descriptors (raw on an
// image file, serial on a pty), this process's fd count and a free exclusive
// lock afterwards; and a real plugin (crashing_plugin.c) that crashes inside
// its transfer hook under `devhost run`.
#include "check.hpp"
#include "config.hpp"
#include "devhost_test.hpp"
#include "pipeline.hpp"
#include "real_devices.hpp"

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <future>
#include <thread>

using namespace devhost;

namespace {

PluginRegistry &registry()
{
    static PluginRegistry r;
    static bool loaded = (r.load_file(test::plugin_dir() / "loop.so"), r.load_file(test::plugin_dir() / "raw.so"),
                          r.load_file(test::plugin_dir() / "serial.so"), true);
    (void)loaded;
    return r;
}

bool idle() { return reliability::loop_stats(registry()).rfind("open=1 connected=0 locked=0", 0) == 0; }

const char *full_pipeline = R"(
class = loop
path = loop:faulty
step = open
step = connect
step = info
step = lock
step = write "abcdef"
step = read exactly=6
step = unlock
step = disconnect
step = close
)";

struct Run {
    std::vector<PipelineResult> results;
    std::vector<std::string> records;
};

using During = std::function<void(Engine &, const test::TempDir &)>;

Run run(const std::string &faults, During during = {}, const std::string &pipeline = full_pipeline)
{
    std::vector<Diagnostic> diags;
    Config config =
        parse_config("[host]\nallow-faults = true\n[device d]\n" + faults + pipeline, "faults.ini", diags);
    INFO((diags.empty() ? "" : diags[0].str()));
    REQUIRE(diags.empty());
    Plan plan = check_config(config, registry(), diags);
    REQUIRE(diags.empty());
    test::TempDir dir;
    RecordWriter records((dir / "r.jsonl").string());
    Engine engine(records, 2000);
    Run r;
    if (during) {
        auto f = std::async(std::launch::async, [&] { return engine.run_all(plan.devices); });
        during(engine, dir);
        REQUIRE(f.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
        r.results = f.get();
    } else {
        r.results = engine.run_all(plan.devices);
    }
    r.records = test::lines(test::read_file(dir / "r.jsonl"));
    return r;
}

}  // namespace

TEST_CASE("a failure injected into any hook is reported with its status and unwound", "[faults]")
{
    struct Case {
        const char *fault;
        devhost_status status;
        const char *failed_step;
    };
    const Case cases[] = {
        {"open:fail=not_found", DEVHOST_E_NOT_FOUND, "open"},
        {"connect:fail=busy", DEVHOST_E_BUSY, "connect"},
        {"info:fail=DEVHOST_E_IO", DEVHOST_E_IO, "info"},
        {"lock:fail=timeout", DEVHOST_E_TIMEOUT, "lock"},
        {"transfer@1:fail=removed", DEVHOST_E_REMOVED, "write \\\"abcdef\\\""},
        {"transfer@2:fail=protocol", DEVHOST_E_PROTOCOL, "read exactly=6"},
        {"unlock:fail=io", DEVHOST_E_IO, "unlock"},
        {"disconnect:fail=access", DEVHOST_E_ACCESS, "disconnect"},
        {"close:fail=no_memory", DEVHOST_E_NO_MEMORY, "close"},
    };
    for (const auto &c : cases) {
        SECTION(c.fault)
        {
            Run r = run(std::string("fault = ") + c.fault + "\n");
            REQUIRE(r.results.size() == 1);
            CHECK_FALSE(r.results[0].ok);
            CHECK(r.results[0].status == c.status);
            std::string expected = std::string("\"step\":\"") + c.failed_step + "\"";
            bool found = false;
            for (const auto &line : r.records)
                if (line.find(expected) != std::string::npos) {
                    found = true;
                    CHECK(line.find(std::string("\"status\":\"") + devhost_status_name(c.status) + "\"") !=
                          std::string::npos);
                    CHECK(line.find(std::string("\"message\":\"injected fault '") + c.fault + "'\"") !=
                          std::string::npos);
                }
            CHECK(found);
            CHECK(idle());
        }
    }
}

TEST_CASE("a transfer the plugin completes only in part is not reported as success", "[faults]")
{
    Run r = run("fault = transfer@1:short=2\n");
    REQUIRE(r.results.size() == 1);
    CHECK(r.results[0].status == DEVHOST_E_IO);
    REQUIRE(r.records.size() >= 5);
    CHECK(r.records[4].find(R"("bytes":2,"hex":"6162")") != std::string::npos);
    CHECK(r.records[4].find("plugin reported success after sending 2 of 6 bytes") != std::string::npos);
    CHECK(idle());

    Run read = run("fault = transfer@2:short=4\n");
    CHECK(read.results[0].status == DEVHOST_E_IO);
    REQUIRE(read.records.size() >= 6);
    CHECK(read.records[5].find("plugin reported success after reading 4 of 6 bytes") != std::string::npos);
    CHECK(idle());
}

TEST_CASE("a hook that blocks is ended by cancel and the pipeline unwinds", "[faults]")
{
    for (const char *fault : {"lock:block", "transfer@2:block", "connect:block"}) {
        SECTION(fault)
        {
            Run r = run(std::string("fault = ") + fault + "\n", [](Engine &engine, const test::TempDir &dir) {
                // Let the pipeline reach the blocked hook (its thread waits
                // in poll for the cancel), then cancel.
                for (int i = 0; i < 100 && test::lines(test::read_file(dir / "r.jsonl")).size() < 2; i++)
                    std::this_thread::sleep_for(std::chrono::milliseconds(10));
                for (int i = 0; i < 10000 && test::threads_asleep_waiting().empty(); i++)
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
                engine.cancel_all();
            });
            REQUIRE(r.results.size() == 1);
            CHECK(r.results[0].status == DEVHOST_E_CANCELLED);
            CHECK(idle());
        }
    }
}

TEST_CASE("fault lines are checked like any other config key", "[faults]")
{
    std::vector<Diagnostic> diags;
    parse_config("[device d]\nclass = loop\npath = loop:x\nstep = open\nfault = open\nfault = opne:block\n"
                 "fault = open:fail=sometimes\nfault = open:short=3\nfault = transfer@0:block\n",
                 "f.ini", diags);
    REQUIRE(diags.size() == 5);
    CHECK(diags[0].str() == "f.ini:5: [device d] fault: fault 'open': expected HOOK[@N]:ACTION");
    CHECK(diags[1].str() == "f.ini:6: [device d] fault: fault 'opne:block': unknown hook 'opne' (expected open, "
                            "connect, lock, transfer, unlock, disconnect, close or info)");
    CHECK(diags[2].str() == "f.ini:7: [device d] fault: fault 'open:fail=sometimes': unknown status 'sometimes' "
                            "(expected a failure such as io, busy, timeout, removed or DEVHOST_E_IO)");
    CHECK(diags[3].str() == "f.ini:8: [device d] fault: fault 'open:short=3': short=N applies to transfer only");
    CHECK(diags[4].str() == "f.ini:9: [device d] fault: fault 'transfer@0:block': @N must be a call number from 1");
}

TEST_CASE("the devhost binary exits 1 on an injected failure and 4 when a blocked hook is interrupted",
          "[faults][e2e]")
{
    test::TempDir dir;
    auto file = dir / "f.ini";
    test::write_file(file, std::string("[device d]\nfault = lock:fail=busy\n") + full_pipeline);
    auto r = test::run_devhost({"run", "--allow-faults", file.string()});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("d: injecting fault 'lock:fail=busy'") != std::string::npos);

    auto out = dir / "records.jsonl";
    test::write_file(file, std::string("[host]\nallow-faults = true\n[device d]\nfault = transfer@2:block\n") +
                               full_pipeline);
    test::Child child({test::devhost_exe().string(), "run", "-o", out.string(), file.string()}, dir.path());
    REQUIRE(child.wait_for_output("injecting fault 'transfer@2:block'", std::chrono::seconds(10)));
    child.signal(SIGINT);
    auto done = child.wait(std::chrono::seconds(10));
    REQUIRE_FALSE(done.timed_out);
    CHECK(done.exit_code == 4);
    auto lines = test::lines(test::read_file(out));
    REQUIRE(lines.size() == 9);  // open connect info lock write read(cancelled) + disconnect unlock close
    CHECK(lines[5].find(R"("status":"DEVHOST_E_CANCELLED")") != std::string::npos);
    CHECK(lines[8].find(R"("step":"close","status":"DEVHOST_OK")") != std::string::npos);
}

TEST_CASE("a crash inside a hook leaves every record written before it intact on disk", "[faults][e2e]")
{
    test::TempDir dir;
    auto file = dir / "f.ini";
    auto out = dir / "records.jsonl";
    test::write_file(file, std::string("[device d]\nfault = transfer@2:crash\n") + full_pipeline);
    auto r = test::run_devhost({"run", "--allow-faults", "-o", out.string(), file.string()});
    // The worker dies, not devhost: it records the lost step and exits 1.
    INFO(r.err);
    CHECK(r.term_signal == 0);
    CHECK(r.exit_code == 1);
    auto lines = test::lines(test::read_file(out));
    REQUIRE(lines.size() == 6);  // open connect info lock write + the read the crash lost
    for (size_t i = 0; i < 5; i++) {
        CHECK(lines[i].front() == '{');
        CHECK(lines[i].back() == '}');
        CHECK(lines[i].find(R"("status":"DEVHOST_OK")") != std::string::npos);
    }
    CHECK(lines[4].find(R"("hex":"616263646566")") != std::string::npos);
    CHECK(lines[5].find(R"("seq":6,"step":"read)") != std::string::npos);
    CHECK(lines[5].find(R"("status":"DEVHOST_E_HOST_FAILED")") != std::string::npos);
    // SIGSEGV from the kernel; SIGABRT when a sanitizer caught it first.
    CHECK((lines[5].find("was killed by signal 11 (Segmentation fault) while its transfer hook ran") !=
               std::string::npos ||
           lines[5].find("was killed by signal 6 (Aborted) while its transfer hook ran") != std::string::npos));
}

namespace {

// A device on a real descriptor for the fault cases below: a raw device on
// an image file (O_RDWR + flock LOCK_EX) or a serial device on a pty (flock +
// TIOCEXCL) whose master echoes. Made afresh for every section.
struct RealDevice {
    explicit RealDevice(const std::string &cls) : cls(cls)
    {
        if (cls == "raw") {
            path = (dir / "disk.img").string();
            reliability::make_image(path, 4096);
            options = {{"allow-write", "true"}};
            pipeline = "class = raw\npath = " + path +
                       "\nallow-write = true\nstep = open\nstep = info\nstep = write \"abcdef\" offset=0\n"
                       "step = read exactly=6 offset=0 expect=\"abcdef\"\nstep = close\n";
        } else {
            echo = std::make_unique<reliability::PtyEcho>(1);
            path = echo->pty(0).path;
            pipeline = "class = serial\npath = " + path +
                       "\nstep = open\nstep = info\nstep = write \"abcdef\"\n"
                       "step = read exactly=6 timeout=5s expect=\"abcdef\"\nstep = close\n";
        }
    }

    // Nothing of the device is left: no descriptor of this process beyond
    // those it had before, and its exclusive lock is free (a fresh flock, no
    // TIOCEXCL, and a second exclusive open through the plugin succeeds).
    void check_released(size_t fds_before) const
    {
        CHECK(reliability::open_fds() == fds_before);
        CHECK(reliability::exclusive_lock_free(path));
        Device again(registry().find(cls), "again");
        Outcome o = again.open({.path = path, .options = options});
        INFO(o.message);
        CHECK(o.ok());
        CHECK(again.close().ok());
    }

    std::string cls;
    test::TempDir dir;
    std::unique_ptr<reliability::PtyEcho> echo;
    std::string path;
    std::string pipeline;
    std::map<std::string, std::string> options;
};

}  // namespace

TEST_CASE("a failure injected into any hook of a raw or serial device releases its fd and its lock",
          "[faults][real]")
{
    struct Case {
        const char *fault;
        devhost_status status;
        const char *step;  // the failed step's record starts with it
    };
    // raw and serial have open, info, transfer and close; connect and lock
    // are NULL hooks there (DEVHOST_E_UNSUPPORTED before any fault), so the
    // loop cases above cover those.
    const Case cases[] = {
        {"open:fail=not_found", DEVHOST_E_NOT_FOUND, "open"},
        {"info:fail=io", DEVHOST_E_IO, "info"},
        {"transfer@1:fail=removed", DEVHOST_E_REMOVED, "write"},
        {"transfer@2:fail=protocol", DEVHOST_E_PROTOCOL, "read"},
        {"close:fail=no_memory", DEVHOST_E_NO_MEMORY, "close"},
    };
    for (const char *cls : {"raw", "serial"}) {
        for (const auto &c : cases) {
            SECTION(std::string(cls) + " " + c.fault)
            {
                RealDevice dev(cls);
                const size_t fds_before = reliability::open_fds();
                Run r = run(std::string("fault = ") + c.fault + "\n", {}, dev.pipeline);
                REQUIRE(r.results.size() == 1);
                CHECK(r.results[0].status == c.status);
                bool found = false;
                for (const auto &line : r.records)
                    if (line.find(std::string("\"message\":\"injected fault '") + c.fault + "'\"") !=
                        std::string::npos) {
                        found = true;
                        CHECK(line.find(std::string("\"step\":\"") + c.step) != std::string::npos);
                        CHECK(line.find(std::string("\"status\":\"") + devhost_status_name(c.status) + "\"") !=
                              std::string::npos);
                    }
                CHECK(found);
                // The close record is last whatever failed, once the device opened.
                if (c.status != DEVHOST_E_NOT_FOUND) {
                    REQUIRE_FALSE(r.records.empty());
                    CHECK(r.records.back().find("\"step\":\"close\"") != std::string::npos);
                }
                dev.check_released(fds_before);
            }
        }
    }
}

TEST_CASE("a short transfer on a raw or serial device is an error and releases its fd and its lock",
          "[faults][real]")
{
    for (const char *cls : {"raw", "serial"}) {
        for (const char *fault : {"transfer@1:short=2", "transfer@2:short=4"}) {
            SECTION(std::string(cls) + " " + fault)
            {
                RealDevice dev(cls);
                const size_t fds_before = reliability::open_fds();
                Run r = run(std::string("fault = ") + fault + "\n", {}, dev.pipeline);
                REQUIRE(r.results.size() == 1);
                CHECK(r.results[0].status == DEVHOST_E_IO);
                const bool write = std::string(fault) == "transfer@1:short=2";
                REQUIRE(r.records.size() == (write ? 4u : 5u));  // open info write [read] close
                const std::string &failed = r.records[write ? 2 : 3];
                CHECK(failed.find(write ? "plugin reported success after sending 2 of 6 bytes"
                                        : "plugin reported success after reading 4 of 6 bytes") != std::string::npos);
                CHECK(failed.find(write ? R"("hex":"6162")" : R"("hex":"61626364")") != std::string::npos);
                CHECK(r.records.back().find(R"("step":"close","status":"DEVHOST_OK")") != std::string::npos);
                dev.check_released(fds_before);
            }
        }
    }
}

TEST_CASE("a blocked hook of a raw or serial device is ended by cancel and releases its fd and its lock",
          "[faults][real]")
{
    struct Case {
        const char *fault;
        size_t records_before;  // written before the blocked hook
    };
    const Case cases[] = {
        {"open:block", 0}, {"info:block", 1}, {"transfer@1:block", 2}, {"transfer@2:block", 3}, {"close:block", 4},
    };
    for (const char *cls : {"raw", "serial"}) {
        for (const auto &c : cases) {
            SECTION(std::string(cls) + " " + c.fault)
            {
                RealDevice dev(cls);
                const size_t fds_before = reliability::open_fds();
                Run r = run(
                    std::string("fault = ") + c.fault + "\n",
                    [&](Engine &engine, const test::TempDir &dir) {
                        // Let the pipeline reach the blocked hook (its thread
                        // waits in poll for the cancel; an echo peer's thread
                        // polls too), then cancel (the deadlines only keep a
                        // broken run from hanging).
                        for (int i = 0; i < 500 && test::lines(test::read_file(dir / "r.jsonl")).size() <
                                                       c.records_before;
                             i++)
                            std::this_thread::sleep_for(std::chrono::milliseconds(10));
                        const pid_t relay = dev.echo ? dev.echo->thread_id() : 0;
                        for (int i = 0; i < 10000 && test::threads_asleep_waiting(relay).empty(); i++)
                            std::this_thread::sleep_for(std::chrono::milliseconds(1));
                        engine.cancel_all();
                    },
                    dev.pipeline);
                REQUIRE(r.results.size() == 1);
                CHECK(r.results[0].status == DEVHOST_E_CANCELLED);
                dev.check_released(fds_before);
            }
        }
    }
}

TEST_CASE("a plugin that really crashes inside a hook leaves every record written before it intact on disk",
          "[faults][e2e]")
{
    // crashing_plugin.c writes through a null pointer on its 4th transfer
    // call: open, write, read, write are recorded, the second read crashes.
    test::TempDir dir;
    auto file = dir / "c.ini";
    auto out = dir / "records.jsonl";
    test::write_file(file, "[device c]\nclass = crashing\npath = crash:one\ncrash-at = 4\n"
                           "step = open\nstep = write \"first\"\nstep = read exactly=5 expect=\"first\"\n"
                           "step = write \"second\"\nstep = read exactly=6\nstep = close\n");
    // A sanitizer's SEGV handler would otherwise end the process with an
    // exit code: make it abort, so the process still dies by a signal.
    test::ProcessOptions options;
    for (const char *var : {"ASAN_OPTIONS", "TSAN_OPTIONS"}) {
        const char *old = std::getenv(var);
        options.env[var] = std::string(old && *old ? old + std::string(":") : "") + "abort_on_error=1";
    }
    auto r = test::run_devhost({"run", "--plugin-path", DEVHOST_RELIABILITY_PLUGIN_DIR, "-o", out.string(),
                                file.string()},
                               options);
    INFO(r.err);
    REQUIRE_FALSE(r.timed_out);
    // Its worker dies (SIGSEGV from the kernel; SIGABRT when a sanitizer
    // caught it first); devhost records the lost step and exits 1.
    CHECK(r.term_signal == 0);
    CHECK(r.exit_code == 1);
    const std::string text = test::read_file(out);
    REQUIRE_FALSE(text.empty());
    CHECK(text.back() == '\n');
    auto lines = test::lines(text);
    REQUIRE(lines.size() == 5);  // open write read write + the read the crash lost
    CHECK(lines[4].find(R"("step":"read exactly=6")") != std::string::npos);
    CHECK(lines[4].find(R"("status":"DEVHOST_E_HOST_FAILED")") != std::string::npos);
    CHECK((lines[4].find("the worker running plugin 'crashing' (class crashing, pid ") != std::string::npos &&
           lines[4].find("while its transfer hook ran") != std::string::npos &&
           (lines[4].find("signal 11 (Segmentation fault)") != std::string::npos ||
            lines[4].find("signal 6 (Aborted)") != std::string::npos)));
    lines.pop_back();
    const char *steps[] = {"open", "write \\\"first\\\"", "read exactly=5", "write \\\"second\\\""};
    for (size_t i = 0; i < lines.size(); i++) {
        INFO(lines[i]);
        CHECK(lines[i].front() == '{');
        CHECK(lines[i].back() == '}');
        CHECK(lines[i].find(std::string("\"step\":\"") + steps[i]) != std::string::npos);
        CHECK(lines[i].find(R"("status":"DEVHOST_OK")") != std::string::npos);
    }
    CHECK(lines[2].find(R"("hex":"6669727374")") != std::string::npos);
    CHECK(lines[3].find(R"("bytes":6)") != std::string::npos);
}
