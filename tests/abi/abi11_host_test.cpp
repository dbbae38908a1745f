// What ABI 1.1 adds on the host's side, against real plugins built from
// abi11_plugin.c: the loader copies the new declarations and calls unload
// once, last; every hook has a deadline (deadline_ns), a hook that overruns
// it is recorded DEVHOST_E_TIMEOUT; connect passes sized arguments; check
// takes a device's class from the plugins' path patterns or, at a path no
// pattern names, from their path types, refuses a device leaving out a
// required option and shares a path by the flagged option only; `devhost
// scan` lists what each enumerate finds.
#include "devhost_test.hpp"
#include "devices.hpp"

#include "check.hpp"
#include "class_match.hpp"
#include "config.hpp"
#include "device.hpp"
#include "loader.hpp"
#include "steps.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <sys/stat.h>

using namespace devhost;
using namespace devhost::test;

namespace {

fs::path abi11_dir(const std::string &set) { return fs::path(DEVHOST_ABI11_PLUGIN_DIR) / set; }

std::shared_ptr<const Plugin> load(PluginRegistry &registry, const std::string &set, const std::string &file)
{
    auto plugin = registry.load_file(abi11_dir(set) / file);
    REQUIRE(plugin);
    return plugin;
}

std::string info_of(const InfoList &info, const std::string &key)
{
    for (const auto &[k, v] : info)
        if (k == key)
            return v;
    return "(missing)";
}

const char *const hook_list[] = {"open", "connect", "info", "lock", "transfer", "unlock", "disconnect", "close"};

// Drives a timing device through every hook, each with a deadline of
// `timeout_ms`; returns each call's outcome, in hook_list order.
std::vector<Outcome> drive(const std::shared_ptr<const Plugin> &plugin, const std::string &late,
                           const std::string &keep, int32_t timeout_ms)
{
    Device dev(plugin, "timed");
    OpenRequest open;
    open.path = "anything";
    open.options = {{"late", late}, {"keep", keep}};
    open.timeout_ms = timeout_ms;
    std::vector<Outcome> out;
    out.push_back(dev.open(open));
    ConnectRequest connect;
    connect.timeout_ms = timeout_ms;
    out.push_back(dev.connect(connect));
    InfoList info;
    out.push_back(dev.info(info, timeout_ms));
    out.push_back(dev.lock(timeout_ms));
    devhost_transfer x{};
    const uint8_t byte = 'x';
    x.op = DEVHOST_OP_WRITE;
    x.out = &byte;
    x.out_len = 1;
    x.timeout_ms = timeout_ms;
    out.push_back(dev.transfer(x));
    out.push_back(dev.unlock(timeout_ms));
    out.push_back(dev.disconnect(timeout_ms));
    out.push_back(dev.close(timeout_ms));
    return out;
}

// The N of "plugin overran its deadline by N ms" in `message`, or -1.
long overrun_ms(const std::string &message)
{
    const std::string marker = "plugin overran its deadline by ";
    auto at = message.find(marker);
    if (at == std::string::npos)
        return -1;
    return std::strtol(message.c_str() + at + marker.size(), nullptr, 10);
}

}  // namespace

