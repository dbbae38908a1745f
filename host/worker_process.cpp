#include "worker_process.hpp"

#include "worker.hpp"
#include "worker_channel.hpp"
#include "worker_template.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <system_error>
#include <unistd.h>

namespace devhost {

namespace {

// In the child, between fork and exec: async-signal-safe calls only.
[[noreturn]] void become_worker(int worker_end, pid_t parent, char *const argv[])
{
    if (!set_up_worker_child(worker_end, parent))
        _exit(127);
    execv("/proc/self/exe", argv);
    _exit(127);
}

std::string signal_text(int sig)
{
    const char *name = sigdescr_np(sig);
    return "signal " + std::to_string(sig) + (name ? std::string(" (") + name + ")" : std::string());
}

}  // namespace

bool set_up_worker_child(int worker_end, pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        return false;
    if (worker_end == worker_channel_fd) {
        if (fcntl(worker_end, F_SETFD, 0) != 0)
            return false;
    } else if (dup2(worker_end, worker_channel_fd) != worker_channel_fd) {
        return false;
    }
    const int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || dup2(null, STDIN_FILENO) != STDIN_FILENO || dup2(STDERR_FILENO, STDOUT_FILENO) != STDOUT_FILENO)
        return false;
    syscall(SYS_close_range, worker_channel_fd + 1, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGCHLD})
        signal(sig, SIG_DFL);
    return true;
}

WorkerProcess::WorkerProcess(const std::string &label) : label_(label)
{
    // A worker is this executable again, found through /proc/self/exe, and
    // loads plugins through /proc/self/fd: without /proc there is none.
    struct statfs proc {};
    if (::statfs("/proc/self", &proc) != 0 || proc.f_type != PROC_SUPER_MAGIC)
        throw NoWorker("cannot start a worker: /proc is not mounted (a worker is this executable again, "
                       "started through /proc/self/exe)");
    UniqueFd worker_end;
    try {
        make_channel(channel_, worker_end);
    } catch (const std::system_error &e) {
        throw NoWorker(std::string("cannot start a worker: ") + e.what(), e.code().value());
    }
    int template_errno = 0;
    pid_ = worker_template::spawn(worker_end.get(), template_errno);
    from_template_ = pid_ > 0;
    if (pid_ < 0 && template_errno != 0)
        throw NoWorker(std::string("cannot start a worker: fork: ") + std::strerror(template_errno), template_errno);
    if (pid_ < 0) {
        std::string arg0 = "devhost", arg1 = "__worker", arg2 = label;
        char *argv[] = {arg0.data(), arg1.data(), arg2.data(), nullptr};
        const pid_t parent = getpid();
        pid_ = fork();
        if (pid_ < 0)
            throw NoWorker(std::string("cannot start a worker: fork: ") + std::strerror(errno), errno);
        if (pid_ == 0)
            become_worker(worker_end.get(), parent, argv);
    }
    pidfd_.reset(static_cast<int>(syscall(SYS_pidfd_open, pid_, 0)));
    if (!pidfd_) {
        const int e = errno;
        ::kill(pid_, SIGKILL);
        reap();
        throw NoWorker(std::string("cannot start a worker: pidfd_open: ") + std::strerror(e), e);
    }
}

WorkerProcess::~WorkerProcess()
{
    if (!reaped_) {
        kill();
        reap();
    }
}

void WorkerProcess::kill()
{
    if (!reaped_)
        syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
}

const std::string &WorkerProcess::reap()
{
    if (reaped_)
        return how_;
    int status = 0;
    pid_t r = pid_;
    if (from_template_) {
        if (!worker_template::reap(pid_, status)) {
            // Its parent is gone, and took it along (PR_SET_PDEATHSIG).
            reaped_ = true;
            how_ = "was lost with the worker template that forked it";
            return how_;
        }
    } else {
        do
            r = ::waitpid(pid_, &status, 0);
        while (r < 0 && errno == EINTR);
    }
    reaped_ = true;
    if (r < 0)
        how_ = std::string("could not be waited for: ") + std::strerror(errno);
    else if (WIFSIGNALED(status))
        how_ = "was killed by " + signal_text(WTERMSIG(status));
    else
        how_ = "exited with status " + std::to_string(WEXITSTATUS(status));
    clean_ = r >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    return how_;
}

}  // namespace devhost
