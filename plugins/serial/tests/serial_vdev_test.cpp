// devhost-vdev's serial peers, talked to through the serial plugin on the
// pty they publish: every kind, every fault, and their option errors.
#include "serial_helpers.hpp"

#include "devices.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <unistd.h>

using namespace devhost;
using namespace devhost::test;
using namespace serial_test;

namespace {


ProcessResult run_vdev(const std::vector<std::string> &args)
{
    std::vector<std::string> argv = {(bin_dir() / "devhost-vdev").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessOptions o;
    o.timeout = std::chrono::seconds(10);
    return run_process(argv, o);
}

}  // namespace

TEST_CASE("serial-echo sends every byte back, across a close and a reopen")
{
    TempDir dir;
    std::unique_ptr<Child> vdev;
    std::string link = start_vdev(vdev, dir, "serial-echo");
    REQUIRE(fs::is_symlink(link));
    CHECK(fs::read_symlink(link).string().rfind("/dev/pts/", 0) == 0);
    for (int round = 0; round < 2; round++) {
        Device dev(serial_plugin(), "echo");
        Outcome o = devhost::test::open_device(dev, link);
        INFO(o.message);
        REQUIRE(o.ok());
        CHECK(write(dev, "hello\n").outcome.ok());
        Result r = read(dev, DEVHOST_OP_READ_UNTIL, 64, 5000, "\n");
        CHECK(r.outcome.ok());
        CHECK(r.data == "hello\n");
        CHECK(dev.close().ok());
    }
    vdev->signal(SIGTERM);
    ProcessResult end = vdev->wait(std::chrono::seconds(10));
    CHECK(end.exit_code == 0);
    CHECK_FALSE(fs::exists(fs::symlink_status(link)));  // removed on exit
}

TEST_CASE("serial-modem answers AT, ATI, ATE0/ATE1, configured answers and ERROR")
{
    TempDir dir;
    write_file(dir / "answers", "# comment\nAT+GMM:DH-56K\\r\\n\\r\\nOK\nATD123:CONNECT 9600\n");
    std::unique_ptr<Child> vdev;
    std::string link = start_vdev(vdev, dir, "serial-modem",
                                  {"--identity=ACME 56k", "--answer=AT+CSQ:+CSQ: 20,99\\r\\n\\r\\nOK",
                                   "--answers=" + (dir / "answers").string()});
    Device dev(serial_plugin(), "modem");
    REQUIRE(devhost::test::open_device(dev, link, {{"baud", "115200"}}).ok());

    Result r = request(dev, "AT\r", "OK\r\n", 5000);
    CHECK(r.outcome.ok());
    CHECK(r.data == "AT\r\r\nOK\r\n");  // echo on by default
    r = request(dev, "ATI\r", "OK\r\n", 5000);
    CHECK(r.data == "ATI\r\r\nACME 56k\r\n\r\nOK\r\n");
    r = request(dev, "at+csq\r", "OK\r\n", 5000);  // case-insensitive
    CHECK(r.data == "at+csq\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n");
    r = request(dev, "ATE0\r", "OK\r\n", 5000);
    CHECK(r.data == "ATE0\r\r\nOK\r\n");
    r = request(dev, "AT+GMM\r", "OK\r\n", 5000);
    CHECK(r.data == "\r\nDH-56K\r\n\r\nOK\r\n");
    r = request(dev, "ATD123\r", "9600\r\n", 5000);
    CHECK(r.data == "\r\nCONNECT 9600\r\n");
    r = request(dev, "ATX9\r", "ERROR\r\n", 5000);
    CHECK(r.data == "\r\nERROR\r\n");
    r = request(dev, "ATE1\r", "OK\r\n", 5000);
    CHECK(r.data == "\r\nOK\r\n");
    r = request(dev, "AT\r", "OK\r\n", 5000);
    CHECK(r.data == "AT\r\r\nOK\r\n");
}

TEST_CASE("serial-script plays send/expect/sleep lines in order")
{
    TempDir dir;
    write_file(dir / "script",
               "# a device that greets, then answers PING\n"
               "send \"HELLO\\r\\n\"\n"
               "expect \"PING\\r\\n\"\n"
               "sleep 10ms\n"
               "send \"PONG\\r\\n\"\n"
               "expect hex:0102\n"
               "send hex:030405\n");
    std::unique_ptr<Child> vdev;
    std::string link = start_vdev(vdev, dir, "serial-script", {"--script=" + (dir / "script").string()});
    Device dev(serial_plugin(), "scripted");
    REQUIRE(devhost::test::open_device(dev, link).ok());
    Result r = read(dev, DEVHOST_OP_READ_UNTIL, 64, 5000, "\r\n");
    CHECK(r.data == "HELLO\r\n");
    // Split over two writes: the peer waits for the whole expected text.
    CHECK(write(dev, "PI").outcome.ok());
    CHECK(read(dev, DEVHOST_OP_READ, 64, 200).outcome.status == DEVHOST_E_TIMEOUT);
    CHECK(write(dev, "NG\r\n").outcome.ok());
    r = read(dev, DEVHOST_OP_READ_UNTIL, 64, 5000, "\r\n");
    CHECK(r.data == "PONG\r\n");
    r = request(dev, std::string("\x01\x02", 2), std::string("\x05", 1), 5000);
    CHECK(r.data == std::string("\x03\x04\x05", 3));
}

TEST_CASE("serial-script with --loop starts over")
{
    TempDir dir;
    write_file(dir / "script", "expect \"?\"\nsend \"!\"\n");
    std::unique_ptr<Child> vdev;
    std::string link =
        start_vdev(vdev, dir, "serial-script", {"--script=" + (dir / "script").string(), "--loop=true"});
    Device dev(serial_plugin(), "loop");
    REQUIRE(devhost::test::open_device(dev, link).ok());
    for (int i = 0; i < 3; i++)
        CHECK(request(dev, "?", "!", 5000).data == "!");
}

TEST_CASE("a malformed script fails before READY with file:line and the reason")
{
    TempDir dir;
    struct Case {
        std::string text, message;
    };
    std::vector<Case> cases = {
        {"send \"ok\"\nexpect\n", ":2: 'expect' needs an argument"},
        {"# c\n\nshout \"hi\"\n", ":3: expected 'send DATA', 'expect DATA' or 'sleep D', got 'shout'"},
        {"send unquoted\n", ":1: DATA must be \"quoted\" or hex:..."},
        {"send \"open\n", ":1: '\"open': missing closing quote"},
        {"send hex:123\n", ":1: 'hex:123': hex data has an odd number of digits"},
        {"sleep soon\n", ":1: 'soon' is not a duration"},
        {"send \"\\q\"\n", ":1: '\"\\q\"': unknown escape '\\q'"},
    };
    for (const auto &c : cases) {
        write_file(dir / "bad", c.text);
        ProcessResult r = run_vdev({"serial-script", "--link=" + (dir / "l").string(),
                                    "--script=" + (dir / "bad").string()});
        INFO(c.text << " -> " << r.err);
        CHECK(r.exit_code == 2);
        CHECK(r.out.empty());  // no READY
        CHECK_THAT(r.err, Catch::Contains((dir / "bad").string() + c.message));
        CHECK(lines(r.err).size() == 1);
        CHECK_FALSE(fs::exists(fs::symlink_status(dir / "l")));
    }
    ProcessResult r = run_vdev({"serial-script", "--script=" + (dir / "missing").string()});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("missing: cannot open the file"));
}

