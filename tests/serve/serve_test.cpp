// `devhost serve` end to end (serve.hpp): every case starts the devhost
// binary on a config in a temporary directory, reads its records (JSON
// lines in a file) and its log, and stops it with SIGTERM.
#include "devhost_test.hpp"
#include "devices.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <sstream>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

using namespace devhost::test;
using json = nlohmann::json;

namespace {

std::vector<json> records_in(const fs::path &file)
{
    std::vector<json> out;
    std::error_code ec;
    if (!fs::exists(file, ec))
        return out;
    for (const auto &line : lines(read_file(file)))
        if (!line.empty())
            out.push_back(json::parse(line, nullptr, false));
    return out;
}

std::vector<json> of_device(const std::vector<json> &records, const std::string &device)
{
    std::vector<json> out;
    for (const auto &r : records)
        if (r.value("device", "") == device)
            out.push_back(r);
    return out;
}

size_t count_phase(const std::vector<json> &records, const std::string &phase)
{
    size_t n = 0;
    for (const auto &r : records)
        n += r.value("phase", "") == phase;
    return n;
}

// Waits (up to `timeout`) until `pred` holds.
bool wait_until(const std::function<bool()> &pred, std::chrono::milliseconds timeout = 30s)
{
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
        if (pred())
            return true;
        std::this_thread::sleep_for(20ms);
    }
    return pred();
}

// devhost serve on `config`, records to `out`.
struct Served {
    Served(const TempDir &dir, const fs::path &config, std::map<std::string, std::string> env = {})
        : out(dir / "records.jsonl"),
          child({devhost_exe().string(), "serve", "--output", out.string(), "--socket", (dir / "control").string(),
                 config.string()},
                dir.path(),
                ProcessOptions{60s, "", std::move(env), {}, {}})
    {
    }
    std::vector<json> records() const { return records_in(out); }
    // SIGTERM, then its exit.
    ProcessResult stop()
    {
        child.signal(SIGTERM);
        return child.wait(20s);
    }
    fs::path out;
    Child child;
};

