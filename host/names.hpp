// Device names: maps names written the Windows way to Linux paths.
//
//   \\.\COMn            /dev/ttyS(n-1)
//   \\.\LPTn            /dev/parport(n-1)
//   \\.\PhysicalDriveN  the N-th whole disk in /sys/block order (loop, ram
//                       and zram left out unless [host] physical-drives = all)
//   \Name               a filter port: <port-dir>/Name
//   [names] entries     override or extend the table: `COM7 = /dev/ttyUSB0`;
//                       a value may be another name (`COM7 = \\.\COM3`)
//   anything else       taken as it is (a Linux path, loop:NAME, vport:NAME,
//                       virtual:NAME)
// Which class serves a path is the plugins' to say (class_match.hpp).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace devhost {

inline constexpr const char *default_port_dir = "/run/devhost/ports";

struct NameTable {
    // From [names], in config order. Keys are written with or without \\.\ .
    std::vector<std::pair<std::string, std::string>> overrides;
    std::vector<int> override_lines;  // the config line of each override, when from a config
    std::string port_dir = default_port_dir;
    bool physical_drives_all = false;  // include virtual disks (loop, ram, dm-N, ...), optical, floppy
    std::filesystem::path sys_block = "/sys/block";  // for tests
};

// Resolves a configured device path. Returns the Linux path, or nullopt with
// `error` set to one line that names the name and lists the table.
std::optional<std::string> resolve_device_name(const std::string &configured, const NameTable &table,
                                               std::string &error);

// Every cycle of [names] entries (COM7 = \\.\COM8 and COM8 = \\.\COM7: a
// value that names another entry leads on to it), each once, as entry
// indices starting with the first in config order.
std::vector<std::vector<size_t>> names_cycles(const NameTable &table);

// "COM7 = \\.\COM8, COM8 = \\.\COM7": the given [names] entries.
std::string describe_names(const NameTable &table, const std::vector<size_t> &entries);

// The whole disks \\.\PhysicalDriveN counts, in order (names under /sys/block).
std::vector<std::string> physical_drives(const NameTable &table);

}  // namespace devhost
