// The loop plugin driven through the host's Device API: every transfer op,
// the connect context rule, lock contention with timeout and cancel, the
// exclusive rule, open-delay, and the process-wide counters that prove
// nothing stays held after close.
#include "devhost_test.hpp"
#include "devices.hpp"

#include "device.hpp"
#include "loader.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace devhost;
using namespace devhost::test;

namespace {

std::shared_ptr<const Plugin> loop_plugin() { return loaded_plugin(plugin_dir() / "loop.so"); }

// A loop device opened on loop:<name> with the given options.
std::unique_ptr<Device> open_loop(const std::string &name, std::map<std::string, std::string> options = {},
                                  const std::string &device = "dev")
{
    auto dev = std::make_unique<Device>(loop_plugin(), device);
    OpenRequest request;
    request.path = "loop:" + name;
    request.options = std::move(options);
    Outcome o = dev->open(request);
    INFO(o.message);
    REQUIRE(o.ok());
    return dev;
}

using Result = TransferResult;

// A control by its number (the README's table), with no deadline.
Result control(Device &dev, uint32_t code, const std::string &input = "", size_t capacity = 256)
{
    return transfer(dev, {.op = DEVHOST_OP_CONTROL, .out = input, .capacity = capacity, .timeout_ms = -1,
                          .control_code = code});
}

// The process-wide counters, read through the stats control of a fresh
// device (which itself counts as one open device).
std::map<std::string, unsigned long> stats()
{
    std::map<std::string, unsigned long> counters;
    std::istringstream in(devhost::test::loop_stats(loop_plugin()));
    std::string field;
    while (in >> field) {
        auto eq = field.find('=');
        REQUIRE(eq != std::string::npos);
        counters[field.substr(0, eq)] = std::stoul(field.substr(eq + 1));
    }
    return counters;
}

void require_nothing_held()
{
    auto c = stats();
    CHECK(c["open"] == 1);  // the probe itself
    CHECK(c["connected"] == 0);
    CHECK(c["locked"] == 0);
}

}  // namespace

TEST_CASE("loop declares its options, ops and controls", "[loop]")
{
    auto p = loop_plugin();
    CHECK(p->device_class() == "loop");
    CHECK(p->name() == "loop");
    for (uint32_t op = DEVHOST_OP_WRITE; op <= DEVHOST_OP_CONTROL; op++)
        CHECK(p->supports_op(op));
    CHECK(p->transfer_requires() == 0);
    CHECK(p->lock_requires() == 0);
    REQUIRE(p->find_option("capacity"));
    CHECK(p->find_option("capacity")->default_value == "4096");
    CHECK(p->find_option("capacity")->max == 16777216);
    REQUIRE(p->find_option("exclusive"));
    CHECK(p->find_option("exclusive")->type == DEVHOST_OPTION_BOOL);
    REQUIRE(p->find_option("open-delay"));
    CHECK(p->find_option("open-delay")->type == DEVHOST_OPTION_DURATION);
    CHECK(p->find_option("lock-requires-connect") == nullptr);
    REQUIRE(p->find_control("stats"));
    CHECK(p->find_control("stats")->code == 1);
    CHECK(p->find_control("stats")->flags == 0);
    REQUIRE(p->find_control("clear"));
    CHECK(p->find_control("clear")->flags == DEVHOST_CONTROL_MODIFIES);
    REQUIRE(p->find_control("fill"));
    CHECK(p->find_control("fill")->code == 3);
}

TEST_CASE("loop paths must be loop:NAME", "[loop]")
{
    for (std::string path : {"/dev/null", "loop:", "loopy", ""}) {
        Device dev(loop_plugin(), "bad");
        OpenRequest request;
        request.path = path;
        Outcome o = dev.open(request);
        INFO(path);
        CHECK(o.status == DEVHOST_E_NOT_FOUND);
        CHECK_THAT(o.message, Catch::Contains("loop devices are named loop:NAME"));
        CHECK_FALSE(dev.is_open());
    }
    require_nothing_held();
}

