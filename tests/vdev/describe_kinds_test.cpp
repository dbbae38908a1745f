// devhost-vdev --describe-kinds, the machine form of its kinds that
// `devhost check` reads: every kind --kinds and --help list is in it with
// the same keys, each with a type; a key added to a kind's table (in a
// variant of devhost-vdev built with extra kinds) appears there, in --kinds
// and --help, and check takes it, with check's messages unchanged.
#include "check.hpp"
#include "config.hpp"
#include "devhost_test.hpp"
#include "virtual_kinds.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace devhost;
using namespace devhost::test;

namespace {

std::string run_ok(const fs::path &tool, const std::string &arg)
{
    ProcessResult r = run_process({tool.string(), arg}, {.timeout = std::chrono::seconds(30)});
    INFO(tool.string() << " " << arg << ": " << r.err);
    REQUIRE_FALSE(r.timed_out);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.empty());
    return r.out;
}

fs::path vdev() { return bin_dir() / "devhost-vdev"; }
fs::path variant() { return DEVHOST_VDEV_EXTRA_KIND; }

// Kind -> its keys, from the --kinds lines ("KIND name KEY...").
std::map<std::string, std::vector<std::string>> listed_kinds(const fs::path &tool)
{
    std::map<std::string, std::vector<std::string>> kinds;
    for (const auto &line : lines(run_ok(tool, "--kinds"))) {
        auto words = text::split(line, ' ');
        REQUIRE(words.size() >= 2);
        CHECK(words[1] == "name");
        kinds[words[0]].assign(words.begin() + 2, words.end());
    }
    return kinds;
}

std::vector<std::string> keys_of(const nlohmann::json &kind)
{
    std::vector<std::string> keys;
    for (const auto &o : kind.at("options"))
        keys.push_back(o.at("key").get<std::string>());
    return keys;
}

// The diagnostics check_config gives a [virtual v] section of `kind` with
// `options` (lines "key = value"), against `kinds`.
std::vector<std::string> virtual_errors(const VirtualKinds &kinds, const std::string &kind, const std::string &options)
{
    std::vector<Diagnostic> diags;
    Config config = parse_config("[virtual v]\nkind = " + kind + "\n" + options, "test.ini", diags);
    diags.clear();  // no [device] section: not what this checks
    PluginRegistry none;
    check_config(config, none, diags, &kinds);
    std::vector<std::string> errors;
    for (const auto &d : diags)
        errors.push_back(d.str());
    return errors;
}

}  // namespace

TEST_CASE("devhost-vdev --describe-kinds describes every kind --kinds and --help list, with the same keys",
          "[vdev][kinds]")
{
    const auto doc = nlohmann::json::parse(run_ok(vdev(), "--describe-kinds"));
    CHECK(doc.at("format") == 1);
    REQUIRE(doc.at("common-options").size() == 1);
    CHECK(doc["common-options"][0].at("key") == "name");
    const auto listed = listed_kinds(vdev());
    const std::string help = run_ok(vdev(), "--help");
    std::map<std::string, std::vector<std::string>> described;
    for (const auto &k : doc.at("kinds")) {
        const std::string name = k.at("name").get<std::string>();
        described[name] = keys_of(k);
        std::string options_line = "\n      options:";
        for (const auto &o : k.at("options"))
            options_line += " --" + o.at("key").get<std::string>() + "=" + o.at("value").get<std::string>();
        CHECK(help.find("\n  " + name + "\n      " + k.at("help").get<std::string>() + options_line + "\n") !=
              std::string::npos);
    }
    CHECK(described == listed);
    // The kinds there are, with the keys each took before the tables (the
    // --kinds lines are unchanged).
    CHECK(lines(run_ok(vdev(), "--kinds")) ==
          std::vector<std::string>{
              "filterport-echo name port-dir port send-every message max-connections mode accept-context delay",
              "parallel-port name output device-id fault unplug-after modes reverse-data",
              "raw-disk name size path mbr fill loop keep",
              "serial-echo name link delay garbage hangup-after hold",
              "serial-modem name identity echo answer answers link delay garbage hangup-after hold",
              "serial-script name script loop link delay garbage hangup-after hold",
          });
}

