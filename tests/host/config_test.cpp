#include "config.hpp"
#include "devhost_test.hpp"

#include <catch2/catch.hpp>

using namespace devhost;
using devhost::test::errors_of;

TEST_CASE("a well-formed config is read with its sections, keys and steps in order", "[config]")
{
    std::vector<Diagnostic> diags;
    Config c = parse_config(R"(
[host]
plugin-path = /opt/plugins   # a comment
log-level = debug
output = /tmp/records.jsonl
timeout = 3s

[names]
COM7 = /dev/ttyUSB0

[virtual modem]
kind = serial-modem
delay = 10ms

[device modem]
class = serial
path = \\.\COM7
baud = 115200
inherit = yes
step = open
step = write "AT\r\n"
step = read until="OK\r\n" timeout=1s
step = close
)",
                            "test.ini", diags);
    REQUIRE(diags.empty());
    CHECK(c.host.plugin_path == "/opt/plugins");
    CHECK(c.host.log_level == "debug");
    CHECK(c.host.output == "/tmp/records.jsonl");
    CHECK(c.host.timeout_ms == 3000);
    REQUIRE(c.names.overrides.size() == 1);
    CHECK(c.names.overrides[0].first == "COM7");
    REQUIRE(c.virtuals.size() == 1);
    CHECK(c.virtuals[0].kind.value == "serial-modem");
    CHECK(c.virtuals[0].options[0].key == "delay");
    REQUIRE(c.devices.size() == 1);
    const DeviceConfig &d = c.devices[0];
    CHECK(d.name == "modem");
    CHECK(d.class_name.value == "serial");
    CHECK(d.path.value == "\\\\.\\COM7");
    CHECK(d.inherit);
    REQUIRE(d.options.size() == 1);
    CHECK(d.options[0].key == "baud");
    CHECK(d.options[0].line == 18);
    REQUIRE(d.steps.size() == 4);
    CHECK(d.steps[1].kind == StepKind::Write);
    CHECK(d.steps[1].line == 21);
    CHECK(d.steps[2].timeout_ms == 1000);
}

TEST_CASE("config mistakes are each reported with file, line and key", "[config]")
{
    auto errors = errors_of(R"([host]
log-levl = info
timeout = soon
[device a]
class = loop
path = loop:a
step = open
step = opne
inherit = perhaps
class = loop
[weird]
x = 1
)");
    REQUIRE(errors.size() == 6);
    CHECK(errors[0] == "test.ini:2: [host] log-levl: unknown key (did you mean 'log-level'?)");
    CHECK(errors[1] == "test.ini:3: [host] timeout: expected a duration like 250ms or 2s, got 'soon'");
    CHECK(errors[2].rfind("test.ini:8: [device a] step: unknown step 'opne'", 0) == 0);
    CHECK(errors[3] == "test.ini:9: [device a] inherit: expected true or false, got 'perhaps'");
    CHECK(errors[4] == "test.ini:10: [device a] class: given twice (first on line 5)");
    CHECK(errors[5] ==
          "test.ini:11: unknown section [weird] (expected [host], [names], [device NAME], [virtual NAME], [mqtt], [metrics])");
}

TEST_CASE("syntax errors name their line", "[config]")
{
    auto errors = errors_of("[host]\nlog-level = info\nthis line has no equals\n[device\n");
    REQUIRE(errors.size() == 2);
    CHECK(errors[0] == "test.ini:3: expected 'key = value' or '[section]', got 'this line has no equals'");
    CHECK(errors[1] == "test.ini:4: malformed section header '[device' (expected [name])");
}

TEST_CASE("devices and virtual devices need their required keys", "[config]")
{
    auto errors = errors_of("[device a]\ninherit = no\n[virtual v]\nx = 1\nkey = v\n");
    REQUIRE(errors.size() == 4);
    CHECK(errors[0] == "test.ini:1: [device a]: missing 'class = ...'");
    CHECK(errors[1] == "test.ini:1: [device a]: missing 'path = ...'");
    CHECK(errors[2] == "test.ini:1: [device a]: no steps (add 'step = open' and so on)");
    CHECK(errors[3] == "test.ini:3: [virtual v]: missing 'kind = ...' (see devhost-vdev --help)");
}

TEST_CASE("keys outside sections and nameless device sections are refused", "[config]")
{
    auto errors = errors_of("stray = 1\n[device]\nclass = loop\n");
    REQUIRE(errors.size() == 2);
    CHECK(errors[0] == "test.ini:1: key 'stray' is outside any section");
    CHECK(errors[1] == "test.ini:2: [device]: expected [device NAME], NAME without spaces");
}

TEST_CASE("a missing config file is one clear error", "[config]")
{
    std::vector<Diagnostic> diags;
    load_config("/nonexistent/devhost.ini", diags);
    REQUIRE(diags.size() == 1);
    CHECK(diags[0].str() == "/nonexistent/devhost.ini: cannot open config file: No such file or directory");
}

TEST_CASE("a UTF-8 byte order mark is skipped, and control bytes in names are refused", "[config]")
{
    std::vector<Diagnostic> diags;
    Config c = parse_config("\xEF\xBB\xBF[device a]\nclass = loop\npath = loop:a\nstep = open\n", "bom.ini", diags);
    CHECK(diags.empty());
    REQUIRE(c.devices.size() == 1);
    CHECK(c.devices[0].name == "a");

    std::string nul_section("[device a");
    nul_section += '\0';
    nul_section += "]\nclass = loop\npath = loop:a\nstep = open\n";
    auto e = errors_of(nul_section);
    REQUIRE_FALSE(e.empty());
    CHECK(e[0] == "test.ini:1: section header '[device a\\0]' has a control character");
    auto k = errors_of("[device a]\nclass = loop\npa\x01th = loop:a\nstep = open\n");
    REQUIRE_FALSE(k.empty());
    CHECK(k[0] == "test.ini:3: key 'pa\\x01th' has a control character");
}
