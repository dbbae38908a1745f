// The restart policy of supervised workers (issue 15, item 4): how long the
// supervisor waits before restarting a class's worker that died (backoff,
// doubling per recent death, with jitter so that workers of many hosts or
// classes do not restart in step), and when it stops restarting it: after
// `budget` deaths within `window`, the class is latched failed, and stays
// failed (whatever time passes, across runs) until an operator resets it
// with `devhost reset-failed CONFIG [CLASS...]`.
//
// RestartLedger remembers each class's worker deaths with their wall-clock
// times (system_clock: the ledger outlives a run and a reboot, which a
// steady clock does not). It lives in memory only, or over a state
// directory ([host] state-dir) in the file restart-ledger.json there, so
// that a latch survives the process. Every call is thread-safe; every
// change is a read-modify-write of the file under a lock, so concurrent
// devhost processes lose no death, and every query reads the file afresh,
// so a reset by another process is seen at once.
//
// Storage rules (devhost runs as root; see trusted_dir.hpp):
// - the state directory is opened through trusted_dir::open (every
//   directory from / checked by descriptor; a missing one created 0700
//   whatever the umask) and must itself be owned by the effective uid and
//   writable by nobody else, sticky or not: in a directory others can write
//   they could plant or block the ledger's names;
// - the file is opened relative to the directory's descriptor (openat,
//   O_NOFOLLOW, O_CLOEXEC) and read only when it is a regular file of the
//   effective uid with one link, not writable by group or others, and at
//   most max_file_bytes;
// - it is replaced whole: written to restart-ledger.json.new (created 0600
//   with O_EXCL, fchmod'd), fsync'd, renamed over the old one and the
//   directory fsync'd, so a crash leaves the old or the new ledger, never
//   half of one;
// - a change holds flock(LOCK_EX) on the directory's descriptor, waiting at
//   most lock_timeout for another process's change to end.
//
// What goes wrong is one warning line (in the log, or where the Warn given
// sends it; the same one only once),
// never a crash or an exception, and error() says it (but for the first):
// - a file that is not a ledger (not JSON, a wrong shape, another version):
//   treated as empty, and replaced by the next change (reset_all() too,
//   with nothing to reset);
// - a file refused (a symbolic link, not a regular file, another user's,
//   hard-linked, writable by group or others, too large) or unreadable, or
//   a state directory that cannot be opened or is not trusted: the file is
//   never read, replaced or removed (something unexpected put it there, and
//   an operator should look); the ledger counts in memory meanwhile (a
//   refused file is looked at again at each change: once it is gone, the
//   ledger in memory is written);
// - a change that cannot be saved (a write error such as a full disk, or
//   the lock not had within lock_timeout): the ledger stays in memory, ahead
//   of the file, and the next change that can be saved writes it whole.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace devhost {

struct RestartPolicy {
    int budget = 5;                       // deaths within the window that latch a class failed (at least 1)
    int64_t window_ms = 30 * 60 * 1000;   // how long a death counts
    int64_t backoff_initial_ms = 100;     // the wait after the first death in the window
    int64_t backoff_max_ms = 5000;        // the most the wait grows to (before jitter)
};

class RestartLedger {
public:
    using Clock = std::chrono::system_clock;
    // A number drawn uniformly from [0, 1): where a backoff falls in its
    // jitter range. Tests inject their own.
    using Random = std::function<double()>;
    // Where the ledger's warnings go (one line each); by default the log
    // (spdlog::warn). A caller that reports error() itself may collect them.
    using Warn = std::function<void(const std::string &)>;

    static constexpr const char *file_name = "restart-ledger.json";
    static constexpr uint64_t max_file_bytes = 1u << 20;
    static constexpr std::chrono::milliseconds lock_timeout{5000};
    static constexpr size_t max_why_chars = 200;  // of a death's description, kept (text::excerpt)

    // In memory only when `state_dir` is nullopt; else over the (absolute)
    // directory, created if missing, read at once (a problem is warned of
    // and left in error()).
    explicit RestartLedger(RestartPolicy policy = {}, std::optional<std::filesystem::path> state_dir = std::nullopt,
                           Warn warn = nullptr);
    ~RestartLedger();
    RestartLedger(const RestartLedger &) = delete;
    RestartLedger &operator=(const RestartLedger &) = delete;

