// The restart ledger (restart_policy.hpp): deaths counted within the
// window with injected times, the latch that outlives its window until a
// reset, the backoff's growth, cap and jitter, and the ledger file: kept
// across ledger objects, a corrupt one read as empty with a warning, the
// state directory created 0700 whatever the umask and refused when another
// user owns it or others can write it, a planted file (a link, a hard link,
// another user's) never read nor replaced, no death lost between
// concurrent writers, a lock held too long, a full disk.
#include "devhost_test.hpp"
#include "devices.hpp"
#include "restart_policy.hpp"

#include <devhost/unique_fd.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <poll.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace devhost;
using namespace devhost::test;
using namespace std::chrono_literals;

namespace {

using Clock = RestartLedger::Clock;
const Clock::time_point t0{std::chrono::milliseconds(1'700'000'000'000)};

constexpr uid_t nobody = 65534;

std::string mode_of(const fs::path &p)
{
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0)
        return "missing";
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return buf;
}

ino_t inode_of(const fs::path &p)
{
    struct stat st {};
    REQUIRE(::lstat(p.c_str(), &st) == 0);
    return st.st_ino;
}

struct Umask {
    mode_t old;
    explicit Umask(mode_t m) : old(::umask(m)) {}
    ~Umask() { ::umask(old); }
};

// A ledger file that says class `cls` failed, as devhost would write it.
std::string failed_ledger(const std::string &cls)
{
    return "{\"version\": 1, \"classes\": {\"" + cls +
           "\": {\"deaths\": [], \"failed\": {\"at_ms\": 1, \"deaths\": 5, \"window_ms\": 1800000, "
           "\"why\": \"planted\"}}}}\n";
}

}  // namespace

TEST_CASE("budget deaths within the window latch a class failed, older deaths are forgotten", "[restart]")
{
    RestartLedger ledger;  // in memory: budget 5 in 30 min
    CHECK_FALSE(ledger.persistent());
    CHECK(ledger.error().empty());
    for (int i = 0; i < 4; i++)
        CHECK_FALSE(ledger.record_death("serial", t0 + std::chrono::minutes(i), "exited with status 1"));
    CHECK(ledger.deaths("serial", t0 + 3min) == 4);
    CHECK(ledger.deaths("serial", t0 + 30min) == 3);  // the first is 30 min old: out
    CHECK_FALSE(ledger.failed("serial"));
    // The fifth comes 30.5 min after the first: it makes four, not five.
    CHECK_FALSE(ledger.record_death("serial", t0 + 30min + 30s, "exited with status 1"));
    CHECK(ledger.deaths("serial", t0 + 30min + 30s) == 4);
    CHECK(ledger.record_death("serial", t0 + 30min + 40s, "killed by signal 11 (Segmentation fault)"));
    CHECK(ledger.failed("serial"));
    CHECK(ledger.deaths("serial", t0 + 30min + 40s) == 5);
    // Classes are counted apart.
    CHECK_FALSE(ledger.failed("raw"));
    CHECK(ledger.deaths("raw", t0 + 30min + 40s) == 0);
    CHECK(ledger.classes() == std::vector<std::string>{"serial"});
}

TEST_CASE("a latched class stays failed after its window passes, until it is reset", "[restart]")
{
    RestartPolicy policy;
    policy.budget = 2;
    policy.window_ms = 60'000;
    RestartLedger ledger(policy);
    CHECK_FALSE(ledger.record_death("serial", t0, "exited with status 3"));
    CHECK(ledger.record_death("serial", t0 + 1s, "killed by signal 11 (Segmentation fault)"));
    CHECK(ledger.deaths("serial", t0 + 24h) == 0);  // long out of the window...
    CHECK(ledger.failed("serial"));                 // ...and still failed
    CHECK(ledger.record_death("serial", t0 + 25h, "exited with status 1"));  // not counted: failed already
    CHECK(ledger.failed_reason("serial") ==
          "class 'serial' failed: 2 worker deaths in 1 min, the last: killed by signal 11 (Segmentation fault); "
          "reset it with: devhost reset-failed CONFIG serial");
    CHECK(ledger.failed_reason("serial", "/etc/devhost.ini") ==
          "class 'serial' failed: 2 worker deaths in 1 min, the last: killed by signal 11 (Segmentation fault); "
          "reset it with: devhost reset-failed /etc/devhost.ini serial");
    CHECK(ledger.failed_reason("raw").empty());

    CHECK(ledger.reset("serial") == "was failed: 2 worker deaths in 1 min, the last: killed by signal 11 "
                                    "(Segmentation fault)");
    CHECK_FALSE(ledger.failed("serial"));
    CHECK(ledger.failed_reason("serial").empty());
    CHECK(ledger.reset("serial") == std::nullopt);
    CHECK_FALSE(ledger.record_death("serial", t0 + 26h, "exited with status 1"));  // counted afresh
    CHECK(ledger.deaths("serial", t0 + 26h) == 1);
}

