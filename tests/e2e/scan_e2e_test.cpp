// `devhost scan` on the in-tree plugins, in text and JSON: every class either
// lists what it finds or says, in one warning line, that it cannot list its
// devices (a plugin without enumerate); scan exits 0 whatever it finds.
#include "devhost_test.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>

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
    for (const auto &p : plugins) {
        const std::string cls = p["class"];
        INFO(cls);
        const bool said = r.err.find("devhost: warning: " + cls + ": cannot list its devices (its plugin has no "
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
