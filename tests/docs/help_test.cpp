// Each command's help: `devhost CMD --help` and `devhost help CMD` print that
// command's usage, options and exit codes on stdout and exit 0, not the
// global help; `devhost help nosuch` is a usage error naming the command.
#include "devhost_test.hpp"

#include <catch2/catch.hpp>

using namespace devhost::test;

namespace {

bool has(const std::string &text, const std::string &needle) { return text.find(needle) != std::string::npos; }

// The long options an "options:" block lists, in order.
std::vector<std::string> listed_options(const std::string &help)
{
    std::vector<std::string> out;
    bool inside = false;
    for (const auto &line : lines(help)) {
        if (line == "options:") {
            inside = true;
            continue;
        }
        if (line.empty())
            inside = false;
        const auto dashes = line.find("--");
        if (inside && line.rfind("  -", 0) == 0 && dashes != std::string::npos)
            out.push_back(line.substr(dashes, line.find_first_of(" ]", dashes) - dashes));
    }
    return out;
}

}  // namespace

TEST_CASE("devhost run --help prints run's usage, its options and exit codes, not the global help", "[help][e2e]")
{
    auto r = run_devhost({"run", "--help"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(r.out.rfind("usage: devhost run [OPTIONS] [CONFIG]\n\n", 0) == 0);
    CHECK(listed_options(r.out) == std::vector<std::string>{"--output", "--allow-faults", "--plugin-path",
                                                            "--log-level", "--log-file", "--help"});
    CHECK(has(r.out, "\nexit codes:\n  0  every pipeline succeeded\n"));
    CHECK(has(r.out, "  4  interrupted by SIGINT, SIGTERM or SIGHUP (held devices were released)\n"));
    CHECK_FALSE(has(r.out, "commands:"));  // the global help's
    CHECK_FALSE(has(r.out, "--json"));     // plugins' and scan's
    // Options may come first, as everywhere on devhost's command line.
    CHECK(run_devhost({"--help", "run"}).out == r.out);
    CHECK(run_devhost({"help", "run"}).out == r.out);
}

TEST_CASE("devhost help scan prints scan's help on stdout, the same as devhost scan --help", "[help][e2e]")
{
    auto r = run_devhost({"help", "scan"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(r.out.rfind("usage: devhost scan [OPTIONS] [--class CLASS] [--json] [--all]\n\n", 0) == 0);
    CHECK(listed_options(r.out) == std::vector<std::string>{"--class", "--json", "--all", "--plugin-path",
                                                            "--log-level", "--log-file", "--help"});
    CHECK(has(r.out, "  --class CLASS         list this class's devices only\n"));
    CHECK(has(r.out, "  3  no plugin for --class CLASS, or no plugins at all\n"));
    CHECK_FALSE(has(r.out, "--output"));
    CHECK(run_devhost({"scan", "--help"}).out == r.out);
}

TEST_CASE("every command has a help of its own, and devhost help alone is the global help", "[help][e2e]")
{
    for (const std::string command : {"run", "serve", "check", "plugins", "probe", "scan", "reset-failed", "status",
                                     "call", "reset", "reload", "monitor", "help"}) {
        auto r = run_devhost({"help", command});
        INFO(command << "\n" << r.out << r.err);
        CHECK(r.exit_code == 0);
        CHECK(r.out.rfind("usage: devhost " + command + " ", 0) == 0);
        CHECK(has(r.out, "\nexit codes:\n  0  "));
    }
    auto global = run_devhost({"--help"});
    CHECK(global.exit_code == 0);
    CHECK(global.out.rfind("usage: devhost [OPTIONS] COMMAND [ARGS]\n", 0) == 0);
    CHECK(run_devhost({"help"}).out == global.out);
}

TEST_CASE("devhost help nosuch is a usage error: exit 2, one line on stderr naming the command", "[help][e2e]")
{
    auto r = run_devhost({"help", "nosuch"});
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err == "devhost: error: help: unknown command 'nosuch' (expected run, serve, check, plugins, probe, scan, "
                   "reset-failed, status, call, reset, reload or monitor; see devhost --help)\n");
    auto dashed = run_devhost({"nosuch", "--help"});
    CHECK(dashed.exit_code == 2);
    CHECK(dashed.out.empty());
    CHECK(dashed.err == "devhost: error: unknown command 'nosuch' (expected run, serve, check, plugins, probe, scan, "
                        "reset-failed, status, call, reset, reload or monitor; see devhost --help)\n");
    auto two = run_devhost({"help", "run", "scan"});
    CHECK(two.exit_code == 2);
    CHECK(two.err == "devhost: error: help takes at most one COMMAND (see devhost --help)\n");
}
