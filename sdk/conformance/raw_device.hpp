// A device driven through the plugin's hooks directly, as the host's Device
// would but without its clamps and rewrites, so that a test sees exactly
// what the plugin answered (lengths past the buffer, a late status). Options
// are resolved against the schema by the host's own code (options.hpp).
#pragma once

#include "suite.hpp"

#include <devhost/plugin.h>
#include <devhost/unique_fd.hpp>

#include <cstdint>
#include <string>

namespace devhost::conformance {

struct Call {
    devhost_status status = DEVHOST_OK;
    std::string message;
    int64_t elapsed_ms = 0;
};

class RawDevice {
public:
    explicit RawDevice(const Context &ctx);
    ~RawDevice();  // closes the device if it is open
    RawDevice(const RawDevice &) = delete;
    RawDevice &operator=(const RawDevice &) = delete;

    // Opens `path`; on failure a half-built device the plugin left is kept
    // (handle() not NULL) for the test to close.
    Call open(const std::string &path, int32_t timeout_ms = 5000);
    // Connects and locks as the class's transfer_requires says.
    Call prepare();
    Call connect();
    Call lock(int32_t timeout_ms);
    Call unlock();
    // The hook's deadline (deadline_ns) is timeout_ms from the call.
    Call transfer(devhost_transfer &xfer);
    Call close();
    void cancel();  // fires the cancel handle
    devhost_device *handle() const { return handle_; }
    bool has_handle() const { return handle_ != nullptr; }

private:
    const Context &ctx_;
    const devhost_hooks &hooks_;
    UniqueFd cancel_;
    devhost_device *handle_ = nullptr;
};

// CLOCK_MONOTONIC milliseconds.
int64_t now_ms();
// Entries in /proc/self/fd.
int open_fd_count();

}  // namespace devhost::conformance
