// The files devhost writes (README, "Files devhost writes"): the records
// file and the log file are created 0640 and a virtual printer's output
// 0600, whatever the umask; in a directory others can write, a symbolic
// link planted by another user (for real: `ln -s` run as nobody through
// setpriv) is not followed, and neither a file of another user nor one with
// other hard links is appended to; a link in a directory only root can write
// is followed.
#include "devhost_test.hpp"
#include "log_file.hpp"

#include <catch2/catch.hpp>
#include <spdlog/logger.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace devhost;
using namespace devhost::test;

namespace {

const char *loop_config = "[device a]\nclass = loop\npath = loop:a\nstep = open\nstep = close\n";

// A config whose virtual printer prints a page to `output`.
std::string printer_config(const fs::path &output)
{
    return "[virtual lpt]\nkind = parallel-port\noutput = " + output.string() +
           "\n[device p]\nclass = parallel\npath = virtual:lpt\nstep = open\nstep = connect mode=compat\n"
           "step = lock timeout=5s\nstep = write \"page\"\nstep = unlock\nstep = disconnect\nstep = close\n";
}

mode_t mode_of(const fs::path &file)
{
    struct stat st {};
    REQUIRE(lstat(file.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

// Runs argv as nobody (uid and gid 65534, no groups).
ProcessResult as_nobody(std::vector<std::string> argv)
{
    argv.insert(argv.begin(), {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
    return run_process(argv);
}

// A world-writable sticky directory (like /tmp) in a directory nobody may
// enter, and a file of root's that a planted link could point at.
struct StickyDir {
    TempDir top;
    fs::path dir = top / "public";
    fs::path victim = top / "victim";
    StickyDir()
    {
        fs::permissions(top.path(), fs::perms(0755));
        fs::create_directory(dir);
        REQUIRE(chmod(dir.c_str(), 01777) == 0);
        write_file(victim, "root's file\n");
        REQUIRE(chmod(victim.c_str(), 0600) == 0);
    }
};

}  // namespace

TEST_CASE("records, log and printer output are created 0640, 0640 and 0600 whatever the umask", "[files][e2e]")
{
    for (const mode_t mask : {mode_t(0), mode_t(077), mode_t(0777)}) {
        INFO("umask " << mask);
        TempDir dir;
        write_file(dir / "c.ini", printer_config(dir / "printed"));
        ProcessOptions options;
        options.before_exec = [mask] { umask(mask); };
        auto r = run_devhost({"run", "-o", (dir / "records.jsonl").string(), "--log-file",
                              (dir / "devhost.log").string(), (dir / "c.ini").string()},
                             options);
        INFO(r.err);
        CHECK(r.exit_code == 0);
        CHECK(mode_of(dir / "records.jsonl") == 0640);
        CHECK(mode_of(dir / "devhost.log") == 0640);
        CHECK(mode_of(dir / "printed") == 0600);
        CHECK(read_file(dir / "printed") == "page");
        CHECK(lines(read_file(dir / "records.jsonl")).size() == 7);
    }
}

TEST_CASE("a symbolic link another user planted in a sticky directory is not followed", "[files][e2e]")
{
    StickyDir sticky;
    write_file(sticky.top / "c.ini", loop_config);
    const std::string config = (sticky.top / "c.ini").string();
    for (const char *name : {"records.jsonl", "devhost.log", "printed"}) {
        auto ln = as_nobody({"/bin/ln", "-s", sticky.victim.string(), (sticky.dir / name).string()});
        REQUIRE(ln.exit_code == 0);
    }
    const std::string refused = ": a symbolic link in a directory others can write; not followed";

    auto records = run_devhost({"run", "-o", (sticky.dir / "records.jsonl").string(), config});
    CHECK(records.exit_code == 2);
    CHECK(records.err == "devhost: error: --output: cannot open record output '" +
                             (sticky.dir / "records.jsonl").string() + "'" + refused + "\n");

    auto log = run_devhost({"run", "--log-file", (sticky.dir / "devhost.log").string(), config});
    CHECK(log.exit_code == 2);
    CHECK(log.err == "devhost: error: cannot set up logging: log file " + (sticky.dir / "devhost.log").string() +
                         refused + "\n");

    auto printer = run_process({(bin_dir() / "devhost-vdev").string(), "parallel-port", "--name=lpt",
                                "--output=" + (sticky.dir / "printed").string()},
                               {std::chrono::seconds(10)});
    CHECK(printer.exit_code == 1);  // as for any output it cannot open
    CHECK(printer.err == "devhost-vdev: parallel-port: --output=" + (sticky.dir / "printed").string() + refused +
                             "\n");

    CHECK(read_file(sticky.victim) == "root's file\n");
    CHECK(mode_of(sticky.victim) == 0600);
}

TEST_CASE("a symbolic link another user planted in the middle of an output path is not followed", "[files][e2e]")
{
    // nobody links a name in the sticky directory to a directory of root's,
    // and one in a directory of their own: root's records, log and printer
    // output, named through either, would land in root's directory.
    StickyDir sticky;
    const fs::path roots = sticky.top / "roots";
    fs::create_directory(roots);
    REQUIRE(chmod(roots.c_str(), 0755) == 0);
    write_file(roots / "records.jsonl", "root's records\n");
    const fs::path theirs = sticky.top / "theirs";
    fs::create_directory(theirs);
    REQUIRE(chown(theirs.c_str(), 65534, 65534) == 0);
    REQUIRE(as_nobody({"/bin/ln", "-s", roots.string(), (sticky.dir / "spool").string()}).exit_code == 0);
    REQUIRE(as_nobody({"/bin/ln", "-s", roots.string(), (theirs / "spool").string()}).exit_code == 0);
    write_file(sticky.top / "c.ini", loop_config);
    const std::string config = (sticky.top / "c.ini").string();

    auto records = run_devhost({"run", "-o", (sticky.dir / "spool/records.jsonl").string(), config});
    CHECK(records.exit_code == 2);
    CHECK(records.err == "devhost: error: --output: cannot open record output '" +
                             (sticky.dir / "spool/records.jsonl").string() + "': " + (sticky.dir / "spool").string() +
                             ": a symbolic link in a directory others can write; not followed\n");

    auto log = run_devhost({"run", "--log-file", (theirs / "spool/devhost.log").string(), config});
    CHECK(log.exit_code == 2);
    CHECK(log.err.find((theirs / "spool").string() + ": a symbolic link in a directory others can write") !=
          std::string::npos);

    auto printer = run_process({(bin_dir() / "devhost-vdev").string(), "parallel-port", "--name=lpt",
                                "--output=" + (theirs / "spool/printed").string()},
                               {std::chrono::seconds(10)});
    CHECK(printer.exit_code == 1);
    CHECK(printer.err.find((theirs / "spool").string() + ": a symbolic link in a directory others can write") !=
          std::string::npos);

    CHECK(read_file(roots / "records.jsonl") == "root's records\n");
    CHECK_FALSE(fs::exists(roots / "devhost.log"));
    CHECK_FALSE(fs::exists(roots / "printed"));

    // The same path through links only root could have made is followed.
    const fs::path trusted_link = sticky.top / "trusted";
    fs::create_directory_symlink(roots, trusted_link);
    auto followed = run_devhost({"run", "-o", (trusted_link / "new.jsonl").string(), config});
    CHECK(followed.exit_code == 0);
    CHECK(lines(read_file(roots / "new.jsonl")).size() == 2);
}

TEST_CASE("in a sticky directory, another user's file or a file with other hard links is not appended to",
          "[files][e2e]")
{
    StickyDir sticky;
    write_file(sticky.top / "c.ini", loop_config);
    const std::string config = (sticky.top / "c.ini").string();
    const auto theirs = sticky.dir / "theirs.jsonl";
    REQUIRE(as_nobody({"/usr/bin/touch", theirs.string()}).exit_code == 0);
    auto r = run_devhost({"run", "-o", theirs.string(), config});
    CHECK(r.exit_code == 2);
    CHECK(r.err == "devhost: error: --output: cannot open record output '" + theirs.string() +
                       "': it belongs to uid 65534 and its directory can be written by others; not used\n");
    CHECK(read_file(theirs).empty());

    // A hard link to root's file (fs.protected_hardlinks keeps others from
    // making one, but not every system sets it).
    const auto linked = sticky.dir / "linked.jsonl";
    fs::create_hard_link(sticky.victim, linked);
    r = run_devhost({"run", "-o", linked.string(), config});
    CHECK(r.exit_code == 2);
    CHECK(r.err == "devhost: error: --output: cannot open record output '" + linked.string() +
                       "': it has 2 hard links and its directory can be written by others; not used\n");
    CHECK(read_file(sticky.victim) == "root's file\n");

    // Root's own file there, of one link, is appended to.
    const auto mine = sticky.dir / "mine.jsonl";
    r = run_devhost({"run", "-o", mine.string(), config});
    CHECK(r.exit_code == 0);
    r = run_devhost({"run", "-o", mine.string(), config});
    CHECK(r.exit_code == 0);
    CHECK(lines(read_file(mine)).size() == 4);
}

TEST_CASE("a symbolic link in a directory only root can write is followed", "[files][e2e]")
{
    TempDir dir;  // 0700, root's
    write_file(dir / "c.ini", loop_config);
    fs::create_directory(dir / "real");
    fs::create_symlink(dir / "real" / "records.jsonl", dir / "records.jsonl");
    // The link names a file not there yet: it is created, then appended to.
    for (int run = 1; run <= 2; run++) {
        auto r = run_devhost({"run", "-o", (dir / "records.jsonl").string(), (dir / "c.ini").string()});
        CHECK(r.exit_code == 0);
        CHECK(lines(read_file(dir / "real" / "records.jsonl")).size() == size_t(2 * run));
    }
    CHECK(mode_of(dir / "real" / "records.jsonl") == 0640);
    CHECK(fs::is_symlink(dir / "records.jsonl"));
}

TEST_CASE("the log file rotates inside its directory, each new file 0640, past links planted there",
          "[files]")
{
    StickyDir sticky;
    // A link planted where the first rotation goes: renamed over, never
    // followed.
    REQUIRE(as_nobody({"/bin/ln", "-s", sticky.victim.string(), (sticky.dir / "devhost.1.log").string()}).exit_code ==
            0);
    const mode_t old_mask = umask(0);
    {
        auto sink = std::make_shared<logging::LogFileSink>(sticky.dir / "devhost.log", 300, 2);
        spdlog::logger logger("rotation", sink);
        for (int i = 0; i < 20; i++)
            logger.info("line {} {}", i, std::string(50, 'x'));
    }
    umask(old_mask);
    for (const char *name : {"devhost.log", "devhost.1.log", "devhost.2.log"}) {
        INFO(name);
        REQUIRE(fs::is_regular_file(fs::symlink_status(sticky.dir / name)));
        CHECK(mode_of(sticky.dir / name) == 0640);
        CHECK(fs::file_size(sticky.dir / name) <= 300);
    }
    CHECK_FALSE(fs::exists(fs::symlink_status(sticky.dir / "devhost.3.log")));
    CHECK(read_file(sticky.dir / "devhost.log").find("line 19 ") != std::string::npos);
    CHECK(read_file(sticky.victim) == "root's file\n");
}

TEST_CASE("a link in root's directory to a name in a sticky directory does not follow a link planted there",
          "[files][e2e]")
{
    // root links records (and a step's to= and from=) from a directory of its
    // own to names in the sticky directory; nobody plants, under those
    // names, links to root's file. The kernel would follow the second link
    // by itself; devhost walks the first link's target and refuses it.
    StickyDir sticky;
    const fs::path own = sticky.top / "own";
    fs::create_directory(own);
    REQUIRE(chmod(own.c_str(), 0755) == 0);
    for (const char *name : {"records.jsonl", "out", "in"}) {
        fs::create_symlink(sticky.dir / name, own / name);
        auto ln = as_nobody({"/bin/ln", "-s", sticky.victim.string(), (sticky.dir / name).string()});
        REQUIRE(ln.exit_code == 0);
    }
    write_file(sticky.top / "c.ini", loop_config);
    auto records = run_devhost({"run", "-o", (own / "records.jsonl").string(), (sticky.top / "c.ini").string()});
    CHECK(records.exit_code == 2);
    CHECK(records.err == "devhost: error: --output: cannot open record output '" + (own / "records.jsonl").string() +
                             "': a symbolic link in a directory others can write; not followed\n");

    write_file(sticky.top / "s.ini", "[device a]\nclass = loop\npath = loop:s\nstep = open\nstep = write \"hello\"\n"
                                     "step = read 5 to=" + (own / "out").string() + "\nstep = close\n");
    auto to = run_devhost({"run", (sticky.top / "s.ini").string()});
    CHECK(to.exit_code != 0);
    CHECK_THAT(to.err, Catch::Contains("a symbolic link in a directory others can write; not followed"));

    write_file(sticky.top / "f.ini", "[device a]\nclass = loop\npath = loop:f\nstep = open\nstep = write from=" +
                                         (own / "in").string() + "\nstep = close\n");
    auto from = run_devhost({"run", (sticky.top / "f.ini").string()});
    CHECK(from.exit_code != 0);
    CHECK_THAT(from.err, Catch::Contains("a symbolic link in a directory others can write; not followed"));
    CHECK(from.out.find("root's file") == std::string::npos);

    CHECK(read_file(sticky.victim) == "root's file\n");
    CHECK(mode_of(sticky.victim) == 0600);
}

TEST_CASE("a link in root's directory to a file not there yet in another of root's directories creates it",
          "[files][e2e]")
{
    TempDir dir;
    fs::create_directory(dir / "a");
    fs::create_directory(dir / "b");
    fs::create_symlink("../b/records.jsonl", dir / "a" / "records.jsonl");
    write_file(dir / "c.ini", loop_config);
    auto r = run_devhost({"run", "-o", (dir / "a" / "records.jsonl").string(), (dir / "c.ini").string()});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(lines(read_file(dir / "b" / "records.jsonl")).size() == 2);
    CHECK(mode_of(dir / "b" / "records.jsonl") == 0640);
}
