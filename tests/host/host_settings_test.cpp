// The [host] keys of the plugin workers and their supervisor (issue 15):
// isolation, kill-grace, describe-timeout, allow-faults, restart-budget,
// restart-window, state-dir, cache-dir. Their defaults, their values and
// lines, each bad value as one line naming file, line, key and what is
// expected; and the fault test mode they gate: `fault =` lines refused by
// check unless allow-faults is set, and the `hang` action.
#include "check.hpp"
#include "config.hpp"
#include "devhost_test.hpp"
#include "faults.hpp"

#include <catch2/catch.hpp>

using namespace devhost;
using devhost::test::errors_of;

namespace {

const char *const device = "[device d]\nclass = loop\npath = loop:d\nstep = open\n";

HostSettings host_of(const std::string &host_section)
{
    std::vector<Diagnostic> diags;
    Config c = parse_config("[host]\n" + host_section + device, "test.ini", diags);
    INFO((diags.empty() ? "" : diags[0].str()));
    CHECK(diags.empty());
    return c.host;
}

// The one error of a [host] section holding `line` (on line 2).
std::string error_of(const std::string &line)
{
    auto errors = errors_of("[host]\n" + line + "\n" + device);
    REQUIRE(errors.size() == 1);
    return errors[0];
}

PluginRegistry &loop_registry()
{
    static PluginRegistry r;
    static bool loaded = (r.load_file(test::plugin_dir() / "loop.so"), true);
    (void)loaded;
    return r;
}

// What check says of a config (its parse and its check).
std::vector<std::string> checked(const std::string &ini, bool allow_faults_flag = false)
{
    std::vector<Diagnostic> diags;
    Config c = parse_config(ini, "f.ini", diags);
    if (allow_faults_flag)  // what devhost's --allow-faults does (cli.cpp)
        c.host.allow_faults = true;
    check_config(c, loop_registry(), diags);
    std::vector<std::string> out;
    for (const auto &d : diags)
        out.push_back(d.str());
    return out;
}

}  // namespace

TEST_CASE("the worker keys have their defaults when [host] leaves them out", "[config][workers]")
{
    const HostSettings h = host_of("");
    CHECK(h.isolation == Isolation::Class);
    CHECK(h.isolation_line == 0);
    CHECK(h.kill_grace_ms == 1000);
    CHECK(h.describe_timeout_ms == 5000);
    CHECK_FALSE(h.allow_faults);
    CHECK(h.restart_budget == 5);
    CHECK(h.restart_window_ms == 30 * 60 * 1000);
    CHECK_FALSE(h.state_dir);
    CHECK(h.state_dir_line == 0);
    CHECK_FALSE(h.cache_dir);
    CHECK_FALSE(h.cache_disabled);
    CHECK(h.cache_dir_line == 0);
}

TEST_CASE("the worker keys are read with their values and lines", "[config][workers]")
{
    const HostSettings h = host_of("isolation = device\n"
                                   "kill-grace = 250ms\n"
                                   "describe-timeout = 1.5s\n"
                                   "allow-faults = yes\n"
                                   "restart-budget = 12\n"
                                   "restart-window = 2m\n"
                                   "state-dir = /var/lib/devhost\n"
                                   "cache-dir = /var/cache/devhost-test\n");
    CHECK(h.isolation == Isolation::Device);
    CHECK(h.isolation_line == 2);
    CHECK(h.kill_grace_ms == 250);
    CHECK(h.describe_timeout_ms == 1500);
    CHECK(h.allow_faults);
    CHECK(h.restart_budget == 12);
    CHECK(h.restart_window_ms == 120000);
    CHECK(h.state_dir == "/var/lib/devhost");
    CHECK(h.state_dir_line == 8);
    CHECK(h.cache_dir == "/var/cache/devhost-test");
    CHECK_FALSE(h.cache_disabled);
    CHECK(h.cache_dir_line == 9);

    CHECK(host_of("isolation = none\n").isolation == Isolation::None);
    CHECK(host_of("isolation = class\n").isolation == Isolation::Class);
    CHECK_FALSE(host_of("allow-faults = false\n").allow_faults);
    const HostSettings none = host_of("\ncache-dir = none\n");
    CHECK(none.cache_disabled);
    CHECK_FALSE(none.cache_dir);
    CHECK(none.cache_dir_line == 3);
}