TEST_CASE("loader copies 1.1's declarations: option flags, path patterns and types, enumerate and unload",
          "[abi11][loader]")
{
    PluginRegistry registry;
    auto required = load(registry, "patterns", "required.so");
    REQUIRE(required->options().size() == 2);
    CHECK(required->options()[0].flags == DEVHOST_OPTION_REQUIRED);
    CHECK(required->options()[1].flags == DEVHOST_OPTION_EXCLUSIVE);
    CHECK(required->exclusive_option() == &required->options()[1]);
    CHECK(required->path_patterns() == std::vector<std::string>{"/dev/req*"});
    CHECK(required->path_types() == 0);
    CHECK(required->hooks().unload != nullptr);
    CHECK(required->hooks().enumerate == nullptr);
    CHECK(required->speaks_1_1());
    // Path types as declared, a bit no 1.1 host knows included: a flag, so
    // the plugin loads (and the bit takes no kind of file).
    auto types = load(registry, "types", "types.so");
    CHECK(types->path_types() == (DEVHOST_PATH_REGULAR | DEVHOST_PATH_CHAR | (1u << 20)));
    CHECK(types->path_patterns().empty());

    auto fixed = load(registry, "scan", "scan_fixed.so");
    CHECK(fixed->hooks().enumerate != nullptr);
    // A plugin that answered 1.0 keeps 1.0's rules: its descriptor has the
    // path_types field, set to SOCKET, which the host does not read.
    auto old = load(registry, "timing", "timing_old.so");
    CHECK(old->abi_version() == DEVHOST_MAKE_VERSION(1, 0));
    CHECK_FALSE(old->speaks_1_1());
    CHECK(old->path_patterns().empty());
    CHECK(old->path_types() == 0);

    // A plugin built from the 1.0 header: its structs end before 1.1's
    // fields, which the host leaves at nothing.
    auto v1_0 = registry.load_file(fs::path(DEVHOST_ABI_PLUGIN_DIR) / "v1_0.so");
    REQUIRE(v1_0);
    CHECK(v1_0->hooks().enumerate == nullptr);
    CHECK(v1_0->hooks().unload == nullptr);
    CHECK(v1_0->path_patterns().empty());
    CHECK(v1_0->path_types() == 0);
    REQUIRE(v1_0->options().size() == 2);  // bad_plugin.c's good plugin: speed and mode
    CHECK(v1_0->options()[0].flags == 0);
    CHECK(v1_0->options()[1].flags == 0);
}

TEST_CASE("unload runs once, after the plugin's last device is closed, before the library is unloaded",
          "[abi11][loader]")
{
    TempDir dir;
    const fs::path marker = dir / "unloaded";
    REQUIRE(::setenv("ABI11_UNLOAD_MARKER", marker.c_str(), 1) == 0);
    {
        std::optional<Device> dev;
        {
            PluginRegistry registry;
            auto plugin = load(registry, "timing", "timing.so");
            dev.emplace(plugin, "last");
            OpenRequest open;
            open.path = "anything";
            REQUIRE(dev->open(open).ok());
        }
        // The registry is gone; the device still holds the plugin.
        CHECK_FALSE(fs::exists(marker));
        CHECK(dev->close().ok());
        CHECK_FALSE(fs::exists(marker));
    }
    CHECK(read_file(marker) == "unload timing open-devices=0\n");

    // A device left open: its destructor closes it, then unload runs.
    fs::remove(marker);
    {
        PluginRegistry registry;
        Device dev(load(registry, "timing", "timing.so"), "left-open");
        OpenRequest open;
        open.path = "anything";
        REQUIRE(dev.open(open).ok());
    }
    CHECK(read_file(marker) == "unload timing open-devices=0\n");
    ::unsetenv("ABI11_UNLOAD_MARKER");
}

TEST_CASE("a library reached by a second path is refused before it is touched: its unload runs once",
          "[abi11][loader]")
{
    TempDir dir;
    const fs::path marker = dir / "unloaded";
    for (const char *sub : {"one", "two"}) {
        fs::create_directory(dir / sub);
        fs::permissions(dir / sub, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                      fs::perms::others_read | fs::perms::others_exec);
        fs::create_symlink(abi11_dir("timing") / "timing.so", dir / sub / "timing.so");
    }
    fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                    fs::perms::others_read | fs::perms::others_exec);
    REQUIRE(::setenv("ABI11_UNLOAD_MARKER", marker.c_str(), 1) == 0);
    {
        PluginRegistry registry;
        REQUIRE(registry.load_file(dir / "one" / "timing.so"));
        CHECK_FALSE(registry.load_file(dir / "two" / "timing.so"));
        REQUIRE(registry.refusals().size() == 1);
        CHECK(registry.refusals()[0].reason ==
              "the same library as " + (dir / "one" / "timing.so").string() + ", which is loaded already");
        CHECK_FALSE(fs::exists(marker));  // the loaded copy is untouched
    }
    CHECK(read_file(marker) == "unload timing open-devices=0\n");
    ::unsetenv("ABI11_UNLOAD_MARKER");
}

