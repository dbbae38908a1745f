#include "names.hpp"

#include "common/text.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

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

namespace {

std::string lower_bare(const std::string &name)
{
    std::string s = strip_device_prefix(name);
    for (char &c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// The [names] entries by key, for following a chain of names in time
// proportional to its length whatever the size of the table.
class Overrides {
public:
    explicit Overrides(const NameTable &table)
    {
        for (size_t i = 0; i < table.overrides.size(); i++) {
            by_bare_[lower_bare(table.overrides[i].first)] = i;  // the last one wins
            exact_[table.overrides[i].first] = i;
        }
    }
    // The entry `name` matches: a key with or without \\.\ (any case) when
    // the name has the prefix, exactly the name when it has not.
    std::optional<size_t> find(const std::string &name) const
    {
        const auto &map = name.rfind(device_prefix, 0) == 0 ? by_bare_ : exact_;
        auto it = map.find(name.rfind(device_prefix, 0) == 0 ? lower_bare(name) : name);
        if (it == map.end())
            return std::nullopt;
        return it->second;
    }

private:
    std::map<std::string, size_t> by_bare_, exact_;
};

// The entry `name` matches, as Overrides::find does, by a scan.
std::optional<size_t> find_override(const std::string &name, const NameTable &table)
{
    const bool prefixed = name.rfind(device_prefix, 0) == 0;
    const std::string bare = strip_device_prefix(name);
    for (size_t i = table.overrides.size(); i-- > 0;) {
        const std::string &key = table.overrides[i].first;
        if (prefixed ? text::iequals(strip_device_prefix(key), bare) : key == name)
            return i;
    }
    return std::nullopt;
}

// Resolves one name that no [names] entry matches.
std::optional<std::string> resolve_builtin(const std::string &name, const NameTable &table, std::string &error)
{
    const std::string bare = strip_device_prefix(name);
    if (name.rfind(device_prefix, 0) == 0) {
        if (auto n = numbered(bare, "COM"); n && *n >= 1)
            return "/dev/ttyS" + std::to_string(*n - 1);
        if (auto n = numbered(bare, "LPT"); n && *n >= 1)
            return "/dev/parport" + std::to_string(*n - 1);
        if (auto n = numbered(bare, "PhysicalDrive")) {
            auto drives = physical_drives(table);
            if (*n < static_cast<int64_t>(drives.size()))
                return "/dev/" + drives[static_cast<size_t>(*n)];
            error = "'" + text::excerpt(name) + "' maps to nothing: this machine has " +
                    std::to_string(drives.size()) + " whole disk(s); " + describe_table(table);
            return std::nullopt;
        }
        error = "'" + text::excerpt(name) + "' maps to nothing; " + describe_table(table);
        return std::nullopt;
    }
    if (name[0] == '\\') {
        std::string port = name.substr(1);
        if (port.empty() || port.find('/') != std::string::npos || port.find('\\') != std::string::npos ||
            port == "." || port == "..") {
            error = "'" + text::excerpt(name) + "' is not a valid port name (expected \\Name, without / or \\)";
            return std::nullopt;
        }
        return table.port_dir + "/" + port;
    }
    return name;
}

}  // namespace

std::optional<std::string> resolve_device_name(const std::string &configured, const NameTable &table,
                                               std::string &error)
{
    // [names] first: an entry wins over the built-in table, and its value
    // may itself be a name (COM7 = \\.\COM3), followed in turn. The index
    // is made only for a chain: one lookup costs no more than a scan.
    std::optional<Overrides> overrides;
    std::vector<size_t> chain;
    std::set<size_t> followed;
    std::string name = configured;
    for (;;) {
        if (name.empty()) {
            error = "empty device path";
            return std::nullopt;
        }
        if (!overrides && !chain.empty())
            overrides.emplace(table);
        const auto i = overrides ? overrides->find(name) : find_override(name, table);
        if (!i)
            return resolve_builtin(name, table, error);
        if (followed.count(*i)) {
            auto at = std::find(chain.begin(), chain.end(), *i);
            error = "'" + text::excerpt(configured) + "' leads round a [names] cycle: " +
                    describe_names(table, std::vector<size_t>(at, chain.end())) + " (a name must lead to a Linux path)";
            return std::nullopt;
        }
        chain.push_back(*i);
        followed.insert(*i);
        name = table.overrides[*i].second;
    }
}

std::vector<std::vector<size_t>> names_cycles(const NameTable &table)
{
    const Overrides overrides(table);
    const size_t n = table.overrides.size();
    enum : char { unseen, walking, done };
    std::vector<char> state(n, unseen);
    std::vector<std::vector<size_t>> cycles;
    for (size_t start = 0; start < n; start++) {
        std::vector<size_t> walk;
        std::optional<size_t> i = start;
        while (i && state[*i] == unseen) {
            state[*i] = walking;
            walk.push_back(*i);
            i = overrides.find(table.overrides[*i].second);
        }
        if (i && state[*i] == walking) {  // this walk closed a loop
            std::vector<size_t> cycle(std::find(walk.begin(), walk.end(), *i), walk.end());
            std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
            cycles.push_back(std::move(cycle));
        }
        for (size_t w : walk)
            state[w] = done;
    }
    return cycles;
}

std::string describe_names(const NameTable &table, const std::vector<size_t> &entries)
{
    std::string s;
    for (size_t i : entries)
        s += (s.empty() ? "" : ", ") + text::excerpt(table.overrides[i].first) + " = " +
             text::excerpt(table.overrides[i].second);
    return s;
}

}  // namespace devhost
