// The watch table: memory shared between the supervisor and its workers (a
// memfd both map), through which the supervisor sees every device's hook
// calls without a message per call. A worker's Device writes, before each
// hook call, which hook it calls and its deadline, and clears it after; its
// engine writes which step runs and the last record written. The
// supervisor reads it to fire a device's cancel at its deadline, kill a
// worker stuck past it, and record what a dead worker left unfinished.
//
// The table also holds the records lock: a robust, process-shared mutex
// every writer of step records takes around its write(2), so that records
// from several processes never interleave, even in a pipe and past
// PIPE_BUF; a writer that dies holding it leaves it to the next (robust).
#pragma once

#include <devhost/unique_fd.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <pthread.h>

namespace devhost {

// One device's slot. Written by the worker running the device, read by the
// supervisor; every field is a lock-free atomic (shared across processes).
struct HookWatch {
    enum Phase : uint32_t { NotStarted, Steps, Unwind, Done };
    std::atomic<uint32_t> phase{NotStarted};
    std::atomic<int32_t> step{-1};          // index of the step running (Steps)
    std::atomic<uint32_t> repetition{0};    // its repetition (repeat=), 0: not repeated
    std::atomic<int32_t> hook{-1};          // the Hook being called, -1: none
    std::atomic<uint64_t> calls{0};         // hook calls begun (tells one call from the next)
    std::atomic<uint64_t> deadline_ns{0};   // of the call in flight (CLOCK_MONOTONIC); 0: none
    std::atomic<int32_t> written_seq{0};    // the last record written for the device
    std::atomic<uint32_t> vault_ack{0};     // futex word: the vault's answer to a drop
    std::atomic<uint32_t> vault_drops{0};   // drops asked (the worker's count)

    // Before a hook call: `hook` (a Hook), due by `deadline_ns`.
    void begin(int32_t hook, uint64_t deadline_ns);
    // After it returned.
    void end();
};

static_assert(std::atomic<uint64_t>::is_always_lock_free, "the watch table needs lock-free atomics");

class WatchTable {
public:
    // A new table of `slots` device slots in a fresh memfd (supervisor).
    // Throws std::system_error.
    static WatchTable create(size_t slots);
    // The table in `fd`, as a worker maps it. Throws std::system_error
    // when it cannot be mapped or is not a table.
    static WatchTable attach(UniqueFd fd);

    WatchTable(WatchTable &&other) noexcept;
    WatchTable &operator=(WatchTable &&) = delete;
    ~WatchTable();

    size_t size() const;
    HookWatch &slot(size_t i) const;
    int fd() const { return fd_.get(); }
    // The records lock (see above).
    pthread_mutex_t *records_lock() const;

private:
    WatchTable(UniqueFd fd, void *map, size_t bytes, size_t slots)
        : fd_(std::move(fd)), map_(map), bytes_(bytes), slots_(slots)
    {
    }
    UniqueFd fd_;
    void *map_ = nullptr;
    size_t bytes_ = 0;
    size_t slots_ = 0;  // this process's own count: never read back from the shared header
};

// Holds a process-shared robust mutex (the records lock): a holder that
// died is no obstacle (EOWNERDEAD makes it consistent again). With a
// `patience` (the supervisor's), gives up waiting after it and goes on
// unlocked: a worker stuck holding the lock cannot stop the supervisor.
class SharedLock {
public:
    explicit SharedLock(pthread_mutex_t *mutex, int64_t patience_ms = -1);
    ~SharedLock();
    SharedLock(const SharedLock &) = delete;
    SharedLock &operator=(const SharedLock &) = delete;

private:
    pthread_mutex_t *mutex_;
};

}  // namespace devhost
