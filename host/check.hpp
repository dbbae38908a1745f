// Everything `devhost check` verifies without touching a device, and the plan
// `devhost run` executes: each device's plugin, resolved path, validated
// options, and steps whose preconditions can hold in pipeline order.
#pragma once

#include "config.hpp"
#include "loader.hpp"
#include "options.hpp"
#include "virtual_kinds.hpp"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace devhost {

struct DevicePlan {
    const DeviceConfig *config = nullptr;
    std::shared_ptr<const Plugin> plugin;
    std::string path;             // resolved (virtual:NAME stays until started)
    std::map<std::string, std::string> options;  // as configured
    std::optional<OptionValues> values;   // the same resolved against the schema, once

    std::vector<uint32_t> control_codes;  // per step; for control steps
};

struct Plan {
    std::vector<DevicePlan> devices;
    bool missing_plugin = false;  // a device's class has no loaded plugin
};

// Appends every mistake to `diagnostics`. With `kinds`, [virtual] sections
// are checked too: a known kind, and only its options.
Plan check_config(const Config &config, const PluginRegistry &registry, std::vector<Diagnostic> &diagnostics,
                  const VirtualKinds *kinds = nullptr);

}  // namespace devhost
