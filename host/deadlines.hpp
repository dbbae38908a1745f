// Hook deadlines (ABI 1.1): every hook call has one, an absolute
// CLOCK_MONOTONIC time the plugin reads through services->deadline_ns while
// the call runs, and the host holds the plugin to it.
//
//   open, connect, lock, transfer   their timeout_ms argument (the step's
//                                   timeout=, else the device's `timeout`,
//                                   else [host] timeout)
//   info, unlock, disconnect, close the same rule from their step; when the
//                                   host releases a device itself (unwind),
//                                   the device's or host's timeout, else
//                                   default_hook_timeout_ms
//   enumerate (devhost scan)        enumerate_timeout_ms per plugin
//
// A hook that returns more than deadline_slack_ms after its deadline is
// recorded DEVHOST_E_TIMEOUT, "plugin overran its deadline by N ms",
// whatever it returned. For info, unlock, disconnect and close only when the
// plugin negotiated 1.1: a 1.0 plugin could not know their deadline.
#pragma once

#include <devhost/plugin.h>

#include <cstdint>
#include <optional>
#include <string>

namespace devhost {

// How late a hook may return before it counts as an overrun: scheduling
// and the plugin's own clean-up after it saw the deadline.
inline constexpr int64_t deadline_slack_ms = 20;
// The deadline of a release the host makes on its own (not from a step)
// when neither the device nor [host] gives a timeout.
inline constexpr int64_t default_hook_timeout_ms = 5000;
// The deadline of each plugin's enumerate in `devhost scan`.
inline constexpr int64_t enumerate_timeout_ms = 5000;

// CLOCK_MONOTONIC in nanoseconds (the monotonic_ns service).
uint64_t monotonic_ns();

// The absolute deadline `timeout_ms` from now; DEVHOST_DEADLINE_NONE for a
// negative timeout (none).
uint64_t deadline_after(int64_t timeout_ms);

// The deadline_ns service: the deadline the calling thread's running hook
// of `device` was given; for NULL, the calling thread's enumerate.
uint64_t hook_deadline_ns(const devhost_host_device *device);

// "plugin overran its deadline by N ms" when a hook that ended now, given
// `deadline`, ran past it by more than deadline_slack_ms; nullopt when it
// kept to it (or had none).
std::optional<std::string> overrun(uint64_t deadline);

// While it lives, the calling thread's enumerate deadline (the one
// deadline_ns(NULL) answers) is `deadline`.
class EnumerateDeadline {
public:
    explicit EnumerateDeadline(uint64_t deadline);
    ~EnumerateDeadline();
    EnumerateDeadline(const EnumerateDeadline &) = delete;
    EnumerateDeadline &operator=(const EnumerateDeadline &) = delete;

private:
    uint64_t previous_;
};

}  // namespace devhost
