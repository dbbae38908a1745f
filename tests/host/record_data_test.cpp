// `[host] record-data` (full | head:N | none): what a record carries of a
// step's data, its SHA-256 against sha256sum's, and the 1 MiB bound of a
// record whatever the setting and the size.
#include "config.hpp"
#include "devhost_test.hpp"
#include "records.hpp"

#include <catch2/catch.hpp>

#include <random>

using namespace devhost;

namespace {

std::vector<uint8_t> random_bytes(size_t n)
{
    std::mt19937 gen(42);
    std::vector<uint8_t> v(n);
    for (auto &b : v)
        b = static_cast<uint8_t>(gen());
    return v;
}

// sha256sum's digest of `data`, through a file: the reference the records
// must agree with.
std::string sha256sum(const std::vector<uint8_t> &data)
{
    test::TempDir dir;
    test::write_file(dir / "data", std::string(data.begin(), data.end()));
    auto r = test::run_process({"/usr/bin/sha256sum", (dir / "data").string()});
    REQUIRE(r.exit_code == 0);
    return r.out.substr(0, 64);
}

std::string field(const std::string &line, const std::string &name)
{
    const std::string key = "\"" + name + "\":\"";
    const auto at = line.find(key);
    if (at == std::string::npos)
        return "(absent)";
    return line.substr(at + key.size(), line.find('"', at + key.size()) - at - key.size());
}

std::string record_of(const std::vector<uint8_t> &data, const RecordData &setting)
{
    Record r;
    r.device = "d";
    r.step = "read 4";
    r.bytes = data.size();
    r.data = data.data();
    r.data_len = data.size();
    return RecordWriter::format(r, setting);
}

}  // namespace

TEST_CASE("record-data parses full, none and head:N from 1 to 65536, and nothing else", "[records]")
{
    CHECK(parse_record_data("full")->mode == RecordData::Mode::Full);
    CHECK(parse_record_data("none")->mode == RecordData::Mode::None);
    CHECK(parse_record_data("head:1")->head == 1);
    CHECK(parse_record_data("head:0x100")->head == 256);
    CHECK(parse_record_data("head:65536")->head == 65536);
    for (const char *bad : {"", "Full", "head", "head:", "head:0", "head:-1", "head:65537", "head:x", "all", "none "})
        CHECK_FALSE(parse_record_data(bad));
}

TEST_CASE("head:N shows the first N bytes and a SHA-256 of all of them, none shows none", "[records]")
{
    const auto data = random_bytes(100000);
    const std::string digest = sha256sum(data);

    const std::string head = record_of(data, *parse_record_data("head:16"));
    CHECK(field(head, "hex") == text::to_hex(data.data(), 16));
    CHECK(field(head, "sha256") == digest);
    CHECK(head.find("\"bytes\":100000,") != std::string::npos);
    CHECK(head.find("summarised") == std::string::npos);  // what the setting asked, not a cut

    const std::string none = record_of(data, *parse_record_data("none"));
    CHECK(none.find(R"("bytes":100000,"hex":"","text":"","sha256":")" + digest + "\"") != std::string::npos);

    // full: as before the key existed: no hash, the first 64 KiB, cut noted.
    const std::string full = record_of(data, RecordData{});
    CHECK(field(full, "sha256") == "(absent)");
    CHECK(field(full, "hex") == text::to_hex(data.data(), record_data_shown));
    CHECK(full.find(R"("summarised":["hex","text"])") != std::string::npos);

    // Fewer bytes than N: all of them.
    const std::vector<uint8_t> ok = {'O', 'K', '\r', '\n'};
    const std::string small = record_of(ok, *parse_record_data("head:4096"));
    CHECK(small.find(R"("hex":"4f4b0d0a","text":"OK\\r\\n","sha256":")" + sha256sum(ok) + "\"") !=
          std::string::npos);
}

TEST_CASE("no record exceeds 1 MiB whatever record-data says and the step moved", "[records]")
{
    const auto data = random_bytes(16u << 20);  // the largest step buffer
    for (const char *setting : {"full", "head:65536", "head:1", "none"}) {
        INFO(setting);
        const std::string line = record_of(data, *parse_record_data(setting));
        CHECK(line.size() < max_record_bytes);
        CHECK(line.find("\"bytes\":16777216,") != std::string::npos);
    }
}

TEST_CASE("[host] record-data is read from the config, and a bad value names file, line and key", "[config]")
{
    std::vector<Diagnostic> diags;
    auto c = parse_config("[host]\nrecord-data = head:32\n[device d]\nclass = loop\npath = loop:x\nstep = open\n",
                          "t.ini", diags);
    CHECK(diags.empty());
    CHECK(c.host.record_data.mode == RecordData::Mode::Head);
    CHECK(c.host.record_data.head == 32);
    CHECK(test::errors_of("[host]\nrecord-data = head:99999\n[device d]\nclass = loop\npath = loop:x\nstep = open\n") ==
          std::vector<std::string>{"test.ini:2: [host] record-data: expected full, none or head:N (N from 1 to 65536), "
                                   "got 'head:99999'"});
}
