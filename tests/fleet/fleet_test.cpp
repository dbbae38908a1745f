// devhost serve publishing to a real broker (issue 16): Debian's mosquitto
// on a free loopback port, a real mosquitto_sub watching, the devhost
// binary serving loop devices. Births then data, seq numbers without gaps,
// the will (NDEATH) from the broker after kill -9, the death devhost
// publishes itself on a clean stop, and a broker that comes up late.
#include "devhost_test.hpp"
#include "fleet_fixture.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <regex>
#include <sys/stat.h>
#include <thread>

using namespace devhost::test;
using json = nlohmann::json;

namespace {

const std::string node_topic = "devhost/g1/";

std::string config(const TempDir &dir, const std::string &broker_url)
{
    return "[host]\ncontrol-socket = " + (dir / "control").string() +
           "\n[mqtt]\nbroker = " + broker_url + "\ngroup = g1\nnode = n1\nkeepalive = 5s\n"
           "[device a]\nclass = loop\npath = loop:a\nsetup = open\nbody = write \"hi\"\nbody = read exactly=2\n"
           "teardown = close\nrun = every 200ms\n";
}

// The node's messages of one session (NBIRTH on), NDEATH left out: their
// seq must count 0, 1, 2 ... without a gap.
void check_seq(const std::vector<Seen> &seen)
{
    int64_t expected = 0;
    for (const auto &s : seen) {
        if (s.topic == node_topic + "NDEATH/n1")
            continue;
        INFO(s.topic << " " << s.payload);
        CHECK(payload(s).value("seq", int64_t{-1}) == expected);
        expected++;
    }
}

}  // namespace

TEST_CASE("births then data then the broker will after kill -9")
{
    if (const std::string why = broker_missing(); !why.empty())
        DEVHOST_SKIP(why);
    Fleet f;
    auto devhost = f.serve(config(f.dir, f.broker.url()));
    const std::string ddata = node_topic + "DDATA/n1/a";
    REQUIRE(f.sub.wait([&](const auto &seen) { return count(seen, ddata, "record") >= 4; }, 20s));
    const pid_t pid = devhost->pid();
    const auto workers = workers_of(pid);
    devhost->signal(SIGKILL);
    for (pid_t w : workers)
        ::kill(w, SIGKILL);
    REQUIRE(f.sub.wait([&](const auto &seen) { return count(seen, node_topic + "NDEATH/n1") == 1; }, 10s));
    const auto seen = f.sub.messages();
    INFO(devhost->err());

    // NBIRTH first: online, bdSeq, the device with its class and identity.
    REQUIRE(seen.size() >= 6);
    CHECK(seen[0].topic == node_topic + "NBIRTH/n1");
    const json nbirth = payload(seen[0]);
    CHECK(nbirth["online"] == true);
    CHECK(nbirth["seq"] == 0);
    CHECK(nbirth["node"] == "n1");
    REQUIRE(nbirth["devices"].size() == 1);
    CHECK(nbirth["devices"][0]["device"] == "a");
    CHECK(nbirth["devices"][0]["class"] == "loop");
    CHECK(nbirth["devices"][0]["path"] == "loop:a");
    // Then the device's birth, with its state and generation.
    CHECK(seen[1].topic == node_topic + "DBIRTH/n1/a");
    const json dbirth = payload(seen[1]);
    CHECK(dbirth["seq"] == 1);
    CHECK(dbirth["class"] == "loop");
    CHECK(dbirth["path"] == "loop:a");
    // Its state when the connection came: before its setup ended, or after
    // (a loaded machine); its state events come as DDATA either way.
    const std::string born = dbirth.value("state", "");
    CHECK((born == "setup" || born == "idle" || born == "running"));
    CHECK(dbirth.contains("generation"));
    // Data: the records of the steps, and the state changes.
    bool wrote = false, idle = false;
    for (const auto &s : seen) {
        if (s.topic != ddata)
            continue;
        const json p = payload(s);
        if (p["event"] == "record" && p["record"]["step"] == "write \"hi\"") {
            wrote = true;
            CHECK(p["record"]["status"] == "DEVHOST_OK");
            CHECK(p["record"]["text"] == "hi");
            CHECK(p["generation"] == 1);
        }
        if (p["event"] == "state" && p["state"] == "idle") {
            idle = true;
            CHECK(p["generation"] == 1);
        }
    }
    CHECK(wrote);
    CHECK(idle);
    check_seq(seen);
    // The death is the will: last, with the birth's bdSeq and no seq.
    CHECK(seen.back().topic == node_topic + "NDEATH/n1");
    const json death = payload(seen.back());
    CHECK(death == json{{"bdSeq", nbirth["bdSeq"]}, {"online", false}});
}

