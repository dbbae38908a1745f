#include "worker_template.hpp"

#include "worker.hpp"
#include "worker_process.hpp"

#include <devhost/unique_fd.hpp>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <mutex>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace devhost::worker_template {

namespace {

// One request: fork a worker (its channel end rides along as SCM_RIGHTS),
// or reap one. One reply: the pid made or reaped, or -1 and an errno; the
// wait status of a reaped worker.
struct Request {
    char op;  // 'f' fork, 'r' reap
    pid_t pid;
};
struct Reply {
    pid_t pid;
    int value;  // errno when pid is -1; the wait status after a reap
};

std::mutex mutex;     // one request at a time: supervisor threads share the template
UniqueFd connection;  // this process's end; invalid: no template
pid_t template_pid = -1;

// In the template's child: becomes the worker and never returns.
[[noreturn]] void run_worker_child(int worker_end, pid_t parent)
{
    if (!set_up_worker_child(worker_end, parent))
        _exit(127);
    std::exit(run_worker(0, nullptr));
}

void reply(int sock, Reply r)
{
    while (::send(sock, &r, sizeof r, MSG_NOSIGNAL) < 0 && errno == EINTR) {
    }
}

// Serves requests until the supervisor's end closes (or it dies: then the
// death signal ends this first).
[[noreturn]] void serve(int sock)
{
    for (;;) {
        Request req{};
        std::array<char, CMSG_SPACE(sizeof(int))> control{};
        iovec iov{&req, sizeof req};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        const ssize_t n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != ssize_t(sizeof req))
            _exit(0);
        int passed = -1;
        for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                std::memcpy(&passed, CMSG_DATA(c), sizeof passed);
        if (req.op == 'f') {
            const pid_t self = ::getpid();
            const pid_t pid = passed < 0 ? (errno = EBADF, -1) : ::fork();
            if (pid == 0) {
                ::close(sock);
                run_worker_child(passed, self);
            }
            reply(sock, {pid, pid < 0 ? errno : 0});
        } else if (req.op == 'r') {
            int status = 0;
            pid_t r;
            do
                r = ::waitpid(req.pid, &status, 0);
            while (r < 0 && errno == EINTR);
            reply(sock, {r, r < 0 ? errno : status});
        }
        if (passed >= 0)
            ::close(passed);
    }
}

// Every descriptor but the standard three and `keep` closed.
void close_all_but(int keep)
{
    if (keep > STDERR_FILENO + 1)
        syscall(SYS_close_range, STDERR_FILENO + 1, keep - 1, 0);
    syscall(SYS_close_range, keep + 1, ~0U, 0);
}

bool one_thread()
{
    DIR *tasks = ::opendir("/proc/self/task");
    if (!tasks)
        return false;
    int count = 0;
    while (const dirent *e = ::readdir(tasks))
        count += e->d_name[0] != '.';
    ::closedir(tasks);
    return count == 1;
}

// The template is gone (its end closed, so it exited or is exiting): reap
// it, and let workers be exec'd from now on.
void forget()
{
    connection.reset();
    if (template_pid > 0)
        while (::waitpid(template_pid, nullptr, 0) < 0 && errno == EINTR) {
        }
    template_pid = -1;
}

// Sends `req` (with `fd` when not -1) and reads the reply; false when the
// template is gone (its end closed), which also forgets it.
bool ask(const Request &req, int fd, Reply &out)
{
    std::array<char, CMSG_SPACE(sizeof(int))> control{};
    iovec iov{const_cast<Request *>(&req), sizeof req};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (fd >= 0) {
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof fd);
        std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    ssize_t n;
    do
        n = ::sendmsg(connection.get(), &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n == ssize_t(sizeof req)) {
        do
            n = ::recv(connection.get(), &out, sizeof out, 0);
        while (n < 0 && errno == EINTR);
        if (n == ssize_t(sizeof out))
            return true;
    }
    forget();
    return false;
}

}  // namespace

void start()
{
    std::lock_guard lock(mutex);
    if (connection || !one_thread())
        return;
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) != 0)
        return;
    UniqueFd mine(ends[0]), theirs(ends[1]);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0)
        return;
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(127);
        // A terminal's signals reach the whole process group; the template
        // ends only when its supervisor does. Its children (the workers)
        // set their own mask.
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, nullptr);
        const int sock = theirs.release();
        mine.reset();
        close_all_but(sock);
        serve(sock);
    }
    connection = std::move(mine);
    template_pid = pid;
}

void stop()
{
    std::lock_guard lock(mutex);
    forget();  // it exits on the end of its connection
}

bool running()
{
    std::lock_guard lock(mutex);
    return bool(connection);
}

pid_t spawn(int worker_end, int &os_errno)
{
    std::lock_guard lock(mutex);
    os_errno = 0;
    if (!connection)
        return -1;
    Reply r{};
    if (!ask({'f', 0}, worker_end, r))
        return -1;
    if (r.pid < 0)
        os_errno = r.value ? r.value : EAGAIN;
    return r.pid;
}

bool reap(pid_t pid, int &status)
{
    std::lock_guard lock(mutex);
    if (!connection)
        return false;
    Reply r{};
    if (!ask({'r', pid}, -1, r) || r.pid != pid)
        return false;
    status = r.value;
    return true;
}

}  // namespace devhost::worker_template