TEST_CASE("isolation names round-trip", "[config][workers]")
{
    for (Isolation i : {Isolation::None, Isolation::Class, Isolation::Device})
        CHECK(parse_isolation(isolation_name(i)) == i);
    CHECK_FALSE(parse_isolation("Class"));
    CHECK_FALSE(parse_isolation(""));
}

TEST_CASE("the worker keys take their bounds and no value past them", "[config][workers]")
{
    CHECK(host_of("kill-grace = 1ms\n").kill_grace_ms == 1);
    CHECK(host_of("kill-grace = 60m\n").kill_grace_ms == 3600000);
    CHECK(host_of("describe-timeout = 10m\n").describe_timeout_ms == 600000);
    CHECK(host_of("restart-window = 1440m\n").restart_window_ms == 86400000);
    CHECK(host_of("restart-budget = 1\n").restart_budget == 1);
    CHECK(host_of("restart-budget = 1000\n").restart_budget == 1000);

    const std::string grace = "test.ini:2: [host] kill-grace: expected a duration above 0 and at most 60m, like "
                              "500ms or 2s, got ";
    CHECK(error_of("kill-grace = 0") == grace + "'0'");
    CHECK(error_of("kill-grace = 0ms") == grace + "'0ms'");
    CHECK(error_of("kill-grace = 61m") == grace + "'61m'");
    CHECK(error_of("kill-grace = soon") == grace + "'soon'");
    CHECK(error_of("kill-grace =") == grace + "''");
    CHECK(error_of("describe-timeout = 601s") ==
          "test.ini:2: [host] describe-timeout: expected a duration above 0 and at most 10m, like 500ms or 2s, got "
          "'601s'");
    CHECK(error_of("restart-window = 1441m") ==
          "test.ini:2: [host] restart-window: expected a duration above 0 and at most 1440m, like 500ms or 2s, "
          "got '1441m'");
    CHECK(error_of("restart-window = 0") ==
          "test.ini:2: [host] restart-window: expected a duration above 0 and at most 1440m, like 500ms or 2s, "
          "got '0'");
    const std::string budget = "test.ini:2: [host] restart-budget: expected a number of worker deaths from 1 to "
                               "1000, got ";
    CHECK(error_of("restart-budget = 0") == budget + "'0'");
    CHECK(error_of("restart-budget = 1001") == budget + "'1001'");
    CHECK(error_of("restart-budget = -3") == budget + "'-3'");
    CHECK(error_of("restart-budget = five") == budget + "'five'");
    CHECK(error_of("restart-budget = 99999999999999999999") == budget + "'99999999999999999999'");
}

TEST_CASE("a bad worker key value is one line naming file, line, key and what is expected", "[config][workers]")
{
    CHECK(error_of("isolation = process") ==
          "test.ini:2: [host] isolation: expected none, class or device, got 'process'");
    CHECK(error_of("isolation = Class") == "test.ini:2: [host] isolation: expected none, class or device, got 'Class'");
    CHECK(error_of("allow-faults = perhaps") ==
          "test.ini:2: [host] allow-faults: expected true or false, got 'perhaps'");
    CHECK(error_of("state-dir = var/lib/devhost") ==
          "test.ini:2: [host] state-dir: expected an absolute directory path, got 'var/lib/devhost'");
    CHECK(error_of("state-dir =") == "test.ini:2: [host] state-dir: expected an absolute directory path, got ''");
    CHECK(error_of("state-dir = none") ==
          "test.ini:2: [host] state-dir: expected an absolute directory path, got 'none'");
    CHECK(error_of("cache-dir = cache") ==
          "test.ini:2: [host] cache-dir: expected an absolute directory path or none, got 'cache'");
    CHECK(error_of("cache-dir = None") ==
          "test.ini:2: [host] cache-dir: expected an absolute directory path or none, got 'None'");
    CHECK(error_of("isolaton = class") == "test.ini:2: [host] isolaton: unknown key (did you mean 'isolation'?)");
    CHECK(error_of("workers = 4") ==
          "test.ini:2: [host] workers: unknown key (expected plugin-path, log-level, log-file, output, timeout, "
          "port-dir, physical-drives, record-data, isolation, kill-grace, describe-timeout, allow-faults, "
          "restart-budget, restart-window, state-dir, cache-dir, control-socket, control-group)");
    // The list would not fit a line after a long file name: the line says
    // where to read it instead, and is not cut.
    std::vector<Diagnostic> diags;
    const std::string file = "/etc/devhost/" + std::string(40, 'x') + ".ini";
    parse_config("[host]\nworkers = 4\n" + std::string(device), file, diags);
    REQUIRE(diags.size() == 1);
    CHECK(diags[0].str() == file + ":2: [host] workers: unknown key (devhost.ini(5) lists the [host] keys)");

    auto twice = errors_of("[host]\nisolation = none\nkill-grace = 2s\nisolation = device\ncache-dir = none\n"
                           "cache-dir = /c\n" +
                           std::string(device));
    REQUIRE(twice.size() == 2);
    CHECK(twice[0] == "test.ini:4: [host] isolation: given twice (first on line 2)");
    CHECK(twice[1] == "test.ini:6: [host] cache-dir: given twice (first on line 5)");
}