// A datagram socket at `path` standing for systemd's NOTIFY_SOCKET: what
// serve sent, one string per datagram.
struct NotifySocket {
    explicit NotifySocket(const fs::path &path)
    {
        fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        bound = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0;
    }
    ~NotifySocket() { ::close(fd); }
    NotifySocket(const NotifySocket &) = delete;
    NotifySocket &operator=(const NotifySocket &) = delete;
    const std::vector<std::string> &read()
    {
        char buf[4096];
        ssize_t n;
        while ((n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
            messages.emplace_back(buf, static_cast<size_t>(n));
        return messages;
    }
    int fd = -1;
    bool bound = false;
    std::vector<std::string> messages;
};

const std::string loop_device(const std::string &name, const std::string &body, const std::string &run)
{
    return "[device " + name + "]\nclass = loop\npath = loop:" + name + "\nsetup = open\nbody = " + body +
           "\nteardown = close\nrun = " + run + "\n";
}

}  // namespace

TEST_CASE("serve: a periodic device on a pty: setup once, bodies every period, teardown at the stop")
{
    TempDir dir;
    Pty pty(PtyMode::raw);
    write_file(dir / "serve.ini", "[device scale]\nclass = serial\npath = " + pty.path +
                                      "\nsetup = open\nbody = write \"W\\r\"\nteardown = close\nrun = every 100ms\n");
    Served serve(dir, dir / "serve.ini");
    REQUIRE(wait_until([&] { return count_phase(serve.records(), "body") >= 5; }));
    // Each body reached the peer.
    CHECK(pty.receive(10, 2000).substr(0, 10) == "W\rW\rW\rW\rW\r");
    const ProcessResult r = serve.stop();
    CHECK(r.exit_code == 0);
    const auto recs = serve.records();
    REQUIRE(recs.size() >= 7);
    CHECK(recs.front().value("step", "") == "open");
    CHECK(recs.front().value("phase", "") == "setup");
    CHECK(count_phase(recs, "setup") == 1);
    CHECK(recs.back().value("step", "") == "close");
    CHECK(recs.back().value("phase", "") == "teardown");
    for (const auto &rec : recs) {
        CHECK(rec.value("generation", 0) == 1);
        CHECK(rec.value("status", "") == "DEVHOST_OK");
    }
    CHECK(r.err.find("scale: torn down (generation 1;") != std::string::npos);
}

TEST_CASE("serve: a body slower than its period is not started twice, the ticks it overran are skipped and counted")
{
    TempDir dir;
    write_file(dir / "serve.ini", loop_device("slow", "sleep 300ms", "every 50ms"));
    Served serve(dir, dir / "serve.ini");
    REQUIRE(wait_until([&] { return count_phase(serve.records(), "body") >= 4; }));
    const ProcessResult r = serve.stop();
    REQUIRE(r.exit_code == 0);
    // One body at a time: each starts after the last ended (a sleep record's
    // time is its end; consecutive ones are at least 300 ms apart).
    std::vector<double> ends;
    for (const auto &rec : serve.records())  // the one the stop cancelled left out
        if (rec.value("phase", "") == "body" && rec.value("status", "") == "DEVHOST_OK") {
            const std::string t = rec.value("time", "");
            ends.push_back(std::stod(t.substr(17, 9)) + 60 * std::stod(t.substr(14, 2)));
        }
    for (size_t i = 1; i < ends.size(); i++)
        CHECK(ends[i] - ends[i - 1] >= 0.29);
    // 300 ms bodies every 50 ms: five ticks of six are skipped.
    const auto at = r.err.find("slow: torn down (generation 1; bodies: ");
    REQUIRE(at != std::string::npos);
    const auto skipped_at = r.err.find("; ", r.err.find("failed", at)) + 2;
    const int skipped = std::stoi(r.err.substr(skipped_at));
    CHECK(skipped >= 4 * static_cast<int>(ends.size() - 1));
    CHECK(r.err.find("ticks skipped)", skipped_at) != std::string::npos);
}

TEST_CASE("serve: NOTIFY_SOCKET sees READY, WATCHDOG, RELOADING, READY, STOPPING in order")
{
    TempDir dir;
    const fs::path sock = dir / "notify";
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock.c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
    std::vector<std::string> states;
    const auto read_states = [&] {
        char buf[4096];
        ssize_t n;
        while ((n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
            const std::string msg(buf, static_cast<size_t>(n));
            if (msg.rfind("STATUS=", 0) != 0)
                states.push_back(msg.substr(0, msg.find('\n')));
        }
    };
    const auto seen = [&](const std::string &state) {
        read_states();
        return std::count(states.begin(), states.end(), state);
    };
    write_file(dir / "serve.ini", loop_device("a", "write \"x\"", "every 100ms"));
    Served serve(dir, dir / "serve.ini", {{"NOTIFY_SOCKET", sock.string()}, {"WATCHDOG_USEC", "200000"}});
    REQUIRE(wait_until([&] { return seen("WATCHDOG=1") >= 2; }));
    serve.child.signal(SIGHUP);
    REQUIRE(wait_until([&] { return seen("READY=1") >= 2; }));
    REQUIRE(serve.stop().exit_code == 0);
    read_states();
    ::close(fd);
    std::vector<std::string> order;
    for (const auto &s : states)
        if (order.empty() || order.back() != s)
            order.push_back(s);
    const std::vector<std::string> expected = {"READY=1",   "WATCHDOG=1", "RELOADING=1",
                                               "READY=1",   "WATCHDOG=1", "STOPPING=1"};
    // Pings go on after the reload; none need come between READY and STOPPING.
    std::vector<std::string> head(order.begin(), order.begin() + std::min<size_t>(order.size(), 4));
    CHECK(head == std::vector<std::string>(expected.begin(), expected.begin() + 4));
    // STOPPING comes once, after them; only watchdog pings may follow it
    // (the loop still answers while it tears the devices down).
    const auto stopping = std::find(order.begin(), order.end(), "STOPPING=1");
    REQUIRE(stopping != order.end());
    CHECK(stopping - order.begin() >= 4);
    for (auto it = stopping + 1; it != order.end(); ++it)
        CHECK(*it == "WATCHDOG=1");
}

TEST_CASE("serve: SIGHUP adds, removes and changes devices without touching the unchanged one")
{
    TempDir dir;
    const std::string same = loop_device("same", "write \"s\"", "every 50ms");
    write_file(dir / "serve.ini", loop_device("gone", "write \"g\"", "every 50ms") + same +
                                      loop_device("changed", "write \"1\"", "every 50ms"));
    Served serve(dir, dir / "serve.ini");
    REQUIRE(wait_until([&] { return count_phase(of_device(serve.records(), "changed"), "body") >= 2; }));
    // Sections move (line numbers change): only content counts.
    write_file(dir / "serve.ini", "# reloaded\n" + loop_device("changed", "write \"2\"", "every 50ms") + same +
                                      loop_device("new", "write \"n\"", "every 50ms"));
    serve.child.signal(SIGHUP);
    REQUIRE(wait_until([&] {
        const auto recs = serve.records();
        return count_phase(of_device(recs, "new"), "body") >= 2 &&
               !of_device(recs, "changed").empty() && of_device(recs, "changed").back().value("text", "") == "2";
    }));
    const auto before_stop = serve.records();
    const auto same_recs = of_device(before_stop, "same");
    CHECK(count_phase(same_recs, "teardown") == 0);
    CHECK(count_phase(same_recs, "setup") == 1);
    for (const auto &rec : same_recs)
        CHECK(rec.value("generation", 0) == 1);
    const auto gone = of_device(before_stop, "gone");
    REQUIRE(!gone.empty());
    CHECK(gone.back().value("phase", "") == "teardown");
    CHECK(gone.back().value("step", "") == "close");
    const auto changed = of_device(before_stop, "changed");
    CHECK(count_phase(changed, "teardown") == 1);
    CHECK(count_phase(changed, "setup") == 2);
    CHECK(count_phase(of_device(before_stop, "new"), "setup") == 1);
    const ProcessResult r = serve.stop();
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("reload: gone removed") != std::string::npos);
    CHECK(r.err.find("reload: changed changed") != std::string::npos);
    CHECK(r.err.find("reload: new added") != std::string::npos);
    CHECK(r.err.find("reload: same") == std::string::npos);
}

TEST_CASE("serve: a bad config on SIGHUP is refused, its errors logged, and the old devices keep running")
{
    TempDir dir;
    write_file(dir / "serve.ini", loop_device("a", "write \"x\"", "every 50ms"));
    Served serve(dir, dir / "serve.ini");
    REQUIRE(wait_until([&] { return count_phase(serve.records(), "body") >= 2; }));
    write_file(dir / "serve.ini", loop_device("a", "open", "every 50ms"));
    serve.child.signal(SIGHUP);
    REQUIRE(serve.child.wait_for_output("reload refused", 10s));
    const size_t bodies = count_phase(serve.records(), "body");
    REQUIRE(wait_until([&] { return count_phase(serve.records(), "body") >= bodies + 3; }));
    CHECK(count_phase(serve.records(), "teardown") == 0);
    const ProcessResult r = serve.stop();
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("serve.ini:5: [device a] body 'open': a body runs at every trigger and must leave the device "
                     "as it found it: move it to setup") != std::string::npos);
    for (const auto &rec : serve.records())
        CHECK(rec.value("generation", 0) == 1);
}