TEST_CASE("the default policy latches at 5 deaths in 30 min, and says so in the reason", "[restart]")
{
    RestartLedger ledger;
    CHECK(ledger.policy().budget == 5);
    CHECK(ledger.policy().window_ms == 30 * 60 * 1000);
    for (int i = 0; i < 4; i++)
        ledger.record_death("serial", t0 + std::chrono::seconds(i), "exited with status 1");
    CHECK(ledger.record_death("serial", t0 + 10s, "killed by signal 11 (Segmentation fault)"));
    CHECK(ledger.failed_reason("serial") ==
          "class 'serial' failed: 5 worker deaths in 30 min, the last: killed by signal 11 (Segmentation fault); "
          "reset it with: devhost reset-failed CONFIG serial");
}

TEST_CASE("reset_all forgets every class and says what each had", "[restart]")
{
    RestartPolicy policy;
    policy.budget = 1;
    RestartLedger ledger(policy);
    CHECK(ledger.reset_all().empty());
    ledger.record_death("serial", t0, "aborted (signal 6)");
    RestartPolicy two = policy;
    two.budget = 2;
    RestartLedger other(two);
    other.record_death("raw", t0, "exited with status 2");
    CHECK(other.reset_all() ==
          std::vector<std::pair<std::string, std::string>>{{"raw", "had 1 worker death, not failed"}});
    CHECK(ledger.reset_all() == std::vector<std::pair<std::string, std::string>>{
                                    {"serial", "was failed: 1 worker death in 30 min, the last: aborted (signal 6)"}});
    CHECK(ledger.classes().empty());
}

TEST_CASE("a death's reason is kept short and without control bytes", "[restart]")
{
    RestartPolicy policy;
    policy.budget = 1;
    RestartLedger ledger(policy);
    ledger.record_death("serial", t0, "bad\nline\x1b[31m" + std::string(500, 'x'));
    const std::string reason = ledger.failed_reason("serial");
    CHECK(reason.find('\n') == std::string::npos);
    CHECK(reason.find('\x1b') == std::string::npos);
    CHECK(reason.find("the last: bad\\x0aline\\x1b[31mxxx") != std::string::npos);
    CHECK(reason.size() < 400);
}

TEST_CASE("backoff doubles per death in the window up to its cap, within +-20% jitter", "[restart]")
{
    RestartLedger ledger;  // 100 ms doubling, at most 5000 ms
    ledger.set_random([] { return 0.5; });  // the middle: no jitter
    CHECK(ledger.backoff("serial", t0) == 0ms);  // no death: start at once
    const std::vector<int64_t> expected = {100, 200, 400, 800, 1600, 3200, 5000, 5000};
    RestartPolicy roomy;
    roomy.budget = 100;  // never latched here
    RestartLedger counted(roomy);
    counted.set_random([] { return 0.5; });
    for (size_t i = 0; i < expected.size(); i++) {
        counted.record_death("serial", t0 + std::chrono::seconds(i), "exited with status 1");
        INFO("after death " << i + 1);
        CHECK(counted.backoff("serial", t0 + 10s).count() == expected[i]);
    }
    // Deaths out of the window no longer count.
    CHECK(counted.backoff("serial", t0 + 31min).count() == 0);
    CHECK(counted.backoff("serial", t0 + 30min + 5s).count() == 200);  // two left: those at 6 and 7 s

    // The jitter's ends.
    counted.set_random([] { return 0.0; });
    CHECK(counted.backoff("serial", t0 + 10s).count() == 4000);
    counted.set_random([] { return 1.0; });
    CHECK(counted.backoff("serial", t0 + 10s).count() == 6000);
}