TEST_CASE("devhost run calls a plugin's unload once, at the end", "[abi11][loader][cli]")
{
    TempDir dir;
    const fs::path marker = dir / "unloaded";
    // No describe cache: the describing worker loads both every time.
    write_file(dir / "c.ini", "[host]\ncache-dir = none\n[device a]\nclass = timing\npath = anything\nstep = open\n"
                              "step = info\nstep = close\n");
    ProcessOptions options;
    options.env["ABI11_UNLOAD_MARKER"] = marker.string();
    auto r = run_devhost({"run", "--plugin-path", abi11_dir("timing").string(), (dir / "c.ini").string()}, options);
    INFO(r.err);
    CHECK(r.exit_code == 0);
    // Each process that loads a plugin unloads it once: the worker that
    // described both (timing-old is in the same directory, without a
    // device), then the worker that ran timing's device.
    const std::string text = read_file(marker);
    CHECK(lines(text).size() == 3);
    int timing = 0, timing_old = 0;
    for (const auto &line : lines(text)) {
        timing += line == "unload timing open-devices=0";
        timing_old += line == "unload timing-old open-devices=0";
    }
    CHECK(timing == 2);
    CHECK(timing_old == 1);
}

TEST_CASE("a hook that returns past its deadline is recorded DEVHOST_E_TIMEOUT, whatever it returned",
          "[abi11][deadline]")
{
    PluginRegistry registry;
    auto plugin = load(registry, "timing", "timing.so");
    auto old = load(registry, "timing", "timing_old.so");
    for (const char *late : hook_list) {
        for (const auto &p : {plugin, old}) {
            INFO(p->device_class() << ": " << late << " returns 200 ms past its deadline of 100 ms");
            const auto outcomes = drive(p, late, "none", 100);
            for (size_t i = 0; i < outcomes.size(); i++) {
                const std::string hook = hook_list[i];
                INFO(hook << ": " << outcomes[i].message);
                // 1.0 plugins are held only to the hooks with a timeout argument.
                const bool timed = hook == "open" || hook == "connect" || hook == "lock" || hook == "transfer";
                if (hook == late && (p->speaks_1_1() || timed)) {
                    CHECK(outcomes[i].status == DEVHOST_E_TIMEOUT);
                    CHECK_THAT(outcomes[i].message,
                               Catch::StartsWith((hook == "transfer" ? std::string("write") : hook) +
                                                 ": plugin overran its deadline by ") &&
                                   Catch::EndsWith(" ms (it returned DEVHOST_OK)"));
                    const long by = overrun_ms(outcomes[i].message);
                    CHECK(by >= 190);
                    CHECK(by < 2000);
                } else {
                    CHECK(outcomes[i].ok());
                }
            }
        }
    }
}

TEST_CASE("a hook that reads deadline_ns and returns at it keeps its deadline", "[abi11][deadline]")
{
    PluginRegistry registry;
    auto plugin = load(registry, "timing", "timing.so");
    for (const char *keep : hook_list) {
        INFO(keep << " waits until its deadline of 150 ms");
        const auto start = std::chrono::steady_clock::now();
        const auto outcomes = drive(plugin, "none", keep, 150);
        const auto took = std::chrono::steady_clock::now() - start;
        for (const auto &o : outcomes) {
            INFO(o.message);
            CHECK(o.ok());
        }
        CHECK(took >= std::chrono::milliseconds(140));  // it did wait for it
    }
}

TEST_CASE("deadline_ns answers every hook's deadline, share_fd answers E_UNSUPPORTED", "[abi11][deadline]")
{
    PluginRegistry registry;
    Device dev(load(registry, "timing", "timing.so"), "deadline");
    OpenRequest open;
    open.path = "anything";
    REQUIRE(dev.open(open).ok());
    InfoList info;
    REQUIRE(dev.info(info, 300).ok());
    const long left = std::strtol(info_of(info, "deadline-ms").c_str(), nullptr, 10);
    CHECK(left > 250);
    CHECK(left <= 300);
    CHECK(info_of(info, "share-fd") == "DEVHOST_E_UNSUPPORTED");
    info.clear();
    REQUIRE(dev.info(info, -1).ok());
    CHECK(info_of(info, "deadline-ms") == "none");
    // The default for a call made without a step: default_hook_timeout_ms.
    info.clear();
    REQUIRE(dev.info(info).ok());
    const long dflt = std::strtol(info_of(info, "deadline-ms").c_str(), nullptr, 10);
    CHECK(dflt > default_hook_timeout_ms - 100);
    CHECK(dflt <= default_hook_timeout_ms);
}