TEST_CASE("serve: check refuses a body that cannot repeat, naming the step")
{
    TempDir dir;
    write_file(dir / "serve.ini", "[device a]\nclass = loop\npath = loop:a\nsetup = open\nbody = lock\n"
                                  "body = write \"x\"\nteardown = close\n");
    const ProcessResult r = run_devhost({"check", (dir / "serve.ini").string()});
    CHECK(r.exit_code == 2);
    CHECK(r.err == "devhost: error: " + (dir / "serve.ini").string() +
                       ":5: [device a] body 'lock': a body runs at every trigger and must leave the device as it "
                       "found it: it leaves the lock taken (add 'body = unlock' after it, or take the lock in setup)\n");
}

TEST_CASE("serve: a worker that crashes costs its device a record, the device is set up again with generation + 1")
{
    TempDir dir;
    write_file(dir / "serve.ini", "[host]\nallow-faults = true\n" + loop_device("a", "write \"x\"", "every 50ms") +
                                      "fault = transfer@3:crash\n" + loop_device("b", "write \"y\"", "every 50ms"));
    Served serve(dir, dir / "serve.ini");
    REQUIRE(wait_until([&] {
        const auto a = of_device(serve.records(), "a");
        return std::any_of(a.begin(), a.end(), [](const json &rec) {
            return rec.value("generation", 0) >= 2 && rec.value("phase", "") == "body";
        });
    }));
    // Between ticks the loop sleeps: a backoff or retry time left in the
    // past must not make it spin (a second of serving costs well under 0.2 s).
    const long before = cpu_ticks(serve.child.pid());
    std::this_thread::sleep_for(1s);
    CHECK(cpu_ticks(serve.child.pid()) - before < sysconf(_SC_CLK_TCK) / 5);
    const ProcessResult r = serve.stop();
    CHECK(r.exit_code == 0);
    const auto a = of_device(serve.records(), "a");
    const auto lost = std::find_if(a.begin(), a.end(), [](const json &rec) {
        return rec.value("status", "") == "DEVHOST_E_HOST_FAILED";
    });
    REQUIRE(lost != a.end());
    CHECK(lost->value("generation", 0) == 1);
    CHECK(lost->value("phase", "") == "body");
    CHECK(lost->value("message", "").find("was killed by signal") != std::string::npos);
    // The next record is generation 2's setup.
    REQUIRE(lost + 1 != a.end());
    CHECK((lost + 1)->value("generation", 0) == 2);
    CHECK((lost + 1)->value("phase", "") == "setup");
    CHECK((lost + 1)->value("step", "") == "open");
    // b shared the worker: it lost its open device too and came back.
    const auto b = of_device(serve.records(), "b");
    // (a crashes again at its third transfer of each generation: there may be more)
    CHECK(count_phase(b, "setup") >= 2);
    CHECK(b.back().value("generation", 0) >= 2);
}

