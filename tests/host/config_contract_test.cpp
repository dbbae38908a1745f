// The config contract (issue 12, item 8): `devhost check` finds every
// mistake of a config in one pass, one line each, never longer than 300
// characters; a config without devices is an error; an unknown class is a
// config mistake to check (exit 2) and a missing plugin to run (exit 3); a
// '#' inside quoted data is data; a [names] cycle is found.
#include "config.hpp"
#include "devhost_test.hpp"
#include "names.hpp"
#include "common/text.hpp"

#include <algorithm>
#include <catch2/catch.hpp>

using namespace devhost;
using devhost::test::errors_of;
namespace fs = std::filesystem;

namespace {

struct Checked {
    int exit_code = -1;
    std::vector<std::string> lines;  // stderr
};

Checked devhost_on(const test::TempDir &dir, const std::string &config, const std::string &command = "check")
{
    const fs::path file = dir / "config.ini";
    test::write_file(file, config);
    auto r = test::run_devhost({command, file.string()}, {.timeout = std::chrono::seconds(60)});
    INFO("stderr: " << r.err.substr(0, 4000));
    REQUIRE_FALSE(r.timed_out);
    REQUIRE(r.term_signal == 0);
    return {r.exit_code, test::lines(r.err)};
}


}  // namespace

TEST_CASE("check reports six mistakes in six sections, one line each, and exits 2", "[config][contract]")
{
    test::TempDir dir;
    auto r = devhost_on(dir, "[host]\n"
                             "log-levl = info\n"  // 2: a misspelt [host] key
                             "\n"
                             "[device a]\n"
                             "class = loop\n"
                             "path = loop:a\n"
                             "capacty = 64\n"  // 7: a misspelt option
                             "step = open\n"
                             "step = opne\n"  // 9: an unknown step
                             "\n"
                             "[device b]\n"
                             "class = lop\n"  // 12: an unknown class
                             "path = loop:b\n"
                             "step = open\n"
                             "\n"
                             "[device c]\n"
                             "class = loop\n"
                             "path = loop:c\n"
                             "capacity = 0\n"  // 19: a bad option value
                             "step = open\n"
                             "\n"
                             "[device d]\n"  // 22: no path
                             "class = loop\n"
                             "step = open\n");
    const std::string f = "devhost: error: " + (dir / "config.ini").string();
    CHECK(r.exit_code == 2);
    REQUIRE(r.lines.size() == 6);
    CHECK(r.lines[0] == f + ":2: [host] log-levl: unknown key (did you mean 'log-level'?)");
    CHECK(r.lines[1] == f + ":7: [device a] capacty: not an option of class 'loop' (did you mean 'capacity'?); "
                            "options: capacity, exclusive, open-delay, and for every device: class, path, inherit, "
                            "timeout, step, fault, setup, body, teardown, run, stale-after, instances");
    CHECK(r.lines[2] == f + ":9: [device a] step: unknown step 'opne' (did you mean 'open'?); expected one of close, "
                            "connect, control, disconnect, get-message, info, lock, open, read, reply, request, "
                            "sleep, unlock, write");
    CHECK(r.lines[3].rfind(f + ":12: [device b] class: no usable plugin for class 'lop' (did you mean 'loop'?); "
                               "loaded classes: ",
                           0) == 0);
    CHECK(r.lines[4] == f + ":19: [device c] capacity: expected an integer from 1 to 16777216, got '0'");
    CHECK(r.lines[5] == f + ":22: [device d]: missing 'path = ...'");
}

