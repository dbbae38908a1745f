#include "identity.hpp"

#include "common/device_path.hpp"
#include "common/text.hpp"
#include "libsystemd.hpp"


#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <set>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace devhost {

namespace fs = std::filesystem;

namespace {

struct Usb {
    std::string vendor, product, serial;  // serial "" when not given
};

bool hex4(const std::string &s)
{
    return s.size() == 4 && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c); });
}

std::string joined(const std::vector<std::string> &items)
{
    std::string out;
    for (const auto &i : items)
        out += (out.empty() ? "" : ", ") + i;
    return out;
}

std::string lower(std::string s)
{
    for (auto &c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// usb:VID:PID[:SERIAL] split; nullopt when malformed.
std::optional<Usb> parse_usb(const std::string &path)
{
    const std::string rest = path.substr(4);
    const size_t a = rest.find(':');
    if (a == std::string::npos)
        return std::nullopt;
    const size_t b = rest.find(':', a + 1);
    Usb u{lower(rest.substr(0, a)), lower(rest.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1)),
          b == std::string::npos ? "" : rest.substr(b + 1)};
    if (!hex4(u.vendor) || !hex4(u.product) || (b != std::string::npos && u.serial.empty()))
        return std::nullopt;
    return u;
}

const char *link_kind(const std::string &path)
{
    return path.rfind("by-id:", 0) == 0 ? "by-id" : "by-path";
}

// by-id:NAME and by-path:NAME: the links NAME in dev_root/*/by-id (or
// by-path), by their targets.
std::optional<std::string> resolve_link(const std::string &identity, std::string &error, const fs::path &dev_root)
{
    const std::string kind = link_kind(identity);
    const std::string name = identity.substr(kind.size() + 1);
    std::set<std::string> targets;
    std::vector<std::string> links;
    std::error_code ec;
    for (fs::directory_iterator it(dev_root, ec), end; !ec && it != end; it.increment(ec)) {
        if (!it->is_directory(ec) || it->is_symlink(ec))
            continue;
        const fs::path link = it->path() / kind / name;
        struct stat st {};
        if (::lstat(link.c_str(), &st) != 0)
            continue;
        if (auto refusal = output::device_path_refusal(link.string())) {
            error = identity + ": " + *refusal;
            return std::nullopt;
        }
        std::error_code cec;
        const fs::path target = fs::canonical(link, cec);
        if (cec)
            continue;  // a link whose device is gone: no match
        if (targets.insert(target.string()).second)
            links.push_back(link.string() + " -> " + target.string());
    }
    if (targets.size() == 1)
        return *targets.begin();
    if (targets.empty())
        error = identity + ": no device matches it (no " + kind + " link '" + text::excerpt(name) + "' in " +
                (dev_root / "*" / kind).string() + "; udev makes them)";
    else
        error = identity + ": " + std::to_string(targets.size()) + " devices match it (" + joined(links) +
                "); an identity must name one device";
    return std::nullopt;
}

std::string attr(const LibSystemd &sd, sd_device *d, const char *name)
{
    const char *v = nullptr;
    return sd.sd_device_get_sysattr_value(d, name, &v) >= 0 && v ? v : "";
}

// Whether device `d`'s USB device is `u`.
bool usb_matches(const LibSystemd &sd, sd_device *d, const Usb &u)
{
    sd_device *usb = nullptr;  // borrowed from d
    if (sd.sd_device_get_parent_with_subsystem_devtype(d, "usb", "usb_device", &usb) < 0)
        return false;
    return lower(attr(sd, usb, "idVendor")) == u.vendor && lower(attr(sd, usb, "idProduct")) == u.product &&
           (u.serial.empty() || attr(sd, usb, "serial") == u.serial);
}

std::optional<std::string> resolve_usb(const std::string &identity, std::string &error)
{
    const Usb u = *parse_usb(identity);
    std::string why;
    const LibSystemd *lib = libsystemd(why);
    if (!lib) {
        error = identity + ": " + why;
        return std::nullopt;
    }
    const LibSystemd &sd = *lib;
    sd_device_enumerator *raw = nullptr;
    int r = sd.sd_device_enumerator_new(&raw);
    std::unique_ptr<sd_device_enumerator, decltype(sd.sd_device_enumerator_unref)> e(raw, sd.sd_device_enumerator_unref);
    for (const char *subsystem : {"tty", "block", "usbmisc"})
        if (r >= 0)
            r = sd.sd_device_enumerator_add_match_subsystem(e.get(), subsystem, 1);
    // sd-device's enumerator skips, by default, every device with a node
    // that udev has not initialized (no entry in its database). Without
    // udevd (device_watch.cpp's test: an initramfs, a container, a system
    // with only devtmpfs) no device ever is, so none would match: take them
    // all then. With udevd, a device is taken once its rules have run.
    if (r >= 0 && ::access("/run/udev/control", F_OK) != 0)
        r = sd.sd_device_enumerator_allow_uninitialized(e.get());
    if (r < 0) {
        error = identity + ": cannot enumerate devices: " + std::strerror(-r);
        return std::nullopt;
    }
    std::vector<std::string> found;
    for (sd_device *d = sd.sd_device_enumerator_get_device_first(e.get()); d;
         d = sd.sd_device_enumerator_get_device_next(e.get())) {
        const char *subsystem = nullptr, *devtype = nullptr, *devname = nullptr;
        if (sd.sd_device_get_devname(d, &devname) < 0 || !devname || sd.sd_device_get_subsystem(d, &subsystem) < 0)
            continue;
        if (std::string(subsystem) == "block" && (sd.sd_device_get_devtype(d, &devtype) < 0 || std::string(devtype) != "disk"))
            continue;  // whole disks only: their partitions are the same device
        if (usb_matches(sd, d, u))
            found.emplace_back(devname);
    }
    if (found.size() == 1) {
        if (auto refusal = output::device_path_refusal(found.front())) {
            error = identity + ": " + *refusal;
            return std::nullopt;
        }
        return found.front();
    }
    if (found.empty())
        error = identity + ": no device matches it (no tty, whole disk or usbmisc device of USB " + u.vendor + ":" +
                u.product + (u.serial.empty() ? "" : " serial '" + text::excerpt(u.serial) + "'") + ")";
    else
        error = identity + ": " + std::to_string(found.size()) + " devices match it (" + joined(found) +
                "); an identity must name one device" + (u.serial.empty() ? " (add :SERIAL)" : "");
    return std::nullopt;
}

}  // namespace

bool is_identity(const std::string &path)
{
    return path.rfind("by-id:", 0) == 0 || path.rfind("by-path:", 0) == 0 || path.rfind("usb:", 0) == 0;
}

std::string identity_syntax_error(const std::string &path)
{
    if (path.rfind("usb:", 0) == 0)
        return parse_usb(path) ? ""
                               : "'" + text::excerpt(path) +
                                     "': expected usb:VID:PID[:SERIAL], VID and PID four hex digits each (usb:0403:6001)";
    const std::string kind = link_kind(path);
    const std::string name = path.substr(kind.size() + 1);
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
        name.find('\0') != std::string::npos)
        return "'" + text::excerpt(path) + "': expected " + kind + ":NAME, NAME a link's name in /dev/*/" + kind +
               " (no '/')";
    return "";
}

std::optional<std::string> resolve_identity(const std::string &identity, std::string &error, const fs::path &dev_root)
{
    if (const std::string bad = identity_syntax_error(identity); !bad.empty()) {
        error = bad;
        return std::nullopt;
    }
    return identity.rfind("usb:", 0) == 0 ? resolve_usb(identity, error) : resolve_link(identity, error, dev_root);
}

}  // namespace devhost
