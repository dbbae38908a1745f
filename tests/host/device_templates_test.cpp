// Device templates (host/device_templates.hpp): `instances = N` in a
// [device NAME{n}] section makes N ordinary devices, {n} replaced in the name
// and every value; each mistake is one line, given once however many
// instances repeat it.
#include "check.hpp"
#include "config.hpp"
#include "device_templates.hpp"
#include "devhost_test.hpp"
#include "loader.hpp"

#include <catch2/catch.hpp>

using namespace devhost;
using devhost::test::errors_of;

namespace {

std::string data_of(const text::Bytes &bytes) { return std::string(bytes.begin(), bytes.end()); }

}  // namespace

TEST_CASE("a template makes its devices with {n} in names, paths, options and steps", "[config][template]")
{
    std::vector<Diagnostic> diags;
    Config c = parse_config(R"([device first]
class = loop
path = loop:first
step = open
[device tty{n}]
instances = 3
class = serial
path = /run/ttys/tty{n}
baud = 9600{n}
inherit = true
step = open
step = request "id {n} {n:03}\n" until="\n" repeat=5
step = write "{\"a\":1} {x y} {}"
step = close
[device last]
class = loop
path = loop:last
step = open
)",
                            "t.ini", diags);
    REQUIRE(diags.empty());
    REQUIRE(c.devices.size() == 5);
    CHECK(c.devices[0].name == "first");
    CHECK(c.devices[0].instance == -1);
    CHECK(c.devices[4].name == "last");
    REQUIRE(c.templates.size() == 1);
    CHECK(c.templates[0].name == "tty{n}");
    CHECK(c.templates[0].line == 5);
    CHECK(c.templates[0].instances == 3);
    CHECK(c.templates[0].lines == std::vector<int>{5, 6, 7, 8, 9, 10, 11, 12, 13, 14});
    for (int i = 0; i < 3; i++) {
        const DeviceConfig &d = c.devices[static_cast<size_t>(1 + i)];
        const std::string n = std::to_string(i);
        CHECK(d.name == "tty" + n);
        CHECK(d.instance == i);
        CHECK(d.line == 5);
        CHECK(d.class_name.value == "serial");
        CHECK(d.path.value == "/run/ttys/tty" + n);
        CHECK(d.path.line == 8);
        CHECK(d.inherit);
        REQUIRE(d.options.size() == 1);
        CHECK(d.options[0].value == "9600" + n);
        REQUIRE(d.steps.size() == 4);
        CHECK(data_of(d.steps[1].data) == "id " + n + " 00" + n + "\n");
        CHECK(d.steps[1].repeat == 5);
        CHECK(d.steps[1].line == 12);
        // Braces that are no placeholder are data, in a template too.
        CHECK(data_of(d.steps[2].data) == "{\"a\":1} {x y} {}");
    }
}

TEST_CASE("a template's padding, its largest count and a section opened twice", "[config][template]")
{
    std::vector<Diagnostic> diags;
    Config c = parse_config(R"([device d{n:02}]
instances = 0x0c
class = loop
path = loop:{n:05}
step = open
[device other]
class = loop
path = loop:o
step = open
[device d{n:02}]
step = close
[device big{n}]
instances = 4096
class = loop
path = loop:big{n}
step = open
)",
                            "t.ini", diags);
    REQUIRE(diags.empty());
    REQUIRE(c.devices.size() == 12 + 1 + 4096);
    CHECK(c.devices[0].name == "d00");
    CHECK(c.devices[0].path.value == "loop:00000");
    CHECK(c.devices[11].name == "d11");
    CHECK(c.devices[11].path.value == "loop:00011");
    // The section's later entries are each instance's too.
    CHECK(c.devices[11].steps.size() == 2);
    CHECK(c.devices[12].name == "other");
    CHECK(c.devices.back().name == "big4095");
    CHECK(c.devices.back().path.value == "loop:big4095");
    CHECK(c.devices.back().instance == 4095);
    CHECK(instance_name("x{n:03}y{n}", 7) == "x007y7");
    CHECK(instance_name("x{n:02}", 123) == "x123");
}

TEST_CASE("instances that is malformed, out of range, twice or without {n}", "[config][template]")
{
    const std::string rest = "class = loop\npath = loop:{n}\nstep = open\n";
    CHECK(errors_of("[device t{n}]\ninstances = many\n" + rest) ==
          std::vector<std::string>{"test.ini:2: [device t{n}] instances: expected a number of devices from 1 to 4096, "
                                   "got 'many'"});
    CHECK(errors_of("[device t{n}]\ninstances = 0\n" + rest) ==
          std::vector<std::string>{"test.ini:2: [device t{n}] instances: expected a number of devices from 1 to 4096, "
                                   "got '0'"});
    CHECK(errors_of("[device t{n}]\ninstances = 4097\n" + rest) ==
          std::vector<std::string>{"test.ini:2: [device t{n}] instances: expected a number of devices from 1 to 4096, "
                                   "got '4097'"});
    CHECK(errors_of("[device t{n}]\ninstances = 2\ninstances = 3\n" + rest) ==
          std::vector<std::string>{"test.ini:3: [device t{n}] instances: given twice (first on line 2)"});
    CHECK(errors_of("[device t]\ninstances = 2\nclass = loop\npath = loop:x\nstep = open\n") ==
          std::vector<std::string>{"test.ini:2: [device t] instances: the name needs {n} where each device's number "
                                   "goes (e.g. [device t{n}])"});
    // A bad count still makes one device, whose other mistakes are found.
    std::vector<Diagnostic> diags;
    Config c = parse_config("[device t{n}]\ninstances = -1\nclass = loop\nstep = opne\n", "t.ini", diags);
    REQUIRE(c.devices.size() == 1);
    CHECK(c.devices[0].name == "t0");
    REQUIRE(diags.size() == 3);
    CHECK(diags[0].line == 1);  // no path
    CHECK(diags[1].line == 2);
    CHECK(diags[2].line == 4);
}