TEST_CASE("bad peer options are usage errors naming the option")
{
    TempDir dir;
    std::string link = "--link=" + (dir / "l").string();
    struct Case {
        std::vector<std::string> args;
        std::string message;
    };
    std::vector<Case> cases = {
        {{"serial-echo", link, "--garbage=-1"}, "--garbage"},
        {{"serial-echo", link, "--delay=later"}, "--delay=later"},
        {{"serial-echo", link, "--hangup-after=x"}, "--hangup-after=x"},
        {{"serial-echo", link, "--hold=maybe"}, "--hold=maybe"},
        {{"serial-echo", link, "--colour=red"}, "unknown option --colour"},
        {{"serial-modem", link, "--answer=nocolon"}, "'nocolon': expected CMD:REPLY"},
        {{"serial-modem", link, "--answers=" + (dir / "none").string()}, "cannot open the file"},
        {{"serial-script", link}, "--script=FILE is required"},
    };
    for (const auto &c : cases) {
        ProcessResult r = run_vdev(c.args);
        INFO(r.err);
        CHECK(r.exit_code == 2);
        CHECK_THAT(r.err, Catch::Contains(c.message));
        CHECK(r.out.empty());
    }
}

TEST_CASE("the link's directories are created, and an existing file is never replaced")
{
    TempDir dir;
    std::unique_ptr<Child> vdev;
    std::string link = (dir / "a/b/c/port").string();
    vdev = std::make_unique<Child>(
        std::vector<std::string>{(bin_dir() / "devhost-vdev").string(), "serial-echo", "--link=" + link},
        dir.path());
    REQUIRE(vdev->wait_for_output("READY " + link, std::chrono::seconds(10)));
    CHECK(fs::is_symlink(link));
    vdev->signal(SIGTERM);
    CHECK(vdev->wait(std::chrono::seconds(10)).exit_code == 0);
    CHECK_FALSE(fs::exists(fs::symlink_status(link)));

    write_file(dir / "precious", "keep");
    ProcessResult r = run_vdev({"serial-echo", "--link=" + (dir / "precious").string()});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::Contains("exists and is not a symlink"));
    CHECK(read_file(dir / "precious") == "keep");
}