TEST_CASE("the default jitter spreads backoffs over 80% to 120%", "[restart]")
{
    RestartPolicy policy;
    policy.budget = 10;
    RestartLedger ledger(policy);
    ledger.record_death("serial", t0, "exited with status 1");
    ledger.record_death("serial", t0 + 1s, "exited with status 1");  // base 200 ms
    int64_t low = 1'000'000, high = 0;
    for (int i = 0; i < 2000; i++) {
        const int64_t ms = ledger.backoff("serial", t0 + 2s).count();
        low = std::min(low, ms);
        high = std::max(high, ms);
    }
    CHECK(low >= 160);
    CHECK(high <= 240);
    CHECK(low < 170);   // 2000 draws come near both ends (that they do not: a chance below 1e-100)
    CHECK(high > 230);
}

TEST_CASE("a ledger over a state directory is seen by the next ledger on it, reset included", "[restart][file]")
{
    TempDir tmp;
    const fs::path state = tmp / "state";
    RestartPolicy policy;
    policy.budget = 2;
    {
        RestartLedger first(policy, state);
        CHECK(first.persistent());
        CHECK(first.error().empty());
        first.record_death("serial", t0, "exited with status 1");
        first.record_death("serial", t0 + 1s, "killed by signal 9 (Killed)");
        first.record_death("raw", t0, "exited with status 2");
    }
    CHECK(mode_of(state / "restart-ledger.json") == "0600");
    RestartLedger second(policy, state);
    CHECK(second.failed("serial"));
    CHECK(second.failed_reason("serial") == "class 'serial' failed: 2 worker deaths in 30 min, the last: killed by "
                                            "signal 9 (Killed); reset it with: devhost reset-failed CONFIG serial");
    CHECK(second.deaths("raw", t0) == 1);
    CHECK(second.classes() == std::vector<std::string>{"raw", "serial"});

    // A query reads the file afresh: a reset by another ledger is seen at once.
    RestartLedger third(policy, state);
    CHECK(third.reset("serial").has_value());
    CHECK_FALSE(second.failed("serial"));
    CHECK(RestartLedger(policy, state).classes() == std::vector<std::string>{"raw"});
}

TEST_CASE("a change replaces the ledger file whole, through a new file renamed over it", "[restart][file]")
{
    TempDir tmp;
    const fs::path state = tmp / "state";
    RestartLedger ledger({}, state);
    ledger.record_death("serial", t0, "exited with status 1");
    const ino_t before = inode_of(state / "restart-ledger.json");
    // A crashed write left its new file behind: it is neither read nor in the way.
    write_file(state / "restart-ledger.json.new", "{\"version\": 1, \"cla");
    ledger.record_death("serial", t0 + 1s, "exited with status 1");
    CHECK(inode_of(state / "restart-ledger.json") != before);
    CHECK_FALSE(fs::exists(state / "restart-ledger.json.new"));
    CHECK(RestartLedger({}, state).deaths("serial", t0 + 1s) == 2);
    const std::string text = read_file(state / "restart-ledger.json");
    CHECK(text.rfind("{\n  \"classes\": {\n    \"serial\": {\n      \"deaths\": [\n", 0) == 0);
    CHECK(text.find("\"version\": 1") != std::string::npos);
}

