// A simulated fleet (issue 16 item 5): N devhost serve instances on this
// machine, each with its own config, [mqtt] node and client id, state and
// cache directories, control socket, records file and devices (a loop
// device and a serial device on its own [virtual] serial-echo peer),
// publishing to one real mosquitto on a free loopback port; a subscriber
// inside the test (libmosquitto, QoS 1; the broker queues without limit)
// checks, for every host:
//   - one NBIRTH (seq 0, online, its node, both devices with their class),
//     then each device's DBIRTH before any of its DDATA;
//   - every device's step records (DDATA), all DEVHOST_OK (but a step the
//     SIGTERM cancelled), carrying this host's own data (nothing crosses
//     between hosts);
//   - seq 0, 1, 2 ... without a gap over the connection's messages;
//   - after the stop, its NDEATH last: half the hosts are stopped with
//     SIGTERM (devhost publishes the death itself, with the next seq), half
//     killed with SIGKILL (the broker publishes the will: bdSeq, offline,
//     no seq); both carry the NBIRTH's bdSeq.
//
// The smoke version (CI, the default) runs 3 hosts until each device has 3
// records; DEVHOST_FLEET_FULL=1 runs the full one, 20 hosts and 5 records
// a device:
//   DEVHOST_FLEET_FULL=1 ctest -R fleet_sim_test --output-on-failure
// Every wait is bounded; every process is killed (and a killed host's
// [virtual] directory removed) when the test ends, whatever its outcome.
#include "broker.hpp"
#include "devhost_test.hpp"
#include "mqtt_watch.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <thread>

using namespace devhost::test;
using json = nlohmann::json;

namespace {

const std::string prefix = "devhost/sim/";
const std::vector<std::string> device_names = {"a", "tty"};

struct Shape {
    int hosts;
    size_t records;  // per device, before the hosts are stopped
    std::chrono::seconds wait;
};

Shape shape()
{
    const char *full = std::getenv("DEVHOST_FLEET_FULL");
    if (full && std::string(full) == "1")
        return {20, 5, 90s};
    return {3, 3, 45s};
}

std::string host_name(int i)
{
    return (i + 1 < 10 ? "h0" : "h") + std::to_string(i + 1);
}

// One host's config: everything it writes under `dir`, its own node.
std::string host_config(const fs::path &dir, const std::string &node, const std::string &broker_url)
{
    const std::string d = dir.string();
    return "[host]\nstate-dir = " + d + "/state\ncache-dir = " + d + "/cache\n"
           "[mqtt]\nbroker = " + broker_url + "\ngroup = sim\nnode = " + node + "\nclient-id = devhost-sim-" + node +
           "\nkeepalive = 10s\n"
           "[virtual echo]\nkind = serial-echo\n"
           "[device a]\nclass = loop\npath = loop:a\nsetup = open\nbody = write \"" + node + "\"\n"
           "body = read exactly=3\nteardown = close\nrun = every 200ms\n"
           "[device tty]\nclass = serial\npath = virtual:echo\nsetup = open\n"
           "body = request \"ping " + node + "\\n\" until=\"\\n\" expect=\"ping " + node + "\\n\"\n"
           "teardown = close\nrun = every 250ms\n";
}

// One serve instance; killed (and its workers, and what a kill leaves in
// /run/devhost/vdev) when it goes out of scope.
struct Host {
    std::string node;
    fs::path dir;
    std::unique_ptr<Child> process;
    bool killed = false;

    Host(const fs::path &root, const std::string &name, const std::string &broker_url) : node(name), dir(root / name)
    {
        fs::create_directories(dir);
        for (const char *sub : {"state", "cache"}) {
            fs::create_directories(dir / sub);
            ::chmod((dir / sub).c_str(), 0700);
        }
        write_file(dir / "devhost.ini", host_config(dir, node, broker_url));
        process = std::make_unique<Child>(std::vector<std::string>{devhost_exe().string(), "serve", "--output",
                                                                   (dir / "records.jsonl").string(), "--socket",
                                                                   (dir / "control").string(),
                                                                   (dir / "devhost.ini").string()},
                                          dir);
    }
    Host(const Host &) = delete;
    Host &operator=(const Host &) = delete;

    ~Host()
    {
        const std::string vdir = vdev_dir();
        kill9();
        process.reset();
        if (!vdir.empty() && killed)
            remove_left(vdir);  // a clean stop removed it itself
    }