TEST_CASE("serve: stale-after marks a device whose bodies fail stale, in STATUS")
{
    TempDir dir;
    NotifySocket notify(dir / "notify");
    REQUIRE(notify.bound);
    // Nothing was written: each read times out, no body succeeds.
    write_file(dir / "serve.ini", loop_device("quiet", "read 1 timeout=10ms", "every 50ms") +
                                      "stale-after = 300ms\n" + loop_device("fine", "write \"x\"", "every 50ms"));
    Served serve(dir, dir / "serve.ini", {{"NOTIFY_SOCKET", (dir / "notify").string()}});
    const auto has = [&](const std::string &message) {
        const auto &all = notify.read();
        return std::find(all.begin(), all.end(), message) != all.end();
    };
    REQUIRE(wait_until([&] { return has("STATUS=2 devices: 1 idle, 1 stale"); }));
    const ProcessResult r = serve.stop();
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("quiet: torn down (generation 1; bodies: 0 ok, ") != std::string::npos);
    // Before it: every device set up and idle.
    CHECK(has("STATUS=2 devices: 2 idle"));
}

TEST_CASE("serve: devhost run runs a device's setup, body and teardown once, in that order")
{
    TempDir dir;
    // Lines out of phase order: the phases order them.
    write_file(dir / "run.ini", "[device a]\nclass = loop\npath = loop:a\nteardown = close\nbody = write \"x\"\n"
                                "setup = open\nbody = read 1\nrun = every 1s\n");
    const ProcessResult r = run_devhost({"run", (dir / "run.ini").string()});
    REQUIRE(r.exit_code == 0);
    std::vector<std::string> steps;
    for (const auto &line : lines(r.out)) {
        const json rec = json::parse(line);
        steps.push_back(rec.value("step", ""));
        CHECK(!rec.contains("generation"));
        CHECK(!rec.contains("phase"));
    }
    CHECK(steps == std::vector<std::string>{"open", "write \"x\"", "read 1", "close"});
}