TEST_CASE("a step's timeout= is the deadline of info and close, the unwind keeps the device's timeout",
          "[abi11][deadline][cli]")
{
    TempDir dir;
    write_file(dir / "c.ini",
               "[device a]\nclass = timing\npath = anything\nlate = close\n"
               "step = open\nstep = info timeout=150ms\nstep = close timeout=100ms\n"
               "[device b]\nclass = timing\npath = other\ntimeout = 120ms\nlate = close\nstep = open\n");
    auto r = run_devhost({"run", "--plugin-path", abi11_dir("timing").string(), (dir / "c.ini").string()});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    std::vector<nlohmann::json> a, b;
    for (const auto &line : lines(r.out)) {
        auto j = nlohmann::json::parse(line);
        (j["device"] == "a" ? a : b).push_back(j);
    }
    REQUIRE(a.size() == 3);
    CHECK(a[1]["status"] == "DEVHOST_OK");
    const long left = std::strtol(a[1]["info"]["deadline-ms"].get<std::string>().c_str(), nullptr, 10);
    CHECK(left > 100);
    CHECK(left <= 150);
    CHECK(a[2]["status"] == "DEVHOST_E_TIMEOUT");
    CHECK_THAT(a[2]["message"].get<std::string>(), Catch::StartsWith("close: plugin overran its deadline by "));
    REQUIRE(b.size() == 2);
    CHECK(b[1]["step"] == "close");
    CHECK(b[1]["unwind"] == true);
    CHECK(b[1]["status"] == "DEVHOST_E_TIMEOUT");
    CHECK_THAT(b[1]["message"].get<std::string>(), Catch::StartsWith("close: plugin overran its deadline by "));
    CHECK(b[1]["duration_ms"].get<double>() >= 300);  // 120 ms, then 200 ms late
}

TEST_CASE("connect passes the step's pairs sized: a \\x00 keeps its NUL and its size", "[abi11][connect]")
{
    PluginRegistry registry;
    Device dev(load(registry, "timing", "timing.so"), "sized");
    OpenRequest open;
    open.path = "anything";
    REQUIRE(dev.open(open).ok());
    std::string error;
    auto step = parse_step(R"(connect blob="a\x00b\x00" mode=text empty="")", error);
    REQUIRE(step);
    ConnectRequest connect;
    connect.args = step->args;
    REQUIRE(dev.connect(connect).ok());
    InfoList info;
    REQUIRE(dev.info(info).ok());
    CHECK(info_of(info, "arg-0") == "blob:4:61006200");
    CHECK(info_of(info, "arg-1") == "mode:4:74657874");
    CHECK(info_of(info, "arg-2") == "empty:0:");
}

TEST_CASE("check takes a device's class from the plugins' path patterns, the most specific first",
          "[abi11][check]")
{
    PluginRegistry registry;
    registry.load_directory(abi11_dir("patterns"));
    REQUIRE(registry.plugins().size() == 3);
    std::vector<Diagnostic> diags;
    Config config = parse_config("[device b]\npath = /dev/pat/b1\nstep = open\n"
                                 "[device a]\npath = /dev/pat/x\nstep = open\n"
                                 "[device r]\npath = /dev/req0\nname = r\nstep = open\n"
                                 "[device none]\npath = /nothing/here\nstep = open\n"
                                 "[device v]\npath = virtual:x\nstep = open\n",
                                 "test.ini", diags);
    REQUIRE(diags.empty());
    Plan plan = check_config(config, registry, diags);
    std::vector<std::string> errors;
    for (const auto &d : diags)
        errors.push_back(d.str());
    CHECK(errors == std::vector<std::string>{
                        "test.ini:11: [device none]: missing 'class = ...' and no plugin's path patterns match "
                        "'/nothing/here'",
                        "test.ini:14: [device v]: missing 'class = ...' (a virtual: path names no class)"});
    REQUIRE(plan.devices.size() == 3);
    CHECK(plan.devices[0].plugin->device_class() == "pat-b");
    CHECK(plan.devices[1].plugin->device_class() == "pat-a");
    CHECK(plan.devices[2].plugin->device_class() == "required");
}

