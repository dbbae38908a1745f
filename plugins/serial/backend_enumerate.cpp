// The serial class's enumerate: the ttys of this machine a serial device can
// be opened on, from /sys/class/tty and /dev, without sending a byte to any
// of them. See serial_private.hpp (enumerate_ttys) and README.md.
//
//   a tty is listed when its sysfs device has a driver (virtual consoles,
//   /dev/tty and ptmx have none); a serial-core port (it has a `type`
//   attribute) only when a UART is behind it (type != PORT_UNKNOWN: the
//   8250 driver registers placeholder ports ttyS0..3 whether or not a UART
//   answers). Where sysfs lacks `type` (kernels before serial core exported
//   it) the port is listed as it is: no tty is ever opened (an open raises
//   DTR and RTS).
#include "serial_private.hpp"

#include <devhost/plugin_util.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <map>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace devhost::serial {

namespace {

const std::string sys_class_tty = "/sys/class/tty/";

// The entries of a directory (no . and ..), in natural order (ttyS2 before
// ttyS10).
std::vector<std::string> entries(const std::string &dir)
{
    std::vector<std::string> names;
    if (DIR *d = opendir(dir.c_str())) {
        while (struct dirent *e = readdir(d))
            if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
                names.emplace_back(e->d_name);
        closedir(d);
    }
    auto split = [](const std::string &s) {
        size_t i = s.find_last_not_of("0123456789") + 1;
        return std::make_pair(s.substr(0, i), i < s.size() && s.size() - i < 10 ? std::stol(s.substr(i)) : -1L);
    };
    std::sort(names.begin(), names.end(),
              [&](const std::string &a, const std::string &b) { return split(a) < split(b); });
    return names;
}

// The ttys the kernel writes its console to (/sys/class/tty/console/active).
std::set<std::string> console_ttys()
{
    std::istringstream in(read_line(sys_class_tty + "console/active"));
    std::set<std::string> names;
    for (std::string name; in >> name;)
        names.insert(name);
    return names;
}

// /dev/serial/by-id links by the device node they lead to (the first in
// order when several do).
std::map<std::string, std::string> by_id_links()
{
    const std::string dir = "/dev/serial/by-id/";
    std::map<std::string, std::string> links;
    for (const auto &name : entries(dir)) {
        std::string target = real_path(dir + name);
        if (!target.empty())
            links.emplace(target, dir + name);
    }
    return links;
}

// The driver serving a tty's sysfs device. Since Linux 6.5 a serial-core
// port's device is a serial-base "port" under a "ctrl" under the UART's
// own device: go up to the first device of another bus.
std::string driver_of(const std::string &device_dir)
{
    std::string dev = real_path(device_dir);
    while (!dev.empty() && dev != "/sys/devices") {
        if (base_name(real_path(dev + "/subsystem")) != "serial-base") {
            std::string drv = real_path(dev + "/driver");
            return drv.empty() ? std::string() : base_name(drv);
        }
        dev = dev.substr(0, dev.find_last_of('/'));
    }
    return {};
}

// The UART's type as sysfs gives it (PORT_* of <linux/serial_core.h>; 0 is
// PORT_UNKNOWN, no UART), or -1 when sysfs does not say (a tty that is no
// serial-core port). Never from an open: opening a UART raises DTR and RTS,
// which resets some attached devices, and enumerate opens nothing.
int uart_type(const std::string &name)
{
    std::string type = read_line(sys_class_tty + name + "/type");
    return type.empty() ? -1 : std::atoi(type.c_str());
}

const char *uart_name(int type)
{
    static const char *const names[] = {"unknown", "8250",   "16450",  "16550",
                                        "16550A",  "Cirrus", "16650",  "16650V2",
                                        "16750",   "Startech", "16C950", "16654", "16850"};
    return type > 0 && size_t(type) < sizeof names / sizeof names[0] ? names[type] : nullptr;
}

// Whether `path` is the character device `dev` ("MAJ:MIN" from sysfs).
bool is_node(const std::string &path, const std::string &dev)
{
    unsigned maj = 0, min = 0;
    struct stat st;
    return std::sscanf(dev.c_str(), "%u:%u", &maj, &min) == 2 && ::stat(path.c_str(), &st) == 0 &&
           S_ISCHR(st.st_mode) && st.st_rdev == makedev(maj, min);
}

// The tty /sys/class/tty/NAME as found, or false when it is none to list.
bool found_tty(const std::string &name, const std::set<std::string> &consoles,
               const std::map<std::string, std::string> &by_id, FoundTty &f)
{
    const std::string sys = sys_class_tty + name;
    if (real_path(sys + "/device/driver").empty())
        return false;  // no driver: a virtual tty (tty0..63, tty, console, ptmx)
    std::string node = name;
    std::replace(node.begin(), node.end(), '!', '/');  // the kernel's "dir!name"
    f.path = "/dev/" + node;
    if (!is_node(f.path, read_line(sys + "/dev")))
        return false;  // no such node here: never list a path that does not exist
    const bool console = consoles.count(name) > 0;
    const std::string driver = driver_of(sys + "/device");
    const int type = uart_type(name);
    if (type == 0)
        return false;  // a serial-core port with no UART behind it
    TtyFacts usb;
    if (usb_facts(sys + "/device", usb)) {
        f.usb_vendor = usb.usb_vendor;
        f.usb_product = usb.usb_product;
        f.usb_serial = usb.usb_serial;
    }
    auto link = by_id.find(real_path(f.path));
    if (link != by_id.end())
        f.by_id = link->second;
    f.description = driver.empty() ? "tty" : driver;
    std::string product = usb.usb_manufacturer + (usb.usb_manufacturer.empty() ? "" : " ") + usb.usb_product_name;
    if (!product.empty())
        f.description += ": " + product;
    if (const char *uart = type > 0 ? uart_name(type) : nullptr)
        f.description += std::string(", ") + uart + " UART";
    if (console)
        f.description += ", the system console";
    return true;
}

// The pseudo-terminal slaves, /dev/pts/N (Unix98 majors 136..143).
void found_ptys(uint64_t deadline_ns, std::vector<FoundTty> &found)
{
    for (const auto &name : entries("/dev/pts")) {
        if (devhost_util_deadline_passed(deadline_ns))
            return;
        if (name.find_first_not_of("0123456789") != std::string::npos)
            continue;  // ptmx
        struct stat st;
        std::string path = "/dev/pts/" + name;
        if (::stat(path.c_str(), &st) != 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) < 136 ||
            major(st.st_rdev) > 143)
            continue;
        FoundTty f;
        f.path = path;
        f.description = "pseudo-terminal";
        found.push_back(f);
    }
}

}  // namespace

devhost_status enumerate_ttys(bool all, uint64_t deadline_ns, std::vector<FoundTty> &found, devhost_error *err)
{
    const std::set<std::string> consoles = console_ttys();
    const std::map<std::string, std::string> by_id = by_id_links();
    for (const auto &name : entries(sys_class_tty)) {
        if (devhost_util_deadline_passed(deadline_ns))
            break;
        FoundTty f;
        if (name.rfind("pts", 0) != 0 && found_tty(name, consoles, by_id, f))
            found.push_back(f);
    }
    if (all)
        found_ptys(deadline_ns, found);
    if (devhost_util_deadline_passed(deadline_ns))
        return devhost_fail(err, DEVHOST_E_TIMEOUT, ETIMEDOUT,
                            "serial: enumerate: the deadline passed (%zu ttys found by then)", found.size());
    return DEVHOST_OK;
}

}  // namespace devhost::serial
