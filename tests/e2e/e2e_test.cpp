#include "devhost_test.hpp"
#include "devices.hpp"

#include <catch2/catch.hpp>
#include <csignal>
#include <sys/wait.h>
#include <unistd.h>
#include <filesystem>
#include <map>
#include <regex>
#include <thread>
#include <tuple>

using namespace devhost::test;

namespace {

// Runs `devhost run` on an inline config.
ProcessResult run_config(const TempDir &dir, const std::string &ini, std::vector<std::string> extra = {})
{
    auto file = dir / "config.ini";
    write_file(file, ini);
    std::vector<std::string> args{"run"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(file.string());
    return run_devhost(args);
}

size_t count(const std::string &text, const std::string &needle)
{
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
        n++;
    return n;
}

// The private directory a run's log names for its virtual devices, or "".
std::string vdev_dir_of(const std::string &log)
{
    const std::string marker = "virtual devices of this run in ";
    auto at = log.find(marker);
    if (at == std::string::npos)
        return {};
    at += marker.size();
    return log.substr(at, log.find('\n', at) - at);
}

// A config with one virtual device of each endpoint kind (pty link, image
// file, vport socket, filter port), all with the same names in every run;
// each pipeline sleeps `hold` after open (while it holds its endpoint).
std::string same_names_config(const std::string &hold)
{
    const std::string wait = hold.empty() ? "" : "step = sleep " + hold + "\n";
    return "[host]\ntimeout = 10s\n"
           "[virtual modem]\nkind = serial-modem\nidentity = same name\n"
           "[virtual disk]\nkind = raw-disk\nsize = 64K\nmbr = true\n"
           "[virtual printer]\nkind = parallel-port\n"
           "[virtual echo]\nkind = filterport-echo\n"
           "[device modem]\nclass = serial\npath = virtual:modem\nstep = open\n" + wait +
           "step = request \"ATI\\r\" until=\"OK\\r\\n\" expect=\"ATI\\r\\r\\nsame name\\r\\n\\r\\nOK\\r\\n\"\n"
           "step = close\n"
           "[device disk]\nclass = raw\npath = virtual:disk\nstep = open\n" + wait +
           "step = read exactly=2 offset=510 expect=hex:55aa\nstep = close\n"
           "[device printer]\nclass = parallel\npath = virtual:printer\nstep = open\n" + wait +
           "step = connect mode=compat\nstep = lock timeout=5s\nstep = write \"page\"\nstep = unlock\n"
           "step = disconnect\nstep = close\n"
           "[device echo]\nclass = filterport\npath = virtual:echo\nstep = open\n" + wait +
           "step = connect\nstep = request \"hello\" expect=\"hello\"\nstep = disconnect\nstep = close\n";
}

}  // namespace

TEST_CASE("devhost --help answers and --version names the ABI", "[cli]")
{
    auto help = run_devhost({"--help"});
    CHECK(help.exit_code == 0);
    CHECK(help.out.find("run [CONFIG]") != std::string::npos);
    CHECK(help.out.find("exit codes:") != std::string::npos);
    auto version = run_devhost({"--version"});
    CHECK(version.exit_code == 0);
    CHECK(version.out.find("plugin ABI 1.0 to 1.1") != std::string::npos);
}

TEST_CASE("bad command lines exit 2 with one clear line", "[cli]")
{
    auto none = run_devhost({});
    CHECK(none.exit_code == 2);
    auto unknown = run_devhost({"frobnicate"});
    CHECK(unknown.exit_code == 2);
    CHECK(unknown.err == "devhost: error: unknown command 'frobnicate' (expected run, serve, check, plugins, probe, "
                         "scan, reset-failed, status, call, reset, reload or monitor; see devhost --help)\n");
    auto option = run_devhost({"run", "--colour"});
    CHECK(option.exit_code == 2);
    CHECK(option.err.find("unrecognised option '--colour'") != std::string::npos);
    auto level = run_devhost({"plugins", "--log-level", "loud"});
    CHECK(level.exit_code == 2);
    CHECK(level.err == "devhost: error: --log-level loud: expected one of trace, debug, info, warn, error, off\n");
    auto check = run_devhost({"check"});
    CHECK(check.exit_code == 2);
}

TEST_CASE("devhost plugins lists loop with its ABI version and options", "[cli]")
{
    auto r = run_devhost({"plugins"});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("loop: loop ") != std::string::npos);
    CHECK(r.out.find("ABI 1.0") != std::string::npos);
    CHECK(r.out.find("    capacity (int, default 4096)") != std::string::npos);
    auto j = run_devhost({"plugins", "--json"});
    CHECK(j.exit_code == 0);
    CHECK(j.out.find(R"("class":"loop")") != std::string::npos);
    CHECK(j.out.find(R"({"name":"capacity","type":"int","default":"4096")") != std::string::npos);
}

