// devhost-conformance: checks that a plugin keeps the contract of
// <devhost/plugin.h>, each numbered MUST by a test run in a forked child.
// Exit status: 0 every test passed (or skipped, at least one passed), 1 a
// test failed, 2 bad usage, 3 the host's loader refused the plugin, 4 every
// test was skipped.
#include "report.hpp"
#include "runner.hpp"
#include "suite.hpp"

#include "logging.hpp"
#include "raw_device.hpp"

#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>

namespace dc = devhost::conformance;

namespace {

constexpr const char *usage_text =
    "Usage: devhost-conformance PLUGIN.so [OPTIONS]\n"
    "Checks that a devhost plugin keeps the contract of <devhost/plugin.h>: each\n"
    "numbered MUST by a test run in a forked child with a deadline. Prints TAP\n"
    "version 13.\n"
    "\n"
    "Options:\n"
    "  --device PATH        a device the tests may open (twice: two devices at once);\n"
    "                       without it, tests that need a device are skipped (the\n"
    "                       loop class uses its own loop:devhost-conformance-a, -b)\n"
    "  --option NAME=VALUE  an option value for every open (repeatable)\n"
    "  --loopback           the device reads back what is written: check the bytes\n"
    "  --unplug COMMAND     a shell command that makes the first device disappear\n"
    "                       (run by the removed test while a read waits on it)\n"
    "  --only NAME          run only this test (repeatable)\n"
    "  --timeout SECONDS    kill a test that runs longer (default 60)\n"
    "  --junit FILE         also write JUnit XML to FILE\n"
    "  --json               print JSON instead of TAP\n"
    "  --list               list the tests and the MUSTs they check, run nothing\n"
    "  --verbose            the host's log at debug level (on stderr)\n"
    "  --help               this text\n"
    "\n"
    "Exit status: 0 passed (some may be skipped), 1 a test failed, 2 bad usage,\n"
    "3 the plugin was refused by the host's loader, 4 every test was skipped.\n";

struct Args {
    std::string plugin;
    std::vector<std::string> devices, only;
    std::map<std::string, std::string> options;
    std::string unplug;
    bool loopback = false, json = false, list = false, verbose = false;
    std::optional<std::string> junit;
    int timeout_s = 60;
};

[[noreturn]] void usage_error(const std::string &what)
{
    std::cerr << "devhost-conformance: " << what << " (--help for usage)\n";
    std::exit(2);
}

Args parse(int argc, char **argv)
{
    Args a;
    auto value = [&](int &i) -> std::string {
        if (i + 1 >= argc)
            usage_error(std::string(argv[i]) + " needs a value");
        return argv[++i];
    };
    for (int i = 1; i < argc; i++) {
        const std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::cout << usage_text;
            std::exit(0);
        } else if (arg == "--device") {
            a.devices.push_back(value(i));
        } else if (arg == "--option") {
            std::string kv = value(i);
            const size_t eq = kv.find('=');
            if (eq == std::string::npos || eq == 0)
                usage_error("--option '" + kv + "': expected NAME=VALUE");
            a.options[kv.substr(0, eq)] = kv.substr(eq + 1);
        } else if (arg == "--unplug") {
            a.unplug = value(i);
        } else if (arg == "--only") {
            a.only.push_back(value(i));
        } else if (arg == "--timeout") {
            const std::string t = value(i);
            char *end = nullptr;
            const long s = std::strtol(t.c_str(), &end, 10);
            if (t.empty() || *end || s < 1 || s > 3600)
                usage_error("--timeout '" + t + "': expected seconds from 1 to 3600");
            a.timeout_s = static_cast<int>(s);
        } else if (arg == "--junit") {
            a.junit = value(i);
        } else if (arg == "--json") {
            a.json = true;
        } else if (arg == "--loopback") {
            a.loopback = true;
        } else if (arg == "--list") {
            a.list = true;
        } else if (arg == "--verbose") {
            a.verbose = true;
        } else if (arg.size() > 1 && arg[0] == '-') {
            usage_error("unknown option '" + arg + "'");
        } else if (a.plugin.empty()) {
            a.plugin = arg;
        } else {
            usage_error("more than one plugin given ('" + a.plugin + "', '" + arg + "')");
        }
    }
    return a;
}

int list_tests()
{
    for (const auto &t : dc::all_tests())
        std::cout << t.name << " (" << t.must << "): " << t.summary << "\n";
    return 0;
}

std::vector<const dc::Test *> selected(const Args &a)
{
    std::vector<const dc::Test *> tests;
    std::set<std::string> known;
    for (const auto &t : dc::all_tests()) {
        known.insert(t.name);
        if (a.only.empty() || std::find(a.only.begin(), a.only.end(), t.name) != a.only.end())
            tests.push_back(&t);
    }
    for (const auto &o : a.only)
        if (!known.count(o))
            usage_error("--only '" + o + "': no such test (--list names them)");
    return tests;
}

}  // namespace

int main(int argc, char **argv)
{
    Args args = parse(argc, argv);
    if (args.list)
        return list_tests();
    if (args.plugin.empty())
        usage_error("no plugin given");
    const auto tests = selected(args);

    devhost::logging::Settings settings;
    settings.level = args.verbose ? "debug" : "warn";
    devhost::logging::setup(settings);
    devhost::PluginRegistry registry;
    auto plugin = registry.load_file(args.plugin);
    if (!plugin) {
        const std::string why = registry.refusals().empty() ? "refused" : registry.refusals().back().reason;
        std::cout << "TAP version 13\n1..0\nBail out! " << args.plugin << ": the host's loader refused it: " << why
                  << "\n";
        return 3;
    }

    dc::Context ctx;
    ctx.plugin = plugin;
    ctx.devices = args.devices;
    ctx.options = args.options;
    ctx.loopback = args.loopback;
    ctx.unplug = args.unplug;
    std::vector<std::string> notes;
    if (ctx.devices.empty() && plugin->device_class() == "loop") {
        ctx.devices = {"loop:devhost-conformance-a", "loop:devhost-conformance-b"};
        ctx.loopback = true;
        notes.push_back("no --device: the loop class's own loop:devhost-conformance-a and -b, read back");
    }
    for (const auto &d : ctx.devices)
        notes.push_back("device: " + d);

    std::vector<dc::Outcome> outcomes;
    if (!args.json)
        dc::tap_header(std::cout, *plugin, tests.size(), notes);
    for (const dc::Test *t : tests) {
        const int64_t start = dc::now_ms();
        dc::Outcome o{t, dc::run_in_child(*t, ctx, args.timeout_s), 0};
        o.elapsed_ms = dc::now_ms() - start;
        if (!args.json)
            dc::tap_line(std::cout, outcomes.size() + 1, o);
        outcomes.push_back(std::move(o));
    }
    if (args.json)
        dc::write_json(std::cout, *plugin, outcomes);
    if (args.junit) {
        std::ofstream out(*args.junit, std::ios::trunc);
        dc::write_junit(out, *plugin, outcomes);
        if (!out.flush()) {
            std::cerr << "devhost-conformance: cannot write --junit " << *args.junit << "\n";
            return 1;
        }
    }
    size_t failed = 0, skipped = 0;
    for (const auto &o : outcomes) {
        failed += o.result.verdict == dc::Verdict::Fail;
        skipped += o.result.verdict == dc::Verdict::Skip;
    }
    if (!args.json)
        std::cout << "# " << outcomes.size() - failed - skipped << " passed, " << failed << " failed, " << skipped
                  << " skipped\n";
    if (failed)
        return 1;
    return skipped == outcomes.size() ? 4 : 0;
}
