// [mqtt] protocol = 5 against a real broker (issue 16): Debian's mosquitto
// on a free loopback port, watched by a mosquitto_sub that speaks MQTT 5
// too, commands sent by a mosquitto_pub speaking MQTT 5. The broker's own
// log shows which protocol serve spoke ("p5" in its "New client connected"
// line); births, data, a refused and an allowed command, and the will after
// kill -9 all work as with 3.1.1.
#include "fleet_fixture.hpp"
#include "devhost_test.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>

using namespace devhost::test;
using json = nlohmann::json;

namespace {

const std::string base = "devhost/g1/";

std::string config(const TempDir &dir, const std::string &broker_url, const std::string &protocol)
{
    return "[host]\ncontrol-socket = " + (dir / "control").string() + "\n[mqtt]\nbroker = " + broker_url +
           "\nprotocol = " + protocol +
           "\ngroup = g1\nnode = n1\nkeepalive = 5s\nallow-commands = rebirth\n"
           "[device a]\nclass = loop\npath = loop:a\nsetup = open\nbody = write \"hi\"\nbody = read exactly=2\n"
           "teardown = close\nrun = every 200ms\n";
}

std::vector<json> replies(const std::vector<Seen> &seen)
{
    std::vector<json> out;
    for (const auto &s : seen)
        if (s.topic == base + "NDATA/n1" && payload(s).value("event", "") == "command")
            out.push_back(payload(s));
    return out;
}

void send_v5(const Broker &broker, const std::string &topic, const std::string &message)
{
    const auto r = run_process({"/usr/bin/mosquitto_pub", "-V", "5", "-h", "127.0.0.1", "-p",
                                std::to_string(broker.port()), "-q", "1", "-t", topic, "-m", message},
                               {.timeout = 10s});
    REQUIRE(r.exit_code == 0);
}

}  // namespace

TEST_CASE("mqtt 5 births, data, commands and the will after kill -9")
{
    if (const std::string why = broker_missing(); !why.empty())
        DEVHOST_SKIP(why);
    TempDir dir;
    Broker broker(dir.path());
    Subscriber sub(dir.path(), broker, "devhost/#", {"-V", "5"});
    write_file(dir / "fleet.ini", config(dir, broker.url(), "5"));
    CHECK(run_devhost({"check", (dir / "fleet.ini").string()}).exit_code == 0);
    auto devhost = start_serve(dir);
    const std::string ddata = base + "DDATA/n1/a";
    REQUIRE(sub.wait([&](const auto &seen) { return count(seen, ddata, "record") >= 2; }, 20s));
    INFO(devhost->err());
    INFO(broker.log());
    // serve spoke MQTT 5: the broker logs "(p5, c1, k5)" for its client.
    CHECK(broker.log().find("(p5, c1, k5)") != std::string::npos);

    // A command it does not allow is answered; the rebirth it allows runs.
    send_v5(broker, base + "NCMD/n1", R"({"command":"call","id":"c1"})");
    send_v5(broker, base + "NCMD/n1", R"({"command":"rebirth","id":"r1"})");
    REQUIRE(sub.wait([](const auto &seen) { return replies(seen).size() >= 2; }, 10s));
    REQUIRE(sub.wait([&](const auto &seen) { return count(seen, base + "NBIRTH/n1") == 2; }, 10s));
    const auto r = replies(sub.messages());
    CHECK(r[0]["ok"] == false);
    CHECK(r[0]["id"] == "c1");
    CHECK(r[0]["error"] == "command 'call' is not allowed ([mqtt] allow-commands)");
    CHECK(r[1]["ok"] == true);
    CHECK(r[1]["id"] == "r1");

    const pid_t pid = devhost->pid();
    const auto workers = workers_of(pid);
    devhost->signal(SIGKILL);
    for (pid_t w : workers)
        ::kill(w, SIGKILL);
    REQUIRE(sub.wait([&](const auto &seen) { return count(seen, base + "NDEATH/n1") == 1; }, 10s));
    const auto seen = sub.messages();
    REQUIRE(seen.size() >= 4);
    CHECK(seen[0].topic == base + "NBIRTH/n1");
    CHECK(seen[1].topic == base + "DBIRTH/n1/a");
    const json nbirth = payload(seen[0]);
    CHECK(nbirth["seq"] == 0);
    CHECK(payload(seen[1])["seq"] == 1);
    CHECK(seen.back().topic == base + "NDEATH/n1");
    CHECK(payload(seen.back()) == json{{"bdSeq", nbirth["bdSeq"]}, {"online", false}});
}

TEST_CASE("mqtt 3.1.1 stays the default and protocol = 3.1.1 says it")
{
    if (const std::string why = broker_missing(); !why.empty())
        DEVHOST_SKIP(why);
    TempDir dir;
    Broker broker(dir.path());
    Subscriber sub(dir.path(), broker, "devhost/#");
    write_file(dir / "fleet.ini", config(dir, broker.url(), "3.1.1"));
    auto devhost = start_serve(dir);
    REQUIRE(sub.wait([&](const auto &seen) { return count(seen, base + "DDATA/n1/a", "record") >= 1; }, 20s));
    INFO(broker.log());
    CHECK(broker.log().find("(p2, c1, k5)") != std::string::npos);  // mosquitto logs 3.1.1 as p2
}

TEST_CASE("mqtt 5 refused by the broker names the reason")
{
    if (const std::string why = broker_missing(); !why.empty())
        DEVHOST_SKIP(why);
    TempDir dir;
    Broker broker(dir.path(), 0, "allow_anonymous false\n");
    write_file(dir / "fleet.ini", config(dir, broker.url(), "5"));
    auto devhost = start_serve(dir);
    INFO(devhost->err());
    CHECK(devhost->wait_for_output("mqtt: 127.0.0.1:" + std::to_string(broker.port()) +
                                       " refused the connection: Not authorized",
                                   10s));
    CHECK(devhost->wait_for_output("worker class loop started", 10s));
}
