// The device state machine and the pipeline engine, in-process, through the
// real loop plugin: every illegal call is refused with DEVHOST_E_STATE, and a
// failing or cancelled pipeline unwinds so nothing stays open, connected or
// locked (the loop plugin's process-wide counters prove it).
#include "check.hpp"
#include "config.hpp"
#include "devhost_test.hpp"
#include "devices.hpp"
#include "device.hpp"
#include "pipeline.hpp"

#include <catch2/catch.hpp>
#include <future>
#include <map>
#include <thread>

using namespace devhost;

namespace {

std::shared_ptr<const Plugin> loop_plugin()
{
    static PluginRegistry registry;
    static auto plugin = registry.load_file(test::plugin_dir() / "loop.so");
    REQUIRE(plugin);
    return plugin;
}

std::string loop_stats() { return test::loop_stats(loop_plugin()); }

const std::string idle_stats_prefix = "open=1 connected=0 locked=0";  // just the probe

devhost_transfer read_xfer(uint32_t op, uint8_t *buf, size_t cap, int32_t timeout_ms)
{
    devhost_transfer x{};
    x.op = op;
    x.in = buf;
    x.in_capacity = cap;
    x.timeout_ms = timeout_ms;
    return x;
}

}  // namespace

TEST_CASE("every call out of order is refused with DEVHOST_E_STATE", "[state]")
{
    Device d(loop_plugin(), "d");
    uint8_t buf[8];
    auto x = read_xfer(DEVHOST_OP_READ, buf, sizeof buf, 10);
    InfoList info;

    CHECK(d.connect({}).status == DEVHOST_E_STATE);
    CHECK(d.lock(10).status == DEVHOST_E_STATE);
    CHECK(d.transfer(x).status == DEVHOST_E_STATE);
    CHECK(d.info(info).status == DEVHOST_E_STATE);
    CHECK(d.unlock().status == DEVHOST_E_STATE);
    CHECK(d.disconnect().status == DEVHOST_E_STATE);
    Outcome c = d.close();
    CHECK(c.status == DEVHOST_E_STATE);
    CHECK(c.message == "close on device 'd' needs an open device");

    REQUIRE(d.open({.path = "loop:state"}).ok());
    CHECK(d.open({.path = "loop:state"}).status == DEVHOST_E_STATE);
    CHECK(d.unlock().status == DEVHOST_E_STATE);
    CHECK(d.disconnect().status == DEVHOST_E_STATE);
    REQUIRE(d.lock(100).ok());
    CHECK(d.lock(100).status == DEVHOST_E_STATE);
    REQUIRE(d.connect({}).ok());
    CHECK(d.connect({}).status == DEVHOST_E_STATE);
    REQUIRE(d.close().ok());

    Outcome after = d.transfer(x);
    CHECK(after.status == DEVHOST_E_STATE);
    CHECK(after.message == "read on device 'd' after close");
    CHECK(d.open({.path = "loop:state"}).status == DEVHOST_E_STATE);
    CHECK(d.close().status == DEVHOST_E_STATE);
    CHECK(d.lock(10).status == DEVHOST_E_STATE);
    CHECK(loop_stats().rfind(idle_stats_prefix, 0) == 0);
}

TEST_CASE("connect never hands a plugin a context shorter than the size it claims", "[state]")
{
    Device d(loop_plugin(), "d");
    REQUIRE(d.open({.path = "loop:ctx"}).ok());
    ConnectRequest too_big;
    too_big.context = std::vector<uint8_t>{'a', 'b', 'c'};
    too_big.context_size = 65535;
    Outcome o = d.connect(too_big);
    CHECK(o.status == DEVHOST_E_INVALID);
    CHECK(o.message == "connect: context-size=65535 is larger than the context (3 bytes)");
    ConnectRequest shorter = too_big;
    shorter.context_size = 2;  // a prefix of the context: allowed
    CHECK(d.connect(shorter).ok());
    REQUIRE(d.close().ok());
}