TEST_CASE("loop capacity out of range is refused before open", "[loop]")
{
    Device dev(loop_plugin(), "bad");
    OpenRequest request;
    request.path = "loop:cap";
    request.options = {{"capacity", "0"}};
    Outcome o = dev.open(request);
    CHECK(o.status == DEVHOST_E_INVALID);
    CHECK_THAT(o.message, Catch::Contains("capacity"));
}

TEST_CASE("loop write then read gives the bytes back", "[loop]")
{
    auto dev = open_loop("rw");
    Result w = write(*dev, "hello", -1);
    REQUIRE(w.outcome.ok());
    CHECK(w.out_done == 5);
    CHECK(info_value(*dev, "buffered") == "5");
    Result r = read(*dev, DEVHOST_OP_READ, 64, -1);
    REQUIRE(r.outcome.ok());
    CHECK(r.data == "hello");

    SECTION("read returns at most in_capacity and keeps the rest")
    {
        REQUIRE(write(*dev, "abcdef", -1).outcome.ok());
        CHECK(read(*dev, DEVHOST_OP_READ, 4, -1).data == "abcd");
        CHECK(read(*dev, DEVHOST_OP_READ, 4, -1).data == "ef");
    }
    SECTION("read with nothing buffered ends at its timeout")
    {
        Result empty = read(*dev, DEVHOST_OP_READ, 8, 30);
        CHECK(empty.outcome.status == DEVHOST_E_TIMEOUT);
        CHECK(empty.data.empty());
        CHECK_THAT(empty.outcome.message, Catch::Contains("loop:rw") && Catch::Contains("nothing was written"));
    }
    SECTION("a blocked read ends when the device is cancelled")
    {
        auto reading = start_waiting([&] { return read(*dev, DEVHOST_OP_READ, 8, -1); });
        dev->cancel();  // while the read waits
        Result r2 = reading.get();
        CHECK(r2.outcome.status == DEVHOST_E_CANCELLED);
        CHECK_THAT(r2.outcome.message, Catch::Contains("cancelled"));
    }
    SECTION("read needs room for a byte")
    {
        CHECK(read(*dev, DEVHOST_OP_READ, 0, -1).outcome.status == DEVHOST_E_INVALID);
    }
}

TEST_CASE("loop devices on one name have their own buffers", "[loop]")
{
    auto a = open_loop("shared", {}, "a");
    auto b = open_loop("shared", {}, "b");
    REQUIRE(write(*a, "for a", -1).outcome.ok());
    CHECK(read(*b, DEVHOST_OP_READ, 16, 0).outcome.status == DEVHOST_E_TIMEOUT);
    CHECK(read(*a, DEVHOST_OP_READ, 16, -1).data == "for a");
}

TEST_CASE("loop write to a full buffer writes what fits, then times out", "[loop]")
{
    auto dev = open_loop("full", {{"capacity", "4"}});
    Result w = write(*dev, "abcdef", 30);
    CHECK(w.outcome.status == DEVHOST_E_TIMEOUT);
    CHECK(w.out_done == 4);
    CHECK_THAT(w.outcome.message, Catch::Contains("buffer full") && Catch::Contains("wrote 4 of 6"));
    CHECK(read(*dev, DEVHOST_OP_READ, 16, -1).data == "abcd");

    SECTION("and is cancelled like any wait")
    {
        REQUIRE(write(*dev, "wxyz", -1).outcome.ok());
        auto writing = start_waiting([&] { return write(*dev, "more", -1); });
        dev->cancel();  // while the write waits for room
        Result w2 = writing.get();
        CHECK(w2.outcome.status == DEVHOST_E_CANCELLED);
        CHECK(w2.out_done == 0);
    }
}