TEST_CASE("a syntax error or a broken section hides no other mistake", "[config][contract]")
{
    test::TempDir dir;
    auto r = devhost_on(dir, "[device a]\n"
                             "class = loop\n"
                             "path = loop:a\n"
                             "this line is not a key\n"  // 4
                             "capacity = none\n"         // 5
                             "step = open\n"
                             "[device b\n"  // 7: its keys belong to no section
                             "class = x\n"
                             "[device c]\n"
                             "class = lop\n"  // 10
                             "path = loop:c\n"
                             "step = open\n"
                             "[devices d]\n"  // 13
                             "x = 1\n"
                             "[device e]\n"  // 15: no path, no steps
                             "class = loop\n"
                             "exclusive = maybe\n");  // 17
    const std::string f = "devhost: error: " + (dir / "config.ini").string();
    CHECK(r.exit_code == 2);
    REQUIRE(r.lines.size() == 8);
    CHECK(r.lines[0] == f + ":4: expected 'key = value' or '[section]', got 'this line is not a key'");
    CHECK(r.lines[1] == f + ":5: [device a] capacity: expected an integer from 1 to 16777216, got 'none'");
    CHECK(r.lines[2] == f + ":7: malformed section header '[device b' (expected [name])");
    CHECK(r.lines[3].rfind(f + ":10: [device c] class: no usable plugin for class 'lop'", 0) == 0);
    CHECK(r.lines[4] == f + ":13: unknown section [devices d] (expected [host], [names], [device NAME], "
                            "[virtual NAME], [mqtt], [metrics])");
    CHECK(r.lines[5] == f + ":15: [device e]: missing 'path = ...'");
    CHECK(r.lines[6] == f + ":15: [device e]: no steps (add 'step = open' and so on)");
    CHECK(r.lines[7] == f + ":17: [device e] exclusive: expected true or false, got 'maybe'");
}

TEST_CASE("a config without [device] sections is exit 2", "[config][contract]")
{
    test::TempDir dir;
    for (const char *config : {"", "\n\n", "# only a comment\n   # and another\n", "[host]\nlog-level = info\n",
                               "[names]\nCOM7 = /dev/ttyUSB0\n[virtual v]\nkind = serial-echo\n"}) {
        INFO("config: " << config);
        auto r = devhost_on(dir, config);
        CHECK(r.exit_code == 2);
        REQUIRE(r.lines.size() == 1);
        CHECK(r.lines[0] == "devhost: error: " + (dir / "config.ini").string() +
                                ": no [device] sections: nothing to check or run (add [device NAME] with class, path "
                                "and steps)");
        CHECK(devhost_on(dir, config, "run").exit_code == 2);
    }
}

TEST_CASE("no error line is longer than 300 characters, even for a megabyte line", "[config][contract]")
{
    test::TempDir dir;
    const std::string big(1u << 20, 'A');
    const std::string device = "[device a]\nclass = loop\npath = loop:a\n";
    // Each config has its megabyte on line 4.
    const std::vector<std::pair<std::string, std::string>> configs = {
        {"a line that is no key", device + big + "\nstep = open\n"},
        {"a key", device + big + " = 1\nstep = open\n"},
        {"an option value", device + "capacity = " + big + "\nstep = open\n"},
        {"a step word", device + "step = " + big + "\n"},
        {"quoted data after close", "[device a]\nclass = loop\nstep = close\nstep = write \"" + big +
                                        "\"\npath = loop:a\n"},
        {"an unterminated string", device + "step = write \"" + big + "\n"},
        {"a fault", device + "fault = " + big + "\nstep = open\n"},
        {"a section name", "[host]\nlog-level = info\n\n[device " + big + "]\nclass = loop\npath = loop:a\n"},
        {"an unknown section", "[device a]\nclass = loop\npath = loop:a\n[" + big + "]\nstep = open\n"},
        {"a malformed header", device + "[" + big + "\nstep = open\n"},
        {"a class", "[device a]\npath = loop:a\nstep = open\nclass = " + big + "\n"},
        {"a device path", "[device a]\nclass = raw\nstep = open\npath = \\\\.\\" + big + "\n"},
        {"a [names] cycle", "[names]\nCOM7 = /dev/ttyUSB0\nCOM8 = \\\\.\\COM7\n" + big + " = \\\\.\\" + big +
                                "\n" + device + "step = open\n"},
        {"a [host] key and value", "[host]\nlog-level = info\noutput = /tmp\n" + big + " = " + big + "\n" + device},
    };
    for (const auto &[what, config] : configs) {
        INFO(what);
        auto r = devhost_on(dir, config);
        CHECK(r.exit_code == 2);
        REQUIRE_FALSE(r.lines.empty());
        bool named = false;
        for (const auto &l : r.lines) {
            INFO(l.substr(0, 400));
            CHECK(l.size() <= 300);
            CHECK(l.rfind("devhost: error: ", 0) == 0);
            named = named || (l.find("config.ini:4: ") != std::string::npos && l.find("AAAA...(") != std::string::npos);
        }
        CHECK(named);  // the long line, by its number, quoted short
    }
}

