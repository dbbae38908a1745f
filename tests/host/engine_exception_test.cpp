// A step that throws inside the engine: a plugin that throws a C++ exception
// through the C ABI (throwing_plugin.cpp, loaded for real). The step fails
// with DEVHOST_E_IO and a record, the device is unwound, the host goes on,
// and a cancel afterwards (a stop signal coming late) reaches only devices
// that still exist: run under ASan, a device left registered for cancel
// after its pipeline ended would be a use after free here.
#include "check.hpp"
#include "config.hpp"
#include "devhost_test.hpp"
#include "pipeline.hpp"

#include <catch2/catch.hpp>

using namespace devhost;

namespace {

std::shared_ptr<const Plugin> throwing_plugin(PluginRegistry &registry)
{
    auto plugin = registry.load_file(test::binary_dir() / "tests/throwing-plugin/throwing.so");
    REQUIRE(plugin);
    return plugin;
}

struct Run {
    std::vector<std::string> lines;
    std::vector<PipelineResult> results;
};

// Runs `ini`'s devices on the throwing plugin, then cancels the engine.
Run run_then_cancel(const std::string &ini, bool all)
{
    std::vector<Diagnostic> diags;
    Config config = parse_config(ini, "throwing.ini", diags);
    PluginRegistry registry;
    throwing_plugin(registry);
    Plan plan = check_config(config, registry, diags);
    INFO((diags.empty() ? std::string() : diags[0].str()));
    REQUIRE(diags.empty());
    test::TempDir dir;
    Run run;
    {
        RecordWriter records((dir / "records.jsonl").string());
        Engine engine(records, 1000);
        if (all)
            run.results = engine.run_all(plan.devices);
        else
            run.results.push_back(engine.run_device(plan.devices[0]));
        engine.cancel_all();  // after every pipeline ended: nothing to follow
        CHECK_FALSE(engine.abandoned());
    }
    run.lines = test::lines(test::read_file(dir / "records.jsonl"));
    return run;
}

bool has(const std::string &line, const std::string &part) { return line.find(part) != std::string::npos; }

// Device a's config: open, lock, a write of `data` (the plugin throws), close.
std::string throwing_device(const std::string &data)
{
    return "[device a]\nclass = throwing\npath = /throwing/a\nstep = open\nstep = lock\nstep = write \"" + data +
           "\"\nstep = close\n";
}

// Device a's records: open, lock, the write failed with `message`, then
// unlock and close unwound.
void check_threw_and_unwound(const Run &run, const std::string &message)
{
    std::vector<std::string> a;
    for (const auto &l : run.lines)
        if (has(l, R"("device":"a")"))
            a.push_back(l);
    REQUIRE(a.size() == 5);
    CHECK(has(a[2], R"("step":"write \")"));
    CHECK(has(a[2], R"("status":"DEVHOST_E_IO")"));
    CHECK(has(a[2], "\"message\":\"host error in this step: " + message + "\""));
    CHECK(has(a[3], R"("step":"unlock")"));
    CHECK(has(a[3], R"("unwind":true)"));
    CHECK(has(a[4], R"("step":"close")"));
    CHECK(has(a[4], R"("status":"DEVHOST_OK")"));
}

}  // namespace

TEST_CASE("a step whose plugin throws a std::exception fails, unwinds, and a later cancel is safe", "[pipeline]")
{
    Run run = run_then_cancel(throwing_device("std"), false);
    REQUIRE(run.results.size() == 1);
    CHECK_FALSE(run.results[0].ok);
    CHECK(run.results[0].status == DEVHOST_E_IO);
    check_threw_and_unwound(run, "the plugin threw through the C ABI");
}

TEST_CASE("a step whose plugin throws something not a std::exception fails and unwinds too", "[pipeline]")
{
    // Two devices on their own threads; a's plugin throws an int.
    Run run = run_then_cancel(throwing_device("int") + R"(
[device b]
class = throwing
path = /throwing/b
step = open
step = close
)",
                              true);
    REQUIRE(run.results.size() == 2);
    CHECK(run.results[0].status == DEVHOST_E_IO);
    CHECK(run.results[1].ok);
    check_threw_and_unwound(run, "an exception of an unknown type");
}