TEST_CASE("every option of every kind says how the peer reads it, and which are required", "[vdev][kinds]")
{
    const auto doc = nlohmann::json::parse(run_ok(vdev(), "--describe-kinds"));
    const std::vector<std::string> types = {"string", "int", "bool", "duration"};
    std::map<std::string, std::string> typed;  // "kind key" -> type
    std::vector<std::string> required;
    for (const auto &k : doc.at("kinds"))
        for (const auto &o : k.at("options")) {
            const std::string where = k.at("name").get<std::string>() + " " + o.at("key").get<std::string>();
            typed[where] = o.at("type").get<std::string>();
            CHECK(std::find(types.begin(), types.end(), typed[where]) != types.end());
            if (o.at("required").get<bool>())
                required.push_back(where);
        }
    CHECK(required == std::vector<std::string>{"serial-script script"});
    CHECK(typed["serial-echo delay"] == "duration");
    CHECK(typed["filterport-echo max-connections"] == "int");
    CHECK(typed["raw-disk mbr"] == "bool");
    CHECK(typed["parallel-port output"] == "string");
}

TEST_CASE("a key added to a kind's table appears in --describe-kinds, --kinds and --help, and check takes it",
          "[vdev][kinds]")
{
    const auto doc = nlohmann::json::parse(run_ok(variant(), "--describe-kinds"));
    std::map<std::string, nlohmann::json> by_name;
    for (const auto &k : doc.at("kinds"))
        by_name[k.at("name").get<std::string>()] = k;
    REQUIRE(by_name.count("extra-kind"));
    REQUIRE(by_name.count("extra-serial"));
    CHECK(keys_of(by_name["extra-kind"]) == std::vector<std::string>{"alpha", "beta", "gamma"});
    CHECK(by_name["extra-kind"]["options"][0] ==
          nlohmann::json{{"key", "alpha"}, {"value", "N"}, {"type", "int"}, {"required", true}});
    CHECK(keys_of(by_name["extra-serial"]) ==
          std::vector<std::string>{"added", "link", "delay", "garbage", "hangup-after", "hold"});
    CHECK(listed_kinds(variant())["extra-serial"] == keys_of(by_name["extra-serial"]));
    CHECK(run_ok(variant(), "--help").find("options: --alpha=N --beta=D (default: 1s) --gamma=BOOL\n") !=
          std::string::npos);

    // What check reads: the same keys, through the same call `devhost check` makes.
    std::string error;
    auto kinds = describe_virtual_kinds(variant(), error);
    INFO(error);
    REQUIRE(kinds);
    CHECK(virtual_errors(*kinds, "extra-serial", "added = x\nhold = true\n").empty());
    CHECK(virtual_errors(*kinds, "extra-serial", "adde = x\n") ==
          std::vector<std::string>{"test.ini:3: [virtual v] adde: not an option of kind 'extra-serial' (did you "
                                   "mean 'added'?); options: added, link, delay, garbage, hangup-after, hold"});
    CHECK(virtual_errors(*kinds, "extra-kin", "") ==
          std::vector<std::string>{"test.ini:2: [virtual v] kind: unknown kind 'extra-kin' (did you mean "
                                   "'extra-kind'?); known: extra-kind, extra-serial"});
    CHECK(virtual_errors(*kinds, "extra-kind", "name = x\n") ==
          std::vector<std::string>{
              "test.ini:3: [virtual v] name: not a key here; the section's name is the peer's name"});
}

TEST_CASE("check's reading of --describe-kinds refuses what is not one, in one line", "[vdev][kinds]")
{
    std::string error;
    CHECK_FALSE(parse_virtual_kinds("serial-echo name link\n", error));
    CHECK(error == "not a --describe-kinds document (expected a JSON object with \"kinds\")");
    CHECK_FALSE(parse_virtual_kinds(R"({"kinds": []})", error));
    CHECK(error == "it describes no kind");
    CHECK_FALSE(parse_virtual_kinds(R"({"kinds": [{"name": "k", "options": [{"type": "int"}]}]})", error));
    CHECK(error.rfind("a kind without a name, or with a malformed \"options\" list: ", 0) == 0);
    auto kinds = parse_virtual_kinds(R"({"kinds": [{"name": "k", "options": [{"key": "a"}]}]})", error);
    REQUIRE(kinds);
    REQUIRE(kinds->at("k").size() == 1);
    CHECK(kinds->at("k")[0].key == "a");
    CHECK(kinds->at("k")[0].type == "string");
    CHECK_FALSE(kinds->at("k")[0].required);
    CHECK_FALSE(describe_virtual_kinds("/nonexistent/devhost-vdev", error));
    CHECK(error == "/nonexistent/devhost-vdev --describe-kinds failed (cannot run it)");
}
