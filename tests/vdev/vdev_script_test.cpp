// The serial-script parser (vdev/script/serial_script_parse.hpp): what it
// accepts, and the exact text of every refusal.
#include "serial_script_parse.hpp"

#include <catch2/catch.hpp>
#include <stdexcept>

using devhost::vdev::parse_serial_script;
using devhost::vdev::ScriptStep;

namespace {

// The message parse_serial_script throws for `text`, or "" if it accepts.
std::string error_of(const std::string &text)
{
    try {
        parse_serial_script(text, "s.txt");
    } catch (const std::invalid_argument &e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("a script's steps, comments, blank lines and both DATA forms")
{
    auto steps = parse_serial_script("# greet\r\n\r\n  send \"HI\\r\\n\"\r\n\texpect\thex:0a:0B 0c\n"
                                     "sleep 250ms\nsleep 1.5s\nsleep 0\nsleep 100us\nsleep 60m\nsend \"\"",
                                     "s.txt");
    REQUIRE(steps.size() == 8);
    CHECK(steps[0].kind == ScriptStep::send);
    CHECK(steps[0].data == "HI\r\n");
    CHECK(steps[1].kind == ScriptStep::expect);
    CHECK(steps[1].data == "\n\x0b\x0c");
    CHECK(steps[2].kind == ScriptStep::sleep);
    CHECK(steps[2].ms == 250);
    CHECK(steps[3].ms == 1500);
    CHECK(steps[4].ms == 0);
    CHECK(steps[5].ms == 1);  // rounded up to whole ms, as the config does
    CHECK(steps[6].ms == 3600 * 1000);
    CHECK(steps[7].kind == ScriptStep::send);
    CHECK(steps[7].data.empty());
}

TEST_CASE("every refusal of the script parser, word for word")
{
    struct Case {
        std::string text, message;
    };
    const std::vector<Case> cases = {
        {"", "--script=s.txt: no steps in the script"},
        {"# only a comment\n\n  \r\n", "--script=s.txt: no steps in the script"},
        {"send \"ok\"\nexpect\n", "s.txt:2: 'expect' needs an argument"},
        {"send   \n", "s.txt:1: 'send' needs an argument"},
        {"sleep\n", "s.txt:1: 'sleep' needs an argument"},
        {"# c\n\nshout \"hi\"\n", "s.txt:3: expected 'send DATA', 'expect DATA' or 'sleep D', got 'shout'"},
        {"SEND \"x\"\n", "s.txt:1: expected 'send DATA', 'expect DATA' or 'sleep D', got 'SEND'"},
        {"send unquoted\n", "s.txt:1: DATA must be \"quoted\" or hex:..., got 'unquoted'"},
        {"send \"open\n", "s.txt:1: '\"open': missing closing quote"},
        {"send \"a\"b\n", "s.txt:1: '\"a\"b': unexpected 'b' after the closing quote"},
        {"send \"a\"b\"\n", "s.txt:1: '\"a\"b\"': unescaped '\"' inside a quoted string"},
        {"send \"a\\\"\n", "s.txt:1: '\"a\\\"': quoted string ends with a lone backslash"},
        {"send \"\\q\"\n", "s.txt:1: '\"\\q\"': unknown escape '\\q'"},
        {"send \"\\x4\"\n", "s.txt:1: '\"\\x4\"': \\x needs two hex digits"},
        {"send hex:123\n", "s.txt:1: 'hex:123': hex data has an odd number of digits"},
        {"send hex:1 23\n", "s.txt:1: 'hex:1 23': hex data has an odd digit before a separator"},
        {"expect hex:zz\n", "s.txt:1: 'hex:zz': hex data has a non-hex character 'z'"},
        {"expect \"\"\n", "s.txt:1: 'expect' needs non-empty data"},
        {"expect hex:\n", "s.txt:1: 'expect' needs non-empty data"},
        {"sleep soon\n", "s.txt:1: 'soon' is not a duration like 250ms or 2s"},
        {"sleep 2h\n", "s.txt:1: '2h' is not a duration like 250ms or 2s"},
        {"sleep 61m\n", "s.txt:1: '61m' is longer than 1h, the longest sleep"},
        {"sleep 3600001ms\n", "s.txt:1: '3600001ms' is longer than 1h, the longest sleep"},
        {"sleep 5\n", "s.txt:1: '5' is not a duration like 250ms or 2s"},
        {std::string("send \"ok\"\nsend \"a\0b\"\n", 21), "s.txt:2: a NUL byte; a script is text"},
    };
    for (const auto &c : cases) {
        INFO(c.text);
        CHECK(error_of(c.text) == c.message);
    }
}

TEST_CASE("a sleep takes only what the config takes: no inf, NaN, exponent, hex or sign")
{
    for (std::string d : {"inf", "nan", "INF", "1e300", "1e300s", "0x10", "0x10s", "1e-400", "-1s", "+1s", "1.s",
                          ".5s", "1..5s", "1 s", "1ss", "99999999999999999999999999999999s"}) {
        INFO(d);
        std::string e = error_of("sleep " + d + "\n");
        CHECK(e.rfind("s.txt:1: '" + d + "' is ", 0) == 0);
    }
}

TEST_CASE("the line number counts every line, blank and comment ones too")
{
    CHECK(error_of("\n\n# x\r\nsend \"a\"\n\nbad\n") ==
          "s.txt:6: expected 'send DATA', 'expect DATA' or 'sleep D', got 'bad'");
    CHECK(error_of("send \"a\"\nsend \"b\"") == "");  // no final newline
}
