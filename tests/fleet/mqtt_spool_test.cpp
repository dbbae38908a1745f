// The MQTT spool in-process (mqtt_spool.hpp) over real files in a temporary
// directory: order and rseq, confirmation, reopening (what was not
// confirmed comes back, rseq counts on), a torn last line after a crash,
// the size and age bounds dropping the oldest (counted), 0600 files
// whatever the umask, a planted link refused, one spool per directory; and
// the [mqtt] spool keys.
#include "config.hpp"
#include "devhost_test.hpp"
#include "mqtt_config.hpp"
#include "mqtt_spool.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace devhost;
using namespace devhost::test;

namespace {

const int64_t t0 = 1'700'000'000'000;

std::unique_ptr<MqttSpool> open_spool(const TempDir &dir, uint64_t max_bytes = 1 << 20, int64_t max_age = 3600000)
{
    std::string error;
    auto spool = MqttSpool::open((dir / "spool").string(), max_bytes, max_age, error);
    INFO(error);
    REQUIRE(spool);
    return spool;
}

std::string body(int i) { return "{\"n\":" + std::to_string(i) + "}"; }

std::vector<std::string> segments(const TempDir &dir)
{
    std::vector<std::string> out;
    for (const auto &e : fs::directory_iterator(dir / "spool"))
        if (e.path().filename().string().rfind("seg-", 0) == 0)
            out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

// Every unconfirmed entry's body, oldest first.
std::vector<std::string> pending(const MqttSpool &s)
{
    std::vector<std::string> out;
    for (uint64_t r = s.next_at_or_after(0); r; r = s.next_at_or_after(r + 1))
        out.push_back(s.find(r)->body);
    return out;
}

}  // namespace

TEST_CASE("spool keeps order and rseq, confirmed ones leave")
{
    TempDir dir;
    auto s = open_spool(dir);
    for (int i = 1; i <= 5; i++)
        CHECK(s->append("t/DDATA/n/a", body(i), t0) == static_cast<uint64_t>(i));
    CHECK(s->stats().depth == 5);
    CHECK(s->confirm(2));  // out of order: kept until 1 is
    CHECK_FALSE(s->confirm(2));
    CHECK(pending(*s) == std::vector<std::string>{body(1), body(3), body(4), body(5)});
    CHECK(s->confirm(1));
    CHECK(s->stats().depth == 3);
    CHECK(read_file(dir / "spool" / "committed") == "00000000000000000002\n");
}

TEST_CASE("spool reopened gives back what was not confirmed, rseq counts on")
{
    TempDir dir;
    {
        auto s = open_spool(dir);
        for (int i = 1; i <= 4; i++)
            s->append("t/DDATA/n/a", body(i), t0);
        s->confirm(1);
        s->confirm(2);
    }
    auto s = open_spool(dir);
    CHECK(pending(*s) == std::vector<std::string>{body(3), body(4)});
    CHECK(s->find(3)->topic == "t/DDATA/n/a");
    CHECK(s->append("t/DDATA/n/a", body(5), t0) == 5);
    s->confirm(3);
    s->confirm(4);
    s->confirm(5);
    CHECK(s->stats().depth == 0);
    s.reset();
    // All confirmed: no segment left once reopened, and rseq goes on.
    auto again = open_spool(dir);
    CHECK(segments(dir).empty());
    CHECK(again->append("t", body(6), t0) == 6);
}

TEST_CASE("spool reads up to a torn last line and appends after it")
{
    TempDir dir;
    {
        auto s = open_spool(dir);
        for (int i = 1; i <= 3; i++)
            s->append("t", body(i), t0);
    }
    const auto segs = segments(dir);
    REQUIRE(segs.size() == 1);
    // A crash in the middle of a write: half a line, no newline.
    {
        const int fd = ::open((dir / "spool" / segs[0]).c_str(), O_WRONLY | O_APPEND);
        REQUIRE(fd >= 0);
        const std::string half = "{\"rseq\":4,\"t\":1,\"topic\":\"t\",\"bo";
        REQUIRE(::write(fd, half.data(), half.size()) == static_cast<ssize_t>(half.size()));
        ::close(fd);
    }
    auto s = open_spool(dir);
    CHECK(pending(*s) == std::vector<std::string>{body(1), body(2), body(3)});
    CHECK(s->append("t", body(4), t0) == 4);  // in a new segment
    s.reset();
    auto again = open_spool(dir);
    CHECK(pending(*again) == std::vector<std::string>{body(1), body(2), body(3), body(4)});
    // A committed file cut short reads as 0: all is sent again, not lost.
    again.reset();
    write_file(dir / "spool" / "committed", "0000");
    CHECK(pending(*open_spool(dir)).size() == 4);
}

TEST_CASE("spool over its size drops the oldest and counts them")
{
    TempDir dir;
    // Each line is about 60 bytes: 4096 bytes hold some 60 of them.
    auto s = open_spool(dir, 4096);
    const std::string big(200, 'x');
    for (int i = 1; i <= 100; i++)
        s->append("t", "{\"n\":" + std::to_string(i) + ",\"x\":\"" + big + "\"}", t0);
    const SpoolStats st = s->stats();
    CHECK(st.bytes <= 4096);
    CHECK(st.depth + st.dropped == 100);
    CHECK(st.dropped > 80);
    CHECK(s->take_dropped() == st.dropped);
    CHECK(s->take_dropped() == 0);
    // The newest are kept.
    CHECK(s->find(100) != nullptr);
    CHECK(s->find(1) == nullptr);
    // The disk holds at most the bound and a segment more.
    uint64_t on_disk = 0;
    for (const auto &name : segments(dir))
        on_disk += fs::file_size(dir / "spool" / name);
    CHECK(on_disk <= 4096 + 1024 + 300);
}

TEST_CASE("spool drops what is older than its max age")
{
    TempDir dir;
    auto s = open_spool(dir, 1 << 20, 60000);
    s->append("t", body(1), t0);
    s->append("t", body(2), t0 + 30000);
    s->expire(t0 + 70000);
    CHECK(pending(*s) == std::vector<std::string>{body(2)});
    CHECK(s->take_dropped() == 1);
    s.reset();
    // Reopened later: the age counts from when it was spooled.
    auto again = open_spool(dir, 1 << 20, 60000);
    again->expire(t0 + 100000);
    CHECK(again->stats().depth == 0);
}

TEST_CASE("spool files are 0600 whatever the umask, the directory 0700")
{
    TempDir dir;
    const mode_t old = ::umask(0);
    auto s = open_spool(dir);
    s->append("t", body(1), t0);
    ::umask(old);
    struct stat st {};
    REQUIRE(::stat((dir / "spool").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0700);
    REQUIRE(::stat((dir / "spool" / "committed").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    const auto segs = segments(dir);
    REQUIRE(segs.size() == 1);
    REQUIRE(::stat((dir / "spool" / segs[0]).c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
}

TEST_CASE("spool refuses a planted link, a second user, an open directory")
{
    TempDir dir;
    std::string error;
    SECTION("a link planted as a segment")
    {
        fs::create_directory(dir / "spool");
        ::chmod((dir / "spool").c_str(), 0700);
        fs::create_symlink("/etc/passwd", dir / "spool" / "seg-00000000000000000001.jsonl");
        CHECK_FALSE(MqttSpool::open((dir / "spool").string(), 4096, 1000, error));
        CHECK(error == (dir / "spool").string() + "/seg-00000000000000000001.jsonl is a symbolic link");
    }
    SECTION("a hard link planted as a segment")
    {
        // The same words as the restart ledger's (trusted_file.hpp's
        // own_file_refusal checks both).
        fs::create_directory(dir / "spool");
        ::chmod((dir / "spool").c_str(), 0700);
        write_file(dir / "elsewhere", "");
        ::chmod((dir / "elsewhere").c_str(), 0600);
        fs::create_hard_link(dir / "elsewhere", dir / "spool" / "seg-00000000000000000001.jsonl");
        CHECK_FALSE(MqttSpool::open((dir / "spool").string(), 4096, 1000, error));
        CHECK(error == (dir / "spool").string() +
                           "/seg-00000000000000000001.jsonl has 2 links (another name for it is elsewhere)");
    }
    SECTION("a second serve on the same spool")
    {
        auto first = open_spool(dir);
        CHECK_FALSE(MqttSpool::open((dir / "spool").string(), 4096, 1000, error));
        CHECK(error == "the spool directory " + (dir / "spool").string() + " is in use by another devhost serve");
    }
    SECTION("a directory others may write")
    {
        fs::create_directory(dir / "spool");
        ::chmod((dir / "spool").c_str(), 0777);
        CHECK_FALSE(MqttSpool::open((dir / "spool").string(), 4096, 1000, error));
        CHECK(error.find("is writable by group or others") != std::string::npos);
    }
}

TEST_CASE("spool in memory only keeps order and bounds")
{
    MqttSpool s(4096, 60000);
    for (int i = 1; i <= 3; i++)
        s.append("t", body(i), t0);
    CHECK_FALSE(s.on_disk());
    CHECK(s.confirm(1));
    CHECK(pending(s) == std::vector<std::string>{body(2), body(3)});
}

TEST_CASE("mqtt spool keys and their mistakes")
{
    std::vector<Diagnostic> diags;
    const std::string device = "[device a]\nclass = loop\npath = loop:a\nstep = open\n";
    Config c = parse_config("[mqtt]\nbroker = mqtt://h\nspool-max-bytes = 8M\nspool-max-age = 12h\n" + device,
                            "t.ini", diags);
    CHECK(diags.empty());
    CHECK(c.mqtt.spool_max_bytes == 8u << 20);
    CHECK(c.mqtt.spool_max_age_ms == 12 * 3600000);
    Config d = parse_config("[mqtt]\nbroker = mqtt://h\n" + device, "t.ini", diags);
    CHECK(d.mqtt.spool_max_bytes == 64u << 20);
    CHECK(d.mqtt.spool_max_age_ms == 7 * 86400000ll);
    diags.clear();
    parse_config("[mqtt]\nbroker = mqtt://h\nspool-max-bytes = 1K\nspool-max-age = 0s\n" + device, "t.ini", diags);
    REQUIRE(diags.size() == 2);
    CHECK(diags[0].str() ==
          "t.ini:3: [mqtt] spool-max-bytes: expected a size from 4K to 1024G, like 64M, got '1K'");
    CHECK(diags[1].str() == "t.ini:4: [mqtt] spool-max-age: expected whole seconds, minutes, hours or days from 1s "
                            "to 3650d, like 7d or 12h, got '0s'");
}

TEST_CASE("spool drop notice dropped in turn is reported again")
{
    TempDir dir;
    auto s = open_spool(dir, 4096);
    const std::string big(900, 'x');
    const auto fill = [&](int i) { s->append("t", "{\"n\":" + std::to_string(i) + ",\"x\":\"" + big + "\"}", t0); };
    for (int i = 1; i <= 4; i++)
        fill(i);
    fill(5);  // drops 1
    const uint64_t first = s->take_dropped();
    CHECK(first == 1);
    const uint64_t notice = s->append("t/NDATA/n", "{\"dropped\":1}", t0, first);
    // Enough more to drop the notice too: it and what it reported come back.
    for (int i = 6; i <= 10; i++)
        fill(i);
    CHECK(s->find(notice) == nullptr);
    // 2, 3, 4, 5 and 6 dropped (5), the notice (1), and the 1 it carried.
    CHECK(s->take_dropped() == 7);
    CHECK(s->stats().dropped == 7);  // messages: 1 to 6 and the notice
}

TEST_CASE("spool never drops what is in flight, it drops the oldest after")
{
    TempDir dir;
    auto s = open_spool(dir, 4096);
    const std::string big(900, 'x');
    const auto fill = [&](int i) { s->append("t", "{\"n\":" + std::to_string(i) + ",\"x\":\"" + big + "\"}", t0); };
    for (int i = 1; i <= 4; i++)
        fill(i);
    s->set_in_flight_below(3);  // 1 and 2 handed to the broker
    fill(5);
    fill(6);
    CHECK(s->find(1) != nullptr);
    CHECK(s->find(2) != nullptr);
    CHECK(s->find(3) == nullptr);
    CHECK(s->find(4) == nullptr);
    CHECK(s->take_dropped() == 2);
    // The connection ended: they may be dropped again.
    s->set_in_flight_below(0);
    fill(7);
    CHECK(s->find(1) == nullptr);
    CHECK(s->take_dropped() >= 1);
}

TEST_CASE("spool keeps the bdSeq across reopening, 0600, atomically")
{
    TempDir dir;
    {
        auto spool = open_spool(dir);
        CHECK(!spool->last_bd_seq());  // a new directory: none kept
        const mode_t old = ::umask(0);  // the file is 0600 whatever the umask
        CHECK(spool->keep_bd_seq(4));
        CHECK(spool->keep_bd_seq(5));
        ::umask(old);
        CHECK(spool->last_bd_seq() == 5u);
    }
    CHECK(read_file(dir / "spool" / "bdseq") == "5\n");
    CHECK(!fs::exists(dir / "spool" / "bdseq.tmp"));  // renamed over bdseq
    struct stat st {};
    REQUIRE(::stat((dir / "spool" / "bdseq").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    CHECK(open_spool(dir)->last_bd_seq() == 5u);
    // Text that is no number: none kept (a warning), the spool still opens.
    write_file(dir / "spool" / "bdseq", "5x\n");
    CHECK(!open_spool(dir)->last_bd_seq());
    // In memory: nothing kept, nothing to fail.
    MqttSpool memory(1 << 20, 3600000);
    CHECK(memory.keep_bd_seq(3));
    CHECK(!memory.last_bd_seq());
}
