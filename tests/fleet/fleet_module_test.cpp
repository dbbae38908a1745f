// The fleet module (host/fleet_module.hpp): serve loads lib/devhost/fleet.so
// beside its executable only for [mqtt] or [metrics], by the plugins' rules,
// and a missing, writable or foreign module ends serve with one line naming
// it (exit 3); check reports a missing one the same way, without loading
// it. Each case runs a copy of devhost in a tree of its own, with the
// module as the case wants it.
#include "broker.hpp"
#include "devhost_test.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

using namespace devhost::test;

namespace {

// dir/tree: bin/devhost and lib/devhost/plugins/loop.so copied from the
// build, no fleet.so.
fs::path make_tree(const TempDir &dir)
{
    const fs::path tree = dir / "tree";
    fs::create_directories(tree / "bin");
    fs::create_directories(tree / "lib" / "devhost" / "plugins");
    fs::copy_file(devhost_exe(), tree / "bin" / "devhost");
    fs::copy_file(plugin_dir() / "loop.so", tree / "lib" / "devhost" / "plugins" / "loop.so");
    return tree;
}

std::string config(const TempDir &dir)
{
    return "[host]\ncontrol-socket = " + (dir / "control").string() + "\n[metrics]\nlisten = 127.0.0.1:" +
           std::to_string(free_port()) +
           "\n[device a]\nclass = loop\npath = loop:a\nsetup = open\nbody = write \"hi\"\nteardown = close\n"
           "run = every 1s\n";
}

// serve of the config with the tree's devhost: its exit and last error line.
std::pair<int, std::string> serve(const TempDir &dir, const fs::path &tree)
{
    write_file(dir / "m.ini", config(dir));
    const auto r = run_process({(tree / "bin" / "devhost").string(), "serve", "--output", (dir / "m.jsonl").string(),
                                (dir / "m.ini").string()},
                               {.timeout = 20s});
    const auto errs = lines(r.err);
    return {r.exit_code, errs.empty() ? "" : errs.back()};
}

}  // namespace

TEST_CASE("serve and check with [metrics] and no fleet module end with one line naming it")
{
    TempDir dir;
    const fs::path tree = make_tree(dir);
    const auto [code, line] = serve(dir, tree);
    const std::string expected = "devhost: error: " + (dir / "m.ini").string() +
                                 ":4: the fleet module (for [mqtt] and [metrics]) " +
                                 (tree / "lib" / "devhost" / "fleet.so").string() +
                                 ": cannot open: No such file or directory";
    CHECK(code == 3);
    CHECK(line == expected);
    const auto r = run_process({(tree / "bin" / "devhost").string(), "check", (dir / "m.ini").string()});
    CHECK(r.exit_code == 3);
    CHECK(r.err == expected + "\n");
    // With the module in place, check passes.
    fs::copy_file(binary_dir() / "lib" / "devhost" / "fleet.so", tree / "lib" / "devhost" / "fleet.so");
    const auto ok = run_process({(tree / "bin" / "devhost").string(), "check", (dir / "m.ini").string()});
    INFO(ok.err);
    CHECK(ok.exit_code == 0);
}

TEST_CASE("serve refuses a fleet module others may write")
{
    TempDir dir;
    const fs::path tree = make_tree(dir);
    const fs::path module = tree / "lib" / "devhost" / "fleet.so";
    fs::copy_file(binary_dir() / "lib" / "devhost" / "fleet.so", module);
    REQUIRE(::chmod(module.c_str(), 0666) == 0);
    const auto [code, line] = serve(dir, tree);
    CHECK(code == 3);
    CHECK(line == "devhost: error: " + (dir / "m.ini").string() + ":4: the fleet module (for [mqtt] and [metrics]) " + module.string() +
                      ": writable by group or others (mode 0666): a plugin runs as the host's user, so only its "
                      "owner may change it");
}

TEST_CASE("serve refuses a library that is not the fleet module in its place")
{
    TempDir dir;
    const fs::path tree = make_tree(dir);
    const fs::path module = tree / "lib" / "devhost" / "fleet.so";
    fs::copy_file(plugin_dir() / "loop.so", module);
    const auto [code, line] = serve(dir, tree);
    CHECK(code == 3);
    CHECK(line == "devhost: error: " + (dir / "m.ini").string() + ":4: the fleet module " + module.string() +
                      " has no devhost_fleet_module: not devhost's fleet.so");
}