TEST_CASE("devhost run with no config runs the default config and exits 0", "[run]")
{
    const std::filesystem::path printed = "/tmp/devhost-printer.txt";  // the virtual printer's output
    std::error_code ec;
    std::filesystem::remove(printed, ec);
    auto r = run_devhost({"run"});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    auto records = lines(r.out);
    REQUIRE(records.size() >= 5);
    for (const auto &l : records) {
        CHECK(l.rfind("{\"time\":", 0) == 0);
        CHECK(l.find("\"status\":\"DEVHOST_OK\"") != std::string::npos);
    }
    // Every device class the default config shows did its work: the virtual
    // modem answered ATI, and the virtual disk's MBR signature was read.
    CHECK(r.out.find(R"("device":"loopback")") != std::string::npos);
    CHECK(r.out.find(R"(devhost virtual modem\\r\\n)") != std::string::npos);
    CHECK(r.out.find(R"("device":"disk")") != std::string::npos);
    CHECK(r.out.find(R"("hex":"55aa")") != std::string::npos);
    CHECK(r.out.find(R"("device-id":"MFG:devhost;MDL:Virtual Printer;CLS:PRINTER;")") != std::string::npos);
    CHECK(read_file(printed) == "devhost test page\r\n\f");
    CHECK(r.out.find(R"("device":"port","seq":4,"step":"request \"hello, port\" expect=\"hello, port\"")") !=
          std::string::npos);
    CHECK(r.out.find(R"("step":"get-message expect=\"ping\"")") != std::string::npos);
}

TEST_CASE("devhost check on a config with a typo exits 2 naming line and key", "[check]")
{
    TempDir dir;
    auto file = dir / "typo.ini";
    write_file(file, "[device a]\nclass = loop\npath = loop:a\ncapacty = 64\nstep = open\nstep = close\n");
    auto r = run_devhost({"check", file.string()});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(file.string() + ":4: [device a] capacty: not an option of class 'loop' (did you mean "
                                     "'capacity'?)") != std::string::npos);
    CHECK(r.out.empty());

    write_file(file, "[device a]\nclass = loop\npath = loop:a\ncapacity = 64\nstep = open\nstep = close\n");
    auto ok = run_devhost({"check", file.string()});
    CHECK(ok.exit_code == 0);
    CHECK(ok.out == file.string() + ": ok: 1 device(s), 2 step(s), 0 virtual device(s)\n");
}

TEST_CASE("a class no plugin serves exits 3", "[run]")
{
    TempDir dir;
    auto r = run_config(dir, "[device a]\nclass = lop\npath = loop:a\nstep = open\n");
    CHECK(r.exit_code == 3);
    CHECK(r.err.find(":2: [device a] class: no usable plugin for class 'lop' (did you mean 'loop'?)") !=
          std::string::npos);
    auto empty = run_config(dir, "[device a]\nclass = loop\npath = loop:a\nstep = open\n",
                            {"--plugin-path", dir.path().string()});
    // The default directory is still searched after --plugin-path.
    CHECK(empty.exit_code == 0);
}

