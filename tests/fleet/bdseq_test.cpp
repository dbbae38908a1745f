// Sparkplug's bdSeq across restarts of devhost serve (issue 16), against a
// real broker: with [host] state-dir it is kept in STATE-DIR/mqtt-spool/bdseq
// (0600), so each start's NBIRTH carries a bdSeq above every earlier one,
// and each NDEATH (published by serve on a clean stop, or the broker's will
// after kill -9) carries its birth's. Without state-dir it starts from 0.
#include "fleet_fixture.hpp"
#include "devhost_test.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <sys/stat.h>

using namespace devhost::test;
using json = nlohmann::json;

namespace {

const std::string base = "devhost/g1/";

std::string config(const TempDir &dir, const std::string &broker_url, bool state_dir)
{
    return "[host]\ncontrol-socket = " + (dir / "control").string() + "\n" +
           (state_dir ? "state-dir = " + (dir / "state").string() + "\n" : "") + "[mqtt]\nbroker = " + broker_url +
           "\ngroup = g1\nnode = n1\nkeepalive = 5s\n"
           "[device a]\nclass = loop\npath = loop:a\nsetup = open\nbody = write \"hi\"\nbody = read exactly=2\n"
           "teardown = close\nrun = every 200ms\n";
}

// The bdSeq of every message on `topic`, in order.
std::vector<int64_t> bd_seqs(const std::vector<Seen> &seen, const std::string &topic)
{
    std::vector<int64_t> out;
    for (const auto &s : seen)
        if (s.topic == topic)
            out.push_back(json::parse(s.payload).value("bdSeq", int64_t{-1}));
    return out;
}

// One serve: up until its birth is seen, then stopped (SIGTERM) or killed
// (kill -9, its workers too), until its death is seen.
void one_run(const TempDir &dir, Subscriber &sub, size_t n, bool kill)
{
    auto devhost = start_serve(dir);
    INFO(devhost->err());
    REQUIRE(sub.wait([&](const auto &seen) { return bd_seqs(seen, base + "NBIRTH/n1").size() == n; }, 20s));
    if (kill) {
        const auto workers = workers_of(devhost->pid());
        devhost->signal(SIGKILL);
        for (pid_t w : workers)
            ::kill(w, SIGKILL);
        devhost->wait(10s);
    } else {
        devhost->signal(SIGTERM);
        CHECK(devhost->wait(20s).exit_code == 0);
    }
    REQUIRE(sub.wait([&](const auto &seen) { return bd_seqs(seen, base + "NDEATH/n1").size() == n; }, 20s));
}

}  // namespace

TEST_CASE("bdSeq counts on across restarts with a state-dir")
{
    if (const std::string why = broker_missing(); !why.empty())
        DEVHOST_SKIP(why);
    TempDir dir;
    Broker broker(dir.path());
    Subscriber sub(dir.path(), broker, "devhost/#");
    write_file(dir / "fleet.ini", config(dir, broker.url(), true));
    one_run(dir, sub, 1, false);
    one_run(dir, sub, 2, true);  // the will after kill -9
    one_run(dir, sub, 3, false);
    const auto seen = sub.messages();
    const auto births = bd_seqs(seen, base + "NBIRTH/n1");
    const auto deaths = bd_seqs(seen, base + "NDEATH/n1");
    REQUIRE(births.size() == 3);
    REQUIRE(deaths.size() == 3);
    CHECK(births[0] == 0);  // a new state directory: from 0
    CHECK(births[1] > births[0]);
    CHECK(births[2] > births[1]);
    CHECK(deaths == births);  // each death carries its birth's
    // Kept in the spool's directory, 0600.
    struct stat st {};
    REQUIRE(::lstat((dir / "state" / "mqtt-spool" / "bdseq").c_str(), &st) == 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK((st.st_mode & 07777) == 0600);
    CHECK(read_file(dir / "state" / "mqtt-spool" / "bdseq") == std::to_string(births[2]) + "\n");
}

TEST_CASE("bdSeq starts from 0 at each start without a state-dir")
{
    if (const std::string why = broker_missing(); !why.empty())
        DEVHOST_SKIP(why);
    TempDir dir;
    Broker broker(dir.path());
    Subscriber sub(dir.path(), broker, "devhost/#");
    write_file(dir / "fleet.ini", config(dir, broker.url(), false));
    one_run(dir, sub, 1, false);
    one_run(dir, sub, 2, false);
    const auto births = bd_seqs(sub.messages(), base + "NBIRTH/n1");
    CHECK(births == std::vector<int64_t>{0, 0});
}

TEST_CASE("a bdseq file that is a symbolic link stops serve")
{
    if (const std::string why = broker_missing(); !why.empty())
        DEVHOST_SKIP(why);
    TempDir dir;
    write_file(dir / "fleet.ini", config(dir, "mqtt://127.0.0.1:1", true));
    fs::create_directories(dir / "state" / "mqtt-spool");
    fs::permissions(dir / "state", fs::perms::owner_all);
    fs::permissions(dir / "state" / "mqtt-spool", fs::perms::owner_all);
    write_file(dir / "elsewhere", "7\n");
    fs::create_symlink(dir / "elsewhere", dir / "state" / "mqtt-spool" / "bdseq");
    const auto r = run_devhost({"serve", "--socket", (dir / "s.control").string(), (dir / "fleet.ini").string()},
                               {.timeout = 20s});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("[mqtt]: cannot keep the spool: " + (dir / "state" / "mqtt-spool" / "bdseq").string() +
                     " is a symbolic link") != std::string::npos);
}
