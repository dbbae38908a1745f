#include "names.hpp"

#include "text.hpp"

#include <algorithm>
#include <cctype>
#include <sys/stat.h>

namespace devhost {

namespace {

constexpr std::string_view device_prefix = "\\\\.\\";

std::string strip_device_prefix(const std::string &s)
{
    return s.rfind(device_prefix, 0) == 0 ? s.substr(device_prefix.size()) : s;
}

// "COM12" with prefix "COM" -> 12; nullopt if not that form.
std::optional<int64_t> numbered(const std::string &name, std::string_view prefix)
{
    if (name.size() <= prefix.size() || !text::iequals(name.substr(0, prefix.size()), prefix))
        return std::nullopt;
    std::string digits = name.substr(prefix.size());
    if (!std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); }) ||
        digits.size() > 6)
        return std::nullopt;
    return std::stoll(digits);
}

std::string describe_table(const NameTable &table)
{
    std::string s = "known: \\\\.\\COMn -> /dev/ttyS(n-1), \\\\.\\LPTn -> /dev/parport(n-1), "
                    "\\\\.\\PhysicalDriveN -> N-th whole disk (";
    auto drives = physical_drives(table);
    if (drives.empty())
        s += "none on this machine";
    for (size_t i = 0; i < drives.size(); i++)
        s += (i ? ", " : "") + std::to_string(i) + "=" + drives[i];
    s += "), \\Name -> " + table.port_dir + "/Name";
    for (const auto &[k, v] : table.overrides)
        s += ", " + k + " -> " + v;
    return s;
}

// Whether /sys/block/NAME is a disk Windows would number as a PhysicalDrive:
// not a virtual block device (loop, ram, zram, dm-N, md, nbd: their sysfs
// node is under /sys/devices/virtual), and not an optical drive or floppy
// (Windows names those CdRomN and A:).
bool is_physical_disk(const std::filesystem::path &node, const std::string &name)
{
    for (const char *prefix : {"loop", "ram", "zram", "sr", "fd"})
        if (name.rfind(prefix, 0) == 0)
            return false;
    std::error_code ec;
    const std::string target = std::filesystem::canonical(node, ec).string();
    return ec || target.find("/devices/virtual/") == std::string::npos;
}

}  // namespace

std::vector<std::string> physical_drives(const NameTable &table)
{
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto &entry : std::filesystem::directory_iterator(table.sys_block, ec)) {
        std::string n = entry.path().filename().string();
        if (!table.physical_drives_all && !is_physical_disk(entry.path(), n))
            continue;
        names.push_back(n);
    }
    std::sort(names.begin(), names.end());
    return names;
}

std::optional<std::string> resolve_device_name(const std::string &configured, const NameTable &table,
                                               std::string &error)
{
    if (configured.empty()) {
        error = "empty device path";
        return std::nullopt;
    }
    // [names] first: an override wins over the built-in table.
    const std::string bare = strip_device_prefix(configured);
    for (auto it = table.overrides.rbegin(); it != table.overrides.rend(); ++it)
        if (text::iequals(strip_device_prefix(it->first), bare) &&
            (configured.rfind(device_prefix, 0) == 0 || it->first == configured))
            return it->second;

    if (configured.rfind(device_prefix, 0) == 0) {
        if (auto n = numbered(bare, "COM"); n && *n >= 1)
            return "/dev/ttyS" + std::to_string(*n - 1);
        if (auto n = numbered(bare, "LPT"); n && *n >= 1)
            return "/dev/parport" + std::to_string(*n - 1);
        if (auto n = numbered(bare, "PhysicalDrive")) {
            auto drives = physical_drives(table);
            if (*n < static_cast<int64_t>(drives.size()))
                return "/dev/" + drives[static_cast<size_t>(*n)];
            error = "'" + configured + "' maps to nothing: this machine has " + std::to_string(drives.size()) +
                    " whole disk(s); " + describe_table(table);
            return std::nullopt;
        }
        error = "'" + configured + "' maps to nothing; " + describe_table(table);
        return std::nullopt;
    }
    if (configured[0] == '\\') {
        std::string port = configured.substr(1);
        if (port.empty() || port.find('/') != std::string::npos || port.find('\\') != std::string::npos ||
            port == "." || port == "..") {
            error = "'" + configured + "' is not a valid port name (expected \\Name, without / or \\)";
            return std::nullopt;
        }
        return table.port_dir + "/" + port;
    }
    return configured;
}

std::optional<std::string> guess_class(const std::string &configured, const std::string &resolved)
{
    const std::string bare = strip_device_prefix(configured);
    if (configured.rfind(device_prefix, 0) == 0) {
        if (numbered(bare, "COM"))
            return "serial";
        if (numbered(bare, "LPT"))
            return "parallel";
        if (numbered(bare, "PhysicalDrive"))
            return "raw";
    } else if (!configured.empty() && configured[0] == '\\') {
        return "filterport";
    }
    for (const char *p : {"/dev/tty", "/dev/pts/", "/dev/serial/"})
        if (resolved.rfind(p, 0) == 0)
            return "serial";
    if (resolved.rfind("/dev/parport", 0) == 0 || resolved.rfind("vport:", 0) == 0)
        return "parallel";
    if (resolved.rfind("loop:", 0) == 0)
        return "loop";
    struct stat st {};
    if (::stat(resolved.c_str(), &st) == 0) {
        if (S_ISBLK(st.st_mode) || S_ISREG(st.st_mode))
            return "raw";
        if (S_ISSOCK(st.st_mode))
            return "filterport";
    }
    return std::nullopt;
}

}  // namespace devhost
