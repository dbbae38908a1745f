// repeat=N (README, "Steps"): a step run N times through the devhost binary
// on real ptys with the serial plugin. Each repetition is a step of its own:
// its own record (seq, repetition 1..N, the step's line), its own deadline
// and cancel check; the first that fails ends the pipeline. The records are
// the same with the plugin in a worker (isolation = class, the default) and
// in devhost (none); `devhost check` counts the repetitions.
#include "devhost_test.hpp"
#include "devices.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <thread>

using namespace devhost::test;
using json = nlohmann::json;

namespace {

// A config of one serial device on `path` and its steps (`step =` lines
// from line 5 on), with `host` lines in a [host] section first when given.
std::string config(const std::string &path, const std::vector<std::string> &steps, const std::string &host = "")
{
    std::string ini = (host.empty() ? "" : "[host]\n" + host + "\n") + "[device d]\nclass = serial\npath = " + path +
                      "\ntimeout = 5s\n";
    for (const auto &s : steps)
        ini += "step = " + s + "\n";
    return ini;
}

std::vector<json> records(const std::string &out)
{
    std::vector<json> r;
    for (const auto &l : lines(out))
        r.push_back(json::parse(l));
    return r;
}

// What a record says that does not depend on when it ran.
json timeless(json record)
{
    record.erase("time");
    record.erase("duration_ms");
    return record;
}

}  // namespace

TEST_CASE("repeat=N runs a step N times on a pty, one record each with its repetition", "[repeat][e2e]")
{
    TempDir dir;
    Pty pty(PtyMode::raw);
    pty.send("xyxy");  // for the two reads
    write_file(dir / "c.ini", config(pty.path, {"open", "write \"ab\" repeat=3", "read exactly=2 expect=\"xy\" repeat=2",
                                                "sleep 1ms", "close"}));
    auto c = run_devhost({"check", (dir / "c.ini").string()});
    CHECK(c.exit_code == 0);
    CHECK(c.out == (dir / "c.ini").string() +
                       ": ok: 1 device(s), 8 step(s) (5 written, repeat= counted), 0 virtual device(s)\n");
    auto r = run_devhost({"run", (dir / "c.ini").string()});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(pty.receive(6) == "ababab");
    const auto rec = records(r.out);
    REQUIRE(rec.size() == 8);
    // seq, step line, repetition (0: the record has none), bytes, text
    const std::vector<std::tuple<int, int, int, int, std::string>> want = {
        {1, 5, 0, 0, ""},   {2, 6, 1, 2, "ab"}, {3, 6, 2, 2, "ab"}, {4, 6, 3, 2, "ab"},
        {5, 7, 1, 2, "xy"}, {6, 7, 2, 2, "xy"}, {7, 8, 0, 0, ""},   {8, 9, 0, 0, ""}};
    for (size_t i = 0; i < want.size(); i++) {
        const auto &[seq, line, repetition, bytes, text] = want[i];
        INFO(rec[i].dump());
        CHECK(rec[i]["status"] == "DEVHOST_OK");
        CHECK(rec[i]["seq"] == seq);
        CHECK(rec[i]["line"] == line);
        CHECK(rec[i].value("repetition", 0) == repetition);
        CHECK(rec[i]["bytes"] == bytes);
        CHECK(rec[i]["text"] == text);
    }
    CHECK(rec[1]["step"] == "write \"ab\" repeat=3");  // as written, on every repetition
    CHECK(rec[3]["step"] == "write \"ab\" repeat=3");
}

TEST_CASE("a repetition that fails ends the step's other repetitions and the pipeline", "[repeat][e2e]")
{
    TempDir dir;
    Pty pty(PtyMode::raw);
    pty.send("xyxyxy");  // three of the five reads; the fourth times out
    write_file(dir / "c.ini", config(pty.path, {"open", "read exactly=2 timeout=300ms repeat=5", "write \"after\"",
                                                "close"}));
    auto r = run_devhost({"run", (dir / "c.ini").string()});
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    const auto rec = records(r.out);
    REQUIRE(rec.size() == 6);  // open, four reads, the unwind's close
    for (int k = 1; k <= 4; k++) {
        CHECK(rec[k]["repetition"] == k);
        CHECK(rec[k]["status"] == (k < 4 ? "DEVHOST_OK" : "DEVHOST_E_TIMEOUT"));
    }
    CHECK(rec[5]["step"] == "close");
    CHECK(rec[5]["unwind"] == true);
    CHECK(pty.receive(5, 300).empty());  // the write after it never ran
    CHECK(r.err.find("step 'read exactly=2 timeout=300ms repeat=5' (line 6) repetition 4 of 5 failed: "
                     "DEVHOST_E_TIMEOUT") != std::string::npos);
}