TEST_CASE("a name no plugin's patterns or types take has no class: the host guesses none", "[abi11][check]")
{
    // Only test plugins are loaded. \\.\COM7 is the host's name for a
    // serial port, led by [names] to a path that does not exist: no plugin
    // names it, so it has no class (before ABI 1.1's last step the host
    // guessed 'serial' from the Windows name).
    PluginRegistry registry;
    registry.load_directory(abi11_dir("patterns"));
    std::vector<Diagnostic> diags;
    Config config = parse_config("[names]\nCOM7 = /nonexistent/devhost-com7\n"
                                 "[device s]\npath = \\\\.\\COM7\nstep = open\n",
                                 "test.ini", diags);
    REQUIRE(diags.empty());
    Plan plan = check_config(config, registry, diags);
    REQUIRE(diags.size() == 1);
    CHECK(diags[0].kind != Diagnostic::Kind::MissingPlugin);
    CHECK(diags[0].str() == "test.ini:3: [device s]: missing 'class = ...' and no plugin's path patterns match "
                            "'\\\\.\\COM7' ('/nonexistent/devhost-com7')");
    CHECK_FALSE(plan.missing_plugin);
    CHECK(plan.devices.empty());
}

TEST_CASE("a path no pattern names takes its class from the one plugin whose path types take its kind",
          "[abi11][check]")
{
    PluginRegistry registry;
    load(registry, "types", "types.so");  // REGULAR, CHAR and an unknown bit
    TempDir dir;
    const std::string image = (dir / "disk.img").string(), fifo = (dir / "fifo").string(),
                      sock = (dir / "sock").string();
    write_file(image, "x");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    BoundSocket bound(sock);
    std::string error;
    CHECK(class_for_path(registry, image, image, error) == "types");
    CHECK(class_for_path(registry, "/dev/null", "/dev/null", error) == "types");
    CHECK_FALSE(class_for_path(registry, fifo, fifo, error));
    CHECK(error == "no plugin's path patterns match '" + fifo + "' (a FIFO, which no plugin's path types take)");
    CHECK_FALSE(class_for_path(registry, dir.path().string(), dir.path().string(), error));
    CHECK(error == "no plugin's path patterns match '" + dir.path().string() +
                       "' (a directory, which no plugin's path types take)");
    CHECK_FALSE(class_for_path(registry, sock, sock, error));
    CHECK(error == "no plugin's path patterns match '" + sock + "' (a socket, which no plugin's path types take)");
    // A path that does not exist has no kind: the error as for no pattern.
    CHECK_FALSE(class_for_path(registry, image + ".gone", image + ".gone", error));
    CHECK(error == "no plugin's path patterns match '" + image + ".gone'");

    // timing_old declares SOCKET but answered 1.0: its types count for nothing.
    load(registry, "timing", "timing_old.so");
    CHECK_FALSE(class_for_path(registry, sock, sock, error));
    CHECK(error == "no plugin's path patterns match '" + sock + "' (a socket, which no plugin's path types take)");

    // A pattern wins over a kind: serial's /dev/tty* over types' CHAR for
    // /dev/tty, a character device (stat only: nothing is opened).
    REQUIRE(registry.load_file(plugin_dir() / "serial.so"));
    CHECK(class_for_path(registry, "/dev/tty", "/dev/tty", error) == "serial");
    CHECK(class_for_path(registry, "/dev/null", "/dev/null", error) == "types");
}

TEST_CASE("two plugins whose path types take a path's kind alike is an error naming both", "[abi11][check][cli]")
{
    // raw takes regular files and block devices by their kind, so does
    // types (regular files and character devices).
    PluginRegistry registry;
    REQUIRE(registry.load_file(plugin_dir() / "raw.so"));
    load(registry, "types", "types.so");
    TempDir dir;
    const std::string image = (dir / "disk.img").string();
    write_file(image, "x");
    std::string error, other;
    CHECK_FALSE(class_for_path(registry, image, image, error));
    CHECK(error == "no plugin's path patterns match '" + image + "' (a regular file, which class 'raw' and class "
                   "'types' both take by their path types): say which class");
    CHECK(class_for_path(registry, "/dev/null", "/dev/null", other) == "types");  // raw takes no char device

    std::vector<Diagnostic> diags;
    Config config = parse_config("[device t]\npath = " + image + "\nstep = open\n[device r]\nclass = raw\npath = " +
                                     image + "\nstep = open\n",
                                 "test.ini", diags);
    Plan plan = check_config(config, registry, diags);
    REQUIRE(diags.size() == 1);
    CHECK(diags[0].str() == "test.ini:1: [device t]: missing 'class = ...' and " + error);
    REQUIRE(plan.devices.size() == 1);
    CHECK(plan.devices[0].plugin->device_class() == "raw");

    // devhost probe: the in-tree plugins (raw among them) and types.
    auto tie = run_devhost({"probe", "--plugin-path", abi11_dir("types").string(), image});
    CHECK(tie.exit_code == 2);
    CHECK_THAT(tie.err, Catch::StartsWith("devhost: error: cannot tell the class of '" + image +
                                          "': no plugin's path patterns match '" + image + "' (a regular file, "
                                          "which class '") &&
                            Catch::EndsWith("' both take by their path types): say which class; give --class\n"));
    CHECK_THAT(tie.err, Catch::Contains("'raw'") && Catch::Contains("'types'"));
    auto chosen = run_devhost({"probe", "--plugin-path", abi11_dir("types").string(), "--class", "types", image});
    CHECK(chosen.exit_code == 0);
}