TEST_CASE("open validates option values against the schema before calling the plugin", "[state]")
{
    Device d(loop_plugin(), "d");
    Outcome bad = d.open({.path = "loop:x", .options = {{"capacity", "lots"}}});
    CHECK(bad.status == DEVHOST_E_INVALID);
    CHECK(bad.message.rfind("option 'capacity': expected an integer from", 0) == 0);
    Outcome unknown = d.open({.path = "loop:x", .options = {{"colour", "red"}}});
    CHECK(unknown.status == DEVHOST_E_INVALID);
    CHECK(unknown.message == "unknown option 'colour' for class 'loop'");
    CHECK_FALSE(d.is_open());
}

TEST_CASE("a device destroyed while holding everything releases it all", "[state]")
{
    {
        Device d(loop_plugin(), "held");
        REQUIRE(d.open({.path = "loop:held"}).ok());
        REQUIRE(d.connect({}).ok());
        REQUIRE(d.lock(100).ok());
    }
    CHECK(loop_stats().rfind(idle_stats_prefix, 0) == 0);
}

namespace {

struct PlanFixture {
    Config config;
    std::vector<Diagnostic> diags;
    PluginRegistry registry;
    Plan plan;

    explicit PlanFixture(const std::string &ini)
    {
        config = parse_config(ini, "pipeline.ini", diags);
        registry.load_file(test::plugin_dir() / "loop.so");
        registry.load_file(test::plugin_dir() / "serial.so");
        plan = check_config(config, registry, diags);
        INFO((diags.empty() ? std::string() : diags[0].str()));
        REQUIRE(diags.empty());
    }
};

std::vector<std::string> record_lines(const test::TempDir &dir)
{
    return test::lines(test::read_file(dir / "records.jsonl"));
}

}  // namespace

TEST_CASE("a failure mid-pipeline unwinds disconnect, unlock and close", "[pipeline]")
{
    PlanFixture f(R"([device a]
class = loop
path = loop:unwind
step = open
step = connect
step = lock
step = write "abc"
step = read exactly=10 timeout=50ms
step = unlock
step = close
)");
    test::TempDir dir;
    RecordWriter records((dir / "records.jsonl").string());
    Engine engine(records, 1000);
    PipelineResult r = engine.run_device(f.plan.devices[0]);
    CHECK_FALSE(r.ok);
    CHECK(r.status == DEVHOST_E_TIMEOUT);

    auto lines = record_lines(dir);
    REQUIRE(lines.size() == 8);
    CHECK(lines[4].find("\"status\":\"DEVHOST_E_TIMEOUT\"") != std::string::npos);
    CHECK(lines[4].find("\"hex\":\"616263\"") != std::string::npos);  // the 3 bytes it did get
    CHECK(lines[5].find("\"step\":\"disconnect\"") != std::string::npos);
    CHECK(lines[5].find("\"unwind\":true") != std::string::npos);
    CHECK(lines[6].find("\"step\":\"unlock\"") != std::string::npos);
    CHECK(lines[7].find("\"step\":\"close\"") != std::string::npos);
    CHECK(lines[7].find("\"status\":\"DEVHOST_OK\"") != std::string::npos);
    CHECK(loop_stats().rfind(idle_stats_prefix, 0) == 0);
}

