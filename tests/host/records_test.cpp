#include "devhost_test.hpp"
#include "records.hpp"

#include "common/text.hpp"

#include <catch2/catch.hpp>
#include <cstdio>
#include <random>

using namespace devhost;

TEST_CASE("a record is one JSON line with hex and printable data", "[records]")
{
    const uint8_t data[] = {'O', 'K', '\r', '\n', 0xff};
    Record r;
    r.device = "modem \"1\"";
    r.seq = 3;
    r.step = R"(read until="OK\r\n")";
    r.line = 12;
    r.status = DEVHOST_E_TIMEOUT;
    r.message = "no reply";
    r.os_errno = 110;
    r.bytes = sizeof data;
    r.data = data;
    r.data_len = sizeof data;
    InfoList info{{"baud", "9600"}};
    r.info = &info;
    std::string line = RecordWriter::format(r);
    CHECK(line.back() == '\n');
    CHECK(line.find('\n') == line.size() - 1);
    CHECK(line.rfind("{\"time\":\"", 0) == 0);
    CHECK(line.find(R"("device":"modem \"1\"","seq":3,"step":"read until=\"OK\\r\\n\"","line":12,)") !=
          std::string::npos);
    CHECK(line.find(R"("status":"DEVHOST_E_TIMEOUT","code":-5,)") != std::string::npos);
    CHECK(line.find(R"("bytes":5,"hex":"4f4b0d0aff","text":"OK\\r\\n\\xff")") != std::string::npos);
    CHECK(line.find(R"("info":{"baud":"9600"})") != std::string::npos);
    CHECK(line.find(R"("message":"no reply","errno":110})") != std::string::npos);
}

TEST_CASE("records go to a file, appended, each complete when write returns", "[records]")
{
    test::TempDir dir;
    auto file = dir / "records.jsonl";
    {
        RecordWriter w(file.string());
        Record r;
        r.device = "a";
        r.step = "open";
        CHECK(w.write(r));
        CHECK(test::lines(test::read_file(file)).size() == 1);  // no buffering
        CHECK(w.write(r));
    }
    CHECK(test::lines(test::read_file(file)).size() == 2);
    CHECK_THROWS_WITH(RecordWriter((dir / "no/such/dir/r.jsonl").string()),
                      Catch::Contains("cannot open record output") && Catch::Contains("No such file or directory"));
}

TEST_CASE("JSON strings escape quotes, control and non-ASCII bytes", "[records]")
{
    CHECK(json_string("a\"b\\c\n\x01\xc3") == R"("a\"b\\c\n\u0001\u00c3")");
}

namespace {

// JSON escaping written the plain way, byte by byte, as records.cpp did
// before it scanned eight bytes at a time: what the fast path must equal.
std::string reference_json(std::string_view s)
{
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            out.push_back(static_cast<char>(c));
            continue;
        }
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default: {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        }
        }
    }
    return out + "\"";
}

}  // namespace

TEST_CASE("escaping is the same wherever a special byte falls in a word", "[records]")
{
    // Letters with, here and there, every kind of byte the scan must stop
    // at (and its neighbours that it must not), at every offset of a
    // 64-bit word, in strings of 0 to 40 bytes.
    const char specials[] = {' ', '~', 0x7f, '"', '\\', '\n', '\0', 0x1f, '!', '#', '[', ']',
                             static_cast<char>(0x80), static_cast<char>(0xff)};
    std::mt19937 rng(7);
    int mismatches = 0;
    for (int i = 0; i < 20000; i++) {
        std::string s;
        const size_t len = rng() % 41;
        for (size_t k = 0; k < len; k++)
            s.push_back(rng() % 6 ? static_cast<char>('A' + rng() % 26) : specials[rng() % sizeof specials]);
        if (json_string(s) != reference_json(s))
            mismatches++;
        Record r;
        r.data = reinterpret_cast<const uint8_t *>(s.data());
        r.data_len = r.bytes = s.size();
        const std::string text = ",\"text\":" + reference_json(text::to_printable(r.data, r.data_len)) + "}";
        if (RecordWriter::format(r).find(text) == std::string::npos)
            mismatches++;
    }
    CHECK(mismatches == 0);
}
