// Real kernel objects for the reliability tests: counting this process's
// open fds and resident memory, image files for the raw plugin, echo peers
// on ptys (tests/support's PtyRelay), and proofs that a device's exclusive
// lock is free again (flock from a fresh descriptor, TIOCGEXCL).
#pragma once

#include "devices.hpp"

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
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

// Echo peers on ptys: the shared test library's relay (tests/support).
struct PtyEcho : devhost::test::PtyRelay {
    explicit PtyEcho(size_t count) : PtyRelay(count, Wiring::echo) {}
};

}  // namespace reliability