TEST_CASE("a ledger file that is not a ledger is one warning, read as empty and replaced by the next change",
          "[restart][file]")
{
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"not json at all", "not JSON: a syntax error at byte 2"},
        {"", "not JSON: a syntax error at byte 1"},
        {"[1, 2]", "not a JSON object"},
        {"{\"classes\": {}}", "no \"version\""},
        {"{\"version\": 2, \"classes\": {}}", "version 2, this devhost reads version 1"},
        {"{\"version\": 1, \"classes\": []}", "\"classes\" is not an object"},
        {"{\"version\": 1, \"classes\": {\"serial\": {\"deaths\": \"many\"}}}", "\"deaths\" is not an array"},
        {"{\"version\": 1, \"classes\": {\"serial\": {\"deaths\": [{\"at_ms\": \"x\", \"why\": \"\"}]}}}",
         "\"at_ms\" is not an integer"},
        {"{\"version\": 1, \"classes\": {\"serial\": {\"deaths\": [], \"failed\": {\"at_ms\": 1}}}}", "no \"deaths\""},
        {std::string(400000, '[') + std::string(400000, ']'), "not a JSON object"},  // deep: no stack overflow
    };
    for (const auto &[content, why] : cases) {
        INFO(content.substr(0, 100));
        TempDir tmp;
        const fs::path state = tmp / "state";
        fs::create_directory(state);
        REQUIRE(::chmod(state.c_str(), 0700) == 0);
        write_file(state / "restart-ledger.json", content);
        REQUIRE(::chmod((state / "restart-ledger.json").c_str(), 0600) == 0);
        LogCapture log;
        RestartLedger ledger({}, state);
        CHECK(log.text() == "warning: restart ledger: " + (state / "restart-ledger.json").string() +
                                " is not a restart ledger (" + why + "); treated as empty\n");
        CHECK(ledger.classes().empty());
        CHECK(ledger.error().empty());
        CHECK(ledger.persistent());
        CHECK(lines(log.text()).size() == 1);  // queries do not repeat it
        ledger.record_death("serial", t0, "exited with status 1");
        CHECK(RestartLedger({}, state).deaths("serial", t0) == 1);
        CHECK(lines(log.text()).size() == 1);
    }
}

TEST_CASE("reset_all replaces a ledger file that is not a ledger, with nothing to reset", "[restart][file]")
{
    TempDir tmp;
    const fs::path state = tmp / "state";
    RestartLedger({}, state).classes();  // creates the directory
    write_file(state / "restart-ledger.json", "garbage");
    LogCapture log;
    RestartLedger ledger({}, state);
    CHECK(ledger.reset_all().empty());
    CHECK(read_file(state / "restart-ledger.json") == "{\n  \"classes\": {},\n  \"version\": 1\n}\n");
}

TEST_CASE("the state directory is created 0700 and the ledger 0600, whatever the umask", "[restart][file]")
{
    for (const mode_t mask : {mode_t(0), mode_t(0077), mode_t(0777)}) {
        INFO("umask " << mask);
        TempDir tmp;
        const fs::path state = tmp / "var" / "lib" / "devhost";
        Umask m(mask);
        RestartLedger ledger({}, state);
        CHECK(ledger.persistent());
        ledger.record_death("serial", t0, "exited with status 1");
        CHECK(mode_of(tmp / "var") == "0700");
        CHECK(mode_of(tmp / "var" / "lib") == "0700");
        CHECK(mode_of(state) == "0700");
        CHECK(mode_of(state / "restart-ledger.json") == "0600");
    }
}

TEST_CASE("a state directory another user owns or others can write is refused, and the ledger counts in memory",
          "[restart][file][hardening]")
{
    if (::geteuid() != 0)
        DEVHOST_SKIP("needs root to give a directory to another user");
    struct Case {
        const char *what;
        mode_t mode;
        uid_t owner;
        std::string why;  // after "directory STATE "
    };
    const std::vector<Case> cases = {
        {"nobody's", 0700, nobody, "is owned by uid 65534 (not root or uid 0)"},
        {"world-writable", 0777, 0,
         "is writable by group or others (mode 0777) and is not a sticky directory owned by root"},
        {"group-writable", 0770, 0,
         "is writable by group or others (mode 0770) and is not a sticky directory owned by root"},
        {"sticky like /tmp", 01777, 0, "is writable by group or others (mode 1777)"},
    };
    for (const auto &c : cases) {
        INFO(c.what);
        TempDir tmp;
        const fs::path state = tmp / "state";
        fs::create_directory(state);
        write_file(state / "restart-ledger.json", failed_ledger("serial"));
        REQUIRE(::chmod((state / "restart-ledger.json").c_str(), 0600) == 0);
        REQUIRE(::chown(state.c_str(), c.owner, c.owner) == 0);
        REQUIRE(::chmod(state.c_str(), c.mode) == 0);
        LogCapture log;
        RestartLedger ledger({}, state);
        const std::string error = "restart ledger: directory " + state.string() + " " + c.why;
        CHECK(ledger.error() == error);
        CHECK(log.text() == "warning: " + error + "; deaths are counted in memory only\n");
        CHECK_FALSE(ledger.persistent());
        CHECK_FALSE(ledger.failed("serial"));  // the planted latch is not read
        RestartPolicy one;
        one.budget = 1;
        RestartLedger counting(one, state);
        CHECK(counting.record_death("raw", t0, "exited with status 1"));  // counted in memory
        CHECK(counting.failed("raw"));
        CHECK(read_file(state / "restart-ledger.json") == failed_ledger("serial"));  // not replaced
    }
}

