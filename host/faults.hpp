// Fault injection, a test mode: a device's `fault = ...` config lines make
// any hook of any plugin fail with any status, block until cancelled, move
// only part of a transfer, or crash the host, so tests can prove the host
// unwinds, reports and keeps its records whatever a plugin does. A device
// with faults calls its plugin through a FaultInjector, a hook table that
// wraps the plugin's; a device without calls the plugin's table directly.
//
//   fault = HOOK[@N]:ACTION
//   HOOK    open connect lock transfer unlock disconnect close info
//   @N      only the N-th call of that hook on the device (default: every call)
//   ACTION  fail=STATUS   the call fails with STATUS (a name such as
//                         DEVHOST_E_IO or io, busy, timeout, removed ...);
//                         release hooks (unlock, disconnect, close) still run
//                         the plugin's hook so nothing leaks, then fail
//           block         wait until the device is cancelled, then fail with
//                         DEVHOST_E_CANCELLED (the plugin is not called)
//           short=N       transfer only: the plugin sees at most N bytes to
//                         send and N bytes of room
//           crash         the host raises SIGSEGV where the hook would run
//           hang          the hook never returns: it ignores the cancel
//                         handle and its deadline, sleeping (interruptibly,
//                         so SIGKILL still ends the process) forever; what a
//                         stuck plugin does, for the supervisor's kill at
//                         the deadline plus [host] kill-grace
//
// A config's `fault =` lines are refused by check unless [host]
// allow-faults = true or the command line gives --allow-faults, so that a
// stray line in a production config cannot fail or crash a device.
#pragma once

#include "lifecycle.hpp"

#include <devhost/plugin.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace devhost {

struct Fault {
    enum class Action { Fail, Block, Short, Crash, Hang };
    Hook hook = Hook::Open;
    uint32_t call = 0;            // 1-based; 0 = every call
    Action action = Action::Fail;
    devhost_status status = DEVHOST_E_IO;  // Fail
    size_t limit = 0;             // Short
    std::string text;             // as written
    int line = 0;                 // the config line (0: not from a config)
};

std::optional<Fault> parse_fault(std::string_view text, std::string &error);

// A status by name: "DEVHOST_E_BUSY", "E_BUSY" or "busy".
std::optional<devhost_status> parse_status(std::string_view name);

// Counts hook calls and answers which fault, if any, applies to this one.
class FaultSchedule {
public:
    FaultSchedule() = default;
    explicit FaultSchedule(std::vector<Fault> faults) : faults_(std::move(faults)) {}
    bool empty() const { return faults_.empty(); }
    // Call once per hook call; returns the fault to apply, or nullptr.
    const Fault *next(Hook hook);

private:
    std::vector<Fault> faults_;
    uint32_t calls_[8] = {};
};

// A hook table with the same hooks as `real` (NULL where it is NULL), whose
// every call first asks the schedule for a fault to apply:
//   fail    acquiring hooks return the status without calling the plugin;
//           releases (unlock, disconnect, close) call it, then fail
//   block   wait for the cancel handle, then E_CANCELLED (releases then
//           still call the plugin, so nothing leaks)
//   short   the plugin sees at most N bytes to send and N bytes of room
//   crash   SIGSEGV, with the default action, where the hook would run
//   hang    never returns (releases too), whatever cancel and deadline say
// Handles it returns from open wrap the plugin's; pass them only to its
// hooks. One injector per device; it must outlive the device's handle.
class FaultInjector {
public:
    FaultInjector(const devhost_hooks &real, FaultSchedule schedule, std::string device, int cancel_fd);
    FaultInjector(const FaultInjector &) = delete;
    FaultInjector &operator=(const FaultInjector &) = delete;
    const devhost_hooks &hooks() const { return table_; }

    // The calls the wrapping hooks make; public for them, not for callers.
    const Fault *next(Hook hook);
    devhost_status inject(const Fault &fault, Hook hook, devhost_error *err) const;
    const devhost_hooks &real() const { return real_; }

private:
    devhost_hooks real_;
    devhost_hooks table_;
    FaultSchedule schedule_;
    std::string device_;
    int cancel_fd_;
};

}  // namespace devhost
