// The device lifecycle, in one table: what each hook needs of the device's
// state, what a call leaves behind, and in which order the host releases
// what a device still holds. `devhost check` walks a pipeline's steps through
// it before any device is touched, Device consults it at every call, and the
// engine's unwind and Device's destructor take their order from it, so the
// three can never disagree (tests/host/lifecycle_test.cpp drives every step
// sequence of length up to 4 through check and Device and compares).
//
//   hook        needs (besides: not closed)           leaves
//   open        not open                              open
//   connect     open, not connected                   connected
//   info        open                                  -
//   lock        open, not locked; connected when the  locked
//               class's lock_requires says so
//   transfer    open; connected / locked when the     -
//               class's transfer_requires says so
//   unlock      open, locked                          not locked (even on failure)
//   disconnect  open, connected                       not connected (even on failure)
//   close       open                                  closed: nothing held (even on failure)
//
// Release order (unwind): disconnect, unlock, close, as the parallel device's
// seed lists it (seeds/002: "Disconnects ..., Unlocks ..., Closes"); a class
// whose lock requires a connection is released inside out instead (unlock,
// disconnect, close), so its lock never outlives the connection it needs.
#pragma once

#include "steps.hpp"

#include <cstdint>
#include <optional>
#include <vector>

namespace devhost {

enum class Hook { Open, Connect, Lock, Transfer, Unlock, Disconnect, Close, Info };
inline constexpr Hook all_hooks[] = {Hook::Open,   Hook::Connect,    Hook::Lock,  Hook::Transfer,
                                     Hook::Unlock, Hook::Disconnect, Hook::Close, Hook::Info};

// "open", "connect", ...
const char *hook_name(Hook hook);

struct DeviceState {
    bool open = false, connected = false, locked = false, closed = false;
};

// What a class adds to the table, from its descriptor (DEVHOST_REQUIRES_*).
struct ClassRules {
    uint32_t lock_requires = 0;
    uint32_t transfer_requires = 0;
};

// Why a hook may not be called now; None when it may.
enum class Need {
    None,
    NotClosed,             // the device was closed: nothing more on it
    Open,                  // every hook but open needs an open device
    NotOpen,               // open on an open device
    NotConnected,          // connect twice
    NotLocked,             // lock twice
    Connected,             // disconnect without a connection
    Locked,                // unlock without the lock
    ConnectedForLock,      // the class's lock_requires
    ConnectedForTransfer,  // the class's transfer_requires
    LockedForTransfer,
};

Need needs(Hook hook, const DeviceState &state, const ClassRules &rules);

// The state after a call of `hook` that was allowed (needs() == None) and
// returned `succeeded`. Releases (unlock, disconnect, close) release whether
// or not the plugin reported success: the host never calls them twice.
void apply(Hook hook, bool succeeded, DeviceState &state);

// The release hooks for what `state` holds, in the order to call them.
std::vector<Hook> unwind_order(const DeviceState &state, const ClassRules &rules);

// The hook a step of `kind` calls (every data step and control: Transfer);
// nullopt for sleep, which calls none.
std::optional<Hook> hook_of(StepKind kind);

}  // namespace devhost
