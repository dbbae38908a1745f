// Helpers for devhost's tests: where the build put things, temporary
// directories, and running a program (usually the devhost binary) with a
// deadline while capturing what it printed.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <sys/types.h>
#include <vector>

namespace devhost::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A test case that cannot run here (a missing kernel feature, not root, a
// sanitizer build) says why and returns: DEVHOST_SKIP("needs root to drop
// to another user"). The reason is printed; the binary then exits
// skip_exit_code (77) unless a test failed, which CTest reports as skipped.
// Use it only in a function that returns void (the TEST_CASE body).
#define DEVHOST_SKIP(reason)                                    \
    do {                                                        \
        ::devhost::test::mark_skipped(std::string() + (reason)); \
        return;                                                 \
    } while (0)
inline constexpr int skip_exit_code = 77;
void mark_skipped(const std::string &reason);
bool skipped();  // DEVHOST_SKIP was called in this run

fs::path bin_dir();      // build/bin: devhost, devhost-vdev
fs::path plugin_dir();   // build/lib/devhost/plugins
fs::path source_dir();   // the source tree
fs::path binary_dir();   // the build tree
fs::path devhost_exe();  // bin_dir() / "devhost"

// A fresh directory under $TMPDIR, removed with everything in it on scope exit.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;
    const fs::path &path() const { return path_; }
    fs::path operator/(const std::string &name) const { return path_ / name; }

private:
    fs::path path_;
};

void write_file(const fs::path &file, const std::string &content);
std::string read_file(const fs::path &file);

struct ProcessResult {
    int exit_code = -1;      // exit status, or -1 if killed by a signal
    int term_signal = 0;     // the signal that ended it, or 0
    bool timed_out = false;  // killed by us when the deadline passed
    std::string out;
    std::string err;
};

struct ProcessOptions {
    std::chrono::milliseconds timeout = 60s;
    std::string stdin_data;                      // fed, then stdin is closed
    std::map<std::string, std::string> env;      // added to the environment
    fs::path cwd;                                // empty: inherit
    // Runs in the child just before exec, after its fds are set up: for
    // limits (setrlimit, umask, joining a cgroup) or other fds (dup2). Only
    // async-signal-safe calls: the parent may have threads.
    std::function<void()> before_exec;
};

// Runs argv[0] (a path) with the arguments, waits for it to end or the
// deadline to pass (then SIGKILL), and returns what it printed.
ProcessResult run_process(const std::vector<std::string> &argv, const ProcessOptions &options = {});

// run_process on the devhost binary.
ProcessResult run_devhost(const std::vector<std::string> &args, const ProcessOptions &options = {});

// A program started in the background, for tests that signal it or race it.
// Its stdout and stderr go to files in `dir`; killed (SIGKILL) on destruction
// if still running.
class Child {
public:
    Child(const std::vector<std::string> &argv, const fs::path &dir, const ProcessOptions &options = {});
    ~Child();
    Child(const Child &) = delete;
    Child &operator=(const Child &) = delete;
    pid_t pid() const { return pid_; }
    void signal(int sig);
    // Waits up to `timeout` for the process to end; timed_out if it did not
    // (it is then left running).
    ProcessResult wait(std::chrono::milliseconds timeout);
    std::string out() const;   // what it printed so far
    std::string err() const;
    // Waits until stdout or stderr contains `text`, up to `timeout`.
    bool wait_for_output(const std::string &text, std::chrono::milliseconds timeout);

private:
    pid_t pid_ = -1;
    fs::path out_file_;
    fs::path err_file_;
};

// Milliseconds since `start` on the steady clock (how long a call took).
inline int64_t elapsed_ms(std::chrono::steady_clock::time_point start)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
}

// Splits text into lines (without the newlines); a last line without a
// newline is kept.
std::vector<std::string> lines(const std::string &text);

// The "device" field of a JSON record line ("" when it has none).
std::string device_of(const std::string &record);

// The diagnostics of parsing `ini` (named test.ini), each as its str() line.
std::vector<std::string> errors_of(const std::string &ini);

// The CPU time (user + system, in clock ticks) process `pid` has used.
long cpu_ticks(pid_t pid);
// The parent of process `pid` (its PPid), -1 if it is gone.
pid_t parent_of(pid_t pid);
// The child processes of `pid` (every thread's).
std::vector<pid_t> children_of(pid_t pid);
// The worker processes of the devhost process `pid`: its descendants named
// devhost-worker (its children when it execs them, the worker template's
// when the template forks them).
std::vector<pid_t> workers_of(pid_t pid);

// Runs `body` in a child process and returns what it returned (an
// exception becomes "exception: what"); body may fork, mount, change its
// uid: nothing of it reaches this process. Bounded: a child silent for 60 s
// is killed.
std::string in_child(const std::function<std::string()> &body);
// Runs `body` in a child process that has its own mount namespace with an
// empty tmpfs on /run, and returns what body returned (an exception becomes
// "exception: what"); "SKIP: why" when the namespace cannot be made here.
// Processes body starts see the private /run too, so a test that sweeps or
// plants things in /run/devhost races no other test. Body must not use
// Catch's assertions: return what the parent should check.
std::string with_private_run(const std::function<std::string()> &body);
// True, and the test marked skipped, when `result` is with_private_run's
// "SKIP: why".
bool skipped_by(const std::string &result);

}  // namespace devhost::test
