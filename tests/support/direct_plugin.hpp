// A plugin library loaded with dlopen and negotiated against a services
// table the test controls, its hooks called directly: for what the host's
// Device does not do (yet): give a hook without a timeout argument a
// deadline (deadline_ns answers what the test set), call enumerate, read
// the descriptor's 1.1 fields. The hooks get what a host gives them (an
// error record, option values parsed by the host's own parser, a cancel
// eventfd, a host_device token per device), so a plugin sees no difference.
// One DirectPlugin at a time per process: the services table is static.
#pragma once

#include "device.hpp"

#include <devhost/plugin.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
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
    // How often deadline_ns was asked since the last set_deadline*.
    static unsigned deadline_asked();
    // Every line the plugin logged, as "LEVEL message".
    static std::vector<std::string> log_lines();

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
    // against the schema as the host parses them; defaults for the rest).
    DirectDevice(const DirectPlugin &plugin, const std::string &path,
                 const std::map<std::string, std::string> &options = {});
    ~DirectDevice();
    DirectDevice(const DirectDevice &) = delete;
    DirectDevice &operator=(const DirectDevice &) = delete;

    const Outcome &opened() const { return opened_; }
    bool is_open() const { return handle_ != nullptr; }
    const devhost_host_device *token() const;
    int cancel_fd() const { return cancel_fd_; }

    Outcome info(InfoList &out);
    Outcome transfer(devhost_transfer &xfer);  // sets struct_size
    Outcome connect(const devhost_connect_params &params);
    Outcome disconnect();
    Outcome close();  // once; the handle is gone afterwards either way

private:
    const DirectPlugin &plugin_;
    devhost_device *handle_ = nullptr;
    int cancel_fd_ = -1;
    char token_ = 0;  // its address is the device's host_device token
    Outcome opened_;
};

}  // namespace devhost::test
