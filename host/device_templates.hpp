// Device templates: one [device] section for N similar devices.
//
//   [device tty{n}]
//   instances = 512
//   class = serial
//   path = /run/bench/tty{n}
//   step = request "ping {n}\n" until="\n" repeat=200
//
// makes the 512 devices tty0 .. tty511, each an ordinary [device] section as
// if written out: in every value of the section (path, steps, the class's
// options, ...) and in its name, {n} is the instance's number in decimal and
// {n:0W} (W from 1 to 9) the same padded with zeros to W digits. The name
// must hold {n} (the expanded names are then visible in the file as
// written, and no hidden suffix rule can collide). The expansion is done on
// the config's entries right after the scan, before anything files them, so
// everything after it (the key checks, check, run, serve, records, the
// isolation grouping, duplicate names) sees N ordinary devices; what a
// template adds is its own checks:
//
//   - instances from 1 to max_instances, given once, with {n} in the name;
//   - {n} in a section without instances, and a {word} placeholder other
//     than {n} / {n:0W} in a template (elsewhere braces are data);
//   - an expanded name that another section (written or expanded) has;
//   - the config written out stays within max_config_bytes, the limit a
//     config file has, so that a template never takes more memory than a
//     file could.
//
// A mistake on a template's line would be reported once per instance;
// collapse_instance_diagnostics keeps the first instance's.
#pragma once

#include "config.hpp"

#include <string>
#include <vector>

namespace devhost {

// One `key = value` line of a config, with its section and its line number
// (config.cpp's scan).
struct ConfigEntry {
    std::string section;  // as written between [ ], "" before any section
    std::string key;
    std::string value;
    int line = 0;
    int section_line = 0;
};

// The most devices one template makes: what one `devhost serve` holds at once
// (serve_max_slots), so that a template serve could never set up whole is
// refused by check.
inline constexpr int max_instances = 4096;

// Expands every templated [device] section of `entries` in place, in the
// position of its first entry, instance by instance (its entries in their
// order for each), and drops every `instances =` entry. Mistakes are
// appended to `diags`; a template with a bad `instances =` makes one
// instance (so that its other mistakes are still found), one whose names
// collide makes none. `content_bytes`: the size of the file's text.
std::vector<DeviceTemplate> expand_device_templates(std::vector<ConfigEntry> &entries, size_t content_bytes,
                                                    const std::string &file, std::vector<Diagnostic> &diags);

// The name of instance `n` of a template named `name`, as the expansion
// makes it.
std::string instance_name(const std::string &name, int n);

// Drops each diagnostic on a template's line that repeats one kept before it
// for the same line but for another instance (the two differ only in
// numbers, where {n} went).
void collapse_instance_diagnostics(const Config &config, std::vector<Diagnostic> &diags);

}  // namespace devhost