TEST_CASE("a ledger file that is a link, hard-linked, another user's, writable by others, not a file or too large is "
          "refused and left alone",
          "[restart][file][hardening]")
{
    if (::geteuid() != 0)
        DEVHOST_SKIP("needs root to give a file to another user");
    struct Case {
        const char *what;
        std::function<void(const fs::path &state, const fs::path &elsewhere)> plant;
        std::string why;  // after "restart ledger: FILE "
    };
    const std::vector<Case> cases = {
        {"a symbolic link",
         [](const fs::path &state, const fs::path &elsewhere) {
             fs::create_symlink(elsewhere, state / "restart-ledger.json");
         },
         "is a symbolic link"},
        {"a hard link",
         [](const fs::path &state, const fs::path &elsewhere) {
             fs::create_hard_link(elsewhere, state / "restart-ledger.json");
         },
         "has 2 links (another name for it is elsewhere)"},
        {"nobody's",
         [](const fs::path &state, const fs::path &) {
             write_file(state / "restart-ledger.json", failed_ledger("serial"));
             REQUIRE(::chmod((state / "restart-ledger.json").c_str(), 0600) == 0);
             REQUIRE(::chown((state / "restart-ledger.json").c_str(), nobody, nobody) == 0);
         },
         "is owned by uid 65534 (not uid 0)"},
        {"writable by others",
         [](const fs::path &state, const fs::path &) {
             write_file(state / "restart-ledger.json", failed_ledger("serial"));
             REQUIRE(::chmod((state / "restart-ledger.json").c_str(), 0666) == 0);
         },
         "is writable by group or others (mode 0666)"},
        {"a FIFO",
         [](const fs::path &state, const fs::path &) {
             REQUIRE(::mkfifo((state / "restart-ledger.json").c_str(), 0600) == 0);
         },
         "is not a regular file"},
        {"a directory", [](const fs::path &state, const fs::path &) { fs::create_directory(state / "restart-ledger.json"); },
         "is not a regular file"},
        {"too large",
         [](const fs::path &state, const fs::path &) {
             write_file(state / "restart-ledger.json", std::string(RestartLedger::max_file_bytes + 1, ' '));
             REQUIRE(::chmod((state / "restart-ledger.json").c_str(), 0600) == 0);
         },
         "is 1048577 bytes; the limit is 1048576"},
    };
    for (const auto &c : cases) {
        INFO(c.what);
        TempDir tmp;
        const fs::path state = tmp / "state";
        const fs::path elsewhere = tmp / "elsewhere.json";
        RestartLedger({}, state).classes();  // creates the directory
        write_file(elsewhere, failed_ledger("serial"));
        REQUIRE(::chmod(elsewhere.c_str(), 0600) == 0);
        c.plant(state, elsewhere);
        struct stat before {};
        REQUIRE(::lstat((state / "restart-ledger.json").c_str(), &before) == 0);

        LogCapture log;
        RestartPolicy one;
        one.budget = 1;
        RestartLedger ledger(one, state);
        const std::string error = "restart ledger: " + (state / "restart-ledger.json").string() + " " + c.why;
        CHECK(ledger.error() == error);
        CHECK(log.text() == "warning: " + error +
                                "; not read or replaced (remove it if nothing should be there); deaths are counted "
                                "in memory only\n");
        CHECK_FALSE(ledger.persistent());
        CHECK_FALSE(ledger.failed("serial"));
        CHECK(ledger.record_death("raw", t0, "exited with status 1"));  // in memory
        CHECK(ledger.failed("raw"));
        struct stat after {};
        REQUIRE(::lstat((state / "restart-ledger.json").c_str(), &after) == 0);
        CHECK(after.st_ino == before.st_ino);  // not replaced
        CHECK(read_file(elsewhere) == failed_ledger("serial"));
        CHECK(lines(log.text()).size() == 1);

        // Once an operator removed it, the next change writes what the
        // ledger counted meanwhile.
        fs::remove_all(state / "restart-ledger.json");
        ledger.record_death("usb", t0, "exited with status 1");
        CHECK(ledger.persistent());
        CHECK(ledger.error().empty());
        RestartLedger reread(one, state);
        CHECK(reread.failed("raw"));
        CHECK(reread.failed("usb"));
    }
}