TEST_CASE("a failing pipeline exits 1, records every step and unwinds", "[run]")
{
    TempDir dir;
    auto r = run_config(dir, R"([device a]
class = loop
path = loop:a
step = open
step = lock
step = read 4 timeout=200ms
step = unlock
step = close
)");
    CHECK(r.exit_code == 1);
    auto l = lines(r.out);
    REQUIRE(l.size() == 5);
    CHECK(l[2].find(R"("step":"read 4 timeout=200ms","line":6,"status":"DEVHOST_E_TIMEOUT")") != std::string::npos);
    CHECK(l[3].find(R"("step":"unlock")") != std::string::npos);
    CHECK(l[3].find(R"("unwind":true)") != std::string::npos);
    CHECK(l[4].find(R"("step":"close")") != std::string::npos);
    CHECK(r.err.find("a: step 'read 4 timeout=200ms' (line 6) failed: DEVHOST_E_TIMEOUT") != std::string::npos);
}

TEST_CASE("records go to the file named by --output", "[run]")
{
    TempDir dir;
    auto out = dir / "records.jsonl";
    auto r = run_config(dir, "[device a]\nclass = loop\npath = loop:a\nstep = open\nstep = close\n",
                        {"--output", out.string()});
    CHECK(r.exit_code == 0);
    CHECK(r.out.empty());
    CHECK(lines(read_file(out)).size() == 2);
}

TEST_CASE("SIGTERM during a blocked read unwinds and exits 4 with the records intact", "[run][signal]")
{
    TempDir dir;
    auto file = dir / "block.ini";
    auto out = dir / "records.jsonl";
    write_file(file, R"([device a]
class = loop
path = loop:a
step = open
step = lock
step = read 1 timeout=5m
step = close
)");
    Child child({devhost_exe().string(), "run", "--output", out.string(), file.string()}, dir.path());
    for (int i = 0; i < 1000 && lines(read_file(out)).size() < 2; i++)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(lines(read_file(out)).size() == 2);
    child.signal(SIGTERM);
    auto r = child.wait(std::chrono::seconds(10));
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 4);
    auto l = lines(read_file(out));
    REQUIRE(l.size() == 5);
    CHECK(l[0].find(R"("step":"open")") != std::string::npos);
    CHECK(l[2].find(R"("status":"DEVHOST_E_CANCELLED")") != std::string::npos);
    CHECK(l[3].find(R"("step":"unlock","status":"DEVHOST_OK")") != std::string::npos);
    CHECK(l[4].find(R"("step":"close","status":"DEVHOST_OK")") != std::string::npos);
    CHECK(r.err.find("cancelling pipelines") != std::string::npos);
}

