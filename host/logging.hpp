// The host's log: readable lines on stderr (never stdout, which carries
// records), or the journal with priorities when stderr is the journal's
// stream (journal.hpp), optionally a rotating log file, and the log service
// plugins call.
#pragma once

#include <devhost/plugin.h>

#include <cstddef>
#include <filesystem>
#include <optional>
#include <spdlog/spdlog.h>
#include <string>
#include <string_view>
#include <vector>

namespace devhost::logging {

struct Settings {
    std::string level = "info";                 // trace debug info warn error off
    std::optional<std::filesystem::path> file;  // rotating log file
    std::size_t max_file_size = 5 * 1024 * 1024;
    std::size_t max_files = 3;
};

// Valid level names, for error messages.
inline constexpr const char *level_names = "trace, debug, info, warn, error, off";

std::optional<spdlog::level::level_enum> parse_level(std::string_view name);

// (Re)configures the default logger. Throws std::runtime_error when the log
// file cannot be opened.
void setup(const Settings &settings);

// The host services handed to every plugin.
const devhost_host_services *host_services();

// Where share_fd goes: in a worker, to the supervisor; unset (in-process),
// it answers DEVHOST_E_UNSUPPORTED.
using ShareFd = devhost_status (*)(const devhost_host_device *device, int32_t fd, const char *role);
void set_share_fd(ShareFd handler);
// Where a device closed normally tells the supervisor to drop what it
// shared (in a worker); unset, nothing happens.
using DropShared = void (*)(const devhost_host_device *device);
void set_drop_shared(DropShared handler);
void drop_shared(const devhost_host_device *device);

}  // namespace devhost::logging

namespace devhost {
class FaultInjector;
}

// The host's per-device token given to plugins for their log calls.
struct devhost_host_device {
    std::string name;
    // The deadline of the hook now running for this device (deadlines.hpp),
    // set by the Device before each call on the thread that makes it.
    uint64_t deadline_ns = DEVHOST_DEADLINE_NONE;
    devhost::FaultInjector *faults = nullptr;  // while faults are injected (faults.hpp)
    int32_t slot = -1;  // in a worker: the device's slot in the supervisor's watch table
    std::vector<std::string> shared_roles;  // in a worker: the roles the supervisor holds a copy of
};