    // Records that `device_class`'s worker died at `now`, `why` in words
    // ("killed by signal 11 (Segmentation fault)"). Deaths outside the
    // window are forgotten; at `budget` deaths within it the class is
    // latched failed. Returns whether the class is now failed (a class
    // already failed stays so, and this death is not recorded).
    bool record_death(const std::string &device_class, Clock::time_point now, const std::string &why);

    // Whether the class is latched failed.
    bool failed(const std::string &device_class) const;

    // One line for a failed class, "" for one that is not: "class 'serial'
    // failed: 5 worker deaths in 30 min, the last: killed by signal 11
    // (Segmentation fault); reset it with: devhost reset-failed CONFIG
    // serial", with `config` for CONFIG.
    std::string failed_reason(const std::string &device_class, const std::string &config = "CONFIG") const;

    // The class's deaths within the window around `now` (a death stamped
    // after `now`, by a clock set back, counts while within the window).
    int deaths(const std::string &device_class, Clock::time_point now = Clock::now()) const;

    // How long to wait before restarting the class's worker: 0 with no death
    // in the window; else backoff_initial doubled per death after the first,
    // at most backoff_max, then scaled by a jitter factor in [0.8, 1.2]
    // (from the Random: 0 gives 0.8, 0.5 gives 1, 1 gives 1.2).
    std::chrono::milliseconds backoff(const std::string &device_class, Clock::time_point now = Clock::now()) const;

    // Forgets the class's deaths and latch. Returns what it had ("was
    // failed: 5 worker deaths in 30 min, the last: ..." or "had 2 worker
    // deaths, not failed"), or nullopt when it had nothing.
    std::optional<std::string> reset(const std::string &device_class);

    // reset() of every class that has something, as one change: (class,
    // what it had), in class order.
    std::vector<std::pair<std::string, std::string>> reset_all();

    // The classes with deaths or a latch, in order.
    std::vector<std::string> classes() const;

    // True when the ledger is kept in its file: a state directory was given,
    // it is trusted, and the file is not refused.
    bool persistent() const;

    // Why the ledger is not persistent, or why its last change could not be
    // saved (one line); "" when all is well, and for a ledger in memory by
    // choice.
    std::string error() const;

    const RestartPolicy &policy() const { return policy_; }
    void set_random(Random random);

private:
    struct Death {
        int64_t at_ms = 0;  // since the epoch
        std::string why;
    };
    struct Latch {
        int64_t at_ms = 0;
        int deaths = 0;        // within the window, when latched
        int64_t window_ms = 0; // the window then
        std::string why;       // of the last death
    };
    struct ClassRecord {
        std::vector<Death> deaths;  // oldest first
        std::optional<Latch> latch;
    };
    using Records = std::map<std::string, ClassRecord>;
    class Store;  // the file in the state directory, and its JSON (restart_policy.cpp)

    // How the file stood when read for a change.
    enum class Loaded { Fresh, Corrupt, Refused };
    // For a query: reads the file into records_ unless this process keeps
    // the ledger in memory (mutex_ held).
    void refresh_locked() const;
    // For a change: reads the file (mutex_ and the file lock held).
    Loaded load_locked() const;
    void save_locked();
    template <class Change>
    auto update(Change change);
    const ClassRecord *find_locked(const std::string &device_class) const;
    int deaths_locked(const ClassRecord &r, int64_t now_ms) const;
    void problem_locked(const std::string &problem, const std::string &consequence) const;

    RestartPolicy policy_;
    std::unique_ptr<Store> store_;  // null: in memory only
    mutable std::mutex mutex_;
    // What this process knows: the file as last read, or, while
    // memory_only_, ahead of it (a change could not be saved, or the file is
    // refused): queries then read no file, and the next change that can be
    // saved writes records_ whole.
    mutable Records records_;
    mutable bool memory_only_ = false;
    mutable std::string error_;
    mutable std::string last_warning_;
    Warn warn_;
    Random random_;
};

}  // namespace devhost
