// A device's filesystem path (README, "What a local user can and cannot do
// to a root devhost"): plugins open `path =` by name, so before a device is
// class-matched or opened the host walks its path by descriptor
// (common/device_path.hpp). Attacked for real: links and files planted as
// nobody (setpriv) in a sticky world-writable directory, aimed at a file of
// root's (mode 0600) and at a tty (a pty, never the console), are refused by
// `devhost probe`, `check` and `run`, and the victim is left as it was; a
// file of root's in the sticky directory, and a link in a directory only
// root can write, are used.
#include "devhost_test.hpp"
#include "devices.hpp"

#include <catch2/catch.hpp>
#include <sys/stat.h>
#include <unistd.h>

using namespace devhost::test;

namespace {

// Runs argv as nobody (uid and gid 65534, no groups).
ProcessResult as_nobody(std::vector<std::string> argv)
{
    argv.insert(argv.begin(), {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
    return run_process(argv);
}

// A world-writable sticky directory (like /tmp) in a directory only root
// may write, and a file of root's (0600) in a 0700 directory of root's that
// a planted link could point at.
struct StickyDir {
    TempDir top;
    fs::path dir = top / "public";
    fs::path secret_dir = top / "private";
    fs::path victim = secret_dir / "victim";
    StickyDir()
    {
        fs::permissions(top.path(), fs::perms(0755));
        fs::create_directory(dir);
        REQUIRE(::chmod(dir.c_str(), 01777) == 0);
        fs::create_directory(secret_dir);
        REQUIRE(::chmod(secret_dir.c_str(), 0700) == 0);
        write_file(victim, "SECRET\n");
        REQUIRE(::chmod(victim.c_str(), 0600) == 0);
    }
    // A config writing to `path` (raw, by its kind of file unless `cls`).
    fs::path config(const fs::path &path, const std::string &cls = "") const
    {
        const fs::path file = top / "c.ini";
        write_file(file, "[device d]\n" + (cls.empty() ? "" : "class = " + cls + "\n") + "path = " + path.string() +
                             "\nallow-write = true\nstep = open\nstep = write \"PWNED\" offset=0\nstep = close\n");
        return file;
    }
};

const std::string planted_link = "a symbolic link in a directory others can write; not followed";

// What `devhost probe` and `devhost check` say about `path`; `line` is the
// config line naming it (3 with a class, 2 without).
void check_refused(const StickyDir &s, const fs::path &path, const std::string &reason)
{
    auto probe = run_devhost({"probe", path.string()}, {.timeout = std::chrono::seconds(30)});
    CHECK(probe.exit_code == 2);
    CHECK(probe.err == "devhost: error: path '" + path.string() + "': " + reason + "\n");
    CHECK(probe.out.empty());
    for (const std::string cls : {"", "raw"}) {
        INFO("class '" << cls << "'");
        const fs::path config = s.config(path, cls);
        const std::string line = config.string() + (cls.empty() ? ":2: " : ":3: ");
        for (const char *command : {"check", "run"}) {
            auto r = run_devhost({command, config.string()}, {.timeout = std::chrono::seconds(30)});
            INFO(command);
            CHECK(r.exit_code == 2);
            CHECK(r.err == "devhost: error: " + line + "[device d] path '" + path.string() + "': " + reason + "\n");
        }
    }
}

}  // namespace

TEST_CASE("a link nobody planted in a sticky directory to root's file or a tty is not followed", "[files][e2e]")
{
    if (::geteuid() != 0)
        DEVHOST_SKIP("needs root to plant links as another user");
    StickyDir s;
    Pty pty;
    const fs::path to_file = s.dir / "img", to_tty = s.dir / "tty";
    REQUIRE(as_nobody({"/bin/ln", "-s", s.victim.string(), to_file.string()}).exit_code == 0);
    REQUIRE(as_nobody({"/bin/ln", "-s", pty.path, to_tty.string()}).exit_code == 0);
    check_refused(s, to_file, planted_link);
    check_refused(s, to_tty, planted_link);
    CHECK(read_file(s.victim) == "SECRET\n");
    CHECK(pty.queued() == 0);
    // A planted link on the way to the file is refused too, named.
    REQUIRE(as_nobody({"/bin/ln", "-s", s.secret_dir.string(), (s.dir / "sub").string()}).exit_code == 0);
    check_refused(s, s.dir / "sub" / "victim", (s.dir / "sub").string() + ": " + planted_link);
    CHECK(read_file(s.victim) == "SECRET\n");
}

TEST_CASE("a file nobody owns in a sticky directory is not a root devhost's device", "[files][e2e]")
{
    if (::geteuid() != 0)
        DEVHOST_SKIP("needs root to make files as another user");
    StickyDir s;
    const fs::path img = s.dir / "img";
    REQUIRE(as_nobody({"/bin/sh", "-c", "echo nobody > " + img.string()}).exit_code == 0);
    check_refused(s, img, "it belongs to uid 65534 and its directory can be written by others; not used");
    CHECK(read_file(img) == "nobody\n");
    // A hard link of root's file there (as root: nobody may not link it).
    const fs::path hard = s.dir / "hard";
    REQUIRE(::link(s.victim.c_str(), hard.c_str()) == 0);
    check_refused(s, hard, "it has 2 hard links and its directory can be written by others; not used");
    CHECK(read_file(s.victim) == "SECRET\n");
}

TEST_CASE("a file of root's in a world-writable directory that is not sticky is not used", "[files][e2e]")
{
    StickyDir s;
    const fs::path open_dir = s.top / "open", img = open_dir / "img";
    fs::create_directory(open_dir);
    REQUIRE(::chmod(open_dir.c_str(), 0777) == 0);
    write_file(img, "root's image\n");
    check_refused(s, img, "its directory can be written by others and is not sticky; not used");
    CHECK(read_file(img) == "root's image\n");
}

TEST_CASE("root's image in a sticky directory and a link in a root-only directory are used", "[files][e2e]")
{
    StickyDir s;
    const fs::path img = s.dir / "img";
    write_file(img, "0123456789\n");
    auto check = run_devhost({"check", s.config(img).string()});
    CHECK(check.err.empty());
    CHECK(check.exit_code == 0);
    auto run = run_devhost({"run", s.config(img).string()});
    CHECK(run.exit_code == 0);
    CHECK(read_file(img) == "PWNED56789\n");

    // top is 0755 root's: a link there is followed, to a file in a 0700
    // directory of root's.
    const fs::path link = s.top / "link";
    fs::create_symlink(fs::path("private") / "victim", link);
    auto probe = run_devhost({"probe", link.string()});
    CHECK(probe.exit_code == 0);
    INFO(probe.err);
    auto followed = run_devhost({"run", s.config(link).string()});
    CHECK(followed.exit_code == 0);
    CHECK(read_file(s.victim) == "PWNEDT\n");
}
