// Real kernel objects for the reliability tests: counting this process's
// open fds and resident memory, image files and ptys for the raw and serial
// plugins, an echo peer on the pty masters, and proofs that a device's
// exclusive lock is free again (flock from a fresh descriptor, TIOCGEXCL).
#pragma once

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace devhost {
class PluginRegistry;
}

namespace reliability {

namespace fs = std::filesystem;

// Entries of /proc/self/fd (the directory iterator's own fd included, which
// is the same on every call).
size_t open_fds();
// Resident set size from /proc/self/statm.
size_t rss_bytes();

// A regular file of `size` zero bytes, for raw devices.
void make_image(const fs::path &file, size_t size);

// Whether flock(LOCK_EX|LOCK_NB) on a fresh descriptor of `path` succeeds
// (then released), i.e. nobody holds a flock on it. For a tty it also asks
// TIOCGEXCL: false if the tty is still in exclusive mode.
bool exclusive_lock_free(const fs::path &path);

// The loop plugin's own counters ("open=N connected=N locked=N ..."), read
// through a probe device of `registry`'s loop plugin (which counts itself
// as one open device).
std::string loop_stats(const devhost::PluginRegistry &registry);

// A pty pair from openpty(), in raw mode (so the termios a device restores
// on close echoes nothing), both ends close-on-exec. The slave fd stays open
// for the pair's life so the master never sees a hang-up between devices.
struct Pty {
    Pty();
    ~Pty();
    Pty(const Pty &) = delete;
    Pty &operator=(const Pty &) = delete;
    int master = -1;
    int slave = -1;
    std::string path;  // /dev/pts/N
};

// Echoes everything each pty's device writes straight back, on a thread of
// its own, until destroyed.
class PtyEcho {
public:
    explicit PtyEcho(size_t count);
    ~PtyEcho();
    PtyEcho(const PtyEcho &) = delete;
    PtyEcho &operator=(const PtyEcho &) = delete;
    const Pty &pty(size_t i) const { return *ptys_[i]; }
    size_t size() const { return ptys_.size(); }

private:
    void run();
    std::vector<std::unique_ptr<Pty>> ptys_;
    int stop_fd_ = -1;
    std::thread thread_;
};

}  // namespace reliability