TEST_CASE("serve: a stop cancels a body in flight, and the teardown still runs")
{
    TempDir dir;
    // The read waits a minute for a byte nobody writes.
    write_file(dir / "serve.ini", "[host]\ntimeout = 1m\n" + loop_device("waiting", "read 1", "start"));
    Served serve(dir, dir / "serve.ini");
    REQUIRE(wait_until([&] { return count_phase(serve.records(), "setup") == 1; }));
    std::this_thread::sleep_for(200ms);
    const auto start = std::chrono::steady_clock::now();
    const ProcessResult r = serve.stop();
    CHECK(elapsed_ms(start) < 3000);
    CHECK(r.exit_code == 0);
    const auto recs = serve.records();
    REQUIRE(recs.size() == 3);
    CHECK(recs[1].value("step", "") == "read 1");
    CHECK(recs[1].value("status", "") == "DEVHOST_E_CANCELLED");
    CHECK(recs[2].value("step", "") == "close");
    CHECK(recs[2].value("phase", "") == "teardown");
    CHECK(recs[2].value("status", "") == "DEVHOST_OK");
}

TEST_CASE("serve: an on-demand device called through the control socket, and its state in devhost status")
{
    TempDir dir;
    // Body: write then read back what the loop device echoes.
    write_file(dir / "serve.ini", loop_device("asked", "write \"ping\"\nbody = read exactly=4 expect=\"ping\"", "on-demand"));
    Served serve(dir, dir / "serve.ini");
    const std::string socket = (dir / "control").string();
    REQUIRE(wait_until([&] { return fs::exists(socket); }));
    REQUIRE(wait_until([&] {
        const auto s = run_devhost({"status", "--socket", socket, "--json"});
        return s.exit_code == 0 && s.out.find("\"state\":\"idle\"") != std::string::npos;
    }));

    const auto call = run_devhost({"call", "--socket", socket, "asked"});
    INFO(call.err);
    CHECK(call.exit_code == 0);
    const auto lines_out = lines(call.out);
    REQUIRE(lines_out.size() == 2);
    CHECK(json::parse(lines_out[0])["step"] == "write \"ping\"");
    CHECK(json::parse(lines_out[1])["text"] == "ping");
    CHECK(json::parse(lines_out[1])["status"] == "DEVHOST_OK");

    const auto status = run_devhost({"status", "--socket", socket, "--json"});
    REQUIRE(status.exit_code == 0);
    const auto doc = json::parse(status.out);
    REQUIRE(doc["devices"].size() == 1);
    CHECK(doc["devices"][0]["device"] == "asked");
    CHECK(doc["devices"][0]["bodies_ok"] == 1);
    CHECK(doc["devices"][0]["generation"] == 1);

    const auto unknown = run_devhost({"call", "--socket", socket, "nosuch"});
    CHECK(unknown.exit_code == 7);

    const auto r = serve.stop();
    CHECK(r.exit_code == 0);
    CHECK_FALSE(fs::exists(socket));  // removed at the stop
}

namespace {

// A socat pty pair whose first pty is linked at `link`: the peer a device
// opens, gone (and the link with it) when socat is stopped.
struct SocatPty {
    SocatPty(const TempDir &dir, const fs::path &link)
        : child({"/usr/bin/socat", "pty,link=" + link.string() + ",raw,echo=0", "pty,raw,echo=0"}, dir.path())
    {
        ready = wait_until([&] { return fs::exists(link); }, 10s);
    }
    ~SocatPty() { stop(); }
    void stop()
    {
        if (stopped)
            return;
        child.signal(SIGTERM);
        child.wait(10s);
        stopped = true;
    }
    Child child;
    bool ready = false;
    bool stopped = false;
};

json device_status(const std::string &socket, const std::string &device)
{
    const auto s = run_devhost({"status", "--socket", socket, "--json"});
    if (s.exit_code != 0)
        return json::object();
    for (const auto &d : json::parse(s.out, nullptr, false).value("devices", json::array()))
        if (d.value("device", "") == device)
            return d;
    return json::object();
}

}  // namespace