    // kill -9 of devhost and its workers: nothing of it says goodbye.
    void kill9()
    {
        if (!process || killed)
            return;
        const auto workers = workers_of(process->pid());
        process->signal(SIGKILL);
        for (pid_t w : workers)
            ::kill(w, SIGKILL);
        process->wait(10s);
        killed = true;
    }

    // What a killed host leaves: its peers (which die with it) may still be
    // removing their endpoints, so a first try can fail.
    static void remove_left(const std::string &vdir)
    {
        const auto until = std::chrono::steady_clock::now() + 5s;
        std::error_code ec;
        while (fs::exists(vdir, ec) && std::chrono::steady_clock::now() < until) {
            fs::remove_all(vdir, ec);
            if (ec)
                std::fprintf(stderr, "removing %s: %s\n", vdir.c_str(), ec.message().c_str());
            std::this_thread::sleep_for(50ms);
        }
    }

    // Its [virtual] peers' directory, from its log ("" before they start).
    std::string vdev_dir() const
    {
        if (!process)
            return {};
        // logged before the log is set up: on standard output
        const std::string log = process->out() + process->err(), marker = "virtual devices of this run in ";
        auto at = log.find(marker);
        if (at == std::string::npos)
            return {};
        at += marker.size();
        return log.substr(at, log.find('\n', at) - at);
    }
};

// PREFIX/sim/TYPE/NODE[/DEVICE] split into its last three levels.
struct Topic {
    std::string type, node, device;
};

Topic split(const std::string &topic)
{
    Topic t;
    if (topic.rfind(prefix, 0) != 0)
        return t;
    std::stringstream rest(topic.substr(prefix.size()));
    std::getline(rest, t.type, '/');
    std::getline(rest, t.node, '/');
    std::getline(rest, t.device, '/');
    return t;
}

bool is_record(const Seen &s) { return s.payload.find("\"event\":\"record\"") != std::string::npos; }

// Counts each host's device records as they come (the place kept between
// calls), true once every device of every host has `want`.
struct RecordCount {
    size_t done = 0;
    std::map<std::string, size_t> per_device;  // "NODE/DEVICE"
    bool operator()(const std::vector<Seen> &seen, size_t hosts, size_t want)
    {
        for (; done < seen.size(); done++) {
            const Topic t = split(seen[done].topic);
            if (t.type == "DDATA" && is_record(seen[done]))
                per_device[t.node + "/" + t.device]++;
        }
        if (per_device.size() < hosts * device_names.size())
            return false;
        for (const auto &[key, n] : per_device)
            if (n < want)
                return false;
        return true;
    }
};

// What is wrong with one host's messages (in arrival order); empty if
// nothing. `killed`: its death is the broker's will, else its own.
std::vector<std::string> problems_of(const std::string &node, const std::vector<Seen> &seen, bool killed,
                                     size_t want_records)
{
    std::vector<std::string> bad;
    auto problem = [&](const std::string &what, const Seen *s = nullptr) {
        if (bad.size() < 12)
            bad.push_back(node + ": " + what + (s ? " (" + s->topic + " " + s->payload + ")" : ""));
    };
    if (seen.empty() || split(seen.front().topic).type != "NBIRTH")
        return {node + ": its first message is not its NBIRTH"};
    const json birth = json::parse(seen.front().payload, nullptr, false);
    if (birth.value("seq", -1) != 0 || birth.value("online", false) != true || birth.value("node", "") != node)
        problem("NBIRTH without seq 0, online, its node", &seen.front());
    std::map<std::string, std::string> classes;
    for (const auto &d : birth.value("devices", json::array()))
        classes[d.value("device", "")] = d.value("class", "");
    if (classes != std::map<std::string, std::string>{{"a", "loop"}, {"tty", "serial"}})
        problem("NBIRTH does not list devices a (loop) and tty (serial)", &seen.front());
    std::set<std::string> born;
    std::map<std::string, size_t> records;
    int64_t expected_seq = 0;
    for (size_t i = 0; i < seen.size(); i++) {
        const Seen &s = seen[i];
        const Topic t = split(s.topic);
        const json p = json::parse(s.payload, nullptr, false);
        if (p.is_discarded()) {
            problem("a payload that is not JSON", &s);
            continue;
        }
        if (t.type == "NDEATH") {
            if (i + 1 != seen.size())
                problem("a message after its NDEATH", &seen[i + 1]);
            json want = {{"bdSeq", birth["bdSeq"]}, {"online", false}};
            if (!killed) {
                want["seq"] = expected_seq;
                want["timestamp"] = p.value("timestamp", json());
            }
            if (p != want)
                problem(std::string(killed ? "not the will" : "not its own death") + ": want " + want.dump(), &s);
            continue;
        }
        if (p.value("seq", int64_t{-1}) != expected_seq)
            problem("seq " + std::to_string(expected_seq) + " expected", &s);
        expected_seq = p.value("seq", int64_t{-1}) + 1;  // one report per gap
        if (t.type == "NBIRTH" && i > 0)
            problem("a second NBIRTH (a new connection)", &s);
        if (t.type == "DBIRTH")
            born.insert(t.device);
        if (t.type == "DDATA" && !born.count(t.device))
            problem("DDATA before its device's DBIRTH", &s);
        if (t.type == "DDATA" && p.value("event", "") == "record") {
            const json &r = p["record"];
            records[t.device]++;
            // A SIGTERM cancels the body step in flight, if any.
            const std::string status = r.value("status", "");
            if (r.value("device", "") != t.device ||
                (status != "DEVHOST_OK" && (killed || status != "DEVHOST_E_CANCELLED")))
                problem("a record of another device, or neither DEVHOST_OK nor cancelled by the stop", &s);
            const std::string text = r.value("text", "");
            if (!text.empty() && text.find(node) == std::string::npos)
                problem("a record with another host's data", &s);
        }
    }
    if (split(seen.back().topic).type != "NDEATH")
        problem("no NDEATH");
    for (const auto &d : device_names) {
        if (!born.count(d))
            problem("no DBIRTH of " + d);
        if (records[d] < want_records)
            problem(std::to_string(records[d]) + " records of " + d + ", fewer than " + std::to_string(want_records));
    }
    return bad;
}

}  // namespace

