#include "devhost_test.hpp"

#include "config.hpp"

#include <cerrno>
#include <cstdio>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <sstream>
#include <stdexcept>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace devhost::test {

namespace {
bool skip_called = false;
}

void mark_skipped(const std::string &reason)
{
    skip_called = true;
    std::printf("SKIPPED: %s\n", reason.c_str());
    std::fflush(stdout);
}

bool skipped() { return skip_called; }

fs::path bin_dir() { return DEVHOST_BIN_DIR; }
fs::path plugin_dir() { return DEVHOST_PLUGIN_DIR; }
fs::path source_dir() { return DEVHOST_SOURCE_DIR; }
fs::path binary_dir() { return DEVHOST_BINARY_DIR; }
fs::path devhost_exe() { return bin_dir() / "devhost"; }

TempDir::TempDir()
{
    const char *base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/devhost-test-XXXXXX";
    if (!mkdtemp(pattern.data()))
        throw std::runtime_error("mkdtemp: " + std::string(std::strerror(errno)));
    path_ = pattern;
}

TempDir::~TempDir()
{
    std::error_code ec;
    fs::remove_all(path_, ec);
}

void write_file(const fs::path &file, const std::string &content)
{
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out)
        throw std::runtime_error("cannot write " + file.string());
}

std::string read_file(const fs::path &file)
{
    std::ifstream in(file, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

namespace {

// Child side of fork: set up fds and environment, exec. Never returns.
[[noreturn]] void exec_child(const std::vector<std::string> &argv, const ProcessOptions &options,
                             int in_fd, int out_fd, int err_fd)
{
    dup2(in_fd, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    for (const auto &[key, value] : options.env)
        setenv(key.c_str(), value.c_str(), 1);
    if (!options.cwd.empty() && chdir(options.cwd.c_str()) != 0)
        _exit(126);
    if (options.before_exec)
        options.before_exec();
    std::vector<char *> args;
    for (const auto &a : argv)
        args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
}

void fill_status(ProcessResult &r, int status)
{
    if (WIFEXITED(status)) {
        r.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        r.exit_code = -1;
        r.term_signal = WTERMSIG(status);
    }
}

}  // namespace

ProcessResult run_process(const std::vector<std::string> &argv, const ProcessOptions &options)
{
    int in_pipe[2], out_pipe[2], err_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC))
        throw std::runtime_error("pipe2 failed");
    pid_t pid = fork();
    if (pid < 0)
        throw std::runtime_error("fork failed");
    if (pid == 0)
        exec_child(argv, options, in_pipe[0], out_pipe[1], err_pipe[1]);
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);

    ProcessResult r;
    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
    size_t fed = 0;
    int in_fd = in_pipe[1];
    fcntl(in_fd, F_SETFL, O_NONBLOCK);
    if (options.stdin_data.empty()) {
        close(in_fd);
        in_fd = -1;
    }
    int out_fd = out_pipe[0], err_fd = err_pipe[0];
    while (out_fd >= 0 || err_fd >= 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            r.timed_out = true;
            kill(pid, SIGKILL);
            break;
        }
        pollfd fds[3] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}, {in_fd, POLLOUT, 0}};
        if (poll(fds, 3, static_cast<int>(left.count())) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2; i++) {
            int &fd = i == 0 ? out_fd : err_fd;
            if (fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                char buf[8192];
                ssize_t n = read(fd, buf, sizeof buf);
                if (n > 0) {
                    (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
                } else if (n == 0 || errno != EINTR) {
                    close(fd);
                    fd = -1;
                }
            }
        }
        if (in_fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = write(in_fd, options.stdin_data.data() + fed, options.stdin_data.size() - fed);
            if (n > 0)
                fed += static_cast<size_t>(n);
            if (n < 0 || fed == options.stdin_data.size()) {
                close(in_fd);
                in_fd = -1;
            }
        }
    }
    for (int fd : {in_fd, out_fd, err_fd})
        if (fd >= 0)
            close(fd);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    fill_status(r, status);
    return r;
}

ProcessResult run_devhost(const std::vector<std::string> &args, const ProcessOptions &options)
{
    std::vector<std::string> argv{devhost_exe().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, options);
}

