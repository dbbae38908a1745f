#include "notify.hpp"

#include "libsystemd.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <cstring>
#include <ctime>

namespace devhost {

Notifier::Notifier()
{
    uint64_t usec = 0;
    // Under a service manager only (NOTIFY_SOCKET): elsewhere serve needs
    // no libsystemd for its notifications, which would go nowhere.
    if (!std::getenv("NOTIFY_SOCKET"))
        return;
    std::string why;
    sd_ = libsystemd(why);
    if (!sd_) {
        spdlog::warn("cannot notify the service manager: {}", why);
        return;
    }
    // 0: the variables stay (sd_notify reads NOTIFY_SOCKET at each call).
    if (sd_->sd_watchdog_enabled(0, &usec) > 0 && usec >= 2)
        ping_interval_ = std::chrono::microseconds(usec / 2);
}

void Notifier::send(const std::string &state)
{
    if (!sd_)
        return;
    const int r = sd_->sd_notify(0, state.c_str());
    if (r < 0)
        spdlog::warn("cannot notify the service manager ({}): {}", state.substr(0, state.find('\n')), std::strerror(-r));
}

void Notifier::ready() { send("READY=1"); }

void Notifier::reloading()
{
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    const uint64_t usec = static_cast<uint64_t>(now.tv_sec) * 1000000u + static_cast<uint64_t>(now.tv_nsec) / 1000u;
    send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void Notifier::stopping() { send("STOPPING=1"); }

void Notifier::status(const std::string &line)
{
    if (line == last_status_)
        return;
    last_status_ = line;
    send("STATUS=" + line);
}

void Notifier::watchdog() { send("WATCHDOG=1"); }

}  // namespace devhost