TEST_CASE("serve: a peer that goes away and comes back: waiting, then set up again with generation + 1")
{
    if (!fs::exists("/usr/bin/socat")) {
        DEVHOST_SKIP("socat is not installed");
        return;
    }
    TempDir dir;
    const fs::path link = dir / "tty0";
    write_file(dir / "serve.ini", "[device modem]\nclass = serial\npath = " + link.string() +
                                      "\nsetup = open\nbody = write \"AT\\r\"\nteardown = close\nrun = every 50ms\n");
    auto peer = std::make_unique<SocatPty>(dir, link);
    REQUIRE(peer->ready);
    Served serve(dir, dir / "serve.ini");
    const std::string socket = (dir / "control").string();
    REQUIRE(wait_until([&] { return count_phase(serve.records(), "body") >= 3; }));

    peer->stop();  // the peer goes, and its link
    REQUIRE(wait_until([&] { return device_status(socket, "modem").value("state", "") == "waiting-for-device"; }));
    const json waiting = device_status(socket, "modem");
    CHECK(waiting["generation"] == 1);
    CHECK(waiting["message"].get<std::string>().find(link.string()) != std::string::npos);
    const auto call = run_devhost({"call", "--socket", socket, "modem"});
    CHECK(call.exit_code != 0);
    CHECK(call.err.find("waiting-for-device") != std::string::npos);

    peer = std::make_unique<SocatPty>(dir, link);  // back, at the same place
    REQUIRE(peer->ready);
    REQUIRE(wait_until([&] {
        const auto recs = serve.records();
        return std::any_of(recs.begin(), recs.end(), [](const json &r) {
            return r.value("generation", 0) == 2 && r.value("phase", "") == "body" && r.value("status", "") == "DEVHOST_OK";
        });
    }));
    CHECK(device_status(socket, "modem")["generation"] == 2);
    const ProcessResult r = serve.stop();
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("modem: waiting for its device: ") != std::string::npos);
    CHECK(r.err.find("modem: its device is back (" + link.string() + ")") != std::string::npos);
    // Each generation: its setup first, its teardown last (the first torn
    // down when its device went, with nothing left open).
    const auto recs = serve.records();
    for (int gen : {1, 2}) {
        std::vector<json> of;
        for (const auto &rec : recs)
            if (rec.value("generation", 0) == gen)
                of.push_back(rec);
        REQUIRE(of.size() >= 3);
        CHECK(of.front().value("phase", "") == "setup");
        CHECK(of.front().value("step", "") == "open");
        CHECK(of.back().value("phase", "") == "teardown");
        CHECK(of.back().value("step", "") == "close");
    }
}

TEST_CASE("serve: a body that fails REMOVED is torn down and set up again, spending no restart budget")
{
    TempDir dir;
    // The third transfer of each attach fails as a device that went away;
    // a budget of 2 would have failed the device long before generation 5.
    write_file(dir / "serve.ini", "[host]\nallow-faults = true\nrestart-budget = 2\n" +
                                      loop_device("flaky", "write \"x\"", "every 20ms") +
                                      "fault = transfer@3:fail=removed\n");
    Served serve(dir, dir / "serve.ini");
    const std::string socket = (dir / "control").string();
    REQUIRE(wait_until([&] {
        const auto recs = serve.records();
        return std::any_of(recs.begin(), recs.end(), [](const json &r) { return r.value("generation", 0) >= 5; });
    }));
    const json st = device_status(socket, "flaky");
    CHECK(st.value("state", "") != "failed");
    const ProcessResult r = serve.stop();
    CHECK(r.exit_code == 0);
    const auto recs = serve.records();
    size_t removed = 0;
    for (const auto &rec : recs)
        removed += rec.value("status", "") == "DEVHOST_E_REMOVED";
    CHECK(removed >= 4);
    CHECK(r.err.find("flaky: waiting for its device: body failed: DEVHOST_E_REMOVED") != std::string::npos);
    CHECK(r.err.find("failed until") == std::string::npos);
}

