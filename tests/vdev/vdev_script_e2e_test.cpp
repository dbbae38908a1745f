// How a bad serial-script script or a bad peer option surfaces: through
// devhost-vdev itself (one line, exit 2, no READY) and through `devhost run`
// of a config whose [virtual] section names the script (exit 2, the
// parser's FILE:LINE message, before any pipeline).
#include "devhost_test.hpp"

#include <catch2/catch.hpp>
#include <sys/stat.h>

using namespace devhost::test;

namespace {

ProcessResult run_vdev(const std::vector<std::string> &args)
{
    std::vector<std::string> argv{(bin_dir() / "devhost-vdev").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, {.timeout = std::chrono::seconds(30)});
}

// devhost-vdev's whole stderr for a usage error of `kind`: "devhost-vdev:
// KIND: MESSAGE\n", exit 2, nothing on stdout.
void check_refused(const std::vector<std::string> &args, const std::string &message)
{
    ProcessResult r = run_vdev(args);
    INFO(args.back() << " -> " << r.err);
    CHECK_FALSE(r.timed_out);
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    CHECK(r.err == "devhost-vdev: " + args.front() + ": " + message + "\n");
}

}  // namespace

TEST_CASE("a bad script in a [virtual] section stops `devhost run` with the parser's FILE:LINE and exit 2")
{
    TempDir dir;
    write_file(dir / "bad.txt", "send \"HELLO\\r\\n\"\nsleep inf\n");
    write_file(dir / "config.ini", "[virtual modem]\nkind = serial-script\nscript = bad.txt\n"
                                   "[device a]\nclass = loop\npath = loop:a\nstep = open\n");
    // A relative script path is the config's, wherever devhost runs.
    auto r = run_devhost({"run", (dir / "config.ini").string()}, {.timeout = std::chrono::seconds(30), .cwd = "/"});
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());  // no pipeline ran
    CHECK(r.err.find("devhost-vdev: serial-script: " + (dir / "bad.txt").string() +
                     ":2: 'inf' is not a duration like 250ms or 2s\n") != std::string::npos);
    CHECK(r.err.find((dir / "config.ini").string() +
                     ":1: [virtual modem] (serial-script): devhost-vdev exited with code 2 before it was ready") !=
          std::string::npos);
}

TEST_CASE("a script that is not a bounded regular file is refused before it is read")
{
    TempDir dir;
    const std::string link = "--link=" + (dir / "l").string();
    const std::string d = dir.path().string();
    check_refused({"serial-script", link, "--script=" + d}, "--script=" + d + ": is a directory, not a script file");
    check_refused({"serial-script", link, "--script=/dev/zero"},
                  "--script=/dev/zero: not a regular file (a FIFO or device is not a script)");
    REQUIRE(mkfifo((dir / "fifo").c_str(), 0600) == 0);  // nobody writes it: reading would block forever
    check_refused({"serial-script", link, "--script=" + d + "/fifo"},
                  "--script=" + d + "/fifo: not a regular file (a FIFO or device is not a script)");
    write_file(dir / "big", std::string(1024 * 1024, '#') + "\nsend \"x\"\n");
    check_refused({"serial-script", link, "--script=" + d + "/big"}, "--script=" + d + "/big: larger than 1048576 bytes");
    check_refused({"serial-script", link, "--script=" + d + "/none"},
                  "--script=" + d + "/none: cannot open the file: No such file or directory");
    write_file(dir / "empty", "");
    check_refused({"serial-script", link, "--script=" + d + "/empty"}, "--script=" + d + "/empty: no steps in the script");
    CHECK_FALSE(fs::exists(fs::symlink_status(dir / "l")));
}

TEST_CASE("durations and integers of peer options are strict, whole and bounded")
{
    TempDir dir;
    write_file(dir / "ok.txt", "send \"x\"\n");
    const std::string link = "--link=" + (dir / "l").string();
    const std::string script = "--script=" + (dir / "ok.txt").string();
    for (std::string d : {"inf", "nan", "1e300", "1e-400", "0x10", "-1s", "later", "1", "2s junk"})
        check_refused({"serial-script", link, script, "--delay=" + d}, "--delay=" + d + ": expected a duration like 250ms or 2s");
    check_refused({"serial-script", link, script, "--delay=61m"}, "--delay=61m: longer than 1h, the longest a peer waits");
    for (std::string n : {"0x", "5x", "1.5", "99999999999999999999", "--1"})
        check_refused({"serial-script", link, script, "--garbage=" + n}, "--garbage=" + n + ": expected an integer");
    check_refused({"serial-script", link, script, "--hangup-after=0x8000000000000000"},
                  "--hangup-after=0x8000000000000000: expected an integer");
    check_refused({"serial-script", link, script, "--garbage=0x10001"}, "--garbage: expected 0 to 65536 bytes");
    check_refused({"filterport-echo", "--port-dir=" + dir.path().string(), "--send-every=inf"},
                  "--send-every=inf: expected a duration like 250ms or 2s");
    check_refused({"filterport-echo", "--port-dir=" + dir.path().string(), "--delay=1e300"},
                  "--delay=1e300: expected a duration like 250ms or 2s");
    check_refused({"serial-script", link, script, "--loop=maybe"}, "--loop=maybe: expected true or false");
}