TEST_CASE("a simulated fleet publishes each host's births, records and death")
{
    if (const std::string why = broker_missing(); !why.empty())
        DEVHOST_SKIP(why);
    const Shape sh = shape();
    TempDir dir;
    // No limit on the messages queued for a subscriber: none may be dropped.
    Broker broker(dir.path(), 0, "allow_anonymous true\nmax_queued_messages 0\n");
    Watcher watch(broker, "devhost/#");

    std::vector<std::unique_ptr<Host>> hosts;
    for (int i = 0; i < sh.hosts; i++)
        hosts.push_back(std::make_unique<Host>(dir.path(), host_name(i), broker.url()));
    RecordCount counted;
    const bool enough = watch.wait([&](const auto &seen) { return counted(seen, hosts.size(), sh.records); }, sh.wait);
    if (!enough) {
        std::string logs;
        for (const auto &h : hosts)
            logs += h->node + "'s log:\n" + h->process->err();
        INFO(logs);
        INFO("devices with records: " << counted.per_device.size() << " of " << hosts.size() * device_names.size());
        REQUIRE(enough);
    }

    // Even hosts stop cleanly, odd ones are killed; all at once.
    for (size_t i = 0; i < hosts.size(); i++) {
        if (i % 2)
            hosts[i]->kill9();
        else
            hosts[i]->process->signal(SIGTERM);
    }
    for (size_t i = 0; i < hosts.size(); i += 2) {
        const ProcessResult r = hosts[i]->process->wait(30s);
        INFO(hosts[i]->node << "'s log:\n" << hosts[i]->process->err());
        CHECK(r.exit_code == 0);
    }
    size_t deaths = 0;
    const bool all_dead = watch.wait(
        [&](const auto &seen) {
            deaths = 0;
            for (const auto &s : seen)
                deaths += split(s.topic).type == "NDEATH";
            return deaths == hosts.size();
        },
        20s);
    INFO("NDEATH messages: " << deaths << " of " << hosts.size());
    REQUIRE(all_dead);

    std::map<std::string, std::vector<Seen>> by_node;
    for (auto &s : watch.messages()) {
        const Topic t = split(s.topic);
        by_node[t.node].push_back(std::move(s));
    }
    CHECK(by_node.size() == hosts.size());  // nothing from a node not ours, no topic outside PREFIX/sim/
    for (size_t i = 0; i < hosts.size(); i++) {
        const auto bad = problems_of(hosts[i]->node, by_node[hosts[i]->node], i % 2 == 1, sh.records);
        std::string all;
        for (const auto &b : bad)
            all += b + "\n";
        INFO(all);
        CHECK(bad.empty());
    }
    // Each host wrote its records to its own file too.
    for (const auto &h : hosts)
        CHECK(fs::file_size(h->dir / "records.jsonl") > 0);
    std::printf("fleet: %zu hosts, %zu messages\n", hosts.size(), watch.messages().size());
}