TEST_CASE("loop read exactly waits for all bytes, else returns what it had", "[loop]")
{
    auto dev = open_loop("exact");
    REQUIRE(write(*dev, "abcdef", -1).outcome.ok());
    Result r = transfer(*dev, {.op = DEVHOST_OP_READ_EXACT, .capacity = 4, .timeout_ms = 30});
    REQUIRE(r.outcome.ok());
    CHECK(r.data == "abcd");
    Result partial = transfer(*dev, {.op = DEVHOST_OP_READ_EXACT, .capacity = 4, .timeout_ms = 30});
    CHECK(partial.outcome.status == DEVHOST_E_TIMEOUT);
    CHECK(partial.data == "ef");
    CHECK_THAT(partial.outcome.message, Catch::Contains("exactly 4") && Catch::Contains("2 bytes"));
    CHECK(info_value(*dev, "buffered") == "0");
}

TEST_CASE("loop read until stops after the delimiter and keeps the surplus", "[loop]")
{
    auto dev = open_loop("until");
    REQUIRE(write(*dev, "one\r\ntwo\r\nthr", -1).outcome.ok());
    const Transfer line{.op = DEVHOST_OP_READ_UNTIL, .capacity = 64, .timeout_ms = 30, .delimiter = "\r\n"};
    CHECK(transfer(*dev, line).data == "one\r\n");
    CHECK(transfer(*dev, line).data == "two\r\n");
    Result rest = transfer(*dev, {.op = DEVHOST_OP_READ_UNTIL, .capacity = 64, .timeout_ms = 30, .delimiter = "\r\n"});
    CHECK(rest.outcome.status == DEVHOST_E_TIMEOUT);
    CHECK(rest.data == "thr");

    SECTION("a full buffer without the delimiter is a protocol error")
    {
        REQUIRE(write(*dev, "abcdefgh", -1).outcome.ok());
        Result r = transfer(*dev, {.op = DEVHOST_OP_READ_UNTIL, .capacity = 4, .timeout_ms = 30, .delimiter = "\n"});
        CHECK(r.outcome.status == DEVHOST_E_PROTOCOL);
        CHECK(r.data == "abcd");
        CHECK_THAT(r.outcome.message, Catch::Contains("no delimiter within the 4-byte buffer"));
        CHECK(read(*dev, DEVHOST_OP_READ, 16, -1).data == "efgh");
    }
    SECTION("the delimiter is required")
    {
        const Transfer no_delimiter{.op = DEVHOST_OP_READ_UNTIL, .capacity = 4, .timeout_ms = 30};
        const Transfer no_room{.op = DEVHOST_OP_READ_UNTIL, .timeout_ms = 30, .delimiter = "\n"};
        CHECK(transfer(*dev, no_delimiter).outcome.status == DEVHOST_E_INVALID);
        CHECK(transfer(*dev, no_room).outcome.status == DEVHOST_E_INVALID);
    }
}

TEST_CASE("loop request answers like a mirror", "[loop]")
{
    auto dev = open_loop("mirror");
    Result r = transfer(*dev, {.op = DEVHOST_OP_REQUEST, .out = "ping", .capacity = 64, .timeout_ms = 100});
    REQUIRE(r.outcome.ok());
    CHECK(r.data == "ping");
    CHECK(r.out_done == 4);
    const Transfer until_newline{
        .op = DEVHOST_OP_REQUEST, .out = "a\nb\n", .capacity = 64, .timeout_ms = 100, .delimiter = "\n"};
    Result d = transfer(*dev, until_newline);
    REQUIRE(d.outcome.ok());
    CHECK(d.data == "a\n");
    Result small = transfer(*dev, {.op = DEVHOST_OP_REQUEST, .out = "too long", .capacity = 3, .timeout_ms = 100});
    CHECK(small.outcome.status == DEVHOST_E_PROTOCOL);
    CHECK(small.data == "too");
    // The request never touched the buffer.
    CHECK(info_value(*dev, "buffered") == "0");
}

