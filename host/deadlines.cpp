#include "deadlines.hpp"

#include "logging.hpp"

#include <time.h>

namespace devhost {

namespace {

thread_local uint64_t enumerate_deadline = DEVHOST_DEADLINE_NONE;

}  // namespace

uint64_t monotonic_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t deadline_after(int64_t timeout_ms)
{
    if (timeout_ms < 0)
        return DEVHOST_DEADLINE_NONE;
    return monotonic_ns() + static_cast<uint64_t>(timeout_ms) * 1000000ull;
}

uint64_t hook_deadline_ns(const devhost_host_device *device)
{
    return device ? device->deadline_ns : enumerate_deadline;
}

std::optional<std::string> overrun(uint64_t deadline)
{
    if (deadline == DEVHOST_DEADLINE_NONE)
        return std::nullopt;
    const uint64_t now = monotonic_ns();
    if (now <= deadline + static_cast<uint64_t>(deadline_slack_ms) * 1000000ull)
        return std::nullopt;
    return "plugin overran its deadline by " + std::to_string((now - deadline) / 1000000ull) + " ms";
}

EnumerateDeadline::EnumerateDeadline(uint64_t deadline) : previous_(enumerate_deadline)
{
    enumerate_deadline = deadline;
}

EnumerateDeadline::~EnumerateDeadline() { enumerate_deadline = previous_; }

}  // namespace devhost
