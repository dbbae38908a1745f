// Removal and return of served devices (serve_loop.hpp, issue 19): a device
// whose step reports DEVHOST_E_REMOVED, or whose node goes away while it is
// set up, is torn down and waits for its device (waiting-for-device); a
// device whose setup cannot find it waits too. What wakes the wait is the
// DeviceWatch (kernel or udev events, inotify), or a look every few seconds
// in case an event never comes; the device is set up again once it has
// been back for its settle time, with generation + 1. A device that flaps
// (gone again soon after each attach) settles longer each time. None of
// this spends the restart budget: that is for failures, not removals.
#include "serve_loop.hpp"

#include "identity.hpp"

#include "common/device_path.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/stat.h>

namespace devhost {

namespace {

// A device back (or seen) is set up after this long without another event.
constexpr uint64_t settle_base_ms = 20;
// It doubles per attach in a row that ended sooner than this after it began,
constexpr uint64_t flap_window_ms = 2'000;
// up to this.
constexpr uint64_t settle_max_ms = 5'000;
// How often waiting devices are looked at with no event.
constexpr uint64_t look_every_ms = 5'000;

}  // namespace

uint64_t ServeLoop::settle_ns(const ServedDevice &d) const
{
    return std::min(settle_max_ms, settle_base_ms << std::min(d.flaps, 12)) * serve_ms_ns;
}

// Whether `d`'s device is there now; `d.resolved` is then what it names.
// A path that is no file system path (loop:NAME) is always there.
bool ServeLoop::present(ServedDevice &d, std::string &why)
{
    const std::string &path = d.plan->path;
    if (is_identity(path)) {
        auto node = resolve_identity(path, why);
        if (!node)
            return false;
        d.resolved = *node;
        return true;
    }
    d.resolved = path;
    struct stat st {};
    if (path.empty() || path.front() != '/')
        return true;
    if (::stat(path.c_str(), &st) != 0) {
        why = path + ": " + std::strerror(errno);
        return false;
    }
    // What is at the path now was checked by no one: while the device was
    // gone, someone who may write where it lives could have put a link or
    // a file of theirs there for root to open (device_path.hpp).
    if (auto refusal = output::device_path_refusal(path)) {
        why = path + ": refused: " + *refusal;
        return false;
    }
    return true;
}

// `d` (not set up) waits for its device: at once set up when it is there
// (after its settle time), else when an event or a look finds it.
void ServeLoop::wait_for_device(ServedDevice &d, const std::string &why, uint64_t now)
{
    if (d.attached_ns && now - d.attached_ns < flap_window_ms * serve_ms_ns)
        d.flaps = std::min(d.flaps + 1, 12);
    else
        d.flaps = 0;
    d.attached_ns = 0;
    d.setup_ran = true;  // READY does not wait for a device that is not there
    d.attach_at_ns = 0;
    for (auto &done : d.calls_waiting)
        done({{"error", "device '" + d.name + "' is waiting for its device: " + why}});
    d.calls_waiting.clear();
    set_state(d, ServeState::Waiting, why);
    spdlog::warn("{}: waiting for its device: {}", d.name, why);
    look_ = true;
}

// After an event (or every few seconds while a device waits): a waiting
// device that is back is set up after its settle time; one that went again
// before that keeps waiting; a set-up device whose node is gone is torn
// down (its body would find out later, or never if it has no trigger).
void ServeLoop::look_at_devices(uint64_t now)
{
    const bool due = look_ || now >= next_look_ns_;
    if (!due)
        return;
    look_ = false;
    for (auto &d : devices_) {
        if (d.leaving || !d.phase.empty())
            continue;
        if (d.state == ServeState::Waiting) {
            std::string why;
            if (present(d, why)) {
                if (!d.attach_at_ns) {
                    d.attach_at_ns = now + settle_ns(d);
                    spdlog::info("{}: its device is back ({}); set up in {} ms", d.name, d.resolved,
                                 settle_ns(d) / serve_ms_ns);
                }
            } else {
                d.attach_at_ns = 0;
                if (why != d.message && why.find(": refused: ") != std::string::npos)
                    spdlog::warn("{}: not set up: {}", d.name, why);
                d.message = why;
            }
            if (!is_identity(d.plan->path))  // an identity's links come with udev's events
                watch_.watch(d.plan->path);
        } else if (d.set_up && !d.removed && !d.resolved.empty() && d.resolved.front() == '/') {
            struct stat st {};
            if (::stat(d.resolved.c_str(), &st) != 0 && errno == ENOENT) {
                spdlog::warn("{}: {} went away; tearing it down", d.name, d.resolved);
                d.removed = true;
                d.message = d.resolved + " went away";
            }
        }
    }
    next_look_ns_ = now + look_every_ms * serve_ms_ns;
}

}  // namespace devhost
