// Injected faults in every hook: the host reports the right status, unwinds
// so nothing stays open, connected or locked (the loop plugin's counters
// prove it), exits with the right code, and keeps the records it wrote, even
// when it crashes inside a hook.
#include "check.hpp"
#include "config.hpp"
#include "devhost_test.hpp"
#include "pipeline.hpp"

#include <catch2/catch.hpp>
#include <csignal>
#include <future>
#include <thread>

using namespace devhost;

namespace {

PluginRegistry &registry()
{
    static PluginRegistry r;
    static bool loaded = (r.load_file(test::plugin_dir() / "loop.so"), true);
    (void)loaded;
    return r;
}

std::string loop_stats()
{
    Device probe(registry().find("loop"), "probe");
    REQUIRE(probe.open({.path = "loop:probe"}).ok());
    uint8_t buf[256];
    devhost_transfer x{};
    x.op = DEVHOST_OP_CONTROL;
    x.control_code = 1;  // stats
    x.in = buf;
    x.in_capacity = sizeof buf;
    REQUIRE(probe.transfer(x).ok());
    return std::string(reinterpret_cast<char *>(buf), x.in_len);
}

bool idle() { return loop_stats().rfind("open=1 connected=0 locked=0", 0) == 0; }

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

Run run(const std::string &faults, std::function<void(Engine &, const test::TempDir &)> during = {})
{
    std::vector<Diagnostic> diags;
    Config config = parse_config("[device d]\n" + faults + full_pipeline, "faults.ini", diags);
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
                // Let the pipeline reach the blocked hook, then cancel.
                for (int i = 0; i < 100 && test::lines(test::read_file(dir / "r.jsonl")).size() < 2; i++)
                    std::this_thread::sleep_for(std::chrono::milliseconds(10));
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
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
    auto r = test::run_devhost({"run", file.string()});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("d: injecting fault 'lock:fail=busy'") != std::string::npos);

    auto out = dir / "records.jsonl";
    test::write_file(file, std::string("[device d]\nfault = transfer@2:block\n") + full_pipeline);
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
    auto r = test::run_devhost({"run", "-o", out.string(), file.string()});
    CHECK(r.term_signal == SIGSEGV);
    auto lines = test::lines(test::read_file(out));
    REQUIRE(lines.size() == 5);  // open connect info lock write
    for (const auto &l : lines) {
        CHECK(l.front() == '{');
        CHECK(l.back() == '}');
        CHECK(l.find(R"("status":"DEVHOST_OK")") != std::string::npos);
    }
    CHECK(lines[4].find(R"("hex":"616263646566")") != std::string::npos);
}
