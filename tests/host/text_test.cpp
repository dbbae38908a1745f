#include "common/text.hpp"

#include <catch2/catch.hpp>

using namespace devhost::text;

TEST_CASE("durations parse with units and reject garbage", "[text]")
{
    CHECK(parse_duration_ms("250ms") == 250);
    CHECK(parse_duration_ms("2s") == 2000);
    CHECK(parse_duration_ms("1.5s") == 1500);
    CHECK(parse_duration_ms("1m") == 60000);
    CHECK(parse_duration_ms("100us") == 1);
    CHECK(parse_duration_ms("0") == 0);
    CHECK_FALSE(parse_duration_ms("5"));
    CHECK_FALSE(parse_duration_ms("2 hours"));
    CHECK_FALSE(parse_duration_ms("ms"));
    CHECK_FALSE(parse_duration_ms("1..2s"));
    CHECK_FALSE(parse_duration_ms("-1s"));
}

TEST_CASE("integers parse in decimal and hex, whole string only", "[text]")
{
    CHECK(parse_int("42") == 42);
    CHECK(parse_int("0x1F") == 31);
    CHECK(parse_int("-7") == -7);
    CHECK_FALSE(parse_int("12abc"));
    CHECK_FALSE(parse_int(""));
    CHECK_FALSE(parse_int("99999999999999999999"));
}

TEST_CASE("booleans accept the usual spellings", "[text]")
{
    CHECK(parse_bool("yes") == true);
    CHECK(parse_bool("OFF") == false);
    CHECK_FALSE(parse_bool("maybe"));
}

TEST_CASE("data parses quoted C escapes and hex", "[text]")
{
    std::string error;
    auto q = parse_data(R"("AT\r\n\x41\0")", error);
    REQUIRE(q);
    CHECK(*q == Bytes{'A', 'T', '\r', '\n', 'A', 0});
    auto h = parse_data("hex:0a 0B:ff", error);
    REQUIRE(h);
    CHECK(*h == Bytes{0x0a, 0x0b, 0xff});

    CHECK_FALSE(parse_data("hex:abc", error));
    CHECK(error == "hex data has an odd number of digits");
    CHECK_FALSE(parse_data("hex:zz", error));
    CHECK(error == "hex data has a non-hex character 'z'");
    CHECK_FALSE(parse_data("unquoted", error));
    CHECK(error == "data must be a \"quoted string\" or hex:...");
    CHECK_FALSE(parse_data(R"("bad \q")", error));
    CHECK(error == "unknown escape '\\q'");
    CHECK_FALSE(parse_data(R"("\x4")", error));
    CHECK(error == "\\x needs two hex digits");
}

TEST_CASE("bytes render as hex and printable text", "[text]")
{
    const uint8_t data[] = {'O', 'K', '\r', '\n', 0x01, '\\'};
    CHECK(to_hex(data, sizeof data) == "4f4b0d0a015c");
    CHECK(to_printable(data, sizeof data) == "OK\\r\\n\\x01\\\\");
}
