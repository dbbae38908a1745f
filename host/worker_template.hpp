// The worker template: a copy of devhost forked at the start of a command
// that starts workers, while the process is still one thread and has loaded
// no plugin, which then forks each worker on request. A worker so made costs
// the fork of a small process instead of the exec and dynamic linking of the
// devhost binary (about 3 ms of CPU each: bench/README.md, "Start-up"), and
// it starts from the same untouched image an exec would give: the template
// never reads a config, loads a plugin or starts a thread.
//
// The workers are the template's children. The template reaps one only when
// the supervisor asks (WorkerProcess::reap), so a worker's pid cannot be
// reused while the supervisor still holds it; the supervisor watches and
// kills workers through pidfds, as it does those it forks itself. The
// template dies with the process that made it (PR_SET_PDEATHSIG), and its
// workers with it; it exits when that process closes its end
// (worker_template::stop). Without a template (never started, could not be
// made, gone) WorkerProcess forks and execs the binary as before.
//
// Workers share the template's address-space layout, which is the
// supervisor's: they all run as the same user as the supervisor, so the
// layout is no secret a worker could not read anyway.
#pragma once

#include <sys/types.h>

namespace devhost::worker_template {

// Forks the template. Call only while this process has one thread; does
// nothing when it has more (a fork then copies locks other threads hold),
// when a template runs already, or when the fork fails (workers are then
// made by exec).
void start();
// Ends the template (closes this end; it exits). Workers it made go on.
void stop();
// Whether a template is running.
bool running();

// Has the template fork a worker with `worker_end` as its channel (the
// worker's descriptor 3). Returns its pid; -1 with
// `os_errno` set when the template's fork failed (EAGAIN: no process to be
// had), or with `os_errno` 0 when there is no template to ask.
pid_t spawn(int worker_end, int &os_errno);
// Waits for the template's worker `pid` to end and gives its wait status.
// False when the template cannot be asked (it is gone).
bool reap(pid_t pid, int &status);

}  // namespace devhost::worker_template
