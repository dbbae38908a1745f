// run_in_child: fork, run, read the verdict from a pipe, kill at the deadline.
#include "runner.hpp"

#include "raw_device.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

namespace devhost::conformance {

namespace {

int result_fd = -1;  // the child's end of the verdict pipe

// "P", "F" or "S", the reason, then one note per line.
std::string encode(const Result &r)
{
    std::string s = r.verdict == Verdict::Pass ? "P" : r.verdict == Verdict::Fail ? "F" : "S";
    s += r.reason + "\n";
    for (const auto &n : r.notes)
        s += n + "\n";
    return s;
}

Result decode(const std::string &s)
{
    Result r;
    r.verdict = s[0] == 'P' ? Verdict::Pass : s[0] == 'S' ? Verdict::Skip : Verdict::Fail;
    size_t end = s.find('\n');
    r.reason = s.substr(1, end == std::string::npos ? std::string::npos : end - 1);
    while (end != std::string::npos && end + 1 < s.size()) {
        size_t next = s.find('\n', end + 1);
        r.notes.push_back(s.substr(end + 1, next == std::string::npos ? std::string::npos : next - end - 1));
        end = next;
    }
    return r;
}

[[noreturn]] void report_and_exit(const Result &r)
{
    const std::string s = encode(r);
    size_t done = 0;
    while (done < s.size()) {
        ssize_t n = write(result_fd, s.data() + done, s.size() - done);
        if (n <= 0)
            break;
        done += static_cast<size_t>(n);
    }
    _exit(0);
}

[[noreturn]] void child(const Test &test, const Context &ctx)
{
    dup2(STDERR_FILENO, STDOUT_FILENO);
    Result r;
    try {
        r = test.run(ctx);
    } catch (const std::exception &e) {
        r = Result::fail(std::string("the test itself failed: ") + e.what());
    }
    report_and_exit(r);
}

// What became of a child that wrote no verdict.
Result no_verdict(int status)
{
    if (WIFSIGNALED(status))
        return Result::fail(std::string("killed by signal ") + sigabbrev_np(WTERMSIG(status)) + " (" +
                            strsignal(WTERMSIG(status)) + ")");
    return Result::fail("exited with status " + std::to_string(WEXITSTATUS(status)) + " without a verdict");
}

}  // namespace

Result run_in_child(const Test &test, const Context &ctx, int timeout_s)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return Result::fail("pipe failed");
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid < 0)
        return Result::fail("fork failed");
    if (pid == 0) {
        ::close(fds[0]);
        result_fd = fds[1];
        child(test, ctx);
    }
    ::close(fds[1]);
    std::string text;
    const int64_t deadline = now_ms() + int64_t{timeout_s} * 1000;
    bool timed_out = false;
    for (;;) {
        const int64_t left = deadline - now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        pollfd p{fds[0], POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(left)) <= 0)
            continue;
        char buf[4096];
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n <= 0)
            break;
        text.append(buf, static_cast<size_t>(n));
    }
    ::close(fds[0]);
    if (timed_out)
        kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    if (timed_out)
        return Result::fail("did not finish within " + std::to_string(timeout_s) + " s: killed");
    if (text.empty())
        return no_verdict(status);
    return decode(text);
}

void bounded(int64_t limit_ms, const std::string &what, const std::function<void()> &body)
{
    struct Shared {
        std::mutex m;
        std::condition_variable cv;
        bool done = false;
    };
    auto shared = std::make_shared<Shared>();
    std::thread t([shared, body] {
        body();
        std::lock_guard lock(shared->m);
        shared->done = true;
        shared->cv.notify_all();
    });
    std::unique_lock lock(shared->m);
    if (!shared->cv.wait_for(lock, std::chrono::milliseconds(limit_ms), [&] { return shared->done; })) {
        lock.unlock();
        t.detach();
        report_and_exit(Result::fail(what));
    }
    lock.unlock();
    t.join();
}

}  // namespace devhost::conformance
