// Device identity names (issue 19): a `path =` that names a device by what
// it is rather than where the kernel put it this time, resolved at each
// attach (devhost serve) or when a run starts:
//
//   by-id:NAME          a link NAME in one of /dev/*/by-id (udev makes them:
//                       /dev/serial/by-id, /dev/disk/by-id, ...)
//   by-path:NAME        a link NAME in one of /dev/*/by-path (the same)
//   usb:VID:PID[:SERIAL]  the one tty, whole disk or USB printer (usbmisc)
//                       whose USB device has idVendor VID and idProduct PID
//                       (four hex digits each) and, when given, that serial
//                       (sysfs through sd-device: no udev needed)
//
// An identity must name one device: two matches are an error naming both.
// What it resolves to is a device node (the link's target), checked with
// output::device_path_refusal like any `path =`.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace devhost {

// Whether `path` is written as an identity (by-id:, by-path:, usb:).
bool is_identity(const std::string &path);

// "" when `path` (an identity) is well formed; else one line saying what
// is wrong with it ("usb:0403: expected usb:VID:PID[:SERIAL] ...").
std::string identity_syntax_error(const std::string &path);

// The device node `identity` names now, or nullopt with `error` set to one
// line: no device matches (with what was looked at), two or more match
// (naming them), or what it names is refused. `dev_root` is /dev but for
// tests.
std::optional<std::string> resolve_identity(const std::string &identity, std::string &error,
                                            const std::filesystem::path &dev_root = "/dev");

}  // namespace devhost