Child::Child(const std::vector<std::string> &argv, const fs::path &dir, const ProcessOptions &options)
{
    static int counter = 0;
    std::string stem = "child" + std::to_string(getpid()) + "-" + std::to_string(counter++);
    out_file_ = dir / (stem + ".out");
    err_file_ = dir / (stem + ".err");
    int out_fd = open(out_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int err_fd = open(err_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out_fd < 0 || err_fd < 0 || in_fd < 0)
        throw std::runtime_error("cannot open child output files in " + dir.string());
    pid_ = fork();
    if (pid_ < 0)
        throw std::runtime_error("fork failed");
    if (pid_ == 0)
        exec_child(argv, options, in_fd, out_fd, err_fd);
    close(out_fd);
    close(err_fd);
    close(in_fd);
}

Child::~Child()
{
    if (pid_ > 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
}

void Child::signal(int sig)
{
    if (pid_ > 0)
        kill(pid_, sig);
}

ProcessResult Child::wait(std::chrono::milliseconds timeout)
{
    ProcessResult r;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        int status = 0;
        pid_t done = pid_ > 0 ? waitpid(pid_, &status, WNOHANG) : -1;
        if (done == pid_) {
            fill_status(r, status);
            pid_ = -1;
            break;
        }
        if (done < 0 && errno != EINTR)
            break;
        if (std::chrono::steady_clock::now() >= deadline) {
            r.timed_out = true;
            break;
        }
        std::this_thread::sleep_for(5ms);
    }
    r.out = out();
    r.err = err();
    return r;
}

std::string Child::out() const { return read_file(out_file_); }
std::string Child::err() const { return read_file(err_file_); }

bool Child::wait_for_output(const std::string &text, std::chrono::milliseconds timeout)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (out().find(text) != std::string::npos || err().find(text) != std::string::npos)
            return true;
        std::this_thread::sleep_for(5ms);
    }
    return false;
}

long cpu_ticks(pid_t pid)
{
    const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string field;
    long utime = 0, stime = 0;
    for (int i = 3; fields >> field; i++) {
        if (i == 14)
            utime = std::stol(field);
        if (i == 15) {
            stime = std::stol(field);
            break;
        }
    }
    return utime + stime;
}

pid_t parent_of(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("PPid:", 0) == 0)
            return static_cast<pid_t>(std::stoi(line.substr(5)));
    return -1;
}

std::vector<pid_t> children_of(pid_t pid)
{
    std::vector<pid_t> kids;
    std::error_code ec;
    for (const auto &task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
        std::ifstream in(task.path() / "children");
        pid_t k;
        while (in >> k)
            kids.push_back(k);
    }
    return kids;
}

std::vector<pid_t> workers_of(pid_t pid)
{
    std::vector<pid_t> workers;
    for (pid_t child : children_of(pid)) {
        std::ifstream comm("/proc/" + std::to_string(child) + "/comm");
        std::string name;
        std::getline(comm, name);
        if (name == "devhost-worker")
            workers.push_back(child);
        else
            for (pid_t w : workers_of(child))
                workers.push_back(w);
    }
    return workers;
}

std::vector<std::string> lines(const std::string &text)
{
    std::vector<std::string> result;
    std::string line;
    std::istringstream in(text);
    while (std::getline(in, line))
        result.push_back(line);
    return result;
}

std::string device_of(const std::string &record)
{
    const std::string key = "\"device\":\"";
    const auto at = record.find(key);
    if (at == std::string::npos)
        return {};
    const auto from = at + key.size();
    return record.substr(from, record.find('"', from) - from);
}

std::vector<std::string> errors_of(const std::string &ini)
{
    std::vector<Diagnostic> diags;
    parse_config(ini, "test.ini", diags);
    std::vector<std::string> out;
    for (const auto &d : diags)
        out.push_back(d.str());
    return out;
}

std::string in_child(const std::function<std::string()> &body)
{
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0)
        throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    pid_t pid = ::fork();
    if (pid < 0)
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        std::string result;
        try {
            result = body();
        } catch (const std::exception &e) {
            result = std::string("exception: ") + e.what();
        }
        for (size_t at = 0; at < result.size();) {
            ssize_t n = ::write(out[1], result.data() + at, result.size() - at);
            if (n <= 0)
                break;
            at += static_cast<size_t>(n);
        }
        ::_exit(0);
    }
    ::close(out[1]);
    std::string result;
    char buf[4096];
    for (;;) {
        pollfd p{out[0], POLLIN, 0};
        if (::poll(&p, 1, 60000) <= 0)
            break;
        ssize_t n = ::read(out[0], buf, sizeof buf);
        if (n <= 0)
            break;
        result.append(buf, static_cast<size_t>(n));
    }
    ::close(out[0]);
    ::kill(pid, SIGKILL);  // already gone unless it hung
    ::waitpid(pid, nullptr, 0);
    return result;
}

std::string with_private_run(const std::function<std::string()> &body)
{
    return in_child([&body]() -> std::string {
        if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            ::mount("devhost-test", "/run", "tmpfs", 0, "mode=0755,size=4m") != 0)
            return std::string("SKIP: a private /run needs a mount namespace: ") + std::strerror(errno);
        return body();
    });
}

bool skipped_by(const std::string &result)
{
    if (result.rfind("SKIP: ", 0) != 0)
        return false;
    mark_skipped(result.substr(6));
    return true;
}

}  // namespace devhost::test
