// What tells `devhost serve` that a device may have come or gone (issue 19,
// removal and return), as one descriptor its loop polls:
//
//   - the kernel's device events: through sd-device's monitor (udev's
//     events, sent once udev has made its links) when udevd runs, the
//     kernel's own uevents (NETLINK_KOBJECT_UEVENT, from the kernel only)
//     when it does not; ttys, parallel ports, block devices, USB;
//   - inotify on the directory that holds each watched path (the nearest
//     one that exists): a port's socket, a pty's link, a node in /dev.
//
// An event is a hint, not a verdict: the loop then looks at the devices
// themselves (a path that exists, an identity that resolves). Events that
// were lost (a full socket buffer, an inotify queue overflow) are a hint
// too: drain() says so and the loop looks at every device again.
#pragma once

#include <devhost/unique_fd.hpp>

#include <map>
#include <string>

struct sd_event;
struct sd_device_monitor;

namespace devhost {

struct LibSystemd;

class DeviceWatch {
public:
    // Never throws: a source that cannot be had is left out, and source()
    // says what is watched.
    DeviceWatch();
    ~DeviceWatch();
    DeviceWatch(const DeviceWatch &) = delete;
    DeviceWatch &operator=(const DeviceWatch &) = delete;

    // Readable when an event is pending.
    int fd() const { return epoll_.get(); }

    // Watches the directory that holds `path` (or, while it does not exist,
    // its nearest ancestor that does). Paths that are no file system path
    // (loop:NAME) are ignored. Cheap to call again.
    void watch(const std::string &path);

    // Reads every pending event; true when any came or some were lost.
    bool drain();

    // "udev events and inotify", "kernel uevents and inotify", ...
    const std::string &source() const { return source_; }

private:
    bool drain_uevents();
    bool drain_inotify();

    UniqueFd epoll_, inotify_, uevent_;
    const LibSystemd *sd_ = nullptr;  // loaded when udevd runs (libsystemd.hpp)
    sd_event *event_ = nullptr;
    sd_device_monitor *monitor_ = nullptr;
    bool udev_hint_ = false;  // set by the monitor's callback
    std::map<std::string, int> dirs_;  // watched directory -> watch descriptor
    std::string source_;
};

}  // namespace devhost
