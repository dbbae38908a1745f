// What devhost-vdev serves, for `devhost check`: every virtual device kind
// and the options it takes, as the kinds declare them (DEVHOST_VDEV_KIND in
// vdev/<kind>.cpp) and `devhost-vdev --describe-kinds` prints them, one JSON
// document (its format: vdev/kinds.cpp). check checks each [virtual] section
// against it without starting a peer.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace devhost {

struct VirtualOption {
    std::string key;
    std::string type;       // "string", "int", "bool" or "duration"
    bool required = false;  // the peer does not start without it
};

// Kind name -> its options (besides `name`, which every kind takes and the
// host passes from the section's name), in the order the kind lists them.
using VirtualKinds = std::map<std::string, std::vector<VirtualOption>>;

// Reads a --describe-kinds document; nullopt with `error` set (one line)
// when it is not one or lists no kind.
std::optional<VirtualKinds> parse_virtual_kinds(std::string_view json, std::string &error);

// Runs `tool --describe-kinds` (bounded: 5 s, 1 MiB) and reads its answer;
// nullopt with `error` set when the tool cannot tell.
std::optional<VirtualKinds> describe_virtual_kinds(const std::filesystem::path &tool, std::string &error);

}  // namespace devhost