TEST_CASE("records already written survive a SIGKILL of the host", "[run][signal]")
{
    TempDir dir;
    auto file = dir / "block.ini";
    auto out = dir / "records.jsonl";
    write_file(file, "[device a]\nclass = loop\npath = loop:a\nstep = open\nstep = write \"x\"\nstep = read exactly=9 timeout=5m\n");
    Child child({devhost_exe().string(), "run", "--output", out.string(), file.string()}, dir.path());
    for (int i = 0; i < 1000 && lines(read_file(out)).size() < 2; i++)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    child.signal(SIGKILL);
    auto r = child.wait(std::chrono::seconds(10));
    CHECK(r.term_signal == SIGKILL);
    auto l = lines(read_file(out));
    REQUIRE(l.size() == 2);
    CHECK(l[1].find(R"("step":"write \"x\"","line":5,"status":"DEVHOST_OK","code":0)") != std::string::npos);
    CHECK(l[1].back() == '}');
}

TEST_CASE("several devices run concurrently in one run", "[run]")
{
    TempDir dir;
    std::string ini;
    for (int i = 0; i < 8; i++)
        ini += "[device d" + std::to_string(i) + "]\nclass = loop\npath = loop:d" + std::to_string(i) +
               "\nstep = open\nstep = write \"abc\"\nstep = read exactly=3 expect=\"abc\"\nstep = close\n";
    // The proof of overlap: serial devices on the two ends of a null-modem
    // pair of ptys each send their name and wait for the other's, which only
    // comes if the other pipeline runs meanwhile.
    PtyRelay cable(2, PtyRelay::Wiring::null_modem);
    for (const auto &[self, other, end] : {std::tuple{"left", "right", 0}, std::tuple{"right", "left", 1}})
        ini += std::string("[device ") + self + "]\nclass = serial\npath = " + cable.pty(size_t(end)).path +
               "\nstep = open\nstep = write \"" + self + ";\"\nstep = read until=\";\" timeout=3s expect=\"" +
               other + ";\"\nstep = close\n";
    auto r = run_config(dir, ini);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    std::map<std::string, int> ok;
    for (const auto &record : lines(r.out))
        if (record.find("\"status\":\"DEVHOST_OK\"") != std::string::npos)
            ok[device_of(record)]++;
    for (int i = 0; i < 8; i++)
        CHECK(ok["d" + std::to_string(i)] == 4);
    CHECK(ok["left"] == 4);
    CHECK(ok["right"] == 4);
    CHECK(count(r.out, "\"status\":\"DEVHOST_OK\"") == 40);
}

TEST_CASE("a virtual device that cannot start stops the run before any pipeline", "[run][virtual]")
{
    TempDir dir;
    // A value only the peer can judge (check knows the kind and its keys).
    auto r = run_config(dir, "[virtual v]\nkind = raw-disk\nsize = 7\n[device a]\nclass = loop\npath = loop:a\nstep = open\n");
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("devhost-vdev: raw-disk: --size=7: must be a multiple of 512 bytes") != std::string::npos);
    CHECK(r.err.find(":1: [virtual v] (raw-disk): devhost-vdev exited with code 2 before it was ready") !=
          std::string::npos);
    CHECK(r.out.empty());
}

TEST_CASE("a device path naming an undeclared virtual device is a config error", "[check]")
{
    TempDir dir;
    auto r = run_config(dir, "[device a]\nclass = loop\npath = virtual:nope\nstep = open\n");
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(":3: [device a] path: no [virtual nope] section declares 'virtual:nope'") != std::string::npos);
}

TEST_CASE("probe opens a device, reports its info and closes it", "[probe]")
{
    auto r = run_devhost({"probe", "loop:probe"});
    CHECK(r.exit_code == 0);
    auto l = lines(r.out);
    REQUIRE(l.size() == 3);
    CHECK(l[1].find(R"("info":{)") != std::string::npos);
    auto unknown = run_devhost({"probe", "/nonexistent/thing"});
    CHECK(unknown.exit_code == 2);
    CHECK(unknown.err == "devhost: error: cannot tell the class of '/nonexistent/thing': no plugin's path patterns "
                         "match '/nonexistent/thing'; give --class\n");
}

TEST_CASE("two runs at once with the same virtual names each get a private directory, removed after", "[run][virtual]")
{
    TempDir dir;
    write_file(dir / "holding.ini", same_names_config("1500ms"));
    write_file(dir / "quick.ini", same_names_config(""));
    // The first run serves all four and holds them while the second starts
    // the same names and uses them; then the first uses its own.
    Child holding({devhost_exe().string(), "run", (dir / "holding.ini").string()}, dir.path());
    REQUIRE(holding.wait_for_output("virtual echo (filterport-echo) serving at", 20s));
    auto quick = run_devhost({"run", (dir / "quick.ini").string()});
    auto held = holding.wait(60s);
    INFO("holding run stderr:\n" << held.err << "\nquick run stderr:\n" << quick.err);
    CHECK(quick.exit_code == 0);
    CHECK(held.exit_code == 0);
    CHECK(count(quick.out, "\"status\":\"DEVHOST_OK\"") == 18);
    CHECK(count(held.out, "\"status\":\"DEVHOST_OK\"") == 22);

    const std::string held_dir = vdev_dir_of(held.err), quick_dir = vdev_dir_of(quick.err);
    REQUIRE(!held_dir.empty());
    REQUIRE(!quick_dir.empty());
    CHECK(held_dir != quick_dir);
    CHECK(held.err.find("serving at " + held_dir + "/modem\n") != std::string::npos);
    CHECK(held.err.find("serving at " + held_dir + "/disk.img\n") != std::string::npos);
    CHECK(held.err.find("serving at vport:" + held_dir + "/printer.sock\n") != std::string::npos);
    CHECK(held.err.find("serving at " + held_dir + "/echo\n") != std::string::npos);
    CHECK(!fs::exists(fs::symlink_status(held_dir)));
    CHECK(!fs::exists(fs::symlink_status(quick_dir)));
}