TEST_CASE("fault --delay holds each reply back")
{
    TempDir dir;
    std::unique_ptr<Child> vdev;
    std::string link = start_vdev(vdev, dir, "serial-echo", {"--delay=1s"});
    Device dev(serial_plugin(), "slow");
    REQUIRE(devhost::test::open_device(dev, link).ok());
    REQUIRE(write(dev, "x").outcome.ok());
    Result r = read(dev, DEVHOST_OP_READ, 16, 100);
    CHECK(r.outcome.status == DEVHOST_E_TIMEOUT);
    r = read(dev, DEVHOST_OP_READ, 16, 10000);
    CHECK(r.outcome.ok());
    CHECK(r.data == "x");
}

TEST_CASE("fault --garbage puts bytes before each reply")
{
    TempDir dir;
    std::unique_ptr<Child> vdev;
    std::string link = start_vdev(vdev, dir, "serial-modem", {"--garbage=3", "--echo=false"});
    Device dev(serial_plugin(), "noisy");
    REQUIRE(devhost::test::open_device(dev, link).ok());
    Result r = request(dev, "AT\r", "OK\r\n", 5000);
    CHECK(r.outcome.ok());
    CHECK(r.data == std::string("\xF0\xF1\xF2\r\nOK\r\n"));
}

TEST_CASE("fault --hangup-after removes the device mid-read and takes the link away")
{
    TempDir dir;
    std::unique_ptr<Child> vdev;
    // The hang-up comes after 3 received bytes plus the delay, while the
    // device is waiting for a reply that never comes: "ATI" has no "\r", so
    // the modem never answers it (an answered "AT\r" raced the hang-up).
    std::string link = start_vdev(vdev, dir, "serial-modem", {"--hangup-after=3", "--delay=300ms"});
    Device dev(serial_plugin(), "flaky");
    REQUIRE(devhost::test::open_device(dev, link).ok());
    Result r = request(dev, "ATI", "OK\r\n", 10000);
    CHECK(r.outcome.status == DEVHOST_E_REMOVED);
    CHECK_THAT(r.outcome.message, Catch::Contains("went away"));
    CHECK(write(dev, "AT\r").outcome.status == DEVHOST_E_REMOVED);
    CHECK(dev.close().ok());
    CHECK(vdev->wait_for_output("hanging up after 3 bytes", std::chrono::seconds(5)));
    CHECK_FALSE(fs::exists(fs::symlink_status(link)));
    // Reopening the unplugged device finds nothing.
    Device again(serial_plugin(), "flaky");
    CHECK(devhost::test::open_device(again, link).status == DEVHOST_E_NOT_FOUND);
}

TEST_CASE("fault --hold makes the device's open BUSY, naming the peer's pid")
{
    TempDir dir;
    std::unique_ptr<Child> vdev;
    std::string link = start_vdev(vdev, dir, "serial-echo", {"--hold=true"});
    Device dev(serial_plugin(), "held");
    Outcome o = devhost::test::open_device(dev, link);
    CHECK(o.status == DEVHOST_E_BUSY);
    CHECK_THAT(o.message, Catch::Contains(link) && Catch::Contains("busy") &&
                              Catch::Contains("pid " + std::to_string(vdev->pid())));
}
