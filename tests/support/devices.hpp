// Real kernel objects and Device short-hands shared by devhost's tests (and,
// for the pty, by the bench): one copy of each, so every test family makes
// them the same way.
//
//   Pty            a pty pair (master, slave, /dev/pts/N), close-on-exec,
//                  optionally in raw mode; send() to and receive() from the
//                  device on the slave; queued() bytes it has not read yet.
//   open_pty_master  the one way a pty is made: posix_openpt, unlocked,
//                  close-on-exec, its slave's path (for the bench's peers);
//                  write_all, all of a buffer to an fd.
//   PtyRelay       a thread carrying what each pty's device writes: back to
//                  itself (echo peers) or to the other pty of a pair (a
//                  null-modem cable between two devices).
//   LoopDevice     a loop block device on an image (losetup), detached on
//                  every exit path; Mount, a mount undone on scope exit;
//                  MountedExt4, an ext4 image on a loop device, mounted.
//   FullFifo       a FIFO this process holds open for reading but never
//                  reads, full of whole lines, so the next write to it waits.
//   BoundSocket    a Unix-domain socket bound at a path, listening (a
//                  socket file for what tells a path's kind of file), closed
//                  on scope exit (the file stays: the test's TempDir goes).
//   find_tool      a program in the usual sbin/bin directories.
//   loaded_plugin  a plugin file loaded once for the whole test binary;
//   open_device    a Device opened on a path with options.
//   transfer       one transfer on a Device: status, bytes back, bytes sent;
//                  write, read, request, control: its usual short-hands.
//   info_value     one info key's value.
//   LogCapture     what the host (and plugins through it) logs meanwhile.
//   start_waiting  a call on a thread of its own, returned once that thread
//                  is asleep waiting: a barrier, not a sleep, before a cancel
//                  or a second request that must come after it;
//                  threads_asleep_waiting and process_asleep_in, the same
//                  question about other threads and processes.
//
// Nothing here uses Catch: a set-up that cannot work throws
// std::runtime_error (Catch reports it as the test's failure), and what may
// legitimately be missing on a machine (losetup, mounting) is reported by
// available()/reason() so the test can DEVHOST_SKIP with it.
#pragma once

#include "device.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <sys/types.h>
#include <unistd.h>
#include <vector>

#include <spdlog/common.h>

namespace spdlog {
class logger;
}

