// `devhost scan` on the in-tree plugins, in text and JSON: every class either
// lists what it finds or says that it cannot list its devices (a plugin
// without enumerate: "listed": false, and a warning line when --class names
// it); scan exits 0 whatever it finds. And what it finds on this machine: a
// loop device set up here, a pty (with --all) and the 8250 ports the kernel
// has a UART for.
#include "devhost_test.hpp"
#include "devices.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>

using namespace devhost::test;

namespace {

// The in-tree plugins as `devhost plugins --json` lists them.
nlohmann::json loaded_plugins()
{
    auto r = run_devhost({"plugins", "--json"});
    REQUIRE(r.exit_code == 0);
    return nlohmann::json::parse(r.out)["plugins"];
}

bool has_enumerate(const nlohmann::json &plugin)
{
    const auto &hooks = plugin["hooks"];
    return std::find(hooks.begin(), hooks.end(), "enumerate") != hooks.end();
}

}  // namespace

TEST_CASE("devhost scan on the in-tree plugins: each class lists its devices or says it cannot", "[scan][e2e]")
{
    const auto plugins = loaded_plugins();
    REQUIRE(plugins.size() >= 5);
    auto r = run_devhost({"scan"});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("cannot list its devices") == std::string::npos);  // only when asked by --class
    for (const auto &p : plugins) {
        const std::string cls = p["class"];
        INFO(cls);
        auto one = run_devhost({"scan", "--class", cls});
        CHECK(one.exit_code == 0);
        const bool said = one.err.find("devhost: warning: " + cls + ": cannot list its devices (its plugin has no "
                                       "enumerate)\n") != std::string::npos;
        CHECK(said != has_enumerate(p));
    }
    for (const auto &line : lines(r.out)) {
        INFO(line);
        const auto space = line.find(' ');
        REQUIRE(space != std::string::npos);
        const std::string cls = line.substr(0, space);
        CHECK(std::any_of(plugins.begin(), plugins.end(),
                          [&](const nlohmann::json &p) { return p["class"] == cls && has_enumerate(p); }));
    }

    auto json = run_devhost({"scan", "--json", "--all"});
    CHECK(json.exit_code == 0);
    REQUIRE(lines(json.out).size() == 1);
    const auto doc = nlohmann::json::parse(json.out);
    REQUIRE(doc["classes"].size() == plugins.size());
    for (const auto &c : doc["classes"]) {
        INFO(c.dump());
        CHECK(c["ok"] == true);
        const auto p = std::find_if(plugins.begin(), plugins.end(),
                                    [&](const nlohmann::json &q) { return q["class"] == c["class"]; });
        REQUIRE(p != plugins.end());
        CHECK(c["listed"] == has_enumerate(*p));
    }
    // --all lists at least what the plain scan does.
    CHECK(doc["devices"].size() >= lines(r.out).size());

    auto help = run_devhost({"--help"});
    CHECK_THAT(help.out, Catch::Contains("  scan [--class C] [--json] [--all]\n"));
}

namespace {

// The lines of a text scan that name `path`.
std::vector<std::string> lines_naming(const std::string &out, const std::string &path)
{
    std::vector<std::string> found;
    for (const auto &line : lines(out))
        if (line.find(" " + path + " ") != std::string::npos || line.size() > path.size() &&
                                                                    line.compare(line.size() - path.size() - 1,
                                                                                 std::string::npos, " " + path) == 0)
            found.push_back(line);
    return found;
}

const nlohmann::json *json_device(const nlohmann::json &doc, const std::string &path)
{
    for (const auto &d : doc["devices"])
        if (d["path"] == path)
            return &d;
    return nullptr;
}

// The ttyS ports whose 8250 has a UART (sysfs type != 0), as the kernel says.
std::vector<std::string> uart_ports()
{
    std::vector<std::string> ports;
    std::error_code ec;
    for (const auto &e : fs::directory_iterator("/sys/class/tty", ec)) {
        const std::string name = e.path().filename().string();
        if (name.rfind("ttyS", 0) != 0)
            continue;
        std::ifstream type(e.path() / "type");
        int t = 0;
        if (type >> t && t != 0)
            ports.push_back("/dev/" + name);
    }
    return ports;
}

}  // namespace

TEST_CASE("devhost scan lists this machine's loop device, a pty with --all and its UARTs, in text and JSON",
          "[scan][e2e]")
{
    TempDir dir;
    const fs::path image = dir.path() / "scanned.img";
    {
        std::ofstream f(image);
        f.seekp(4 * 1024 * 1024 - 1);
        f.put('\0');
    }
    LoopDevice loop(image);
    if (!loop.available())
        DEVHOST_SKIP(loop.reason());
    Pty pty;

    auto text = run_devhost({"scan"});
    INFO(text.out << text.err);
    CHECK(text.exit_code == 0);
    CHECK(lines_naming(text.out, loop.path()) ==
          std::vector<std::string>{"raw " + loop.path() + " \"loop device, 4.0 MiB, backing file " +
                                   fs::canonical(image).string() + "\""});
    CHECK(lines_naming(text.out, pty.path).empty());  // ptys only when asked

    auto all = run_devhost({"scan", "--all"});
    CHECK(all.exit_code == 0);
    CHECK(lines_naming(all.out, pty.path) == std::vector<std::string>{"serial " + pty.path + " \"pseudo-terminal\""});

    auto json = run_devhost({"scan", "--json", "--all"});
    REQUIRE(json.exit_code == 0);
    const auto doc = nlohmann::json::parse(json.out);
    const nlohmann::json *l = json_device(doc, loop.path());
    REQUIRE(l);
    CHECK((*l)["class"] == "raw");
    const nlohmann::json *p = json_device(doc, pty.path);
    REQUIRE(p);
    CHECK((*p)["class"] == "serial");
    CHECK((*p)["description"] == "pseudo-terminal");

    // The UARTs the kernel knows, the console among them, listed (and never
    // opened: the description comes from sysfs).
    for (const auto &port : uart_ports()) {
        INFO(port);
        const auto named = lines_naming(text.out, port);
        REQUIRE(named.size() == 1);
        CHECK_THAT(named[0], Catch::StartsWith("serial " + port + " \"serial, "));
        const nlohmann::json *u = json_device(doc, port);
        REQUIRE(u);
        CHECK((*u)["class"] == "serial");
    }
}
