// The serial class end to end: the devhost binary on configs that declare
// their virtual serial peers in [virtual NAME] sections, checked by exit code
// and the JSON-lines records on stdout.
#include "serial_helpers.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>

using namespace devhost::test;
using namespace serial_test;

namespace {

ProcessResult run_config(const TempDir &dir, const std::string &ini, const std::string &file = "config.ini")
{
    write_file(dir / file, ini);
    return run_devhost({"run", (dir / file).string()});
}

bool has(const std::string &text, const std::string &needle) { return text.find(needle) != std::string::npos; }

// The record of the step whose text starts with `step`.
std::string record(const std::string &out, const std::string &step)
{
    for (const auto &l : lines(out))
        if (has(l, "\"step\":\"" + step))
            return l;
    return "<no record for " + step + ">";
}

}  // namespace

TEST_CASE("a config talks to its own virtual modem and exits 0", "[serial]")
{
    TempDir dir;
    std::string link = (dir / "modem").string();
    auto r = run_config(dir, "[virtual modem]\nkind = serial-modem\nidentity = ACME 56k\nlink = " + link +
                                 R"(

[device modem]
class = serial
path = virtual:modem
baud = 115200
read-total-timeout = 2s
step = open
step = info
step = request "AT\r" until="OK\r\n" expect="AT\r\r\nOK\r\n"
step = request "ATI\r" until="OK\r\n" expect="ACME 56k"
step = write "ATE0\r"
step = read until="OK\r\n" timeout=1s
step = request "ATX9\r" until="ERROR\r\n" expect="\r\nERROR\r\n"
step = close
)");
    INFO(r.err);
    CHECK(r.exit_code == 0);
    auto l = lines(r.out);
    CHECK(l.size() == 8);
    for (const auto &rec : l)
        CHECK(has(rec, "\"status\":\"DEVHOST_OK\""));
    CHECK(has(record(r.out, "info"), "\"driver\":\"pty_slave\""));
    CHECK(has(record(r.out, "info"), "\"baud\":\"115200\""));
    CHECK(has(record(r.out, "request \\\"ATI"), "\"hex\":\"4154490d0d0a41434d452035366b0d0a0d0a4f4b0d0a\""));
    CHECK_FALSE(fs::exists(fs::symlink_status(link)));  // the host stopped the peer
}