TEST_CASE("an unknown class is a config mistake to check and a missing plugin to run", "[config][contract]")
{
    test::TempDir dir;
    const std::string config = "[device a]\nclass = lop\npath = loop:a\nstep = open\n";
    auto checked = devhost_on(dir, config);
    CHECK(checked.exit_code == 2);
    REQUIRE(checked.lines.size() == 1);
    CHECK(checked.lines[0].find(":2: [device a] class: no usable plugin for class 'lop' (did you mean 'loop'?)") !=
          std::string::npos);
    CHECK(devhost_on(dir, config, "run").exit_code == 3);
}

TEST_CASE("a '#' inside quoted data is data, and a comment needs white space before it", "[config][contract]")
{
    std::vector<Diagnostic> diags;
    Config c = parse_config("[device a] # the modem\n"
                            "class = loop   # a comment\n"
                            "path = loop:a#1\n"
                            "step = open\n"
                            "step = write \"ATD*99#\\r\"  # dial\n"
                            "step = write \"a \\\" # b\" # an escaped quote stays inside\n"
                            "#step = close\n",
                            "test.ini", diags);
    for (const auto &d : diags)
        FAIL_CHECK(d.str());
    REQUIRE(c.devices.size() == 1);
    const auto &d = c.devices[0];
    CHECK(d.class_name.value == "loop");
    CHECK(d.path.value == "loop:a#1");
    REQUIRE(d.steps.size() == 3);
    CHECK(d.steps[1].data == text::Bytes{'A', 'T', 'D', '*', '9', '9', '#', '\r'});
    CHECK(d.steps[2].data == text::Bytes{'a', ' ', '"', ' ', '#', ' ', 'b'});

    // The bytes reach the device: the loop device reads back what was written.
    test::TempDir dir;
    const fs::path file = dir / "dial.ini";
    test::write_file(file, "[device a]\nclass = loop\npath = loop:a\nstep = open\nstep = write \"ATD*99#\\r\"\n"
                           "step = read exactly=8 expect=\"ATD*99#\\r\"\nstep = close\n");
    auto r = test::run_devhost({"run", file.string()}, {.timeout = std::chrono::seconds(30)});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find(R"("bytes":8,"hex":"4154442a3939230d")") != std::string::npos);
}

TEST_CASE("hex:41#42 is an error, not a silent hex:41", "[config][contract]")
{
    auto errors = errors_of("[device a]\nclass = loop\npath = loop:a\nstep = open\nstep = write hex:41#42\n");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0] == "test.ini:5: [device a] step: step 'write': DATA: hex data has a non-hex character '#'");
}

TEST_CASE("a '#' in a section or key name is refused, not cut into a comment", "[config][contract]")
{
    auto errors = errors_of("[device a#1]\nclass = loop\n[device b]\nclass = loop\npa#th = loop:b\nstep = open\n");
    // (Device b is not also told that its path is missing: the broken line
    // may be the path.)
    REQUIRE(errors.size() == 2);
    CHECK(errors[0] == "test.ini:1: section header '[device a#1]' has a '#' (a comment starts at the beginning of a "
                       "line or after white space)");
    CHECK(errors[1] == "test.ini:5: key 'pa#th' has a '#' (a comment starts at the beginning of a line or after "
                       "white space)");
}

TEST_CASE("a misspelt class is named where the class is missing", "[config][contract]")
{
    auto errors = errors_of("[device a]\nclas = loop\npath = loop:a\nstep = open\n");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0] == "test.ini:1: [device a]: missing 'class = ...' (line 2 has 'clas': did you mean 'class'?)");
}

TEST_CASE("[names] values lead on to other names, and a cycle is found once", "[names][contract]")
{
    NameTable t;
    t.sys_block = "/nonexistent";
    t.overrides = {{"COM7", "\\\\.\\COM3"}, {"MODEM", "\\\\.\\COM7"}, {"A", "\\\\.\\B"}, {"\\\\.\\B", "C"},
                   {"C", "\\\\.\\a"}, {"D", "\\\\.\\A"}};
    std::string error;
    CHECK(resolve_device_name("\\\\.\\MODEM", t, error) == "/dev/ttyS2");
    CHECK_FALSE(resolve_device_name("\\\\.\\D", t, error));
    CHECK(error == "'\\\\.\\D' leads round a [names] cycle: A = \\\\.\\B, \\\\.\\B = C, C = \\\\.\\a (a name must "
                   "lead to a Linux path)");
    // D leads into the cycle but is not on it: one cycle, from its first entry.
    CHECK(names_cycles(t) == std::vector<std::vector<size_t>>{{2, 3, 4}});
    t.overrides.push_back({"SELF", "SELF"});
    CHECK(names_cycles(t) == std::vector<std::vector<size_t>>{{2, 3, 4}, {6}});

    // A long chain is followed in time, whatever its length.
    NameTable chain;
    const size_t n = 200000;
    for (size_t i = 0; i < n; i++)
        chain.overrides.push_back({"N" + std::to_string(i), "\\\\.\\N" + std::to_string(i + 1)});
    chain.overrides.push_back({"N" + std::to_string(n), "/dev/ttyUSB0"});
    CHECK(resolve_device_name("\\\\.\\N0", chain, error) == "/dev/ttyUSB0");
    CHECK(names_cycles(chain).empty());
    chain.overrides.back().second = "\\\\.\\N0";
    CHECK(names_cycles(chain).size() == 1);
}

