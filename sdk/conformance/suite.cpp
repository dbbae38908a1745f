// The test list and the Context's device paths.
#include "suite.hpp"

namespace devhost::conformance {

std::optional<std::string> Context::device(size_t i) const
{
    if (i < devices.size())
        return devices[i];
    if (!devices.empty() && (plugin->flags() & DEVHOST_PLUGIN_SHARED_PATHS))
        return devices[0];
    return std::nullopt;
}

std::string Context::why_no_device(size_t count) const
{
    if (devices.empty())
        return "class '" + plugin->device_class() + "' needs a device: give --device PATH";
    return "needs " + std::to_string(count) + " devices at once: give --device PATH " + std::to_string(count) +
           " times (class '" + plugin->device_class() + "' cannot open one path twice)";
}

const std::vector<Test> &all_tests()
{
    static const std::vector<Test> tests = [] {
        std::vector<Test> t;
        add_static_tests(t);
        add_device_tests(t);
        add_timing_tests(t);
        return t;
    }();
    return tests;
}

}  // namespace devhost::conformance
