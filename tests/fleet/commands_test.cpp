// Commands from the fleet (issue 16, item 3) against a real broker:
// Debian's mosquitto on a free loopback port, commands sent with a real
// mosquitto_pub, replies and data watched with a real mosquitto_sub. Only
// what [mqtt] allow-commands lists runs; everything else is answered on
// PREFIX/GROUP/NDATA/NODE with the reason and logged, never run.
#include "devhost_test.hpp"
#include "fleet_fixture.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <thread>

using namespace devhost::test;
using json = nlohmann::json;

namespace {

const std::string base = "devhost/g1/";
const std::string ndata = base + "NDATA/n1";
const std::string ddata = base + "DDATA/n1/a";

// Device a runs its body only when called.
std::string config(const TempDir &dir, const std::string &broker_url, const std::string &allow,
                   const std::string &extra = "")
{
    return "[host]\ncontrol-socket = " + (dir / "control").string() + "\n" + extra + "[mqtt]\nbroker = " +
           broker_url + "\ngroup = g1\nnode = n1\nkeepalive = 5s\nallow-commands = " + allow +
           "\n[device a]\nclass = loop\npath = loop:a\nsetup = open\nbody = write \"hi\"\n"
           "body = read exactly=2\nteardown = close\nrun = on-demand\n";
}

void send(const Broker &broker, const std::string &topic, const std::string &message, bool retain = false)
{
    std::vector<std::string> argv{"/usr/bin/mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(broker.port()),
                                  "-q", "1", "-t", topic, "-m", message};
    if (retain)
        argv.push_back("-r");
    const auto r = run_process(argv, {.timeout = 10s});
    REQUIRE(r.exit_code == 0);
}

std::vector<json> replies(const std::vector<Seen> &seen)
{
    std::vector<json> out;
    for (const auto &s : seen)
        if (s.topic == ndata && payload(s).value("event", "") == "command")
            out.push_back(payload(s));
    return out;
}

size_t body_records(const std::vector<Seen> &seen)
{
    size_t n = 0;
    for (const auto &s : seen)
        n += s.topic == ddata && payload(s).value("event", "") == "record" &&
             payload(s)["record"].value("step", "") == "write \"hi\"";
    return n;
}

// Device a set up: its idle state seen as data, or in a birth (when serve
// connects after the setup ran).
bool idle(const std::vector<Seen> &seen)
{
    for (const auto &s : seen)
        if ((s.topic == ddata || s.topic == base + "DBIRTH/n1/a") && payload(s).value("state", "") == "idle")
            return true;
    return false;
}

}  // namespace

TEST_CASE("fleet commands not allowed or malformed are refused, never run")
{
    if (const std::string why = broker_missing(); !why.empty())
        DEVHOST_SKIP(why);
    Fleet f;
    auto devhost = f.serve(config(f.dir, f.broker.url(), "rebirth"));
    INFO(devhost->err());
    REQUIRE(f.sub.wait(idle, 20s));

    send(f.broker, base + "DCMD/n1/a", R"({"command":"call","id":"r1"})");
    send(f.broker, base + "DCMD/n1/a", "not json");
    send(f.broker, base + "DCMD/n1/zz", R"({"command":"rebirth"})");
    send(f.broker, base + "DCMD/n1/a", R"({"command":"format-disk","id":3})");
    send(f.broker, base + "DCMD/n1/a", std::string(5000, ' '));
    send(f.broker, base + "NCMD/n1", R"(["rebirth"])");
    REQUIRE(f.sub.wait([](const auto &seen) { return replies(seen).size() >= 6; }, 10s));
    std::this_thread::sleep_for(1s);  // a body that would wrongly run has time to report
    const auto seen = f.sub.messages();
    const auto r = replies(seen);
    INFO(devhost->err());
    REQUIRE(r.size() == 6);
    CHECK(r[0]["ok"] == false);
    CHECK(r[0]["id"] == "r1");
    CHECK(r[0]["command"] == "call");
    CHECK(r[0]["topic"] == base + "DCMD/n1/a");
    CHECK(r[0]["error"] == "command 'call' is not allowed ([mqtt] allow-commands)");
    CHECK(r[1]["error"] == "payload is not JSON");
    CHECK(r[2]["error"] == "command 'rebirth' is sent on NCMD");
    CHECK(r[3]["error"] == "unknown command \"format-disk\" (call, reset, rebirth)");
    CHECK(r[3]["id"] == 3);
    CHECK(r[4]["error"] == "payload larger than 4096 bytes");
    CHECK(r[5]["error"] == "payload is not an object with a \"command\" string");
    for (const auto &x : r)
        CHECK(x.contains("seq"));
    CHECK(body_records(seen) == 0);  // never run
    CHECK(devhost->wait_for_output(
        "mqtt: command on \"" + base + "DCMD/n1/a\" refused: command 'call' is not allowed ([mqtt] allow-commands)",
        5s));
    CHECK(devhost->err().find("refused: payload is not JSON") != std::string::npos);
}