TEST_CASE("each repetition has the step's whole deadline", "[repeat][e2e]")
{
    TempDir dir;
    Pty pty(PtyMode::raw);
    // Five bytes 400 ms apart once the device is open: each read waits about
    // 400 ms, well within its 1 s, and the five together far longer than 1 s.
    write_file(dir / "c.ini", config(pty.path, {"open", "read exactly=1 timeout=1s repeat=5", "close"}));
    Child run({devhost_exe().string(), "run", (dir / "c.ini").string()}, dir.path());
    REQUIRE(run.wait_for_output("\"step\":\"open\"", 10s));
    for (int i = 0; i < 5; i++) {
        std::this_thread::sleep_for(400ms);
        pty.send("z");
    }
    auto r = run.wait(10s);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    const auto rec = records(r.out);
    REQUIRE(rec.size() == 7);
    double total = 0;
    for (int k = 1; k <= 5; k++) {
        CHECK(rec[k]["status"] == "DEVHOST_OK");
        CHECK(rec[k]["text"] == "z");
        CHECK(rec[k]["duration_ms"].get<double>() < 1000);
        total += rec[k]["duration_ms"].get<double>();
    }
    CHECK(total > 1000);
}

TEST_CASE("a stop signal during a repeated step ends it at the repetition it reached", "[repeat][e2e]")
{
    TempDir dir;
    Pty pty(PtyMode::raw);
    write_file(dir / "c.ini", config(pty.path, {"open", "sleep 200ms repeat=50", "close"}));
    Child run({devhost_exe().string(), "run", (dir / "c.ini").string()}, dir.path());
    REQUIRE(run.wait_for_output("\"repetition\":2", 10s));
    const auto start = std::chrono::steady_clock::now();
    run.signal(SIGTERM);
    auto r = run.wait(10s);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 4);
    CHECK(elapsed_ms(start) < 2000);  // not the 10 s the rest would have slept
    const auto rec = records(r.out);
    REQUIRE(rec.size() >= 4);
    const json &last_sleep = rec[rec.size() - 2];
    CHECK(last_sleep["status"] == "DEVHOST_E_CANCELLED");
    CHECK(last_sleep["repetition"].get<int>() >= 3);
    CHECK(last_sleep["repetition"].get<int>() < 50);
    CHECK(rec.back()["step"] == "close");
    CHECK(rec.back()["unwind"] == true);
    for (size_t i = 1; i + 2 < rec.size(); i++)
        CHECK(rec[i]["status"] == "DEVHOST_OK");
}

TEST_CASE("repeated steps give the same records with isolation = class and none", "[repeat][e2e]")
{
    TempDir dir;
    PtyRelay echo(1, PtyRelay::Wiring::echo);
    const std::vector<std::string> steps = {"open", "write \"hi\" repeat=2", "read exactly=4 expect=\"hihi\"",
                                            "request \"ping\\n\" until=\"\\n\" expect=\"ping\" repeat=3",
                                            "sleep 1ms repeat=2", "close"};
    std::vector<json> got[2];
    const char *modes[2] = {"class", "none"};
    for (int i = 0; i < 2; i++) {
        write_file(dir / "c.ini", config(echo.pty(0).path, steps, std::string("isolation = ") + modes[i]));
        auto r = run_devhost({"run", (dir / "c.ini").string()});
        INFO(modes[i] << "\n" << r.out << r.err);
        REQUIRE(r.exit_code == 0);
        for (const auto &record : records(r.out))
            got[i].push_back(timeless(record));
    }
    REQUIRE(got[0].size() == 10);
    CHECK(got[0] == got[1]);
    CHECK(got[0][5]["repetition"] == 2);
    CHECK(got[0][5]["text"] == "ping\\n");  // as printable text
}