TEST_CASE("serve: a setup that keeps failing spends the budget, the device is failed until a reset")
{
    TempDir dir;
    write_file(dir / "serve.ini", "[host]\nallow-faults = true\nrestart-budget = 2\n" +
                                      loop_device("stuck", "write \"x\"", "every 1s") + "fault = open:fail=io\n");
    Served serve(dir, dir / "serve.ini");
    const std::string socket = (dir / "control").string();
    REQUIRE(wait_until([&] { return device_status(socket, "stuck").value("state", "") == "failed"; }));
    const json st = device_status(socket, "stuck");
    CHECK(st["message"] == "setup failed: DEVHOST_E_IO; 2 failed setups within 1800 s ([host] restart-budget): "
                           "failed until 'devhost reset stuck'");
    CHECK(st["generation"] == 2);

    const auto reset = run_devhost({"reset", "--socket", socket, "stuck"});
    CHECK(reset.exit_code == 0);
    // Tried again at once: its third setup, which fails too.
    REQUIRE(wait_until([&] { return device_status(socket, "stuck").value("generation", 0) == 3; }));
    CHECK(serve.stop().exit_code == 0);
}

TEST_CASE("serve: a device missing at the start waits without holding READY back, and is set up when it appears")
{
    if (!fs::exists("/usr/bin/socat")) {
        DEVHOST_SKIP("socat is not installed");
        return;
    }
    TempDir dir;
    const fs::path link = dir / "later" / "tty0";  // not even its directory yet
    write_file(dir / "serve.ini", "[device late]\nclass = serial\npath = " + link.string() +
                                      "\nsetup = open\nbody = write \"x\"\nteardown = close\nrun = start\n");
    NotifySocket notify(dir / "notify");
    REQUIRE(notify.bound);
    Served serve(dir, dir / "serve.ini", {{"NOTIFY_SOCKET", (dir / "notify").string()}});
    REQUIRE(wait_until([&] {
        for (const auto &m : notify.read())
            if (m.find("READY=1") != std::string::npos)
                return true;
        return false;
    }));
    const std::string socket = (dir / "control").string();
    CHECK(device_status(socket, "late").value("state", "") == "waiting-for-device");
    CHECK(serve.records().empty());

    fs::create_directories(dir / "later");
    SocatPty peer(dir, link);
    REQUIRE(peer.ready);
    REQUIRE(wait_until([&] { return count_phase(serve.records(), "body") == 1; }));
    CHECK(serve.records().front().value("generation", 0) == 1);
    CHECK(serve.stop().exit_code == 0);
}

TEST_CASE("serve: a reload that changes [host] says which keys wait for a restart, and reloads the devices")
{
    TempDir dir;
    // (No broker listens on port 1: the publisher keeps trying, serve serves.)
    const std::string mqtt = "[mqtt]\nbroker = mqtt://127.0.0.1:1\nnode = n1\n";
    write_file(dir / "serve.ini", "[host]\ntimeout = 5s\n" + mqtt + loop_device("a", "write \"x\"", "on-demand"));
    Served serve(dir, dir / "serve.ini");
    const std::string socket = (dir / "control").string();
    REQUIRE(wait_until([&] { return device_status(socket, "a").value("state", "") == "idle"; }));

    write_file(dir / "serve.ini", "[host]\ntimeout = 7s\nkill-grace = 2s\n" + mqtt + "group = other\n" +
                                      loop_device("a", "write \"x\"", "on-demand") +
                                      loop_device("b", "write \"y\"", "on-demand"));
    const auto reload = run_devhost({"reload", "--socket", socket});
    CHECK(reload.exit_code == 0);
    CHECK(reload.out == "reloaded\n");
    CHECK(reload.err == "devhost: warning: [host] timeout, kill-grace changed: serve keeps the values it started "
                        "with until it is restarted (systemctl restart devhost)\n"
                        "devhost: warning: [mqtt] group changed: serve keeps the values it started "
                        "with until it is restarted (systemctl restart devhost)\n");
    REQUIRE(wait_until([&] { return device_status(socket, "b").value("state", "") == "idle"; }));
    CHECK(device_status(socket, "a")["generation"] == 1);  // unchanged: not touched
    const auto r = serve.stop();
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("reload: [host] timeout, kill-grace changed") != std::string::npos);
}