TEST_CASE("loop get-message issues ids and reply checks them", "[loop]")
{
    auto dev = open_loop("messages");
    REQUIRE(write(*dev, "m1", -1).outcome.ok());
    Result m1 = transfer(*dev, {.op = DEVHOST_OP_GET_MESSAGE, .capacity = 64, .timeout_ms = 100});
    REQUIRE(m1.outcome.ok());
    CHECK(m1.data == "m1");
    CHECK(m1.message_id == 1);
    REQUIRE(write(*dev, "m2", -1).outcome.ok());
    Result m2 = transfer(*dev, {.op = DEVHOST_OP_GET_MESSAGE, .capacity = 64, .timeout_ms = 100});
    CHECK(m2.message_id == 2);

    Result r2 = transfer(*dev, {.op = DEVHOST_OP_REPLY, .out = "ok", .timeout_ms = 100, .message_id = 2});
    CHECK(r2.outcome.ok());
    CHECK(r2.out_done == 2);
    Result again = transfer(*dev, {.op = DEVHOST_OP_REPLY, .out = "ok", .timeout_ms = 100, .message_id = 2});
    CHECK(again.outcome.status == DEVHOST_E_INVALID);
    CHECK_THAT(again.outcome.message, Catch::Contains("message id 2 was already replied to"));
    Result never = transfer(*dev, {.op = DEVHOST_OP_REPLY, .out = "ok", .timeout_ms = 100, .message_id = 7});
    CHECK(never.outcome.status == DEVHOST_E_INVALID);
    CHECK_THAT(never.outcome.message, Catch::Contains("message id 7 was never issued"));
    CHECK(transfer(*dev, {.op = DEVHOST_OP_REPLY, .out = "ok", .timeout_ms = 100, .message_id = 0}).outcome.status ==
          DEVHOST_E_INVALID);
    CHECK(transfer(*dev, {.op = DEVHOST_OP_REPLY, .out = "ok", .timeout_ms = 100, .message_id = 1}).outcome.ok());

    Result none = transfer(*dev, {.op = DEVHOST_OP_GET_MESSAGE, .capacity = 64, .timeout_ms = 30});
    CHECK(none.outcome.status == DEVHOST_E_TIMEOUT);
    auto waiting = start_waiting(
        [&] { return transfer(*dev, {.op = DEVHOST_OP_GET_MESSAGE, .capacity = 64, .timeout_ms = -1}); });
    dev->cancel();  // while get-message waits
    Result cancelled = waiting.get();
    CHECK(cancelled.outcome.status == DEVHOST_E_CANCELLED);
}

TEST_CASE("loop controls: stats, clear, fill, unknown", "[loop]")
{
    auto dev = open_loop("controls", {{"capacity", "8"}});
    Result fill = control(*dev, 3, "xyz");
    REQUIRE(fill.outcome.ok());
    CHECK(fill.out_done == 3);
    CHECK(read(*dev, DEVHOST_OP_READ, 16, -1).data == "xyz");

    Result too_big = control(*dev, 3, "123456789");
    CHECK(too_big.outcome.status == DEVHOST_E_INVALID);
    CHECK_THAT(too_big.outcome.message, Catch::Contains("9 bytes do not fit"));
    CHECK(info_value(*dev, "buffered") == "0");  // all or nothing

    REQUIRE(write(*dev, "junk", -1).outcome.ok());
    REQUIRE(control(*dev, 2).outcome.ok());
    CHECK(read(*dev, DEVHOST_OP_READ, 16, 0).outcome.status == DEVHOST_E_TIMEOUT);

    Result s = control(*dev, 1);
    REQUIRE(s.outcome.ok());
    CHECK_THAT(s.data, Catch::Matches("open=[0-9]+ connected=[0-9]+ locked=[0-9]+ opened-total=[0-9]+"));
    CHECK(control(*dev, 1, "", 10).outcome.status == DEVHOST_E_INVALID);

    Result unknown = control(*dev, 99);
    CHECK(unknown.outcome.status == DEVHOST_E_UNSUPPORTED);
    CHECK_THAT(unknown.outcome.message, Catch::Contains("no control code 99"));
}

