// devhost serve's spool between it and a real broker (issue 16, item 2):
// Debian's mosquitto on a free loopback port, real mosquitto_sub
// subscribers, the devhost binary serving a loop device with a state
// directory. The broker stopped for a while: the records are spooled
// (files 0600 in STATE/mqtt-spool) and come after the new births, each rseq
// once, in order, without a gap; devhost killed -9 with records spooled:
// the next serve sends them; a tiny spool: the oldest dropped, and an NDATA
// says how many.
#include "devhost_test.hpp"
#include "fleet_fixture.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <map>
#include <regex>
#include <sys/stat.h>
#include <thread>

using namespace devhost::test;
using json = nlohmann::json;

namespace {

const std::string ddata = "devhost/g1/DDATA/n1/a";
const std::string ndata = "devhost/g1/NDATA/n1";

std::string config(const TempDir &dir, int port, const std::string &mqtt_extra = "")
{
    return "[host]\nstate-dir = " + (dir / "state").string() + "\n[mqtt]\nbroker = mqtt://127.0.0.1:" +
           std::to_string(port) + "\ngroup = g1\nnode = n1\nkeepalive = 5s\n" + mqtt_extra +
           "[device a]\nclass = loop\npath = loop:a\nsetup = open\nbody = write \"hi\"\nbody = read exactly=2\n"
           "teardown = close\nrun = every 200ms\n";
}

void kill_serve(Child &devhost)
{
    const auto workers = workers_of(devhost.pid());
    devhost.signal(SIGKILL);
    for (pid_t w : workers)
        ::kill(w, SIGKILL);
    devhost.wait(10s);
}

// The spooled messages (rseq, then the payload's body) of what was seen.
std::vector<std::pair<int64_t, json>> spooled(const std::vector<Seen> &seen)
{
    std::vector<std::pair<int64_t, json>> out;
    for (const auto &s : seen)
        if (s.topic == ddata || s.topic == ndata) {
            json p = payload(s);
            if (p.contains("rseq"))
                out.emplace_back(p["rseq"].get<int64_t>(), p);
        }
    return out;
}

size_t records(const std::vector<Seen> &seen)
{
    size_t n = 0;
    for (const auto &[rseq, p] : spooled(seen))
        n += p.value("event", "") == "record";
    return n;
}

// What the spool directory holds, not yet confirmed: rseq to line.
std::map<int64_t, json> spool_on_disk(const TempDir &dir)
{
    const fs::path spool = dir / "state" / "mqtt-spool";
    std::map<int64_t, json> out;
    if (!fs::exists(spool / "committed"))
        return out;
    const int64_t committed = std::atoll(read_file(spool / "committed").c_str());
    for (const auto &e : fs::directory_iterator(spool))
        if (e.path().filename().string().rfind("seg-", 0) == 0)
            for (const auto &line : lines(read_file(e.path()))) {
                const json j = json::parse(line, nullptr, false);
                if (j.is_object() && j["rseq"].get<int64_t>() > committed)
                    out[j["rseq"].get<int64_t>()] = j;
            }
    return out;
}

// Every file of the spool is 0600, the directory 0700.
void check_modes(const TempDir &dir)
{
    const fs::path spool = dir / "state" / "mqtt-spool";
    struct stat st {};
    REQUIRE(::stat(spool.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0700);
    for (const auto &e : fs::directory_iterator(spool)) {
        REQUIRE(::stat(e.path().c_str(), &st) == 0);
        INFO(e.path());
        CHECK((st.st_mode & 07777) == 0600);
    }
}

// In the order seen, each rseq is the last one plus one, or one seen
// before (sent again after a connection broke before its confirmation):
// with those dropped, every rseq once, in order, from `first`, no gap.
// The rseq kept, in order.
std::vector<int64_t> check_rseq(const std::vector<std::pair<int64_t, json>> &seen, int64_t first = 1)
{
    std::vector<int64_t> kept;
    int64_t last = first - 1;
    for (const auto &[rseq, p] : seen) {
        INFO(p.dump());
        if (rseq <= last)
            continue;  // a repeat
        CHECK(rseq == last + 1);
        last = rseq;
        kept.push_back(rseq);
    }
    return kept;
}

}  // namespace

TEST_CASE("records spooled while the broker is stopped come after it, in order")
{
    if (const std::string why = broker_missing(); !why.empty())
        DEVHOST_SKIP(why);
    TempDir dir;
    fs::create_directory(dir / "mq");
    // The subscriber's session is persistent (clean session off, QoS 1) and
    // the broker saves it when stopped: what devhost publishes to the new
    // broker before the subscriber is back is kept for it.
    const std::string persist =
        "allow_anonymous true\npersistence true\npersistence_location " + (dir / "mq").string() + "/\n";
    const std::vector<std::string> session = {"-c", "-i", "spool-watcher", "-q", "1"};
    auto broker = std::make_unique<Broker>(dir.path(), 0, persist);
    const int port = broker->port();
    write_file(dir / "fleet.ini", config(dir, port));
    auto first = std::make_unique<Subscriber>(dir.path(), *broker, "devhost/#", std::vector<std::string>{}, session);
    auto devhost = start_serve(dir);
    REQUIRE(first->wait([&](const auto &seen) { return records(seen) >= 3; }, 20s));
    broker->stop();
    const std::vector<Seen> before = first->messages();
    first.reset();
    broker.reset();
    REQUIRE(devhost->wait_for_output("mqtt: 127.0.0.1:" + std::to_string(port) + ": ", 10s));
    // Records go on into the spool: at least 6 wait there.
    std::map<int64_t, json> waiting;
    const auto until = std::chrono::steady_clock::now() + 20s;
    while ((waiting = spool_on_disk(dir)).size() < 6 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(100ms);
    INFO(devhost->err());
    REQUIRE(waiting.size() >= 6);
    check_modes(dir);

    Broker again(dir.path(), port, persist);
    Subscriber sub(dir.path(), again, "devhost/#", {}, session);
    const int64_t last_waiting = waiting.rbegin()->first;
    REQUIRE(sub.wait(
        [&](const auto &seen) {
            for (const auto &[rseq, p] : spooled(seen))
                if (rseq > last_waiting + 3)
                    return true;
            return false;
        },
        40s));
    const auto after = sub.messages();
    // The new session's births come before the spooled records.
    size_t birth = after.size(), first_spooled = after.size();
    for (size_t i = 0; i < after.size(); i++) {
        if (birth == after.size() && after[i].topic == "devhost/g1/NBIRTH/n1" &&
            payload(after[i])["bdSeq"] > payload(before.front())["bdSeq"])
            birth = i;
        if (first_spooled == after.size() && !spooled({after[i]}).empty() &&
            spooled({after[i]})[0].first == waiting.begin()->first)
            first_spooled = i;
    }
    CHECK(birth < first_spooled);
    REQUIRE(first_spooled < after.size());
    // Before and after together: every rseq once, in order, no gap; each
    // one that waited in the spool arrived as it was spooled.
    auto all = spooled(before);
    const auto later = spooled(after);
    all.insert(all.end(), later.begin(), later.end());
    const auto kept = check_rseq(all);
    for (const auto &[rseq, line] : waiting) {
        bool found = false;
        for (const auto &[r, p] : later)
            if (r == rseq) {
                found = true;
                json body = json::parse(line["body"].get<std::string>());
                json sent = p;
                sent.erase("seq");
                sent.erase("rseq");
                CHECK(sent == body);
            }
        CHECK(found);
    }
    CHECK(std::find(kept.begin(), kept.end(), last_waiting) != kept.end());
    CHECK(devhost->err().find("mqtt: sending ") != std::string::npos);
    devhost->signal(SIGTERM);
    CHECK(devhost->wait(20s).exit_code == 0);
}

TEST_CASE("records spooled before a kill -9 of devhost are sent by the next serve")
{
    if (const std::string why = broker_missing(); !why.empty())
        DEVHOST_SKIP(why);
    TempDir dir;
    const int port = free_port();
    write_file(dir / "fleet.ini", config(dir, port));
    std::map<int64_t, json> waiting;
    {
        auto devhost = start_serve(dir, "first", "fleet");
        REQUIRE(devhost->wait_for_output("Connection refused", 10s));
        const auto until = std::chrono::steady_clock::now() + 20s;
        while ((waiting = spool_on_disk(dir)).size() < 8 && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(100ms);
        kill_serve(*devhost);
    }
    waiting = spool_on_disk(dir);
    REQUIRE(waiting.size() >= 8);
    CHECK(waiting.begin()->first == 1);
    check_modes(dir);

    Broker broker(dir.path(), port);
    Subscriber sub(dir.path(), broker, "devhost/#");
    auto devhost = start_serve(dir, "second", "fleet");
    const int64_t last_waiting = waiting.rbegin()->first;
    REQUIRE(sub.wait(
        [&](const auto &seen) {
            for (const auto &[rseq, p] : spooled(seen))
                if (rseq > last_waiting + 3)
                    return true;
            return false;
        },
        30s));
    INFO(devhost->err());
    CHECK(devhost->err().find("mqtt: spool " + (dir / "state" / "mqtt-spool").string() + ": " +
                              std::to_string(waiting.size()) + " message(s) from before to send") != std::string::npos);
    const auto seen = sub.messages();
    CHECK(seen.front().topic == "devhost/g1/NBIRTH/n1");
    // No repeat here (no connection broke): each rseq once, from 1.
    const auto all = spooled(seen);
    const auto kept = check_rseq(all);
    CHECK(kept.size() == all.size());
    REQUIRE(kept.size() > waiting.size());
    for (const auto &[rseq, p] : all)
        if (waiting.count(rseq)) {
            json sent = p;
            sent.erase("seq");
            sent.erase("rseq");
            CHECK(sent == json::parse(waiting[rseq]["body"].get<std::string>()));
        }
    devhost->signal(SIGTERM);
    CHECK(devhost->wait(20s).exit_code == 0);
    // All confirmed: nothing waits in the spool after a clean stop.
    CHECK(spool_on_disk(dir).empty());
}

TEST_CASE("a tiny spool drops the oldest and says how many")
{
    if (const std::string why = broker_missing(); !why.empty())
        DEVHOST_SKIP(why);
    TempDir dir;
    const int port = free_port();
    write_file(dir / "fleet.ini", config(dir, port, "spool-max-bytes = 4K\n"));
    {
        auto devhost = start_serve(dir, "first", "fleet");
        REQUIRE(devhost->wait_for_output("mqtt: spool: dropped the ", 20s));
        devhost->signal(SIGTERM);  // a clean stop keeps the spool too
        CHECK(devhost->wait(20s).exit_code == 0);
        INFO(devhost->err());
        CHECK(std::regex_search(devhost->err(), std::regex("mqtt: spool: dropped the [1-9][0-9]* oldest message\\(s\\) "
                                                           "\\(over spool-max-bytes or spool-max-age\\)")));
    }
    uint64_t on_disk = 0;
    for (const auto &e : fs::directory_iterator(dir / "state" / "mqtt-spool"))
        on_disk += fs::file_size(e.path());
    CHECK(on_disk <= 4096 + 1024 + 1024);  // the bound, a segment more, the committed file and a line

    Broker broker(dir.path(), port);
    Subscriber sub(dir.path(), broker, "devhost/#");
    auto devhost = start_serve(dir, "second", "fleet");
    REQUIRE(sub.wait([&](const auto &seen) { return records(seen) >= 10; }, 30s));
    devhost->signal(SIGTERM);
    CHECK(devhost->wait(20s).exit_code == 0);
    const auto all = spooled(sub.messages());
    REQUIRE(!all.empty());
    // The oldest are gone: the first sent is not rseq 1; the drop notices
    // add up to every rseq that never came.
    CHECK(all.front().first > 1);
    int64_t reported = 0, last = 0, missing = 0;
    std::string shown;
    for (const auto &[rseq, p] : all)
        shown += std::to_string(rseq) + (p.value("event", "") == "dropped" ? "d" + p["dropped"].dump() : "") + " ";
    INFO(shown);
    for (const auto &[rseq, p] : all) {
        INFO(p.dump());
        CHECK(rseq > last);
        missing += rseq - last - 1;
        last = rseq;
        if (p.value("event", "") == "dropped")
            reported += p["dropped"].get<int64_t>();
    }
    CHECK(reported > 0);
    CHECK(reported == missing);
}

TEST_CASE("serve refuses a spool directory another user planted")
{
    if (::geteuid() != 0)
        DEVHOST_SKIP("needs root to drop to uid 65534 and to chown");
    TempDir dir;
    ::chmod(dir.path().c_str(), 0755);
    // A sticky directory anyone may add to, like /tmp; the state directory
    // named under it does not exist yet, and user 65534 makes it first.
    fs::create_directory(dir / "pub");
    ::chmod((dir / "pub").c_str(), 01777);
    const ProcessResult planted = run_process({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                               "/bin/mkdir", "-p", (dir / "pub" / "state" / "mqtt-spool").string()});
    REQUIRE(planted.exit_code == 0);
    std::string ini = config(dir, free_port());
    ini.replace(ini.find((dir / "state").string()), (dir / "state").string().size(), (dir / "pub" / "state").string());
    write_file(dir / "fleet.ini", ini);
    auto devhost = start_serve(dir);
    const ProcessResult r = devhost->wait(20s);
    CHECK(r.exit_code == 2);
    CHECK(devhost->err() == "devhost: error: " + (dir / "fleet.ini").string() +
                                ":4: [mqtt]: cannot keep the spool: directory " + (dir / "pub" / "state").string() +
                                " is owned by uid 65534 (not root or uid 0)\n");
    // Nothing was written in it.
    CHECK(fs::is_empty(dir / "pub" / "state" / "mqtt-spool"));
}