TEST_CASE("serve: a link nobody plants where a waiting device lived is refused, never opened")
{
    if (::geteuid() != 0) {
        DEVHOST_SKIP("needs root to plant the link as another user (setpriv)");
        return;
    }
    TempDir dir;
    // A sticky directory anyone may write, as /tmp is; the device is gone.
    const fs::path shared = dir / "shared";
    fs::create_directory(shared);
    fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::others_exec | fs::perms::group_exec);
    ::chmod(shared.c_str(), 01777);
    const fs::path tty = shared / "tty0";
    write_file(dir / "secret", "root's");
    ::chmod((dir / "secret").c_str(), 0600);
    write_file(dir / "serve.ini", "[device m]\nclass = serial\npath = " + tty.string() +
                                      "\nsetup = open\nbody = write \"x\"\nteardown = close\nrun = every 100ms\n");
    Served serve(dir, dir / "serve.ini");
    const std::string socket = (dir / "control").string();
    REQUIRE(wait_until([&] { return device_status(socket, "m").value("state", "") == "waiting-for-device"; }));

    const auto plant = run_process({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "ln", "-s",
                                    (dir / "secret").string(), tty.string()});
    REQUIRE(plant.exit_code == 0);
    REQUIRE(wait_until([&] {
        return device_status(socket, "m").value("message", "").find(tty.string() + ": refused: ") != std::string::npos;
    }));
    std::this_thread::sleep_for(300ms);  // a few looks and ticks: still waiting
    CHECK(device_status(socket, "m").value("state", "") == "waiting-for-device");
    CHECK(serve.records().empty());  // no setup ran: nothing was opened
    const auto r = serve.stop();
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("m: not set up: " + tty.string() + ": refused: ") != std::string::npos);
}

TEST_CASE("serve: monitors get every record of a long body as it happens, past a call's bound")
{
    TempDir dir;
    // 25000 records of about 200 bytes: more than the 512 KiB a call's reply carries.
    write_file(dir / "serve.ini", loop_device("long", "sleep 0ms repeat=25000", "on-demand"));
    Served serve(dir, dir / "serve.ini");
    const std::string socket = (dir / "control").string();
    REQUIRE(wait_until([&] { return device_status(socket, "long").value("state", "") == "idle"; }));
    Child monitor({devhost_exe().string(), "monitor", "--socket", socket}, dir.path());
    REQUIRE(monitor.wait_for_output("long: idle (generation 1)", 10s));

    const auto call = run_devhost({"call", "--socket", socket, "long"});
    CHECK(call.exit_code == 0);
    const size_t replied = lines(call.out).size();
    CHECK(replied > 1000);
    CHECK(call.err == "devhost: warning: call long: " + std::to_string(25000 - replied) +
                          " more record(s) are in serve's output, not in this reply (it carries at most 512 KiB of them)\n");
    const auto count = [&] {
        size_t n = 0;
        for (const auto &line : lines(monitor.out()))
            n += line.find("\"step\":\"sleep 0ms repeat=25000\"") != std::string::npos;
        return n;
    };
    CHECK(wait_until([&] { return count() == 25000; }));
    CHECK(count() == 25000);
    monitor.signal(SIGTERM);
    CHECK(monitor.wait(10s).exit_code == 0);
    CHECK(serve.stop().exit_code == 0);
}
