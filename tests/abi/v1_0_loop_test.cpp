// The loop plugin as ABI 1.0 shipped it (tests/abi/loop-1.0, built against
// the 1.0 header): a real 1.0 plugin binary, loaded and driven by this host.
// It negotiates 1.0, declares none of 1.1's additions, reads no deadline,
// and passes: check, a whole pipeline through every hook, a read's timeout,
// a failed step's unwind.
#include "check.hpp"
#include "config.hpp"
#include "devhost_test.hpp"
#include "loader.hpp"
#include "pipeline.hpp"
#include "records.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace devhost;
using namespace devhost::test;

namespace {

std::shared_ptr<const Plugin> load_loop_1_0(PluginRegistry &registry)
{
    auto plugin = registry.load_file(DEVHOST_LOOP_1_0);
    INFO((registry.refusals().empty() ? "" : registry.refusals()[0].reason));
    REQUIRE(plugin);
    return plugin;
}

// Runs `ini` through check and the engine with the 1.0 loop plugin alone;
// the records, one JSON object each.
std::vector<nlohmann::json> run(const std::string &ini, bool expect_ok)
{
    TempDir dir;
    PluginRegistry registry;
    load_loop_1_0(registry);
    std::vector<Diagnostic> diags;
    Config config = parse_config(ini, "v1_0.ini", diags);
    REQUIRE(diags.empty());
    Plan plan = check_config(config, registry, diags);
    INFO((diags.empty() ? "" : diags[0].str()));
    REQUIRE(diags.empty());
    const std::string out = (dir / "records").string();
    {
        RecordWriter records(out);
        Engine engine(records, 2000);
        for (const auto &device : plan.devices)
            CHECK(engine.run_device(device).ok == expect_ok);
    }
    std::vector<nlohmann::json> parsed;
    for (const auto &line : lines(read_file(out)))
        parsed.push_back(nlohmann::json::parse(line));
    return parsed;
}

std::vector<std::string> field(const std::vector<nlohmann::json> &records, const char *name)
{
    std::vector<std::string> values;
    for (const auto &r : records)
        values.push_back(r.value(name, ""));
    return values;
}

}  // namespace

TEST_CASE("a 1.0 plugin binary loads on this host and speaks 1.0, without 1.1's declarations", "[abi][v1_0]")
{
    PluginRegistry registry;
    auto loop = load_loop_1_0(registry);
    CHECK(loop->abi_version() == DEVHOST_MAKE_VERSION(1, 0));
    CHECK(loop->device_class() == "loop");
    CHECK(loop->path_patterns().empty());
    CHECK(loop->hooks().enumerate == nullptr);
    CHECK(loop->hooks().unload == nullptr);
    for (const auto &o : loop->options())
        CHECK(o.flags == 0);
}

TEST_CASE("a 1.0 plugin binary runs a pipeline through every hook on this host", "[abi][v1_0]")
{
    const auto records = run("[device a]\nclass = loop\npath = loop:v1\n"
                             "step = open\nstep = connect mode=\"fast\"\nstep = lock\n"
                             "step = write \"hello\"\nstep = read exactly=5 expect=\"hello\"\n"
                             "step = request \"ping\\n\" until=\"\\n\"\nstep = control stats\nstep = info\n"
                             "step = unlock\nstep = disconnect\nstep = close\n",
                             true);
    CHECK(field(records, "step") ==
          std::vector<std::string>{"open", "connect mode=\"fast\"", "lock", "write \"hello\"",
                                   "read exactly=5 expect=\"hello\"", "request \"ping\\n\" until=\"\\n\"",
                                   "control stats", "info", "unlock", "disconnect", "close"});
    for (const auto &r : records) {
        INFO(r.dump());
        CHECK(r["status"] == "DEVHOST_OK");
    }
    REQUIRE(records.size() == 11);
    CHECK(records[4]["text"] == "hello");
    CHECK(records[5]["text"] == "ping\\n");
    CHECK_THAT(records[6]["text"].get<std::string>(), Catch::StartsWith("open=1 connected=1 locked=1"));
    CHECK(records[7]["info"]["connect-args"] == "mode=fast");
}

TEST_CASE("a 1.0 plugin binary times out a read at its timeout and is unwound after a failed step",
          "[abi][v1_0]")
{
    const auto records = run("[device a]\nclass = loop\npath = loop:v1-fail\n"
                             "step = open\nstep = lock\nstep = read 4 timeout=100ms\nstep = unlock\nstep = close\n",
                             false);
    CHECK(field(records, "step") == std::vector<std::string>{"open", "lock", "read 4 timeout=100ms", "unlock", "close"});
    CHECK(field(records, "status") == std::vector<std::string>{"DEVHOST_OK", "DEVHOST_OK", "DEVHOST_E_TIMEOUT",
                                                               "DEVHOST_OK", "DEVHOST_OK"});
    // The two releases after the failure are the unwind's.
    CHECK(records[3].value("unwind", false));
    CHECK(records[4].value("unwind", false));
}