TEST_CASE("loop connect validates the context and size pair", "[loop]")
{
    auto dev = open_loop("connect");
    SECTION("a context with size 0 is invalid")
    {
        ConnectRequest request;
        request.context = std::vector<uint8_t>{1, 2, 3};
        request.context_size = 0;
        Outcome o = dev->connect(request);
        CHECK(o.status == DEVHOST_E_INVALID);
        CHECK_THAT(o.message, Catch::Contains("context-size 0"));
        CHECK_FALSE(dev->is_connected());
    }
    SECTION("a size with no context is invalid")
    {
        ConnectRequest request;
        request.context_size = 4;
        Outcome o = dev->connect(request);
        CHECK(o.status == DEVHOST_E_INVALID);
        CHECK_THAT(o.message, Catch::Contains("context-size is 4 but no context"));
        CHECK_FALSE(dev->is_connected());
    }
    SECTION("a context with its size, or neither, connects")
    {
        ConnectRequest request;
        request.context = std::vector<uint8_t>{1, 2, 0xab};
        request.args = {{"mode", "test"}, {"x", "1"}};
        REQUIRE(dev->connect(request).ok());
        CHECK(info_value(*dev, "connected") == "yes");
        CHECK(info_value(*dev, "context-size") == "3");
        CHECK(info_value(*dev, "context") == "0102ab");
        CHECK(info_value(*dev, "connect-args") == "mode=test x=1");
        CHECK(stats()["connected"] == 1);
        REQUIRE(dev->disconnect().ok());
        CHECK(info_value(*dev, "connected") == "no");
        REQUIRE(dev->connect(ConnectRequest{}).ok());
        CHECK(info_value(*dev, "context-size") == "0");
        REQUIRE(dev->disconnect().ok());
    }
    dev.reset();
    require_nothing_held();
}

TEST_CASE("loop lock contention between two devices", "[loop]")
{
    auto a = open_loop("bus", {}, "a");
    auto b = open_loop("bus", {}, "b");
    REQUIRE(a->lock(0).ok());
    CHECK(info_value(*a, "locked") == "yes");

    SECTION("the second lock times out, naming the holder")
    {
        Outcome o = b->lock(50);
        CHECK(o.status == DEVHOST_E_TIMEOUT);
        CHECK_THAT(o.message, Catch::Contains("loop:bus is still locked by device 'a'"));
        CHECK_FALSE(b->is_locked());
        REQUIRE(a->unlock().ok());
        CHECK(b->lock(0).ok());
    }
    SECTION("a waiting lock is cancelled")
    {
        // The lock waits on a condition variable (a futex).
        auto waiting = start_waiting([&] { return b->lock(-1); }, {}, true);
        b->cancel();  // while the lock waits
        Outcome o = waiting.get();
        CHECK(o.status == DEVHOST_E_CANCELLED);
        CHECK_THAT(o.message, Catch::Contains("cancelled") && Catch::Contains("'a'"));
        CHECK(a->is_locked());
    }
    SECTION("a waiting lock gets it when the holder unlocks")
    {
        auto waiter = start_waiting([&] { return b->lock(10000); }, {}, true);
        REQUIRE(a->unlock().ok());  // while b waits
        Outcome o = waiter.get();
        CHECK(o.ok());
        CHECK(b->is_locked());
    }
    SECTION("another name does not contend")
    {
        auto c = open_loop("other-bus", {}, "c");
        CHECK(c->lock(0).ok());
    }
    a.reset();
    b.reset();
    require_nothing_held();
}

