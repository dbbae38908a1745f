// One worker process as the supervisor holds it: forked by the worker
// template when one runs (worker_template.hpp), else started by fork and
// exec of this same executable (`devhost __worker LABEL`, from
// /proc/self/exe, so the worker is the binary running, whatever happened to
// its path since); either way
// with its end of the channel as descriptor 3, stdout pointed at stderr (a
// plugin's prints never reach the records), stdin at /dev/null, no other
// descriptor, the signal mask cleared, and PR_SET_PDEATHSIG so it dies with
// the supervisor. Watched and killed through a pidfd.
#pragma once

#include <devhost/unique_fd.hpp>

#include <stdexcept>
#include <string>
#include <sys/types.h>

namespace devhost {

// A worker could not be started; what() says why in one line.
struct NoWorker : std::runtime_error {
    explicit NoWorker(const std::string &what, int os_errno_ = 0) : std::runtime_error(what), os_errno(os_errno_) {}
    int os_errno;  // the resource that ran out (EMFILE, EAGAIN...), 0 for none
};

// In a new worker, between fork and exec or the worker's code (so
// async-signal-safe calls only): PR_SET_PDEATHSIG (and `parent` still its
// parent), `worker_end` as descriptor 3, stdin from /dev/null, stdout to
// stderr, every other descriptor closed, the signal mask cleared and the
// stop signals at their defaults. False when any of it failed.
bool set_up_worker_child(int worker_end, pid_t parent);

class WorkerProcess {
public:
    // Throws NoWorker when the process cannot be made.
    explicit WorkerProcess(const std::string &label);
    // Kills and reaps a worker still running.
    ~WorkerProcess();
    WorkerProcess(const WorkerProcess &) = delete;
    WorkerProcess &operator=(const WorkerProcess &) = delete;

    int channel() const { return channel_.get(); }
    int pidfd() const { return pidfd_.get(); }
    pid_t pid() const { return pid_; }
    const std::string &label() const { return label_; }
    void kill();
    // Waits for the process to end (after it was seen to exit or was
    // killed) and says how: "exited with status 0", "was killed by signal 11
    // (Segmentation fault)". Idempotent.
    const std::string &reap();
    bool reaped() const { return reaped_; }
    // Whether it ended with exit status 0.
    bool exited_cleanly() const { return clean_; }

private:
    std::string label_;
    UniqueFd channel_;
    UniqueFd pidfd_;
    pid_t pid_ = -1;
    bool from_template_ = false;  // the template's child: it reaps it
    bool reaped_ = false;
    bool clean_ = false;
    std::string how_;
};

}  // namespace devhost