TEST_CASE("fleet commands for a device the config lacks are refused")
{
    if (const std::string why = broker_missing(); !why.empty())
        DEVHOST_SKIP(why);
    Fleet f;
    auto devhost = f.serve(config(f.dir, f.broker.url(), "call, reset"));
    INFO(devhost->err());
    REQUIRE(f.sub.wait(idle, 20s));
    send(f.broker, base + "DCMD/n1/b", R"({"command":"call"})");
    send(f.broker, base + "DCMD/n1/a", R"({"command":"reset","id":"x"})");
    REQUIRE(f.sub.wait([](const auto &seen) { return replies(seen).size() >= 2; }, 10s));
    const auto r = replies(f.sub.messages());
    INFO(devhost->err());
    CHECK(r[0]["ok"] == false);
    CHECK(r[0]["error"] == "no device \"b\"");
    CHECK(!r[0].contains("device"));
    // Allowed and run through the Handler, which refuses a device not failed.
    CHECK(r[1]["ok"] == false);
    CHECK(r[1]["device"] == "a");
    CHECK(r[1]["error"] == "device 'a' is not failed (it is idle)");
    CHECK(body_records(f.sub.messages()) == 0);
}

TEST_CASE("an allowed fleet call runs the body and publishes its records")
{
    if (const std::string why = broker_missing(); !why.empty())
        DEVHOST_SKIP(why);
    Fleet f;
    // A retained command, there before serve subscribes: given at every
    // connect, so never run.
    send(f.broker, base + "DCMD/n1/a", R"({"command":"call","id":"old"})", true);
    auto devhost = f.serve(config(f.dir, f.broker.url(), "call"));
    INFO(devhost->err());
    REQUIRE(f.sub.wait(idle, 20s));
    REQUIRE(f.sub.wait([](const auto &seen) { return !replies(seen).empty(); }, 10s));
    const json old = replies(f.sub.messages()).at(0);
    CHECK(old["ok"] == false);
    CHECK(old["id"] == "old");
    CHECK(old["error"] == "a retained command is not run (publish commands without the retain flag)");
    CHECK(body_records(f.sub.messages()) == 0);  // on-demand: nothing before the call
    send(f.broker, base + "DCMD/n1/a", R"({"command":"call","id":"run-1"})");
    REQUIRE(f.sub.wait([](const auto &seen) { return replies(seen).size() >= 2; }, 10s));
    const auto seen = f.sub.messages();
    INFO(devhost->err());
    const json r = replies(seen).at(1);
    CHECK(r["ok"] == true);
    CHECK(r["id"] == "run-1");
    CHECK(r["device"] == "a");
    REQUIRE(r["records"].size() == 2);
    CHECK(r["records"][0]["step"] == "write \"hi\"");
    CHECK(r["records"][0]["status"] == "DEVHOST_OK");
    CHECK(body_records(seen) == 1);  // and as DDATA, like any record
    CHECK(devhost->err().find("mqtt: call of device a asked on") != std::string::npos);
}

TEST_CASE("a rebirth asked on NCMD publishes NBIRTH and every DBIRTH again")
{
    if (const std::string why = broker_missing(); !why.empty())
        DEVHOST_SKIP(why);
    Fleet f;
    auto devhost = f.serve(config(f.dir, f.broker.url(), "rebirth"));
    INFO(devhost->err());
    REQUIRE(f.sub.wait(idle, 20s));
    const auto births = [](const std::vector<Seen> &seen, const std::string &topic) {
        return std::count_if(seen.begin(), seen.end(), [&](const Seen &s) { return s.topic == topic; });
    };
    CHECK(births(f.sub.messages(), base + "NBIRTH/n1") == 1);
    send(f.broker, base + "NCMD/n1", R"({"command":"rebirth","id":7})");
    REQUIRE(f.sub.wait([&](const auto &seen) { return births(seen, base + "DBIRTH/n1/a") == 2; }, 10s));
    REQUIRE(f.sub.wait([](const auto &seen) { return !replies(seen).empty(); }, 10s));
    const auto seen = f.sub.messages();
    INFO(devhost->err());
    CHECK(births(seen, base + "NBIRTH/n1") == 2);
    json nbirths[2];
    int k = 0;
    for (const auto &s : seen)
        if (s.topic == base + "NBIRTH/n1" && k < 2)
            nbirths[k++] = payload(s);
    CHECK(nbirths[1]["seq"] == 0);
    CHECK(nbirths[1]["bdSeq"] == nbirths[0]["bdSeq"]);
    CHECK(nbirths[1]["devices"][0]["state"] == "idle");
    const json r = replies(seen).at(0);
    CHECK(r["ok"] == true);
    CHECK(r["id"] == 7);
    CHECK(r["command"] == "rebirth");
}