TEST_CASE("check finds a [names] cycle, on its first line", "[names][contract]")
{
    test::TempDir dir;
    auto r = devhost_on(dir, "[names]\nCOM7 = \\\\.\\COM8\nCOM8 = COM7\n"
                             "[device a]\nclass = loop\npath = loop:a\nstep = open\n");
    CHECK(r.exit_code == 2);
    REQUIRE(r.lines.size() == 1);
    CHECK(r.lines[0] == "devhost: error: " + (dir / "config.ini").string() +
                            ":2: [names] COM7: a cycle: COM7 = \\\\.\\COM8, COM8 = COM7 (a name must lead to a Linux "
                            "path)");
}

TEST_CASE("a message quotes a long text short and escaped, and a line never passes 300 characters", "[text][contract]")
{
    CHECK(text::excerpt("abc") == "abc");
    CHECK(text::excerpt(std::string(70, 'x')) == std::string(64, 'x') + "...(70 bytes)");
    // No control byte (a terminal escape, a carriage return) is quoted raw.
    CHECK(text::excerpt("lo\x1b[31mop\r") == "lo\\x1b[31mop\\x0d");
    CHECK(text::excerpt("\\\\.\\COM7 caf\xc3\xa9") == "\\\\.\\COM7 caf\xc3\xa9");
    CHECK(text::closest("opne", {"open", "close"}) == "open");
    CHECK(text::closest("frobnicate", {"open", "close"}).empty());
    CHECK(text::closest(std::string(100000, 'o'), {"open"}).empty());
    Diagnostic d{"f.ini", 3, std::string(1000, 'm')};
    CHECK(d.str().size() == Diagnostic::max_chars);
    CHECK(d.str().rfind("f.ini:3: mmm", 0) == 0);
    CHECK(d.str().substr(d.str().size() - 4) == "m...");
}

TEST_CASE("the line scan gives every line of '#', quotes and blanks a verdict, never an internal error",
          "[config][contract]")
{
    // Lines built from the characters that decide comments, sections and
    // values: the scan (the config's only parser) either files each line or
    // names what is wrong with it; it never reports an internal error or a
    // line it cannot parse, and most such configs are sound.
    const std::string alphabet = "ab=#\"\\[] \t\v\f\r";
    uint64_t state = 12345;
    auto next = [&] {
        state = state * 6364136223846793005u + 1442695040888963407u;
        return static_cast<size_t>(state >> 33);
    };
    int sound = 0;  // configs the scan filed without a syntax mistake
    for (int round = 0; round < 20000; round++) {
        std::string ini = "[device d]\n";
        for (int l = 0, lines = 1 + static_cast<int>(next() % 4); l < lines; l++) {
            for (size_t i = 0, n = next() % 12; i < n; i++)
                ini += alphabet[next() % alphabet.size()];
            ini += '\n';
        }
        std::vector<Diagnostic> diags;
        parse_config(ini, "fuzz.ini", diags);
        sound += std::none_of(diags.begin(), diags.end(),
                              [](const Diagnostic &d) { return d.message.find("expected 'key = value'") !=
                                                                   std::string::npos ||
                                                               d.message.find("section header") != std::string::npos ||
                                                               d.message.find("missing key") != std::string::npos ||
                                                               d.message.find("has a") != std::string::npos; });
        for (const auto &d : diags) {
            INFO(text::excerpt(ini, 200));
            CHECK(d.message.find("internal:") == std::string::npos);
            CHECK(d.message.find("cannot parse") == std::string::npos);
        }
    }
    CHECK(sound > 1000);
}
