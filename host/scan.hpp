// `devhost scan [--class C] [--json] [--all]`: asks every plugin (or one
// class's) which devices it could drive on this machine, through its
// enumerate hook (ABI 1.1), without opening any of them, and lists them:
// one line each, or one JSON document.
//
// Each enumerate runs on a thread of its own with a deadline of
// enumerate_timeout_ms (deadlines.hpp, answered by deadline_ns(NULL)); one
// that returns past it is a failure ("plugin overran its deadline by N ms"),
// one still running enumerate_grace_ms after it is abandoned (the caller
// must then end the process without unloading the plugins).
#pragma once

#include "loader.hpp"

#include <chrono>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace devhost {

// One device a plugin found; empty strings where it did not say.
struct FoundDevice {
    std::string device_class, path, by_id, description, usb_vendor, usb_product, usb_serial;
};

// What one class's enumerate came to.
struct ClassScan {
    std::string device_class;
    bool listed = false;      // false: the plugin has no enumerate
    bool ok = true;           // enumerate returned OK within its deadline
    bool abandoned = false;   // still running after the grace: left behind
    std::string error;        // when !ok
    std::vector<FoundDevice> found;
};

// The most devices one enumerate may report; the rest are dropped (and said).
inline constexpr size_t max_found_devices = 4096;
inline constexpr std::chrono::milliseconds enumerate_grace{5000};

// Calls the enumerate of `plugin` (flags: DEVHOST_ENUMERATE_*).
ClassScan scan_class(const std::shared_ptr<const Plugin> &plugin, uint32_t flags,
                     std::chrono::milliseconds grace = enumerate_grace);

// One line per device: CLASS PATH [by-id=...] [usb=VVVV:PPPP] [usb-serial=...]
// ["description"], each field printable (text::to_printable).
void print_scan_text(const std::vector<ClassScan> &scans, std::ostream &out);
// One JSON document: {"devices":[{"class","path","by_id","description",
// "usb_vendor","usb_product","usb_serial"}], "classes":[{"class","listed",
// "ok","error"}]}; fields a plugin did not give are null.
void print_scan_json(const std::vector<ClassScan> &scans, std::ostream &out);

}  // namespace devhost