TEST_CASE("every mistake among the worker keys is reported, one line each, in line order", "[config][workers]")
{
    auto errors = errors_of("[host]\nisolation = all\nkill-grace = 0\ndescribe-timeout = 1h\nallow-faults = 2\n"
                            "restart-budget = 0\nrestart-window = -1s\nstate-dir = state\ncache-dir = ./cache\n" +
                            std::string(device));
    REQUIRE(errors.size() == 8);
    for (size_t i = 0; i < errors.size(); i++)
        CHECK(errors[i].rfind("test.ini:" + std::to_string(i + 2) + ": [host] ", 0) == 0);
}

TEST_CASE("fault lines keep their config line, and hang is an action", "[config][faults]")
{
    std::string error;
    auto hang = parse_fault("transfer@2:hang", error);
    REQUIRE(hang);
    CHECK(hang->action == Fault::Action::Hang);
    CHECK(hang->hook == Hook::Transfer);
    CHECK(hang->call == 2u);
    CHECK(parse_fault("close:hang", error)->action == Fault::Action::Hang);
    CHECK_FALSE(parse_fault("open:hung", error));
    CHECK(error == "fault 'open:hung': unknown action 'hung' (expected fail=STATUS, block, short=N, crash or hang)");

    std::vector<Diagnostic> diags;
    Config c = parse_config("[device d]\nclass = loop\npath = loop:d\nstep = open\nfault = open:hang\n\n"
                            "fault = close@1:fail=io\n",
                            "test.ini", diags);
    CHECK(diags.empty());
    REQUIRE(c.devices.size() == 1);
    REQUIRE(c.devices[0].faults.size() == 2);
    CHECK(c.devices[0].faults[0].line == 5);
    CHECK(c.devices[0].faults[1].line == 7);
}

TEST_CASE("check refuses each fault line unless [host] allow-faults or --allow-faults allows it",
          "[config][faults]")
{
    const std::string devices = "[device a]\nclass = loop\npath = loop:a\nstep = open\nfault = open:fail=busy\n"
                                "[device b]\nclass = loop\npath = loop:b\nstep = open\nfault = open@2:hang\n"
                                "fault = close:crash\n";
    const auto refused = checked(devices);
    REQUIRE(refused.size() == 3);
    CHECK(refused[0] == "f.ini:5: [device a] fault: fault injection is a test mode: 'fault = open:fail=busy' needs "
                        "[host] allow-faults = true (or --allow-faults)");
    CHECK(refused[1] == "f.ini:10: [device b] fault: fault injection is a test mode: 'fault = open@2:hang' needs "
                        "[host] allow-faults = true (or --allow-faults)");
    CHECK(refused[2] == "f.ini:11: [device b] fault: fault injection is a test mode: 'fault = close:crash' needs "
                        "[host] allow-faults = true (or --allow-faults)");
    CHECK(checked("[host]\nallow-faults = false\n" + devices).size() == 3);

    CHECK(checked("[host]\nallow-faults = true\n" + devices).empty());
    CHECK(checked(devices, true).empty());
    CHECK(checked("[host]\nallow-faults = false\n" + devices, true).empty());  // the flag wins
    // A malformed fault line is its own mistake, once, allowed or not.
    const auto malformed = checked("[device a]\nclass = loop\npath = loop:a\nstep = open\nfault = open:explode\n");
    REQUIRE(malformed.size() == 1);
    CHECK(malformed[0].rfind("f.ini:5: [device a] fault: fault 'open:explode': unknown action 'explode'", 0) == 0);
}