TEST_CASE("two classes matching a path alike is an error naming both, resolved by class =", "[abi11][check]")
{
    PluginRegistry registry;
    registry.load_directory(abi11_dir("patterns"));
    registry.load_directory(abi11_dir("tie"));
    std::string error;
    CHECK_FALSE(class_for_path(registry, "/dev/pat/b1", "/dev/pat/b1", error));
    CHECK(error == "'/dev/pat/b1' matches class 'pat-b' (pattern '/dev/pat/b*') and class 'pat-tie' (pattern "
                   "'/dev/pat/b?') alike: say which class");
    CHECK(class_for_path(registry, "/dev/pat/b12", "/dev/pat/b12", error) == "pat-b");  // b? takes one character

    std::vector<Diagnostic> diags;
    Config config = parse_config("[device t]\npath = /dev/pat/b1\nstep = open\n"
                                 "[device c]\nclass = pat-tie\npath = /dev/pat/b2\nstep = open\n",
                                 "test.ini", diags);
    Plan plan = check_config(config, registry, diags);
    REQUIRE(diags.size() == 1);
    CHECK(diags[0].str() == "test.ini:1: [device t]: missing 'class = ...' and " + error);
    REQUIRE(plan.devices.size() == 1);
    CHECK(plan.devices[0].plugin->device_class() == "pat-tie");
}

TEST_CASE("an option named exclusive but not flagged lets no device share a path", "[abi11][check]")
{
    // Before ABI 1.1's last step, check took a BOOL named "exclusive" for
    // the flag of a plugin that flagged nothing: now only the flag counts,
    // and a plugin without it opens every device exclusively.
    PluginRegistry registry;
    registry.load_directory(abi11_dir("unflagged"));
    REQUIRE(registry.plugins().size() == 1);
    CHECK(registry.plugins()[0]->exclusive_option() == nullptr);
    std::vector<Diagnostic> diags;
    const std::string device = "class = named-excl\npath = /dev/shared0\nexclusive = false\nstep = open\n";
    Config config = parse_config("[device a]\n" + device + "[device b]\n" + device, "test.ini", diags);
    check_config(config, registry, diags);
    REQUIRE(diags.size() == 1);
    CHECK(diags[0].str() == "test.ini:8: [device b] path: '/dev/shared0' is already used by device 'a' (line 3); "
                            "class 'named-excl' opens devices exclusively");
}

TEST_CASE("check refuses a device leaving out a required option, and shares a path by the flagged option",
          "[abi11][check]")
{
    PluginRegistry registry;
    registry.load_directory(abi11_dir("patterns"));
    auto errors_for = [&](const std::string &ini) {
        std::vector<Diagnostic> diags;
        Config config = parse_config(ini, "test.ini", diags);
        check_config(config, registry, diags);
        std::vector<std::string> out;
        for (const auto &d : diags)
            out.push_back(d.str());
        return out;
    };
    CHECK(errors_for("[host]\n[device r]\nclass = required\npath = /dev/req0\nstep = open\n") ==
          std::vector<std::string>{"test.ini:2: [device r] name: required by class 'required' and not set (add "
                                   "'name = ...' to the section at line 2)"});
    CHECK(errors_for("[device a]\nclass = required\npath = /dev/req0\nname = a\nshare = false\nstep = open\n"
                     "[device b]\nclass = required\npath = /dev/req0\nname = b\nshare = false\nstep = open\n")
              .empty());
    CHECK(errors_for("[device a]\nclass = required\npath = /dev/req0\nname = a\nshare = false\nstep = open\n"
                     "[device b]\nclass = required\npath = /dev/req0\nname = b\nstep = open\n") ==
          std::vector<std::string>{"test.ini:9: [device b] path: '/dev/req0' is already used by device 'a' (line 3); "
                                   "class 'required' opens devices exclusively unless both say share = false"});
}