TEST_CASE("the README's worked example runs as written", "[serial]")
{
    std::string readme = read_file(source_dir() / "plugins/serial/README.md");
    auto start = readme.find("```ini\n[virtual modem]");
    REQUIRE(start != std::string::npos);
    start += 7;
    std::string ini = readme.substr(start, readme.find("```", start) - start);
    TempDir dir;
    // Its own link, so that parallel runs do not share /run/devhost/vdev/modem.
    ini.insert(ini.find("\n", ini.find("kind = ")) + 1, "link = " + (dir / "modem").string() + "\n");
    auto r = run_config(dir, ini);
    INFO(ini << r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(lines(r.out).size() == 9);
}

TEST_CASE("a second devhost process on the same port is BUSY and names the first", "[serial]")
{
    TempDir dir;
    std::unique_ptr<Child> vdev;
    std::string link = start_vdev(vdev, dir, "serial-echo");
    write_file(dir / "holder.ini", "[device first]\nclass = serial\npath = " + link +
                                       "\nstep = open\nstep = sleep 3s\nstep = close\n");
    Child first({devhost_exe().string(), "run", (dir / "holder.ini").string()}, dir.path());
    REQUIRE(first.wait_for_output("\"step\":\"open\"", std::chrono::seconds(10)));
    REQUIRE(has(first.out(), "\"status\":\"DEVHOST_OK\""));

    auto second = run_config(dir, "[device second]\nclass = serial\npath = " + link + "\nstep = open\nstep = close\n");
    INFO(second.out << second.err);
    CHECK(second.exit_code == 1);
    std::string open = record(second.out, "open");
    CHECK(has(open, "\"status\":\"DEVHOST_E_BUSY\""));
    CHECK(has(open, link + " is busy"));
    // The holder named is the first devhost's worker (its child, or its
    // worker template's) or the first itself, whose vault holds the same tty.
    const auto named = open.find("held by pid ");
    REQUIRE(named != std::string::npos);
    const pid_t holder = std::stoi(open.substr(named + 12));
    CHECK((holder == first.pid() || parent_of(holder) == first.pid() ||
           parent_of(parent_of(holder)) == first.pid()));

    ProcessResult end = first.wait(std::chrono::seconds(20));
    CHECK(end.exit_code == 0);
    // Once the first has closed, the port is free again.
    auto third = run_config(dir, "[device third]\nclass = serial\npath = " + link + "\nstep = open\nstep = close\n");
    CHECK(third.exit_code == 0);
}

TEST_CASE("a peer hanging up mid-read is REMOVED in the record and exit 1", "[serial]")
{
    TempDir dir;
    auto r = run_config(dir, "[virtual flaky]\nkind = serial-echo\nhangup-after = 2\ndelay = 300ms\nlink = " +
                                 (dir / "flaky").string() + R"(

[device flaky]
class = serial
path = virtual:flaky
step = open
step = write "ab"
step = read exactly=10 timeout=5s
step = close
)");
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(has(record(r.out, "read"), "\"status\":\"DEVHOST_E_REMOVED\""));
    CHECK(has(record(r.out, "read"), "went away"));
}

TEST_CASE("a peer holding the port makes the open BUSY", "[serial]")
{
    TempDir dir;
    auto r = run_config(dir, "[virtual held]\nkind = serial-echo\nhold = true\nlink = " + (dir / "held").string() +
                                 "\n\n[device held]\nclass = serial\npath = virtual:held\nstep = open\nstep = close\n");
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(has(record(r.out, "open"), "\"status\":\"DEVHOST_E_BUSY\""));
}

TEST_CASE("a setting a pty cannot hold fails the open with its name", "[serial]")
{
    TempDir dir;
    auto r = run_config(dir, "[virtual m]\nkind = serial-modem\nlink = " + (dir / "m").string() +
                                 "\n\n[device m]\nclass = serial\npath = virtual:m\nparity = even\nstep = open\n");
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK(has(record(r.out, "open"), "\"status\":\"DEVHOST_E_UNSUPPORTED\""));
    CHECK(has(record(r.out, "open"), "did not take parity=even"));
}

TEST_CASE("a missing port is NOT_FOUND and nothing is created", "[serial]")
{
    TempDir dir;
    std::string path = (dir / "ttyUSB7").string();
    auto r = run_config(dir, "[device gone]\nclass = serial\npath = " + path + "\nstep = open\n");
    CHECK(r.exit_code == 1);
    CHECK(has(record(r.out, "open"), "\"status\":\"DEVHOST_E_NOT_FOUND\""));
    CHECK_FALSE(fs::exists(fs::symlink_status(path)));
}

TEST_CASE("devhost check accepts the real-port example without touching the port", "[serial]")
{
    // check never opens a device: the example's COM1 (ttyS0) stays untouched.
    auto r = run_devhost({"check", (source_dir() / "configs/examples/serial-modem.ini").string()});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(has(r.out, "ok: 1 device(s)"));
}

TEST_CASE("a \\\\.\\COMn name reaches the port through [names]", "[serial]")
{
    // The config names the port as Windows programs do; [names] maps COM7 to
    // the echo peer's stable link, and the record shows the resolved path.
    TempDir dir;
    std::unique_ptr<Child> vdev;
    std::string link = start_vdev(vdev, dir, "serial-echo");
    auto r = run_config(dir, "[names]\nCOM7 = " + link +
                                 "\n\n[device port]\nclass = serial\npath = \\\\.\\COM7\nstep = open\nstep = info\n"
                                 "step = request \"ping\\n\" until=\"\\n\" timeout=2s expect=\"ping\\n\"\nstep = close\n");
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(lines(r.out).size() == 4);
    CHECK(has(record(r.out, "info"), "\"path\":\"" + link + "\""));
    CHECK(has(record(r.out, "request"), "\"status\":\"DEVHOST_OK\""));
}