TEST_CASE("concurrent writers lose no death: two processes, two ledgers, one ledger from two threads",
          "[restart][file]")
{
    RestartPolicy roomy;
    roomy.budget = 1000;
    auto record_100 = [](RestartLedger &ledger, int who) {
        for (int i = 0; i < 100; i++)
            ledger.record_death("serial", t0 + std::chrono::milliseconds(who * 1000 + i), "exited with status 1");
    };
    SECTION("two processes")
    {
        TempDir tmp;
        const fs::path state = tmp / "state";
        RestartLedger(roomy, state).classes();
        std::vector<pid_t> pids;
        for (int who = 0; who < 2; who++) {
            pid_t pid = ::fork();
            REQUIRE(pid >= 0);
            if (pid == 0) {
                RestartLedger ledger(roomy, state);
                record_100(ledger, who);
                ::_exit(ledger.persistent() ? 0 : 1);
            }
            pids.push_back(pid);
        }
        for (pid_t pid : pids) {
            int status = 0;
            REQUIRE(::waitpid(pid, &status, 0) == pid);
            CHECK(WIFEXITED(status));
            CHECK(WEXITSTATUS(status) == 0);
        }
        CHECK(RestartLedger(roomy, state).deaths("serial", t0) == 200);
    }
    SECTION("two ledgers on one directory, each on its own thread")
    {
        TempDir tmp;
        const fs::path state = tmp / "state";
        RestartLedger a(roomy, state), b(roomy, state);
        std::thread ta([&] { record_100(a, 0); });
        std::thread tb([&] { record_100(b, 1); });
        ta.join();
        tb.join();
        CHECK(RestartLedger(roomy, state).deaths("serial", t0) == 200);
    }
    SECTION("one ledger from two threads")
    {
        TempDir tmp;
        const fs::path state = tmp / "state";
        RestartLedger shared(roomy, state);
        std::thread ta([&] { record_100(shared, 0); });
        std::thread tb([&] { record_100(shared, 1); });
        ta.join();
        tb.join();
        CHECK(shared.deaths("serial", t0) == 200);
        CHECK(RestartLedger(roomy, state).deaths("serial", t0) == 200);
    }
}

