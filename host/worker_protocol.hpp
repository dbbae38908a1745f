// What crosses the channel between the supervisor and a worker besides
// plugin descriptions (plugin_description.hpp): a device's config as the
// supervisor planned it, and a class's scan.
#pragma once

#include "config.hpp"
#include "scan.hpp"

#include <nlohmann/json.hpp>

#include <string>

namespace devhost {

// A device's section: its keys and its steps and faults as written (the
// worker parses them again, as the config did; a from= keeps the path the
// config made of it). The worker gets what it needs to run, not what only
// check needs.
nlohmann::json device_config_to_json(const DeviceConfig &config);
// `error` set (and the result empty) when a step or fault does not parse.
DeviceConfig device_config_from_json(const nlohmann::json &json, std::string &error);

nlohmann::json scan_to_json(const ClassScan &scan);
ClassScan scan_from_json(const nlohmann::json &json);

// A share_fd role: 1 to 32 of [a-z0-9-] (plugin.h).
bool valid_role(const char *role);

}  // namespace devhost
