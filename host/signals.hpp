// The stop signals: SIGINT, SIGTERM and SIGHUP stop a run (README, "Signals").
//
// The rule, by the operator's intent:
//   - the first stop signal, of any kind, starts the stop: every pipeline is
//     cancelled and unwinds what it holds, recording each step, and the run
//     exits 4 (exit_interrupted);
//   - any burst of stop signals (SIGTERM, SIGINT and SIGHUP together, a
//     process group's signals, ten SIGTERMs) is one request: the unwind
//     finishes and every step of it is recorded;
//   - the same SIGINT or SIGTERM again, at least `repeat_after` (1 s) after
//     it first came, is the operator repeating the request (a second
//     Ctrl-C, a second kill): the host exits 4 at once, skipping what
//     remains of the unwind (the kernel still closes every descriptor);
//   - a different stop signal, or SIGHUP at any time, never skips anything:
//     a hang-up says a terminal went away, not that anyone is in a hurry,
//     so a closing terminal or a service manager signalling every process
//     never loses an unwind record.
#pragma once

#include <devhost/unique_fd.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <mutex>
#include <optional>
#include <thread>

namespace devhost {

// What a stop signal stops: the engine of a run in this process, or the
// supervisor of worker processes.
class Stoppable {
public:
    virtual ~Stoppable() = default;
    // Cancels every pipeline; async-signal-unsafe (called from the watcher's thread).
    virtual void cancel_all() = 0;
};

// Blocks the stop signals in every thread and turns them into
// Engine::cancel_all() on a thread of its own. Made before anything starts
// (so every thread made later inherits the blocked mask); a signal before
// attach() cancels the engine when it is attached, and is logged then
// (logging is set up after the watcher starts). Throws std::runtime_error
// when its signalfd, eventfd or thread cannot be made.
class SignalWatcher {
public:
    static constexpr std::chrono::milliseconds repeat_after{1000};

    SignalWatcher();
    // Stops the watcher's thread and unblocks the stop signals.
    ~SignalWatcher();
    SignalWatcher(const SignalWatcher &) = delete;
    SignalWatcher &operator=(const SignalWatcher &) = delete;

    // Whether a stop signal came.
    bool interrupted() const { return interrupted_; }

    // While it lives, signals cancel the engine it was made for. Declare it
    // after the engine, so it goes first.
    class Attachment {
    public:
        ~Attachment();
        Attachment(const Attachment &) = delete;
        Attachment &operator=(const Attachment &) = delete;

    private:
        friend class SignalWatcher;
        explicit Attachment(SignalWatcher &watcher) : watcher_(watcher) {}
        SignalWatcher &watcher_;
    };
    [[nodiscard]] Attachment attach(Stoppable &target);

private:
    using Clock = std::chrono::steady_clock;

    void log_first(int sig);
    void watch();
    // The rule above, for one signal.
    void on_signal(int sig, Clock::time_point now);

    std::mutex mutex_;  // guards engine_, logging_ready_, first_signal_ and seen_
    Stoppable *engine_ = nullptr;
    bool logging_ready_ = false;  // the logger is set up (attach() was called)
    int first_signal_ = 0;
    std::optional<Clock::time_point> seen_[3];  // when SIGINT, SIGTERM, SIGHUP first came
    sigset_t set_;
    std::atomic<bool> interrupted_{false};
    UniqueFd signal_fd_;  // the stop signals arrive here
    UniqueFd wake_fd_;    // eventfd: the destructor wakes the watcher, so ending takes no polling tick
    std::thread thread_;
};

}  // namespace devhost