TEST_CASE("devhost probe takes the class from the plugins' path patterns", "[abi11][cli]")
{
    auto r = run_devhost({"probe", "--plugin-path", abi11_dir("patterns").string(), "/dev/pat/b7"});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    auto l = lines(r.out);
    REQUIRE(l.size() == 3);
    CHECK(nlohmann::json::parse(l[1])["info"]["variant"] == "pat-b");
    auto tie = run_devhost({"probe", "--plugin-path", abi11_dir("patterns").string() + ":" + abi11_dir("tie").string(),
                            "/dev/pat/b7"});
    CHECK(tie.exit_code == 2);
    CHECK(tie.err == "devhost: error: cannot tell the class of '/dev/pat/b7': '/dev/pat/b7' matches class 'pat-b' "
                     "(pattern '/dev/pat/b*') and class 'pat-tie' (pattern '/dev/pat/b?') alike: say which class; "
                     "give --class\n");
}

TEST_CASE("devhost scan lists what each plugin's enumerate finds, one line each or one JSON document",
          "[abi11][scan][cli]")
{
    const std::string dir = abi11_dir("scan").string();
    // The plugin directory next to the binary is searched too: only the
    // scan-* classes are this test's.
    auto ours = [](const std::string &out) {
        std::vector<std::string> kept;
        for (const auto &line : lines(out))
            if (line.rfind("scan-", 0) == 0)
                kept.push_back(line);
        return kept;
    };
    auto r = run_devhost({"scan", "--plugin-path", dir});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(ours(r.out) ==
          std::vector<std::string>{"scan-fixed /dev/scanfixed0 by-id=/dev/disk/by-id/scanfixed-zero usb=0403:6001 "
                                   "usb-serial=A1B2C3 \"fixed device zero\"",
                                   "scan-fixed /dev/scanfixed1"});
    // An entry with a nonzero reserved field is left out, and said.
    CHECK_THAT(r.out, !Catch::Contains("scanfixed-reserved"));
    CHECK_THAT(r.err, Catch::Contains("scan-fixed: enumerate reported 1 device(s) with a nonzero reserved field; "
                                      "they are left out"));
    // A class that cannot list is named only when asked for.
    CHECK_THAT(r.err, !Catch::Contains("scan-noenum"));
    auto noenum = run_devhost({"scan", "--class", "scan-noenum", "--plugin-path", dir});
    CHECK(noenum.exit_code == 0);
    CHECK(noenum.out.empty());
    CHECK_THAT(noenum.err, Catch::Contains("scan-noenum: cannot list its devices (its plugin has no enumerate)"));

    auto all = run_devhost({"scan", "--all", "--plugin-path", dir});
    CHECK(all.exit_code == 0);
    CHECK(ours(all.out).size() == 3);
    CHECK_THAT(all.out, Catch::Contains("scan-fixed /dev/scanfixed-hidden \"left out unless --all\"\n"));

    auto json = run_devhost({"scan", "--json", "--plugin-path", dir});
    CHECK(json.exit_code == 0);
    REQUIRE(lines(json.out).size() == 1);
    auto doc = nlohmann::json::parse(json.out);
    auto keep_ours = [](nlohmann::json &list) {
        nlohmann::json kept = nlohmann::json::array();
        for (const auto &item : list)
            if (item["class"].get<std::string>().rfind("scan-", 0) == 0)
                kept.push_back(item);
        list = kept;
    };
    keep_ours(doc["devices"]);
    keep_ours(doc["classes"]);
    REQUIRE(doc["devices"].size() == 2);
    CHECK(doc["devices"][0] == nlohmann::json{{"class", "scan-fixed"},
                                              {"path", "/dev/scanfixed0"},
                                              {"by_id", "/dev/disk/by-id/scanfixed-zero"},
                                              {"description", "fixed device zero"},
                                              {"usb_vendor", "0403"},
                                              {"usb_product", "6001"},
                                              {"usb_serial", "A1B2C3"}});
    CHECK(doc["devices"][1]["by_id"].is_null());
    CHECK(doc["classes"] == nlohmann::json::parse(R"([
        {"class":"scan-fixed","listed":true,"ok":true,"error":null},
        {"class":"scan-noenum","listed":false,"ok":true,"error":null},
        {"class":"scan-none","listed":true,"ok":true,"error":null}])"));

    auto none = run_devhost({"scan", "--class", "scan-none", "--plugin-path", dir});
    CHECK(none.exit_code == 0);
    CHECK(none.out.empty());
    auto unknown = run_devhost({"scan", "--class", "nope", "--plugin-path", dir});
    CHECK(unknown.exit_code == 3);
    CHECK(unknown.out.empty());
    CHECK_THAT(unknown.err, Catch::StartsWith("devhost: error: scan --class nope: no plugin serves class 'nope'; "
                                              "loaded classes: scan-fixed, scan-noenum, scan-none") &&
                                Catch::EndsWith("\n"));
    CHECK(lines(unknown.err).size() == 1);
    auto extra = run_devhost({"scan", "now", "--plugin-path", dir});
    CHECK(extra.exit_code == 2);
}