TEST_CASE("loop exclusive open refuses others at once", "[loop]")
{
    SECTION("while an exclusive holder is open")
    {
        auto a = open_loop("excl", {{"exclusive", "true"}}, "a");
        Device b(loop_plugin(), "b");
        OpenRequest request;
        request.path = "loop:excl";
        Outcome o = b.open(request);
        CHECK(o.status == DEVHOST_E_BUSY);
        CHECK_THAT(o.message, Catch::Contains("loop:excl") && Catch::Contains("'a'"));
        a.reset();
        CHECK(b.open(request).ok());  // a failed open may be retried
        Device c(loop_plugin(), "c");
        CHECK(c.open(request).ok());
    }
    SECTION("an exclusive open while others hold the name")
    {
        auto a = open_loop("excl2", {}, "a");
        Device b(loop_plugin(), "b");
        OpenRequest request;
        request.path = "loop:excl2";
        request.options = {{"exclusive", "yes"}};
        Outcome o = b.open(request);
        CHECK(o.status == DEVHOST_E_BUSY);
        CHECK_THAT(o.message, Catch::Contains("loop:excl2") && Catch::Contains("exclusive"));
    }
    require_nothing_held();
}

TEST_CASE("loop open-delay honours timeout and cancel", "[loop]")
{
    SECTION("a delay longer than the timeout")
    {
        Device dev(loop_plugin(), "slow");
        OpenRequest request;
        request.path = "loop:slow";
        request.options = {{"open-delay", "5s"}};
        request.timeout_ms = 30;
        Outcome o = dev.open(request);
        CHECK(o.status == DEVHOST_E_TIMEOUT);
        CHECK_THAT(o.message, Catch::Contains("open-delay"));
        CHECK_FALSE(dev.is_open());
    }
    SECTION("cancelled during the delay")
    {
        Device dev(loop_plugin(), "slow");
        OpenRequest request;
        request.path = "loop:slow";
        request.options = {{"open-delay", "10s"}};
        auto opening = start_waiting([&] { return dev.open(request); });
        dev.cancel();  // while the open waits out its delay
        Outcome o = opening.get();
        CHECK(o.status == DEVHOST_E_CANCELLED);
        CHECK_FALSE(dev.is_open());
    }
    SECTION("a short delay opens")
    {
        auto dev = open_loop("slow", {{"open-delay", "20ms"}});
        CHECK(dev->is_open());
    }
    require_nothing_held();
}

TEST_CASE("loop close drops what the pipeline forgot and counters return to zero", "[loop]")
{
    auto before = stats();
    auto a = open_loop("forgot", {}, "a");
    auto b = open_loop("forgot", {}, "b");
    REQUIRE(a->connect(ConnectRequest{}).ok());
    REQUIRE(a->lock(0).ok());
    auto during = stats();
    CHECK(during["open"] == before["open"] + 2);
    CHECK(during["connected"] == before["connected"] + 1);
    CHECK(during["locked"] == before["locked"] + 1);
    CHECK(during["opened-total"] >= before["opened-total"] + 3);

    // Device::close calls the plugin's close straight away; the plugin must
    // drop the lock and connection itself.
    REQUIRE(a->close().ok());
    CHECK(b->lock(0).ok());
    REQUIRE(b->close().ok());
    require_nothing_held();
}

TEST_CASE("loop info reports the device", "[loop]")
{
    auto dev = open_loop("info", {{"capacity", "128"}, {"exclusive", "on"}});
    InfoList list;
    REQUIRE(dev->info(list).ok());
    std::map<std::string, std::string> m(list.begin(), list.end());
    CHECK(m["name"] == "info");
    CHECK(m["capacity"] == "128");
    CHECK(m["buffered"] == "0");
    CHECK(m["exclusive"] == "yes");
    CHECK(m["locked"] == "no");
    CHECK(m["connected"] == "no");
}

TEST_CASE("loop locks hold up under two threads hammering one name", "[loop]")
{
    auto a = open_loop("hammer", {}, "a");
    auto b = open_loop("hammer", {}, "b");
    auto worker = [](Device &dev) {
        int ok = 0;
        for (int i = 0; i < 200; i++) {
            if (dev.lock(10000).ok()) {
                ok++;
                dev.unlock();
            }
        }
        return ok;
    };
    auto fa = std::async(std::launch::async, worker, std::ref(*a));
    auto fb = std::async(std::launch::async, worker, std::ref(*b));
    CHECK(fa.get() == 200);
    CHECK(fb.get() == 200);
    a.reset();
    b.reset();
    require_nothing_held();
}
