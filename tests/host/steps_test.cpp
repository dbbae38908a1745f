#include "steps.hpp"

#include <catch2/catch.hpp>

using namespace devhost;

namespace {

Step parse_ok(const std::string &line)
{
    std::string error;
    auto s = parse_step(line, error);
    INFO(line << " -> " << error);
    REQUIRE(s);
    return *s;
}

std::string parse_error(const std::string &line)
{
    std::string error;
    auto s = parse_step(line, error);
    INFO(line);
    REQUIRE_FALSE(s);
    return error;
}

}  // namespace

TEST_CASE("every step kind parses with its arguments", "[steps]")
{
    CHECK(parse_ok("open").kind == StepKind::Open);
    CHECK(parse_ok("close").kind == StepKind::Close);
    CHECK(parse_ok("lock timeout=250ms").timeout_ms == 250);

    Step w = parse_ok(R"(write "AT\r\n" offset=512)");
    CHECK(w.kind == StepKind::Write);
    CHECK(w.data == text::Bytes{'A', 'T', '\r', '\n'});
    CHECK(w.offset == 512u);

    Step r = parse_ok("read 16 timeout=2s");
    CHECK(r.read_mode == ReadMode::UpTo);
    CHECK(r.count == 16);
    CHECK(r.timeout_ms == 2000);

    Step e = parse_ok("read exactly=4");
    CHECK(e.read_mode == ReadMode::Exactly);
    CHECK(e.count == 4);

    Step u = parse_ok(R"(read until="OK\r\n" max=64 expect="OK")");
    CHECK(u.read_mode == ReadMode::Until);
    CHECK(u.until == text::Bytes{'O', 'K', '\r', '\n'});
    CHECK(u.max == 64);
    CHECK(u.expect == text::Bytes{'O', 'K'});

    Step q = parse_ok(R"(request "ATI\r" until="\r\n")");
    CHECK(q.kind == StepKind::Request);
    CHECK(q.until.has_value());

    CHECK(parse_ok("get-message max=128").max == 128);
    CHECK(parse_ok(R"(reply "allow" id=7)").message_id == 7u);

    Step c = parse_ok("control get-length hex:0102");
    CHECK(c.control == "get-length");
    CHECK(c.data == text::Bytes{1, 2});

    CHECK(parse_ok("sleep 50ms").sleep_ms == 50);

    Step k = parse_ok(R"(connect context="abc" context-size=3 mode=ecp sync=true)");
    CHECK(k.context == text::Bytes{'a', 'b', 'c'});
    CHECK(k.context_size == 3u);
    REQUIRE(k.args.size() == 2);
    CHECK(k.args[0] == std::make_pair(std::string("mode"), std::string("ecp")));
}

TEST_CASE("quoted data keeps spaces and equals signs", "[steps]")
{
    Step w = parse_ok(R"(write "a = b c")");
    CHECK(std::string(w.data.begin(), w.data.end()) == "a = b c");
}

TEST_CASE("malformed steps are refused with a message naming the problem", "[steps]")
{
    CHECK(parse_error("") == "empty step");
    CHECK(parse_error("opne").rfind("unknown step 'opne' (did you mean 'open'?); expected one of", 0) == 0);
    CHECK(parse_error("write") == "step 'write': missing DATA (a \"quoted string\" or hex:...)");
    CHECK(parse_error("write AT") == "step 'write': DATA: data must be a \"quoted string\" or hex:...");
    CHECK(parse_error(R"(write "unterminated)") == "step 'write \"unterminated': unterminated quoted string");
    CHECK(parse_error("read") == "step 'read': give exactly one of N, exactly=N or until=DATA");
    CHECK(parse_error("read 5 exactly=5") == "step 'read': give exactly one of N, exactly=N or until=DATA");
    CHECK(parse_error("read 0") == "step 'read': N=0: expected an integer from 1 to 16777216");
    CHECK(parse_error("read 4 timeout=soon") == "step 'read': timeout=soon: expected a duration like 250ms or 2s");
    CHECK(parse_error("read 4 bogus=1") ==
          "step 'read': unknown argument 'bogus' (expected exactly=, until=, timeout=, max=, expect=, offset=, to=, repeat=)");
    CHECK(parse_error("open now") == "step 'open': unexpected 'now'");
    CHECK(parse_error("sleep") == "step 'sleep': missing duration");
    CHECK(parse_error("sleep 1s timeout=2s") == "step 'sleep': unknown argument 'timeout' (expected repeat=)");
    CHECK(parse_error("control") == "step 'control': missing CODE (a control name or number)");
    CHECK(parse_error(R"(read until="")") == "step 'read': until= needs at least one byte");
    CHECK(parse_error(R"(write timeout=1s "x")") == "step 'write': '\"x\"' must come before the key=value arguments");
}

TEST_CASE("repeat=N on any step: 1 to max_step_repeat, once, a number", "[steps][repeat]")
{
    CHECK(parse_ok("open").repeat == 1);
    CHECK(parse_ok("write \"x\" repeat=200").repeat == 200);
    CHECK(parse_ok("sleep 1ms repeat=0x10").repeat == 16);
    CHECK(parse_ok("read 4 to=f repeat=3").repeat == 3);
    CHECK(parse_ok("request \"a\" until=\"\\n\" repeat=1000000").repeat == max_step_repeat);
    // connect: repeat= is the host's, never a pair for the plugin.
    Step k = parse_ok("connect mode=ecp repeat=2");
    CHECK(k.repeat == 2);
    REQUIRE(k.args.size() == 1);
    CHECK(k.args[0].first == "mode");
    const std::string range = ": expected an integer from 1 to 1000000";
    CHECK(parse_error("open repeat=0") == "step 'open': repeat=0" + range);
    CHECK(parse_error("open repeat=-3") == "step 'open': repeat=-3" + range);
    CHECK(parse_error("open repeat=two") == "step 'open': repeat=two" + range);
    CHECK(parse_error("open repeat=") == "step 'open': repeat=" + range);
    CHECK(parse_error("open repeat=1000001") == "step 'open': repeat=1000001" + range);
    CHECK(parse_error("open repeat=99999999999999999999999") == "step 'open': repeat=99999999999999999999999" + range);
    CHECK(parse_error("write \"x\" repeat=2 repeat=3") == "step 'write': repeat= is given twice");
    CHECK(parse_error("sleep 1s repeat=2 timeout=1s") == "step 'sleep': unknown argument 'timeout' (expected repeat=)");
    CHECK(step_runs({parse_ok("open"), parse_ok("write \"x\" repeat=200"), parse_ok("close")}) == 202);
}
