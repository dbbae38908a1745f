// `devhost reset-failed CONFIG [CLASS...]` end to end: it clears what a
// restart ledger written through RestartLedger holds (one class, every
// class, nothing), heals a ledger that is not one, and refuses a state
// directory or ledger that an unprivileged user planted (for real, as
// nobody through setpriv): root's devhost never reads it.
#include "config.hpp"
#include "devhost_test.hpp"
#include "devices.hpp"
#include "restart_policy.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

using namespace devhost;
using namespace devhost::test;

namespace {

using Clock = RestartLedger::Clock;
const Clock::time_point t0 = Clock::now();

// A config that keeps its state in `state` (and runs one loop device).
fs::path config_with_state(const TempDir &dir, const fs::path &state)
{
    const fs::path config = dir / "c.ini";
    write_file(config, "[host]\nstate-dir = " + state.string() +
                           "\n[device d]\nclass = loop\npath = loop:x\nstep = open\nstep = close\n");
    return config;
}

// A ledger file that says `cls` failed, as devhost writes it.
std::string failed_ledger(const std::string &cls)
{
    return "{\"version\": 1, \"classes\": {\"" + cls +
           "\": {\"deaths\": [], \"failed\": {\"at_ms\": 1, \"deaths\": 5, \"window_ms\": 1800000, "
           "\"why\": \"planted by nobody\"}}}}\n";
}

// Runs a shell command line as nobody (uid and gid 65534, no groups).
ProcessResult as_nobody(const std::string &command)
{
    return run_process({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sh", "-c",
                        command},
                       {std::chrono::seconds(10)});
}

std::string mode_of(const fs::path &p)
{
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0)
        return "missing";
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return buf;
}

}  // namespace

TEST_CASE("[host] state-dir is an absolute directory path", "[reset-failed][config]")
{
    const std::string device = "[device d]\nclass = loop\npath = loop:x\nstep = open\n";
    std::vector<Diagnostic> diags;
    Config c = parse_config("[host]\nstate-dir = /var/lib/devhost\n" + device, "test.ini", diags);
    CHECK(diags.empty());
    CHECK(c.host.state_dir == "/var/lib/devhost");
    CHECK_FALSE(parse_config(device, "test.ini", diags).host.state_dir.has_value());
    CHECK(errors_of("[host]\nstate-dir = state\n" + device) ==
          std::vector<std::string>{"test.ini:2: [host] state-dir: expected an absolute directory path, got 'state'"});
    CHECK(errors_of("[host]\nstate-dir =\n" + device) ==
          std::vector<std::string>{"test.ini:2: [host] state-dir: expected an absolute directory path, got ''"});
}

TEST_CASE("devhost reset-failed clears one class, then every class, of a ledger written by the host",
          "[reset-failed][e2e]")
{
    TempDir dir;
    const fs::path state = dir / "state";
    const fs::path config = config_with_state(dir, state);
    RestartPolicy policy;
    policy.budget = 2;
    {
        RestartLedger ledger(policy, state);
        REQUIRE(ledger.persistent());
        ledger.record_death("serial", t0, "exited with status 1");
        REQUIRE(ledger.record_death("serial", t0 + std::chrono::seconds(1), "killed by signal 11 (Segmentation fault)"));
        ledger.record_death("raw", t0, "aborted (signal 6)");
    }

    auto one = run_devhost({"reset-failed", config.string(), "serial", "usb"});
    INFO(one.err);
    CHECK(one.exit_code == 0);
    CHECK(one.err.empty());
    CHECK(one.out == "serial: reset (was failed: 2 worker deaths in 30 min, the last: killed by signal 11 "
                     "(Segmentation fault))\nusb: nothing to reset\n");
    {
        RestartLedger after(policy, state);
        CHECK_FALSE(after.failed("serial"));
        CHECK(after.deaths("serial", t0) == 0);
        CHECK(after.deaths("raw", t0) == 1);
    }

    auto all = run_devhost({"reset-failed", config.string()});
    CHECK(all.exit_code == 0);
    CHECK(all.err.empty());
    CHECK(all.out == "raw: reset (had 1 worker death, not failed)\n");
    CHECK(RestartLedger(policy, state).classes().empty());

    auto again = run_devhost({"reset-failed", config.string()});
    CHECK(again.exit_code == 0);
    CHECK(again.out == "nothing to reset\n");
    CHECK(mode_of(state) == "0700");
    CHECK(mode_of(state / "restart-ledger.json") == "0600");
}

TEST_CASE("devhost reset-failed replaces a ledger that is not one, with a warning", "[reset-failed][e2e]")
{
    TempDir dir;
    const fs::path state = dir / "state";
    const fs::path config = config_with_state(dir, state);
    RestartLedger(RestartPolicy{}, state).classes();  // the directory, 0700
    write_file(state / "restart-ledger.json", "{\"version\": 1, \"classes\": {\"serial\": ");  // a torn write
    REQUIRE(::chmod((state / "restart-ledger.json").c_str(), 0600) == 0);
    auto r = run_devhost({"reset-failed", config.string()});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == "nothing to reset\n");
    CHECK(r.err.find("restart ledger: " + (state / "restart-ledger.json").string() +
                     " is not a restart ledger (not JSON: a syntax error at byte 38); treated as empty\n") !=
          std::string::npos);
    CHECK(lines(r.err).size() == 1);
    CHECK(read_file(state / "restart-ledger.json") == "{\n  \"classes\": {},\n  \"version\": 1\n}\n");
}

