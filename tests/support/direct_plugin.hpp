// A plugin library loaded with dlopen and negotiated (as a 1.1 host) against
// a services table the test controls, its hooks called directly: so that a
// test chooses the deadline every hook gets (deadline_ns answers what the
// test set, for every device and for enumerate; hooks without a timeout
// argument included), sees which device asked, calls enumerate and unload,
// and reads the descriptor's 1.1 fields; and so that it chooses what
// share_fd answers and sees every descriptor a plugin hands over (the fake
// host keeps copies as a supervisor would). The hooks get what a host gives
// them (an error record, option values parsed by the host's own parser, a
// cancel eventfd, a host_device token per device), so a plugin sees no
// difference. The one way the tests drive a plugin without the host's
// Device.
//
// One DirectPlugin at a time per process: the services table is static.
// Load a plugin here only in a test binary that does not also load it
// through the host's PluginRegistry: both would share the library's one
// copy of the services pointer the plugin keeps from its last negotiation.
#pragma once

#include "device.hpp"

#include <devhost/plugin.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace devhost::test {

class DirectPlugin {
public:
    // Loads and negotiates `file` (host version 1.1); throws
    // std::runtime_error naming what failed.
    explicit DirectPlugin(const std::filesystem::path &file);
    ~DirectPlugin();
    DirectPlugin(const DirectPlugin &) = delete;
    DirectPlugin &operator=(const DirectPlugin &) = delete;

    const devhost_plugin_descriptor &descriptor() const { return *descriptor_; }
    const devhost_hooks &hooks() const { return *descriptor_->hooks; }
    uint32_t abi_version() const { return abi_version_; }
    // The descriptor's path_patterns, in order (empty for none).
    std::vector<std::string> path_patterns() const;
    // The option spec named `name`, or nullptr.
    const devhost_option_spec *option(const std::string &name) const;

    // What deadline_ns answers from now on, for every device and for
    // enumerate: an absolute CLOCK_MONOTONIC time, DEVHOST_DEADLINE_NONE
    // (the default), or `in` from now.
    static void set_deadline(uint64_t deadline_ns);
    static void set_deadline_in(std::chrono::milliseconds in);
    // How often deadline_ns was asked since the last set_deadline*, and for
    // which device the last time (nullptr: for enumerate, or not asked).
    static unsigned deadline_asked();
    static const devhost_host_device *deadline_asked_for();
    // Every line the plugin logged, as "LEVEL message" (LEVEL a number:
    // 3 is DEVHOST_LOG_WARN), since the last clear_log().
    static std::vector<std::string> log_lines();
    static void clear_log();
    // The messages of the lines logged at DEVHOST_LOG_WARN, without the level.
    static std::vector<std::string> warnings();

    // share_fd. What it answers from now on (E_UNSUPPORTED by default, as
    // the in-process host does); setting it also forgets the calls and
    // drops every copy. Answering OK, it keeps what a supervisor keeps: a
    // duplicate of each descriptor shared, one per device and role (a
    // share of a role held replaces its copy, fd -1 drops it), and
    // DirectDevice::close drops the device's copies once the close hook
    // has returned. Any other answer keeps nothing.
    static void set_share_answer(devhost_status answer);
    // One call of share_fd, with what the descriptor was at the call.
    struct ShareCall {
        const devhost_host_device *device = nullptr;
        int fd = -1;  // as passed: -1 is a drop
        std::string role;
        devhost_status answer = DEVHOST_OK;
        bool described = false;  // fd was open: the fields below are its
        dev_t dev = 0;           // fstat's st_dev, st_ino, st_rdev, st_mode
        ino_t ino = 0;
        dev_t rdev = 0;
        mode_t mode = 0;
        int status_flags = 0;    // fcntl F_GETFL: O_ACCMODE, O_NONBLOCK...
    };
    // Every call since the last set_share_answer, in order.
    static std::vector<ShareCall> share_calls();
    // The copy the fake host holds for the device and role, or -1 (nothing
    // held). Valid until it is replaced or dropped.
    static int held(const devhost_host_device *device, const std::string &role);
    // Drops (closes) the copies held for `device` (nullptr: every device),
    // as the host does when a device is closed, or releases what a dead
    // worker held.
    static void drop_held(const devhost_host_device *device = nullptr);

    // One device found by enumerate; nullopt where the plugin gave NULL.
    struct Found {
        std::optional<std::string> path, by_id, description, usb_vendor, usb_product, usb_serial;
    };
    // Calls enumerate with `flags` (DEVHOST_ENUMERATE_*), collecting what it
    // reports into `found`.
    Outcome enumerate(uint32_t flags, std::vector<Found> &found) const;

private:
    void *library_ = nullptr;
    const devhost_plugin_descriptor *descriptor_ = nullptr;
    uint32_t abi_version_ = 0;
};

// One device of a DirectPlugin: open in the constructor (see outcome()),
// close in close() or the destructor.
class DirectDevice {
public:
    // Opens `path` with the configured `options` (name -> text, parsed
    // against the schema as the host parses them, which throws
    // std::runtime_error for a value it refuses; defaults for the rest) and
    // open's `timeout_ms` (-1: none). A failed open's half-built device is
    // closed at once.
    DirectDevice(const DirectPlugin &plugin, const std::string &path,
                 const std::map<std::string, std::string> &options = {}, int32_t timeout_ms = -1);
    // Opens `path` with the option values exactly as given, in any order
    // (struct_size is set): what a host that does not check them might
    // pass, e.g. an ENUM whose text and index disagree.
    struct Forged {};
    DirectDevice(const DirectPlugin &plugin, const std::string &path, Forged,
                 std::vector<devhost_option_value> values, int32_t timeout_ms = -1);
    ~DirectDevice();
    DirectDevice(const DirectDevice &) = delete;
    DirectDevice &operator=(const DirectDevice &) = delete;

    const Outcome &opened() const { return opened_; }
    bool is_open() const { return handle_ != nullptr; }
    const devhost_host_device *token() const;
    int cancel_fd() const { return cancel_fd_; }

    // Each hook once, as the host calls it; a NULL hook answers
    // DEVHOST_E_UNSUPPORTED, as the host does.
    Outcome info(InfoList &out);
    Outcome transfer(devhost_transfer &xfer);  // sets struct_size
    Outcome connect(const devhost_connect_params &params);
    Outcome disconnect();
    Outcome lock(int32_t timeout_ms);
    Outcome unlock();
    Outcome close();  // once; the handle is gone afterwards either way

private:
    void open(const std::string &path, std::vector<devhost_option_value> &values, int32_t timeout_ms);

    const DirectPlugin &plugin_;
    devhost_device *handle_ = nullptr;
    int cancel_fd_ = -1;
    char token_ = 0;  // its address is the device's host_device token
    Outcome opened_;
};

// What a worker's death does to the plugin's own descriptors, in this
// process: every descriptor on the same file as `copy` (same st_dev and
// st_ino) but `copy` and those in `keep` is made to point at /dev/null
// (dup2, so that the plugin's later close finds a descriptor of its own and
// touches nothing else). Afterwards only `copy` (and `keep`) hold the file:
// what is left is what the host's copy alone keeps. Returns how many were
// replaced; throws std::runtime_error if /proc/self/fd cannot be read.
int lose_other_descriptors(int copy, const std::vector<int> &keep = {});

}  // namespace devhost::test