TEST_CASE("{n} without instances and unknown placeholders", "[config][template]")
{
    CHECK(errors_of("[device t{n}]\nclass = loop\npath = loop:x\nstep = open\n") ==
          std::vector<std::string>{"test.ini:1: [device t{n}]: {n} in the name needs 'instances = N' in the section"});
    CHECK(errors_of("[device t]\nclass = loop\npath = loop:{n:02}\nstep = write \"{n}\"\n") ==
          std::vector<std::string>{"test.ini:3: [device t] path: {n} needs 'instances = N' in the section"});
    CHECK(errors_of("[device t{n}]\ninstances = 2\nclass = loop\npath = loop:{n}\nstep = write \"{m}\"\n") ==
          std::vector<std::string>{"test.ini:5: [device t{n}] step: unknown placeholder '{m}' (expected {n} or {n:0W}, "
                                   "W from 1 to 9)"});
    CHECK(errors_of("[device t{n}{n:3}]\ninstances = 2\nclass = loop\npath = loop:{n:00}\nstep = open\n") ==
          std::vector<std::string>{
              "test.ini:1: [device t{n}{n:3}]: unknown placeholder '{n:3}' in the name (expected {n} or {n:0W}, W "
              "from 1 to 9)",
              "test.ini:4: [device t{n}{n:3}] path: unknown placeholder '{n:00}' (expected {n} or {n:0W}, W from 1 "
              "to 9)"});
    // Braces that are no placeholder stay data outside templates.
    CHECK(errors_of("[device t]\nclass = loop\npath = loop:x\nstep = write \"{x} {\\\"n\\\"}\"\n").empty());
}

TEST_CASE("an expanded name another section has", "[config][template]")
{
    CHECK(errors_of("[device t3]\nclass = loop\npath = loop:x\nstep = open\n"
                    "[device t{n}]\ninstances = 5\nclass = loop\npath = loop:{n}\nstep = open\n") ==
          std::vector<std::string>{"test.ini:5: [device t{n}]: instance t3 has the name of [device t3] (line 1)"});
    // Written after the template, the section is still the one named.
    CHECK(errors_of("[device t{n}]\ninstances = 5\nclass = loop\npath = loop:{n}\nstep = open\n"
                    "[device t4]\nclass = loop\npath = loop:x\nstep = open\n") ==
          std::vector<std::string>{"test.ini:1: [device t{n}]: instance t4 has the name of [device t4] (line 6)"});
    CHECK(errors_of("[device t{n}]\ninstances = 12\nclass = loop\npath = loop:{n}\nstep = open\n"
                    "[device t1{n}]\ninstances = 2\nclass = loop\npath = loop:1{n}\nstep = open\n") ==
          std::vector<std::string>{
              "test.ini:6: [device t1{n}]: instance t10 has the name of an instance of [device t{n}] (line 1)"});
}

TEST_CASE("a template written out stays within the config size limit", "[config][template]")
{
    const std::string step = "step = write \"" + std::string(1000, 'x') + "\"\n";
    std::vector<Diagnostic> diags;
    Config c = parse_config("[device t{n}]\ninstances = 4096\nclass = loop\npath = loop:{n}\n" + step + step,
                            "t.ini", diags);
    REQUIRE(diags.size() == 1);
    CHECK(diags[0].str() == "t.ini:2: [device t{n}] instances: 4096 devices come to about 8499217 bytes written "
                            "out, over the 4194304 a config may have");
    CHECK(c.devices.size() == 1);
}

TEST_CASE("a template's mistake is given once, not once per instance", "[config][template]")
{
    CHECK(errors_of("[device t{n}]\ninstances = 300\nclass = loop\nstep = opne\nstep = read 1 timeout=x{n}\n") ==
          std::vector<std::string>{
              "test.ini:1: [device t0]: missing 'path = ...'",
              "test.ini:4: [device t0] step: unknown step 'opne' (did you mean 'open'?); expected one of close, "
              "connect, control, disconnect, get-message, info, lock, open, read, reply, request, sleep, unlock, "
              "write",
              "test.ini:5: [device t0] step: step 'read': timeout=x0: expected a duration like 250ms or 2s"});
    // And what check finds with the plugins: an option the class lacks.
    std::vector<Diagnostic> diags;
    Config c = parse_config("[device t{n}]\ninstances = 50\nclass = loop\npath = loop:{n}\ncapacty = 1\n"
                            "step = open\nstep = close\n",
                            "c.ini", diags);
    REQUIRE(diags.empty());
    PluginRegistry registry;
    registry.load_file(test::plugin_dir() / "loop.so");
    check_config(c, registry, diags);
    REQUIRE(diags.size() == 1);
    CHECK(diags[0].str().rfind("c.ini:5: [device t0] capacty: not an option of class 'loop' (did you mean "
                               "'capacity'?)",
                               0) == 0);
}