TEST_CASE("a run whose virtual device fails to start removes its private directory", "[run][virtual]")
{
    TempDir dir;
    auto r = run_config(dir, "[virtual fine]\nkind = serial-echo\n[virtual bad]\nkind = raw-disk\nsize = 7\n"
                             "[device a]\nclass = loop\npath = loop:a\nstep = open\n");
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("[virtual bad] (raw-disk): devhost-vdev exited with code 2 before it was ready") !=
          std::string::npos);
    const std::string vdir = vdev_dir_of(r.err);
    REQUIRE(!vdir.empty());
    CHECK(r.err.find("serving at " + vdir + "/fine\n") != std::string::npos);
    CHECK(!fs::exists(fs::symlink_status(vdir)));
}

// Every run with a virtual device sweeps /run/devhost/vdev, so this test
// plants its dead run's directory in a /run of its own: a test running
// beside it would otherwise sweep it first.
TEST_CASE("a run sweeps away the private directories of runs that were killed, and only those", "[run][virtual]")
{
    TempDir dir;
    const std::string ini = "[virtual v]\nkind = serial-echo\n[device a]\nclass = loop\npath = loop:a\nstep = open\n";
    // The child cannot use Catch: it returns "ok", or what went wrong.
    const std::string result = with_private_run([&]() -> std::string {
        auto first = run_config(dir, ini);
        if (first.exit_code != 0)
            return "the first run exited " + std::to_string(first.exit_code) + ":\n" + first.err;
        const fs::path first_dir = vdev_dir_of(first.err);
        // run-<pid>-XXXXXX (or devhost-vdev-<pid>-XXXXXX under $TMPDIR)
        const std::string name = first_dir.filename().string();
        const std::string prefix = name.substr(0, name.find_first_of("0123456789"));
        if (prefix != "run-" && prefix != "devhost-vdev-")
            return "the first run's directory is not a run's: " + first_dir.string();

        pid_t gone = ::fork();
        if (gone < 0)
            return "fork failed";
        if (gone == 0)
            ::_exit(0);
        ::waitpid(gone, nullptr, 0);  // a pid no process has now
        const fs::path stale = first_dir.parent_path() / (prefix + std::to_string(gone) + "-killed");
        const fs::path alive = first_dir.parent_path() / (prefix + std::to_string(::getpid()) + "-running");
        fs::create_directories(stale);
        fs::create_directories(alive);
        write_file(stale / "modem", "left behind");

        auto second = run_config(dir, ini);
        std::string wrong;
        if (second.exit_code != 0)
            wrong += "the second run exited " + std::to_string(second.exit_code) + "\n";
        if (second.err.find("removed " + stale.string() + ", left by an earlier run (pid " + std::to_string(gone) +
                            ") that did not end cleanly") == std::string::npos)
            wrong += "the second run did not say it removed " + stale.string() + "\n";
        if (fs::exists(stale))
            wrong += stale.string() + " is still there\n";
        if (!fs::exists(alive))  // its process still runs: never touched
            wrong += alive.string() + " of a live process was removed\n";
        return wrong.empty() ? "ok" : wrong + second.err;
    });
    if (skipped_by(result))
        return;
    CHECK(result == "ok");
}