TEST_CASE("a clean stop publishes the death itself with seq")
{
    if (const std::string why = broker_missing(); !why.empty())
        DEVHOST_SKIP(why);
    Fleet f;
    auto devhost = f.serve(config(f.dir, f.broker.url()));
    REQUIRE(f.sub.wait([&](const auto &seen) { return count(seen, node_topic + "DDATA/n1/a", "record") >= 2; }, 20s));
    devhost->signal(SIGTERM);
    const ProcessResult r = devhost->wait(20s);
    CHECK(r.exit_code == 0);
    INFO(devhost->err());
    REQUIRE(f.sub.wait([&](const auto &seen) { return count(seen, node_topic + "NDEATH/n1") == 1; }, 5s));
    const auto seen = f.sub.messages();
    check_seq(seen);
    // The teardown's record went out before the death.
    bool closed = false;
    for (const auto &s : seen)
        closed = closed || (payload(s).value("event", "") == "record" && payload(s)["record"]["step"] == "close");
    CHECK(closed);
    const json death = payload(seen.back());
    CHECK(death["online"] == false);
    CHECK(death["bdSeq"] == payload(seen.front())["bdSeq"]);
    CHECK(death["seq"] == payload(seen[seen.size() - 2])["seq"].get<int64_t>() + 1);
    CHECK(devhost->err().find("mqtt: disconnected (node n1 announced dead)") != std::string::npos);
}

TEST_CASE("a broker that starts late gets the births when it comes")
{
    if (const std::string why = broker_missing(); !why.empty())
        DEVHOST_SKIP(why);
    TempDir dir;
    const int port = free_port();
    write_file(dir / "fleet.ini", config(dir, "mqtt://127.0.0.1:" + std::to_string(port)));
    auto devhost = start_serve(dir);
    // Serving goes on without the broker: records are written.
    REQUIRE(devhost->wait_for_output(
        "mqtt: 127.0.0.1:" + std::to_string(port) + ": Connection refused; retrying in 500 ms", 10s));
    std::this_thread::sleep_for(1s);
    Broker broker(dir.path(), port);
    Subscriber sub(dir.path(), broker, "devhost/#");
    // Retained births are there for a subscriber that came after them.
    REQUIRE(sub.wait([&](const auto &seen) { return count(seen, node_topic + "DDATA/n1/a", "record") >= 2; }, 40s));
    const auto seen = sub.messages();
    CHECK(seen[0].topic == node_topic + "NBIRTH/n1");
    CHECK(payload(seen[0])["bdSeq"].get<int64_t>() >= 1);  // earlier attempts had their own
    // The records made before the broker came waited in the spool (in
    // memory: no state-dir); the data comes with rseq counting on by one
    // (the subscriber may have come after the first ones).
    CHECK(devhost->err().find("mqtt: no [host] state-dir: the spool is in memory only") != std::string::npos);
    int64_t last_rseq = -1;
    for (const auto &s : seen)
        if (s.topic == node_topic + "DDATA/n1/a") {
            const int64_t rseq = payload(s).value("rseq", int64_t{0});
            CHECK((last_rseq < 0 || rseq == last_rseq + 1));
            last_rseq = rseq;
        }
}

TEST_CASE("a broker restart brings a new session with the next bdSeq")
{
    if (const std::string why = broker_missing(); !why.empty())
        DEVHOST_SKIP(why);
    TempDir dir;
    auto first = std::make_unique<Broker>(dir.path());
    const int port = first->port();
    int64_t before = -1;
    {
        Subscriber sub(dir.path(), *first, "devhost/#");
        write_file(dir / "fleet.ini", config(dir, first->url()));
        auto devhost = start_serve(dir);
        REQUIRE(sub.wait([&](const auto &seen) { return count(seen, node_topic + "DDATA/n1/a", "record") >= 2; }, 20s));
        before = payload(sub.messages().front())["bdSeq"].get<int64_t>();
        first->kill();
        REQUIRE(devhost->wait_for_output("retrying in 500 ms", 10s));
        Broker second(dir.path(), port);
        Subscriber again(dir.path(), second, "devhost/#");
        REQUIRE(again.wait([&](const auto &seen) { return count(seen, node_topic + "DDATA/n1/a", "record") >= 2; },
                           40s));
        const auto seen = again.messages();
        // The new session: its own births first, seq from 0 again, nothing
        // of the lost session sent again.
        CHECK(seen[0].topic == node_topic + "NBIRTH/n1");
        CHECK(payload(seen[0])["bdSeq"].get<int64_t>() > before);
        CHECK(seen[1].topic == node_topic + "DBIRTH/n1/a");
        check_seq(seen);
        const std::string state = payload(seen[1])["state"];  // as it is now, not as it was born
        CHECK((state == "idle" || state == "running"));
    }
}

