// systemd's notification protocol for `devhost serve` (Type=notify), through
// libsystemd's sd_notify (libsystemd.hpp): READY=1, RELOADING=1, STOPPING=1, STATUS=...,
// WATCHDOG=1. Without NOTIFY_SOCKET (not started by systemd) every call
// does nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace devhost {

struct LibSystemd;

class Notifier {
public:
    Notifier();

    void ready();
    // RELOADING=1 with MONOTONIC_USEC (what Type=notify-reload will want).
    void reloading();
    void stopping();
    // STATUS=line, only when it differs from the last one sent.
    void status(const std::string &line);
    void watchdog();
    // Half of WATCHDOG_USEC when systemd asks for pings, else nullopt.
    std::optional<std::chrono::microseconds> ping_interval() const { return ping_interval_; }

private:
    void send(const std::string &state);
    const LibSystemd *sd_ = nullptr;  // loaded under a service manager only (libsystemd.hpp)
    std::optional<std::chrono::microseconds> ping_interval_;
    std::string last_status_;
};

}  // namespace devhost