TEST_CASE("a stop signal while the virtual devices start ends the run with 4 and leaves nothing behind",
          "[run][virtual][signals]")
{
    TempDir dir;
    std::string ini;
    for (int i = 0; i < 40; i++)  // long enough a start to signal in the middle of it
        ini += "[virtual e" + std::to_string(i) + "]\nkind = serial-echo\n";
    ini += "[device a]\nclass = loop\npath = loop:a\nstep = open\nstep = close\n";
    write_file(dir / "many.ini", ini);
    Child run({devhost_exe().string(), "run", (dir / "many.ini").string()}, dir.path());
    REQUIRE(run.wait_for_output("virtual e0 (serial-echo) serving at", std::chrono::seconds(20)));
    run.signal(SIGTERM);
    auto r = run.wait(std::chrono::seconds(20));
    REQUIRE_FALSE(r.timed_out);
    INFO(r.err);
    CHECK(r.exit_code == 4);
    CHECK(r.err.find("Terminated received") != std::string::npos);
    CHECK(r.out.empty());  // no pipeline ran
    const std::string vdir = vdev_dir_of(r.err);
    REQUIRE(!vdir.empty());
    CHECK(!fs::exists(fs::symlink_status(vdir)));  // every peer stopped, the directory removed
}

TEST_CASE("records that cannot be written fail the run", "[run]")
{
    TempDir dir;
    auto r = run_config(dir, "[device a]\nclass = loop\npath = loop:a\nstep = open\nstep = close\n",
                        {"-o", "/dev/full"});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("cannot write step records: No space left on device") != std::string::npos);
    CHECK(r.err.find("step records could not all be written") != std::string::npos);
}

TEST_CASE("a config must be a regular file", "[check]")
{
    auto zero = run_devhost({"check", "/dev/zero"});
    CHECK(zero.exit_code == 2);
    CHECK(zero.err.find("/dev/zero: not a regular file (a config is read from a file)") != std::string::npos);
    TempDir dir;
    auto directory = run_devhost({"run", dir.path().string()});
    CHECK(directory.exit_code == 2);
    CHECK(directory.err.find(dir.path().string() + ": is a directory, not a config file") != std::string::npos);
}

TEST_CASE("a log file in a missing directory is a usage error and creates nothing", "[cli]")
{
    TempDir dir;
    const fs::path missing = dir / "no" / "such";
    auto r = run_config(dir, "[device a]\nclass = loop\npath = loop:a\nstep = open\n",
                        {"--log-file", (missing / "devhost.log").string()});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("cannot set up logging: log file " + (missing / "devhost.log").string() + ": directory '" +
                     missing.string() + "' does not exist") != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "no"));
}

TEST_CASE("two devices on one path pass check only when both give up exclusivity", "[check]")
{
    TempDir dir;
    const std::string two = "[device a]\nclass = raw\npath = /dev/zero\nexclusive = false\nstep = open\n"
                            "[device b]\nclass = raw\npath = /dev/zero\nexclusive = EXCL\nstep = open\n";
    auto file = dir / "two.ini";
    write_file(file, std::regex_replace(two, std::regex("EXCL"), "false"));
    auto shared = run_devhost({"check", file.string()});
    INFO(shared.err);
    CHECK(shared.exit_code == 0);
    write_file(file, std::regex_replace(two, std::regex("EXCL"), "true"));
    auto one_exclusive = run_devhost({"check", file.string()});
    CHECK(one_exclusive.exit_code == 2);
    CHECK(one_exclusive.err.find(":8: [device b] path: '/dev/zero' is already used by device 'a' (line 3)") !=
          std::string::npos);
}

