#include "virtual_devices.hpp"

#include "pipe.hpp"

#include "common/text.hpp"
#include <devhost/unique_fd.hpp>

#include <boost/dll/runtime_symbol_info.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <string_view>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char **environ;

namespace devhost {

namespace {

constexpr const char *dir_env = "DEVHOST_VDEV_DIR";

// Removes the private directories that runs killed outright (SIGKILL, power
// cut with a persistent /run) left in `parent`: those named PREFIX<pid>-XXXXXX
// whose pid no longer exists. A directory of a live process, or one that is
// not ours, is left alone; removal goes through descriptors and never
// follows a link (trusted_dir::remove_tree).
void remove_stale_dirs(const trusted_dir::Dir &parent, const std::string &prefix)
{
    UniqueFd list_fd(::openat(parent.fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    DIR *d = list_fd ? ::fdopendir(list_fd.get()) : nullptr;
    if (!d)
        return;
    (void)list_fd.release();  // the DIR owns it now; closedir closes it
    std::vector<std::string> names;
    while (dirent *e = ::readdir(d))
        names.emplace_back(e->d_name);
    ::closedir(d);
    for (const std::string &name : names) {
        if (name.rfind(prefix, 0) != 0)
            continue;
        const std::string rest = name.substr(prefix.size());
        const size_t dash = rest.find('-');
        if (dash == 0 || dash == std::string::npos || rest.find_first_not_of("0123456789") != dash)
            continue;
        const long pid = std::strtol(rest.c_str(), nullptr, 10);
        if (pid <= 0 || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH)
            continue;
        const std::string shown = parent.path() + "/" + name;
        trusted_dir::Error err;
        if (trusted_dir::remove_tree(parent.fd(), name, err))
            spdlog::info("removed {}, left by an earlier run (pid {}) that did not end cleanly", shown, pid);
        else
            spdlog::warn("cannot remove {}, left by an earlier run (pid {}): {}", shown, pid, err.message);
    }
}

using Clock = std::chrono::steady_clock;

// Reads one line from `fd` (at most 4096 bytes of it kept) until its
// newline, end of file or the deadline; true when the newline came.
bool read_line(int fd, Clock::time_point deadline, std::string &line)
{
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0)
            return false;
        pollfd p{fd, POLLIN, 0};
        int n = ::poll(&p, 1, static_cast<int>(left.count()));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        char c;
        if (::read(fd, &c, 1) <= 0)
            return false;
        if (c == '\n')
            return true;
        if (line.size() < 4096)
            line.push_back(c);
    }
}

// The peer's command line: the tool, the kind, its name, its options.
std::vector<std::string> peer_args(const std::filesystem::path &tool, const VirtualConfig &v)
{
    std::vector<std::string> args{tool.string(), v.kind.value, "--name=" + v.name};
    for (const auto &o : v.options)
        args.push_back("--" + o.key + "=" + o.value);
    return args;
}

// The host's environment, with DEVHOST_VDEV_DIR naming the private directory.
std::vector<std::string> peer_env(const std::filesystem::path &dir)
{
    const std::string env_prefix = std::string(dir_env) + "=";
    std::vector<std::string> env{env_prefix + dir.string()};
    for (char **e = environ; e && *e; e++)
        if (std::string_view(*e).substr(0, env_prefix.size()) != env_prefix)
            env.emplace_back(*e);
    return env;
}

// An execve-style array pointing into `strings`, NULL-terminated.
std::vector<char *> c_strings(std::vector<std::string> &strings)
{
    std::vector<char *> out;
    for (auto &s : strings)
        out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

// Forks a peer running `argv` with `envp`, its stdout the pipe's write end.
// The child keeps stderr (its diagnostics reach the user's log) and gets a
// fresh signal mask: the host blocks SIGTERM in its threads. Built before
// fork: the child only execs. -1 with `error` set when fork fails.
pid_t spawn_peer(std::vector<char *> &argv, std::vector<char *> &envp, const Pipe &out, std::string &error)
{
    pid_t pid = fork();
    if (pid < 0) {
        error = std::string("fork: ") + std::strerror(errno);
        return -1;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        dup2(out.write.get(), STDOUT_FILENO);
        int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        execve(argv[0], argv.data(), envp.data());
        std::fprintf(stderr, "devhost: cannot run %s: %s\n", argv[0], std::strerror(errno));
        _exit(127);
    }
    return pid;
}

}  // namespace

std::filesystem::path VirtualDevices::default_tool()
{
    std::error_code ec;
    auto exe = boost::dll::program_location(ec);
    return ec ? std::filesystem::path("devhost-vdev") : exe.parent_path() / "devhost-vdev";
}

VirtualDevices::VirtualDevices(std::filesystem::path tool) : tool_(std::move(tool)) {}

VirtualDevices::~VirtualDevices() { stop_all(); }

std::string VirtualDevices::path_of(const std::string &name) const
{
    for (const auto &p : peers_)
        if (p.name == name)
            return p.path;
    return {};
}

bool VirtualDevices::make_dir(std::string &error)
{
    if (dir_fd_)
        return true;
    // /run/devhost/vdev where we may write (root), else the temporary
    // directory. Both are created with explicit modes and checked by
    // descriptor with every directory above them.
    trusted_dir::Error err;
    std::string prefix = "run-";
    parent_ = trusted_dir::open("/run/devhost/vdev", 0755, err);  // and /run/devhost, 0755
    if (err.refused) {
        error = err.message;
        return false;
    }
    if (!parent_ || ::faccessat(parent_.fd(), ".", W_OK | X_OK, AT_EACCESS) != 0) {
        const char *tmp = std::getenv("TMPDIR");
        parent_ = trusted_dir::open(tmp && *tmp ? tmp : "/tmp", 0, err);
        if (!parent_) {
            error = "no directory for the run's virtual devices: " + err.message;
            return false;
        }
        prefix = "devhost-vdev-";
    }
    remove_stale_dirs(parent_, prefix);
    dir_fd_ = trusted_dir::make_private(parent_, prefix + std::to_string(::getpid()) + "-", dir_name_, err);
    if (!dir_fd_) {
        error = err.message;
        parent_.reset();
        return false;
    }
    dir_ = dir_fd_.path();
    spdlog::info("virtual devices of this run in {}", dir_.string());
    return true;
}

void VirtualDevices::remove_dir()
{
    if (!dir_fd_)
        return;
    trusted_dir::Error err;
    if (trusted_dir::still_names(parent_, dir_name_, dir_fd_)) {
        if (!trusted_dir::remove_tree(parent_.fd(), dir_name_, err))
            spdlog::warn("cannot remove {}: {}", dir_.string(), err.message);
    } else {
        // Moved or replaced behind our back: empty what we created through
        // its descriptor, and leave whatever is now at the path alone.
        spdlog::warn("{} no longer names this run's directory; emptying the directory itself, not the path",
                     dir_.string());
        if (!trusted_dir::empty_dir(dir_fd_.fd(), err))
            spdlog::warn("cannot empty this run's directory: {}", err.message);
    }
    dir_fd_.reset();
    parent_.reset();
    dir_.clear();
    dir_name_.clear();
}

bool VirtualDevices::start(const VirtualConfig &v, int timeout_ms, std::string &error, bool &usage_error)
{
    usage_error = false;
    const std::string prefix = "[virtual " + v.name + "] (" + v.kind.value + "): ";
    if (!make_dir(error)) {
        error = prefix + error;
        return false;
    }
    if (!trusted_dir::still_names(parent_, dir_name_, dir_fd_)) {
        error = prefix + dir_.string() + " no longer names this run's directory (moved or replaced); not starting "
                         "a peer there";
        return false;
    }
    std::vector<std::string> args = peer_args(tool_, v), env = peer_env(dir_);
    std::vector<char *> argv = c_strings(args), envp = c_strings(env);
    auto out = make_pipe(error);
    if (!out)
        return false;
    const pid_t pid = spawn_peer(argv, envp, *out, error);
    if (pid < 0)
        return false;
    out->write.reset();
    peers_.push_back({v.name, pid, {}});

    std::string line;
    const bool got_line = read_line(out->read.get(), Clock::now() + std::chrono::milliseconds(timeout_ms), line);
    out->read.reset();
    if (got_line && line.rfind("READY ", 0) == 0 && line.size() > 6) {
        peers_.back().path = line.substr(6);
        spdlog::info("virtual {} ({}) serving at {}", v.name, v.kind.value, peers_.back().path);
        return true;
    }
    error = prefix + why_not_ready(pid, got_line, line, timeout_ms, usage_error);
    return false;
}

std::string VirtualDevices::why_not_ready(pid_t pid, bool got_line, const std::string &line, int timeout_ms,
                                          bool &usage_error)
{
    // Find out whether it exited, and how.
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 50 && (done = waitpid(pid, &status, WNOHANG)) == 0; i++)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (done == pid) {
        peers_.pop_back();
        if (!WIFEXITED(status))
            return "devhost-vdev died of signal " + std::to_string(WTERMSIG(status)) + " before it was ready";
        usage_error = WEXITSTATUS(status) == 2;
        return "devhost-vdev exited with code " + std::to_string(WEXITSTATUS(status)) + " before it was ready" +
               (WEXITSTATUS(status) == 127 ? " (could not run " + tool_.string() + ")" : "");
    }
    if (got_line)
        return "expected 'READY <path>' from devhost-vdev, got '" + line + "'";
    return "devhost-vdev was not ready within " + std::to_string(timeout_ms) + " ms";
}

void VirtualDevices::stop_all(int grace_ms)
{
    for (const auto &p : peers_)
        if (p.pid > 0)
            kill(p.pid, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
    for (auto &p : peers_) {
        if (p.pid <= 0)
            continue;
        int status = 0;
        for (;;) {
            pid_t done = waitpid(p.pid, &status, WNOHANG);
            if (done == p.pid || (done < 0 && errno != EINTR))
                break;
            if (std::chrono::steady_clock::now() >= deadline) {
                spdlog::warn("virtual {} did not stop within {} ms; killing it", p.name, grace_ms);
                kill(p.pid, SIGKILL);
                waitpid(p.pid, &status, 0);
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        p.pid = -1;
    }
    peers_.clear();
    // Only our own directory: the peers removed their endpoints, and
    // whatever is left (a peer killed with SIGKILL) goes with it.
    remove_dir();
}

}  // namespace devhost
