#include "lifecycle.hpp"

#include <devhost/plugin.h>

namespace devhost {

const char *hook_name(Hook hook)
{
    switch (hook) {
    case Hook::Open: return "open";
    case Hook::Connect: return "connect";
    case Hook::Lock: return "lock";
    case Hook::Transfer: return "transfer";
    case Hook::Unlock: return "unlock";
    case Hook::Disconnect: return "disconnect";
    case Hook::Close: return "close";
    case Hook::Info: return "info";
    }
    return "unknown hook";
}

Need needs(Hook hook, const DeviceState &s, const ClassRules &rules)
{
    if (s.closed)
        return Need::NotClosed;
    if (hook == Hook::Open)
        return s.open ? Need::NotOpen : Need::None;
    if (!s.open)
        return Need::Open;
    switch (hook) {
    case Hook::Connect: return s.connected ? Need::NotConnected : Need::None;
    case Hook::Lock:
        if ((rules.lock_requires & DEVHOST_REQUIRES_CONNECTED) && !s.connected)
            return Need::ConnectedForLock;
        return s.locked ? Need::NotLocked : Need::None;
    case Hook::Transfer:
        if ((rules.transfer_requires & DEVHOST_REQUIRES_CONNECTED) && !s.connected)
            return Need::ConnectedForTransfer;
        if ((rules.transfer_requires & DEVHOST_REQUIRES_LOCKED) && !s.locked)
            return Need::LockedForTransfer;
        return Need::None;
    case Hook::Unlock: return s.locked ? Need::None : Need::Locked;
    case Hook::Disconnect: return s.connected ? Need::None : Need::Connected;
    case Hook::Open:
    case Hook::Info:
    case Hook::Close: return Need::None;
    }
    return Need::None;
}

void apply(Hook hook, bool succeeded, DeviceState &s)
{
    switch (hook) {
    case Hook::Open: s.open = succeeded; break;
    case Hook::Connect: s.connected = s.connected || succeeded; break;
    case Hook::Lock: s.locked = s.locked || succeeded; break;
    case Hook::Unlock: s.locked = false; break;
    case Hook::Disconnect: s.connected = false; break;
    case Hook::Close: s = DeviceState{.closed = true}; break;
    case Hook::Transfer:
    case Hook::Info: break;
    }
}

std::vector<Hook> unwind_order(const DeviceState &s, const ClassRules &rules)
{
    std::vector<Hook> order;
    const bool lock_inside_connection = rules.lock_requires & DEVHOST_REQUIRES_CONNECTED;
    if (lock_inside_connection && s.locked)
        order.push_back(Hook::Unlock);
    if (s.connected)
        order.push_back(Hook::Disconnect);
    if (!lock_inside_connection && s.locked)
        order.push_back(Hook::Unlock);
    if (s.open)
        order.push_back(Hook::Close);
    return order;
}

std::optional<Hook> hook_of(StepKind kind)
{
    switch (kind) {
    case StepKind::Open: return Hook::Open;
    case StepKind::Connect: return Hook::Connect;
    case StepKind::Info: return Hook::Info;
    case StepKind::Lock: return Hook::Lock;
    case StepKind::Unlock: return Hook::Unlock;
    case StepKind::Disconnect: return Hook::Disconnect;
    case StepKind::Close: return Hook::Close;
    case StepKind::Sleep: return std::nullopt;
    default: return Hook::Transfer;
    }
}

}  // namespace devhost