namespace devhost::test {

namespace fs = std::filesystem;

// ---- ptys (pty.cpp: no Catch, no host library; the bench builds it too)

// A new pty master (O_RDWR | O_NOCTTY | O_CLOEXEC, granted and unlocked);
// `slave_path` gets its /dev/pts/N. Throws on failure.
int open_pty_master(std::string &slave_path);

// Writes all `len` bytes to `fd`, waiting (up to 5 s at a time) while it is
// full; false on an error.
bool write_all(int fd, const char *data, size_t len);

enum class PtyMode { as_opened, raw };

// A pty pair. The slave fd stays open (so the tty outlives a device's close
// and the master never sees a hang-up between devices) unless close_slave()
// is called. PtyMode::raw puts the slave in raw mode at once, so nothing is
// echoed or edited before a device sets its own settings.
struct Pty {
    explicit Pty(PtyMode mode = PtyMode::as_opened);
    ~Pty();
    Pty(const Pty &) = delete;
    Pty &operator=(const Pty &) = delete;
    void close_master();
    void close_slave();
    // Writes all of `bytes` to the master (throws if it cannot).
    void send(const std::string &bytes) const;
    // Reads what the device wrote, waiting up to `ms` for at least `n` bytes.
    std::string receive(size_t n, int ms = 2000) const;
    // Bytes sent to the device that it has not read yet (FIONREAD on the
    // slave), or -1 once the slave is closed.
    int queued() const;
    // Waits up to `ms` until queued() is `n` (what was sent reached the tty,
    // or the device took it); false if it never was.
    bool wait_queued(int n, int ms = 2000) const;
    int master = -1;
    int slave = -1;
    std::string path;  // /dev/pts/N
};

// Carries, on a thread of its own until destroyed, what each pty's device
// writes: Wiring::echo back to the same pty (count ptys), Wiring::null_modem
// to the other pty of a pair (count must be 2), so two devices on pty(0) and
// pty(1) talk to each other. The ptys are raw.
class PtyRelay {
public:
    enum class Wiring { echo, null_modem };
    PtyRelay(size_t count, Wiring wiring);
    ~PtyRelay();
    PtyRelay(const PtyRelay &) = delete;
    PtyRelay &operator=(const PtyRelay &) = delete;
    const Pty &pty(size_t i) const { return *ptys_[i]; }
    size_t size() const { return ptys_.size(); }
    // The relay thread's id (it sleeps in poll: barriers that look for a
    // waiting thread leave it out).
    pid_t thread_id() const { return tid_.load(); }

private:
    void run();
    size_t target(size_t from) const;
    std::vector<std::unique_ptr<Pty>> ptys_;
    Wiring wiring_;
    int stop_fd_ = -1;
    std::atomic<pid_t> tid_{0};
    std::thread thread_;
};

// ---- loop devices and mounts (devices.cpp)

// The first `name` found in /usr/sbin, /sbin, /usr/bin, /bin, or empty.
fs::path find_tool(const std::string &name);

// A loop block device on `image`, detached in the destructor (also when the
// test failed). available() is false with reason() when it could not be set
// up; tests then report skipped with that reason.
class LoopDevice {
public:
    explicit LoopDevice(const fs::path &image, bool read_only = false, bool partscan = false);
    ~LoopDevice();
    LoopDevice(const LoopDevice &) = delete;
    LoopDevice &operator=(const LoopDevice &) = delete;
    bool available() const { return !path_.empty(); }
    const std::string &reason() const { return reason_; }
    const std::string &path() const { return path_; }
    // Runs losetup with the arguments; returns its exit code.
    int losetup(const std::vector<std::string> &args) const;
    // Detaches the device now (losetup -d; Linux defers it while the device
    // is open) and forgets it, so the destructor never detaches its number
    // again: by then the kernel may have given it to another test's image.
    // Returns losetup's exit code.
    int detach();

private:
    std::string path_;
    std::string reason_;
};

// A mount of `device` on `dir` (created), unmounted in the destructor.
class Mount {
public:
    Mount(const std::string &device, const fs::path &dir, const std::string &fstype);
    ~Mount();
    Mount(const Mount &) = delete;
    Mount &operator=(const Mount &) = delete;
    bool mounted() const { return mounted_; }
    const std::string &reason() const { return reason_; }

private:
    fs::path dir_;
    bool mounted_ = false;
    std::string reason_;
};

// Why an ext4 filesystem cannot be made here (no mkfs.ext4), or empty.
std::string mkfs_ext4_unavailable();
// mkfs.ext4 on `target` (an image file or a block device); its stderr, or
// empty when it worked.
std::string mkfs_ext4(const std::string &target);

// `image` (an existing file of at least 8 MiB) made ext4, attached to a loop
// device and mounted on `point`; undone in reverse order on scope exit.
// available() is false with reason() when a step could not be done here.
class MountedExt4 {
public:
    MountedExt4(const fs::path &image, const fs::path &point);
    bool available() const { return mount_ && mount_->mounted(); }
    const std::string &reason() const { return reason_; }
    const LoopDevice &loop() const { return *loop_; }
    // "<loop device> on <point>", as mountinfo-based messages name it.
    std::string where() const;
    // Unmounts now (the loop device stays attached until scope exit).
    void unmount() { mount_.reset(); }

private:
    std::string reason_;
    fs::path point_;
    std::unique_ptr<LoopDevice> loop_;
    std::unique_ptr<Mount> mount_;
};

// ---- FIFOs (devices.cpp)

// A FIFO made at `file`, held open for reading by this process (never read)
// while this lives, and filled with whole 64-byte lines ("xxx...\n") so
// that the next write to it waits; what it holds is itself a set of lines.
struct FullFifo {
    explicit FullFifo(const fs::path &file);
    ~FullFifo();
    FullFifo(const FullFifo &) = delete;
    FullFifo &operator=(const FullFifo &) = delete;
    // Writes whole lines to `fd` (non-blocking) until one does not fit.
    static void fill(int fd);
    fs::path path;
    int reader = -1;
};

// A SOCK_SEQPACKET Unix-domain socket bound at `file` and listening;
// closed on scope exit.
struct BoundSocket {
    explicit BoundSocket(const fs::path &file);
    ~BoundSocket();
    BoundSocket(const BoundSocket &) = delete;
    BoundSocket &operator=(const BoundSocket &) = delete;
    fs::path path;
    int fd = -1;
};

// ---- plugins and devices (devices.cpp)

// The plugin in `file`, loaded the first time it is asked for by a registry
// of its own that lives as long as the process (so every Device made from
// it may outlive any test); throws with the loader's reason if refused.
std::shared_ptr<const Plugin> loaded_plugin(const fs::path &file);

// dev.open() on `path` with `options` (and inherit).
Outcome open_device(Device &dev, const std::string &path, const std::map<std::string, std::string> &options = {},
                    bool inherit = false);

// ---- transfers and info (devices.cpp)

// One transfer's request: the fields tests set (designated initializers:
// transfer(dev, {.op = DEVHOST_OP_WRITE, .out = "x"})).
struct Transfer {
    uint32_t op = DEVHOST_OP_READ;
    std::string out;                 // bytes sent (write, request, reply, control input)
    size_t capacity = 0;             // room for bytes back (read, request, get-message, control output)
    int32_t timeout_ms = 2000;       // -1: no deadline
    std::string delimiter;           // read until, request until
    uint32_t control_code = 0;
    uint64_t message_id = 0;         // reply
    std::optional<uint64_t> offset;  // DEVHOST_TRANSFER_HAS_OFFSET when set
};

struct TransferResult {
    Outcome outcome;
    std::string data;      // bytes back (in[0..in_len))
    size_t out_done = 0;   // bytes sent
    uint64_t message_id = 0;
};

TransferResult transfer(Device &dev, const Transfer &request);
// A control code by name (throws if the plugin declares none of that name).
uint32_t control_code(const Device &dev, const std::string &name);

TransferResult write(Device &dev, const std::string &bytes, int32_t timeout_ms = 2000);
TransferResult read(Device &dev, uint32_t op, size_t capacity, int32_t timeout_ms = 2000,
                    const std::string &delimiter = {});
TransferResult request(Device &dev, const std::string &bytes, const std::string &delimiter,
                       int32_t timeout_ms = 2000, size_t capacity = 256);
TransferResult control(Device &dev, const std::string &name, const std::string &input = {}, size_t capacity = 256);

// The value of `key` in `info`, or "<missing KEY>".
std::string info_value(const InfoList &info, const std::string &key);
// The same on the device's info (throws if info fails).
std::string info_value(Device &dev, const std::string &key);

// The loop plugin's process-wide counters ("open=1 connected=0 locked=0
// ..."), read through its `stats` control on a fresh device, which itself
// counts as one open device while it asks. Throws if that fails.
std::string loop_stats(const std::shared_ptr<const Plugin> &loop);

// ---- logs (devices.cpp)

// While alive, the host's default logger is one that keeps every line at
// `level` or above as "LEVEL: message\n"; the previous logger comes back on
// destruction.
class LogCapture {
public:
    explicit LogCapture(spdlog::level::level_enum level = spdlog::level::info);
    ~LogCapture();
    LogCapture(const LogCapture &) = delete;
    LogCapture &operator=(const LogCapture &) = delete;
    std::string text() const { return stream_.str(); }

private:
    std::ostringstream stream_;
    std::shared_ptr<spdlog::logger> previous_;
};

// ---- waiting threads (devices.cpp)

// Whether thread `tid` of this process is asleep in poll() or ppoll() (a
// plugin waiting on its descriptors) or, with `futex`, also in a futex wait
// (one waiting on a condition variable), as /proc/self/task/TID/syscall
// shows.
bool asleep_waiting(pid_t tid, bool futex = false);

// The threads of this process asleep in poll() or ppoll() now, but `except`
// (a pipeline's thread inside a hook that waits, and any helper thread that
// polls, like PtyRelay's).
std::vector<pid_t> threads_asleep_waiting(pid_t except = 0);

// Whether some thread of process `pid` is asleep in system call `nr`
// (SYS_write: blocked writing to a full pipe, say), as
// /proc/PID/task/*/syscall shows; for another process this needs the right
// to trace it (root, or the same user).
bool process_asleep_in(pid_t pid, long nr);

// Waits up to `ms` until process_asleep_in(pid, nr); false if it never was.
bool await_asleep_in(pid_t pid, long nr, int ms = 10000);

// Returns once thread `tid` is asleep waiting (asleep_waiting) and `ready`,
// if given, holds; throws if that takes more than 10 s.
void await_waiting(pid_t tid, const std::function<bool()> &ready = {}, bool futex = false);

// Runs `call` on a thread of its own and returns its future once that thread
// is asleep waiting and `ready` holds (await_waiting): "the call waits now",
// so a cancel, a release, a hang-up or more data comes while it waits, and a
// request sent after it is handled after it.
template <class Call>
auto start_waiting(Call call, const std::function<bool()> &ready = {}, bool futex = false)
    -> std::future<decltype(call())>
{
    std::promise<pid_t> tid;
    auto started = tid.get_future();
    auto done = std::async(std::launch::async, [&tid, call = std::move(call)]() mutable {
        tid.set_value(static_cast<pid_t>(::gettid()));
        return call();
    });
    await_waiting(started.get(), ready, futex);
    return done;
}

}  // namespace devhost::test
