#include "devhost_test.hpp"
#include "records.hpp"

#include <catch2/catch.hpp>

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