TEST_CASE("a change waits for another process's lock, and after 5 s keeps the change in memory", "[restart][file]")
{
    TempDir tmp;
    const fs::path state = tmp / "state";
    RestartLedger ledger({}, state);
    auto lock_dir = [&] {
        UniqueFd fd(::open(state.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        REQUIRE(fd);
        REQUIRE(::flock(fd.get(), LOCK_EX) == 0);
        return fd;
    };
    {
        // Held for 300 ms: the change waits and is saved.
        UniqueFd held = lock_dir();
        std::thread release([&] {
            std::this_thread::sleep_for(300ms);
            held.reset();
        });
        const auto start = std::chrono::steady_clock::now();
        ledger.record_death("serial", t0, "exited with status 1");
        CHECK(elapsed_ms(start) >= 250);
        release.join();
        CHECK(ledger.persistent());
        CHECK(RestartLedger({}, state).deaths("serial", t0) == 1);
    }
    // Held for good: after lock_timeout the change is kept in memory.
    UniqueFd held = lock_dir();
    LogCapture log;
    const auto start = std::chrono::steady_clock::now();
    ledger.record_death("serial", t0 + 1s, "exited with status 1");
    const int64_t took = elapsed_ms(start);
    CHECK(took >= 4900);
    CHECK(took < 7000);
    const std::string error = "restart ledger: " + state.string() + " is locked by another process for more than 5 s";
    CHECK(ledger.error() == error);
    CHECK(log.text() == "warning: " + error + "; the change is kept in memory only\n");
    CHECK_FALSE(ledger.persistent());
    CHECK(ledger.deaths("serial", t0 + 1s) == 2);
    CHECK(RestartLedger({}, state).deaths("serial", t0 + 1s) == 1);
    held.reset();
    ledger.record_death("serial", t0 + 2s, "exited with status 1");  // now saved, whole
    CHECK(ledger.persistent());
    CHECK(RestartLedger({}, state).deaths("serial", t0 + 2s) == 3);
}

TEST_CASE("on a full disk the old ledger stays whole and the change is kept in memory", "[restart][file]")
{
    if (::geteuid() != 0)
        DEVHOST_SKIP("needs root to mount a tmpfs");
    const std::string result = test::in_child([]() -> std::string {
        TempDir tmp;
        const fs::path mnt = tmp / "mnt";
        fs::create_directory(mnt);
        if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            ::mount("devhost-test", mnt.c_str(), "tmpfs", 0, "mode=0700,size=64k") != 0)
            return std::string("SKIP: a tmpfs needs a mount namespace: ") + std::strerror(errno);
        const fs::path state = mnt / "state";
        RestartPolicy roomy;
        roomy.budget = 1000;
        RestartLedger ledger(roomy, state);
        ledger.record_death("serial", t0, "exited with status 1");
        const std::string before = read_file(state / "restart-ledger.json");
        {
            UniqueFd fill(::open((mnt / "fill").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
            const std::string block(4096, 'x');
            while (::write(fill.get(), block.data(), block.size()) > 0) {
            }
        }
        LogCapture log;
        ledger.record_death("serial", t0 + 1s, std::string(150, 'y'));
        std::string r = "error=" + ledger.error() + "\nlog=" + log.text() +
                        "same=" + std::to_string(read_file(state / "restart-ledger.json") == before) +
                        " new=" + std::to_string(fs::exists(state / "restart-ledger.json.new")) +
                        " deaths=" + std::to_string(ledger.deaths("serial", t0 + 1s)) + "\n";
        fs::remove(mnt / "fill");
        ledger.record_death("serial", t0 + 2s, "exited with status 1");
        r += "after=" + std::to_string(RestartLedger(roomy, state).deaths("serial", t0 + 2s)) +
             " persistent=" + std::to_string(ledger.persistent());
        ::umount2(mnt.c_str(), MNT_DETACH);
        return r;
    });
    if (result.rfind("SKIP: ", 0) == 0)
        DEVHOST_SKIP(result.substr(6));
    // The path is the child's TempDir's: compare around it.
    INFO(result);
    CHECK(result.find("error=restart ledger: cannot write /") == 0);
    CHECK(result.find("/state/restart-ledger.json.new: No space left on device\n") != std::string::npos);
    CHECK(result.find("; the ledger is kept in memory until a change can be saved\n") != std::string::npos);
    CHECK(result.find("same=1 new=0 deaths=2\n") != std::string::npos);
    CHECK(result.find("after=3 persistent=1") != std::string::npos);
}

TEST_CASE("a ledger's warnings go where its caller sends them, each once", "[restart][file]")
{
    TempDir tmp;
    const fs::path state = tmp / "state";
    RestartLedger({}, state).classes();  // creates the directory
    write_file(state / "restart-ledger.json", "[]");
    std::vector<std::string> warnings;
    LogCapture log;
    RestartLedger ledger({}, state, [&](const std::string &w) { warnings.push_back(w); });
    CHECK(ledger.classes().empty());
    CHECK(ledger.deaths("serial", t0) == 0);
    CHECK(warnings == std::vector<std::string>{"restart ledger: " + (state / "restart-ledger.json").string() +
                                               " is not a restart ledger (not a JSON object); treated as empty"});
    CHECK(log.text().empty());
}
