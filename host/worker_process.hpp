// One worker process as the supervisor holds it: started by fork and exec
// of this same executable (`devhost __worker LABEL`, from /proc/self/exe, so
// the worker is the binary running, whatever happened to its path since),
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
    bool reaped_ = false;
    bool clean_ = false;
    std::string how_;
};

}  // namespace devhost