TEST_CASE("mqtts with a CA file and a user whose password is in a root-only file")
{
    if (const std::string why = broker_missing(); !why.empty())
        DEVHOST_SKIP(why);
    TempDir dir;
    REQUIRE(make_certificates(dir.path()));
    // The broker: TLS only, no anonymous user, one user of its password file.
    const ProcessResult passwd =
        run_process({"/usr/bin/mosquitto_passwd", "-b", "-c", (dir / "broker.passwd").string(), "pc7", "s3cret"});
    REQUIRE(passwd.exit_code == 0);
    const std::string d = dir.path().string();
    Broker broker(dir.path(), 0,
                  "cafile " + d + "/ca.pem\ncertfile " + d + "/server.pem\nkeyfile " + d + "/server.key\n" +
                      "allow_anonymous false\npassword_file " + d + "/broker.passwd\n");
    Subscriber sub(dir.path(), broker, "devhost/#", {"--cafile", d + "/ca.pem", "-u", "pc7", "-P", "s3cret"});
    write_file(dir / "mqtt.pass", "s3cret\n");
    ::chmod((dir / "mqtt.pass").c_str(), 0600);
    const std::string url = "mqtts://localhost:" + std::to_string(broker.port());
    std::string ini = config(dir, url);
    ini.insert(ini.find("group ="),
               "ca-file = " + d + "/ca.pem\nusername = pc7\npassword-file = " + d + "/mqtt.pass\n");
    write_file(dir / "fleet.ini", ini);
    CHECK(run_devhost({"check", (dir / "fleet.ini").string()}).exit_code == 0);
    auto devhost = start_serve(dir);
    REQUIRE(sub.wait([&](const auto &seen) { return count(seen, node_topic + "DDATA/n1/a", "record") >= 2; }, 20s));
    CHECK(sub.messages()[0].topic == node_topic + "NBIRTH/n1");
    INFO(devhost->err());
    CHECK(devhost->err().find("mqtt: connected to localhost:" + std::to_string(broker.port()) + " as node n1") !=
          std::string::npos);

    // A wrong password: the broker refuses it, serve says so and serves on.
    write_file(dir / "wrong.pass", "wrong\n");
    ::chmod((dir / "wrong.pass").c_str(), 0600);
    const std::string wrong = "password-file = " + d + "/wrong.pass\nnode = n2\n";
    write_file(dir / "wrong.ini", std::regex_replace(std::regex_replace(ini, std::regex("password-file = [^\n]*\n"),
                                                                        wrong),
                                                     std::regex("node = n1\n"), ""));
    auto refused = start_serve(dir, "wrong");
    CHECK(refused->wait_for_output("mqtt: localhost:" + std::to_string(broker.port()) +
                                       " refused the connection: Connection Refused: not authorised.",
                                   10s));
    INFO(refused->err());
    CHECK(refused->wait_for_output("worker class loop started", 10s));
    devhost->signal(SIGTERM);
    CHECK(devhost->wait(20s).exit_code == 0);
}

TEST_CASE("a device a reload removes has its death and nothing after")
{
    if (const std::string why = broker_missing(); !why.empty())
        DEVHOST_SKIP(why);
    Fleet f;
    const std::string one = config(f.dir, f.broker.url());
    const std::string b = "[device b]\nclass = loop\npath = loop:b\nsetup = open\nbody = write \"b\"\n"
                          "teardown = close\nrun = every 200ms\n";
    auto devhost = f.serve(one + b);
    const std::string ddata_b = node_topic + "DDATA/n1/b";
    REQUIRE(f.sub.wait([&](const auto &seen) { return count(seen, ddata_b, "record") >= 2; }, 20s));
    write_file(f.dir / "fleet.ini", one);
    devhost->signal(SIGHUP);
    const std::string ddeath_b = node_topic + "DDEATH/n1/b";
    REQUIRE(f.sub.wait([&](const auto &seen) { return count(seen, ddeath_b) == 1; }, 20s));
    // Device a goes on; b published nothing after its death.
    const size_t a_before = count(f.sub.messages(), node_topic + "DDATA/n1/a", "record");
    REQUIRE(f.sub.wait([&](const auto &seen) { return count(seen, node_topic + "DDATA/n1/a", "record") >= a_before + 2; },
                     20s));
    const auto seen = f.sub.messages();
    bool dead = false;
    for (const auto &s : seen) {
        if (dead)
            CHECK(s.topic.find("/n1/b") == std::string::npos);
        if (s.topic == ddeath_b) {
            dead = true;
            CHECK(payload(s)["state"] == "removed");
            CHECK(payload(s)["class"] == "loop");
        }
    }
    check_seq(seen);
    INFO(devhost->err());
    CHECK(devhost->err().find("reload: b removed: tearing it down") != std::string::npos);
}