TEST_CASE("nobody cannot plant a restart ledger that root's devhost reads", "[reset-failed][e2e][hardening]")
{
    if (::geteuid() != 0)
        DEVHOST_SKIP("needs root to act as nobody");
    if (::access("/usr/bin/setpriv", X_OK) != 0)
        DEVHOST_SKIP("needs /usr/bin/setpriv");
    // A sticky world-writable directory (like /tmp) where the config puts
    // its state directory, in a directory nobody may enter.
    TempDir top;
    fs::permissions(top.path(), fs::perms(0755));
    const fs::path pub = top / "public";
    fs::create_directory(pub);
    REQUIRE(::chmod(pub.c_str(), 01777) == 0);
    const fs::path state = pub / "state";
    const fs::path config = config_with_state(top, state);
    const std::string planted = failed_ledger("serial");

    SECTION("nobody makes the state directory first, with a ledger in it")
    {
        auto plant = as_nobody("umask 077 && mkdir '" + state.string() + "' && printf '%s' '" + planted + "' > '" +
                               (state / "restart-ledger.json").string() + "'");
        REQUIRE(plant.exit_code == 0);
        auto r = run_devhost({"reset-failed", config.string()});
        CHECK(r.exit_code == 1);
        CHECK(r.out.empty());
        CHECK(r.err == "devhost: error: restart ledger: directory " + state.string() +
                           " is owned by uid 65534 (not root or uid 0); nothing was reset\n");
        LogCapture log;
        RestartLedger ledger(RestartPolicy{}, state);
        CHECK_FALSE(ledger.persistent());
        CHECK_FALSE(ledger.failed("serial"));  // what nobody wrote is not read
        CHECK(log.text() == "warning: restart ledger: directory " + state.string() +
                                " is owned by uid 65534 (not root or uid 0); deaths are counted in memory only\n");
        CHECK(read_file(state / "restart-ledger.json") == planted);
    }
    SECTION("nobody links the state directory's name to a directory of theirs")
    {
        const fs::path theirs = pub / "theirs";
        auto plant = as_nobody("umask 077 && mkdir '" + theirs.string() + "' && printf '%s' '" + planted + "' > '" +
                               (theirs / "restart-ledger.json").string() + "' && ln -s '" + theirs.string() +
                               "' '" + state.string() + "'");
        REQUIRE(plant.exit_code == 0);
        auto r = run_devhost({"reset-failed", config.string(), "serial"});
        CHECK(r.exit_code == 1);
        CHECK(r.err == "devhost: error: restart ledger: symbolic link " + state.string() +
                           " is owned by uid 65534, in a directory others can write (mode 1777); nothing was reset\n");
        LogCapture log;
        CHECK_FALSE(RestartLedger(RestartPolicy{}, state).failed("serial"));
        CHECK(read_file(theirs / "restart-ledger.json") == planted);
    }
    SECTION("nobody links the state directory's name to a directory of root's")
    {
        // Root's own directory is trusted, but the link to it is nobody's:
        // followed, it would have root write its ledger wherever nobody
        // chose (/etc, /root/.ssh...).
        const fs::path roots = top / "roots";
        fs::create_directory(roots);
        REQUIRE(::chmod(roots.c_str(), 0755) == 0);
        REQUIRE(as_nobody("ln -s '" + roots.string() + "' '" + state.string() + "'").exit_code == 0);
        auto r = run_devhost({"reset-failed", config.string()});
        CHECK(r.exit_code == 1);
        CHECK(r.err == "devhost: error: restart ledger: symbolic link " + state.string() +
                           " is owned by uid 65534, in a directory others can write (mode 1777); nothing was reset\n");
        CHECK(fs::is_empty(roots));
    }
    SECTION("root's state directory: nobody can neither write in it nor move it away")
    {
        {
            RestartLedger ledger(RestartPolicy{}, state);
            REQUIRE(ledger.persistent());
            ledger.record_death("raw", t0, "exited with status 1");
        }
        const std::string ledger_file = (state / "restart-ledger.json").string();
        CHECK(as_nobody("printf '%s' '" + planted + "' > '" + ledger_file + "'").exit_code != 0);
        CHECK(as_nobody("printf '%s' '" + planted + "' > '" + ledger_file + ".new'").exit_code != 0);
        CHECK(as_nobody("mv '" + state.string() + "' '" + (pub / "moved").string() + "'").exit_code != 0);
        CHECK(as_nobody("ln '" + ledger_file + "' '" + (pub / "hard").string() + "'").exit_code != 0);
        auto r = run_devhost({"reset-failed", config.string()});
        CHECK(r.exit_code == 0);
        CHECK(r.out == "raw: reset (had 1 worker death, not failed)\n");
        CHECK_FALSE(RestartLedger(RestartPolicy{}, state).failed("serial"));
    }
}