TEST_CASE("a relative [host] plugin-path is the config's, and a named plugin directory that is missing is said", "[cli]")
{
    TempDir dir;
    fs::create_directories(dir / "conf" / "plug");
    fs::copy_file(fs::path(DEVHOST_PLUGIN_DIR) / "loop.so", dir / "conf" / "plug" / "loop.so");
    write_file(dir / "conf" / "rel.ini",
               "[host]\nplugin-path = plug\n[device a]\nclass = loop\npath = loop:a\nstep = open\n");
    // Run from elsewhere: the directory is found next to the config.
    ProcessOptions elsewhere;
    elsewhere.cwd = "/";
    auto r = run_process(
        {devhost_exe().string(), "--log-level", "debug", "check", (dir / "conf" / "rel.ini").string()}, elsewhere);
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("loaded plugin loop (class loop, version 1.0.0, ABI 1.1) from " +
                     (dir / "conf" / "plug" / "loop.so").string()) != std::string::npos);

    auto missing = run_devhost({"plugins", "--plugin-path", (dir / "none").string()});
    CHECK(missing.err.find("plugin directory " + (dir / "none").string() + " does not exist; skipped") !=
          std::string::npos);
}

TEST_CASE("probe of a missing device fails with NOT_FOUND and no made-up config line", "[probe]")
{
    auto r = run_devhost({"probe", "--class", "raw", "/dev/devhost-no-such-disk"});
    CHECK(r.exit_code == 1);
    CHECK(r.out.find(R"("status":"DEVHOST_E_NOT_FOUND")") != std::string::npos);
    CHECK(r.err.find("/dev/devhost-no-such-disk: step 'open' failed: DEVHOST_E_NOT_FOUND") != std::string::npos);
    CHECK(r.err.find("line 0") == std::string::npos);
    CHECK_FALSE(fs::exists("/dev/devhost-no-such-disk"));
}

TEST_CASE("check warns about a control number its class does not declare, and leaves it to the plugin", "[check]")
{
    TempDir dir;
    auto file = dir / "c.ini";
    write_file(file, "[device a]\nclass = loop\npath = loop:a\nstep = open\nstep = control 0\n");
    auto checked = run_devhost({"check", file.string()});
    CHECK(checked.exit_code == 0);
    CHECK(checked.err.find(":5: [device a] step 'control 0': control code 0 is not one class 'loop' declares") !=
          std::string::npos);
    auto ran = run_devhost({"run", file.string()});
    CHECK(ran.exit_code == 1);
    CHECK(ran.out.find(R"("status":"DEVHOST_E_UNSUPPORTED")") != std::string::npos);
}

TEST_CASE("an offset on a stream device is refused, not ignored", "[run]")
{
    TempDir dir;
    auto r = run_config(dir, "[device a]\nclass = loop\npath = loop:a\nstep = open\nstep = write \"abc\" offset=5\n");
    CHECK(r.exit_code == 1);
    CHECK(r.out.find(R"("status":"DEVHOST_E_UNSUPPORTED")") != std::string::npos);
    CHECK(r.out.find("loop: a loop device has no offsets") != std::string::npos);
}

TEST_CASE("serial and parallel devices refuse an offset too", "[run][virtual]")
{
    // (The filter port takes no step with offset=: request, get-message and
    // reply have none.)
    TempDir dir;
    auto r = run_config(dir, "[virtual tty]\nkind = serial-echo\n"
                             "[virtual lpt]\nkind = parallel-port\noutput = " + (dir / "printed").string() + "\n"
                             "[device s]\nclass = serial\npath = virtual:tty\nstep = open\nstep = write \"a\" offset=1\n"
                             "[device p]\nclass = parallel\npath = virtual:lpt\nstep = open\nstep = lock\n"
                             "step = write \"a\" offset=1\nstep = unlock\n");
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.out.find("serial: a serial port has no offsets") != std::string::npos);
    CHECK(r.out.find("a parallel port has no offsets") != std::string::npos);
    CHECK(read_file(dir / "printed").empty());  // nothing reached the printer
}