TEST_CASE("devhost scan: an enumerate that overruns its 5 s deadline fails the scan, what it found is listed",
          "[abi11][scan][cli]")
{
    const auto start = std::chrono::steady_clock::now();
    // --class: the in-tree plugins, found beside the binary too, list this
    // machine's devices.
    auto r = run_devhost({"scan", "--class", "scan-slow", "--plugin-path", abi11_dir("scan-slow").string()});
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.out == "scan-slow /dev/scanslow0 \"found before the deadline\"\n");
    CHECK_THAT(r.err, Catch::Contains("scan-slow: enumerate: plugin overran its deadline by 3"));
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(8));
}

TEST_CASE("devhost scan: an enumerate that never comes back is abandoned, the scan ends", "[abi11][scan][cli]")
{
    const auto start = std::chrono::steady_clock::now();
    ProcessOptions options;
    options.timeout = std::chrono::seconds(20);
    auto r = run_devhost({"scan", "--plugin-path", abi11_dir("scan-hang").string()}, options);
    INFO(r.err);
    CHECK_FALSE(r.timed_out);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::Contains("scan-hang: enumerate did not return within its deadline and 1000 ms more; "
                                      "its worker was killed"));
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(14));
}

TEST_CASE("devhost plugins shows path patterns and option flags", "[abi11][cli]")
{
    auto r = run_devhost({"plugins", "--json", "--plugin-path", abi11_dir("patterns").string()});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const auto doc = nlohmann::json::parse(r.out);
    nlohmann::json required;
    for (const auto &p : doc["plugins"])
        if (p["class"] == "required")
            required = p;
    REQUIRE(required.is_object());
    CHECK(required["path_patterns"] == nlohmann::json{"/dev/req*"});
    CHECK(required["hooks"].back() == "unload");
    CHECK(required["options"][0]["required"] == true);
    CHECK(required["options"][0]["exclusive"] == false);
    CHECK(required["options"][1]["exclusive"] == true);
    auto text = run_devhost({"plugins", "--plugin-path", abi11_dir("patterns").string()});
    CHECK_THAT(text.out, Catch::Contains("\n  paths: /dev/req*\n") &&
                             Catch::Contains("    name (string, required): a required option") &&
                             Catch::Contains("    share (bool, default true, exclusive): false: share the path"));
}

TEST_CASE("devhost plugins shows path types by name, leaving out bits it does not know", "[abi11][cli]")
{
    auto r = run_devhost({"plugins", "--json", "--plugin-path", abi11_dir("types").string()});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const auto doc = nlohmann::json::parse(r.out);
    nlohmann::json types, raw;
    for (const auto &p : doc["plugins"]) {
        if (p["class"] == "types")
            types = p;
        if (p["class"] == "raw")
            raw = p;
    }
    REQUIRE(types.is_object());
    CHECK(types["path_types"] == nlohmann::json{"regular", "char"});  // and 1 << 20, unknown: left out
    CHECK(types["path_patterns"] == nlohmann::json::array());
    REQUIRE(raw.is_object());  // the in-tree plugins are listed too
    CHECK(raw["path_types"] == nlohmann::json{"regular", "block"});
    auto text = run_devhost({"plugins", "--plugin-path", abi11_dir("types").string()});
    const auto at = text.out.find("\ntypes: abi11-types ");
    REQUIRE(at != std::string::npos);
    CHECK(text.out.find("\n  path types: regular char\n", at) < text.out.find("\n\n", at + 1));
}