TEST_CASE("a reply that misses its expectation fails the step with the bytes shown", "[pipeline]")
{
    PlanFixture f(R"([device a]
class = loop
path = loop:expect
step = open
step = request "pong" expect="ping"
step = close
)");
    test::TempDir dir;
    RecordWriter records((dir / "records.jsonl").string());
    Engine engine(records, 1000);
    PipelineResult r = engine.run_device(f.plan.devices[0]);
    CHECK(r.status == DEVHOST_E_PROTOCOL);
    auto lines = record_lines(dir);
    REQUIRE(lines.size() == 3);
    CHECK(lines[1].find(R"("message":"expected \"ping\", got \"pong\"")") != std::string::npos);
    CHECK(lines[2].find("\"unwind\":true") != std::string::npos);
}

TEST_CASE("cancel ends a blocked read promptly and the pipeline unwinds", "[pipeline]")
{
    PlanFixture f(R"([device a]
class = loop
path = loop:cancel
step = open
step = lock
step = read 1 timeout=60s
step = close
)");
    test::TempDir dir;
    RecordWriter records((dir / "records.jsonl").string());
    Engine engine(records, 1000);
    auto done = std::async(std::launch::async, [&] { return engine.run_all(f.plan.devices); });
    // Wait until the read is under way (two records: open, lock).
    for (int i = 0; i < 500 && record_lines(dir).size() < 2; i++)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(record_lines(dir).size() == 2);
    engine.cancel_all();
    REQUIRE(done.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    auto results = done.get();
    REQUIRE(results.size() == 1);
    CHECK(results[0].status == DEVHOST_E_CANCELLED);
    CHECK_FALSE(engine.abandoned());
    auto lines = record_lines(dir);
    REQUIRE(lines.size() == 5);
    CHECK(lines[2].find("\"status\":\"DEVHOST_E_CANCELLED\"") != std::string::npos);
    CHECK(lines[3].find("\"step\":\"unlock\"") != std::string::npos);
    CHECK(lines[4].find("\"step\":\"close\"") != std::string::npos);
    CHECK(loop_stats().rfind(idle_stats_prefix, 0) == 0);
}

TEST_CASE("devices run concurrently, each on its own thread", "[pipeline]")
{
    // c and d are serial devices on the two ends of a null-modem pair of
    // ptys: each sends its name, then waits for the other's. Neither can
    // finish unless the other runs meanwhile, so an engine that ran devices
    // one after another fails c (it waits for a d that has not started).
    // a and b: b waits for the lock a holds; a releases it after a sleep.
    test::PtyRelay cable(2, test::PtyRelay::Wiring::null_modem);
    PlanFixture f(R"([device a]
class = loop
path = loop:shared
step = open
step = lock
step = sleep 200ms
step = unlock
step = close
[device b]
class = loop
path = loop:shared
step = open
step = sleep 50ms
step = lock timeout=5s
step = unlock
step = close
[device c]
class = serial
path = )" + cable.pty(0).path + R"(
step = open
step = write "from c;"
step = read until=";" timeout=3s expect="from d;"
step = close
[device d]
class = serial
path = )" + cable.pty(1).path + R"(
step = open
step = write "from d;"
step = read until=";" timeout=3s expect="from c;"
step = close
)");
    test::TempDir dir;
    RecordWriter records((dir / "records.jsonl").string());
    Engine engine(records, 1000);
    auto results = engine.run_all(f.plan.devices);
    REQUIRE(results.size() == 4);
    CHECK(results[0].ok);
    CHECK(results[1].ok);
    CHECK(results[2].ok);
    CHECK(results[3].ok);
    std::map<std::string, int> per_device;
    for (const auto &line : record_lines(dir))
        per_device[test::device_of(line)]++;
    CHECK(per_device == std::map<std::string, int>{{"a", 5}, {"b", 5}, {"c", 4}, {"d", 4}});
}

TEST_CASE("check refuses steps whose precondition cannot hold", "[check]")
{
    Config config;
    std::vector<Diagnostic> diags;
    config = parse_config(R"([device a]
class = loop
path = loop:a
capacty = 10
step = lock
step = open
step = unlock
step = reply "x"
step = control frobnicate
step = close
step = info
)",
                          "c.ini", diags);
    REQUIRE(diags.empty());
    PluginRegistry registry;
    registry.load_file(test::plugin_dir() / "loop.so");
    check_config(config, registry, diags);
    std::vector<std::string> msgs;
    for (const auto &d : diags)
        msgs.push_back(d.str());
    REQUIRE(msgs.size() == 6);
    CHECK(msgs[0] == "c.ini:4: [device a] capacty: not an option of class 'loop' (did you mean 'capacity'?); "
                     "options: capacity, exclusive, open-delay, and for every device: class, path, inherit, timeout, "
                     "step, fault, setup, body, teardown, run, stale-after, instances");
    CHECK(msgs[1] == "c.ini:5: [device a] step 'lock': needs an open device: add 'step = open' before it");
    CHECK(msgs[2] == "c.ini:7: [device a] step 'unlock': device is not locked at this point");
    CHECK(msgs[3] == "c.ini:8: [device a] step 'reply \"x\"': no get-message before it to reply to (or give id=N)");
    CHECK(msgs[4].rfind("c.ini:9: [device a] step 'control frobnicate': unknown control code 'frobnicate' for class "
                        "'loop'; known: stats, clear, fill",
                        0) == 0);
    CHECK(msgs[5] == "c.ini:11: [device a] step 'info': comes after close (a closed device cannot be used again)");
}
