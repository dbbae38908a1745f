#include "loader.hpp"

#include "elf_check.hpp"
#include "logging.hpp"
#include "options.hpp"
#include "common/text.hpp"
#include "trusted_file.hpp"
#include <devhost/unique_fd.hpp>

#include <algorithm>
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <linux/magic.h>
#include <mutex>
#include <map>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <vector>

namespace devhost {

namespace {

// The option flags a schema gives to one BOOL at most.
constexpr std::pair<uint32_t, const char *> one_bool_flags[] = {{DEVHOST_OPTION_EXCLUSIVE, "exclusive"},
                                                                 {DEVHOST_OPTION_WRITABLE, "writable"}};

// Size of the v1 part of each struct: everything up to and including its last
// v1 field. A struct_size below these is too small to be a v1 struct.
constexpr size_t v1_descriptor_size =
    offsetof(devhost_plugin_descriptor, reserved) + sizeof(uint32_t);
constexpr size_t v1_hooks_size = offsetof(devhost_hooks, transfer) + sizeof(void *);
constexpr size_t v1_option_spec_size = offsetof(devhost_option_spec, max) + sizeof(int64_t);
constexpr size_t v1_control_spec_size = offsetof(devhost_control_spec, flags) + sizeof(uint32_t);

struct Refused {
    std::string reason;
};

std::string text_or_empty(const char *s) { return s ? s : ""; }

const char *file_type_name(mode_t type)
{
    switch (type & S_IFMT) {
    case S_IFDIR: return "a directory";
    case S_IFIFO: return "a FIFO";
    case S_IFSOCK: return "a socket";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    default: return "another kind of file";
    }
}

// A path for a message: printable, and each component over 64 bytes cut to
// its first 32 and its length, or a name too long to resolve fills the line.
std::string shown_path(const std::string &path)
{
    std::string out;
    const auto parts = text::split(path, '/');
    for (size_t i = 0; i < parts.size(); i++) {
        const std::string &part = parts[i];
        if (i)
            out += '/';
        const std::string cut = part.size() > 64 ? part.substr(0, 32) : part;
        out += text::to_printable(reinterpret_cast<const uint8_t *>(cut.data()), cut.size());
        if (part.size() > 64)
            out += "...(" + std::to_string(part.size()) + " bytes)";
    }
    return out.empty() ? path : out;
}

// Words a refusal of open_trusted_file in the loader's terms.
[[noreturn]] void refuse_untrusted(const TrustRefusal &why, const fs::path &file)
{
    using Kind = TrustRefusal::Kind;
    const std::string path = shown_path(why.path);
    std::error_code ec;
    const bool is_file = why.path == fs::absolute(file, ec).lexically_normal().string();
    const std::string dir = why.own_directory ? "its directory " + path : "the directory " + path + " above it";
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(why.mode & 07777));
    switch (why.kind) {
    case Kind::Open:
        throw Refused{"cannot open" + (is_file ? "" : " " + path) + ": " + std::strerror(why.os_errno)};
    case Kind::NotRegular:
        throw Refused{"not a regular file (" + (is_file ? "" : path + " is ") + file_type_name(why.mode) + ")"};
    case Kind::FileWritable:
        throw Refused{std::string("writable by group or others (mode ") + mode +
                      "): a plugin runs as the host's user, so only its owner may change it"};
    case Kind::FileOwner:
        throw Refused{"owned by uid " + std::to_string(why.uid) +
                      ", not by root or the host's user: its owner could change what the host runs"};
    case Kind::DirWritable:
        throw Refused{dir + " is writable by group or others (mode " + mode + "): anyone there could replace the plugin"};
    case Kind::DirOwner:
        throw Refused{dir + " is owned by uid " + std::to_string(why.uid) +
                      ", not by root or the host's user: its owner could replace the plugin"};
    case Kind::LinkOwner:
        throw Refused{"the symlink " + path + " is owned by uid " + std::to_string(why.uid) +
                      " in a directory others may write to: anyone there could have put it"};
    case Kind::Changed:
    case Kind::None:
        throw Refused{"replaced while it was checked: " + path};
    }
    std::abort();  // every kind throws above
}

// Refuses the file open as `fd` when its ELF header or layout would make the
// dynamic loader fail without a useful word or fault (see elf_check.hpp).
void check_elf_layout(int fd, uint64_t file_size)
{
    std::vector<uint8_t> head(64);
    ssize_t n = ::pread(fd, head.data(), head.size(), 0);
    if (n >= 0) {
        head.resize(static_cast<size_t>(n));
        if (size_t need = elf_bytes_needed(head.data(), head.size()); need > head.size()) {
            head.resize(need);
            n = ::pread(fd, head.data(), need, 0);
            head.resize(n > 0 ? static_cast<size_t>(n) : 0);
        }
    }
    if (n < 0)
        throw Refused{std::string("cannot read: ") + std::strerror(errno)};
    if (auto defect = elf_defect(head.data(), head.size(), file_size))
        throw Refused{"not a loadable library: " + *defect};
}

// How often this process gave dlopen each descriptor number. dlopen knows a
// library by every name it was opened by, and for a known name it returns
// that library without opening anything. A plugin's descriptor is closed
// once it is loaded, and a library may stay mapped after it is unloaded
// (glibc keeps a C++ library with unique symbols), so no name is given twice:
// the k-th load through number N is named /proc/self/fd, k more slashes, /N
// (the kernel reads repeated slashes as one). No descriptor is spent on it.
std::mutex fd_name_uses_lock;
std::map<int, size_t> fd_name_uses;

// Loads the library open as `fd` through /proc/self/fd, so the file checked
// is the file mapped whatever happens to its path meanwhile. Without /proc
// the plugin is refused rather than loaded again by its path: loading by
// descriptor is what makes the checks hold for what runs.
std::unique_ptr<boost::dll::shared_library> load_library(int fd, const fs::path &file)
{
    struct statfs proc {};
    if (::statfs("/proc/self/fd", &proc) != 0 || proc.f_type != PROC_SUPER_MAGIC)
        throw Refused{"cannot load it through its descriptor: /proc is not mounted (the host does not "
                      "load a plugin by its path, which could change after the checks)"};
    std::lock_guard<std::mutex> lock(fd_name_uses_lock);
    size_t &uses = fd_name_uses[fd];
    if (uses > 2048)  // a name stays far below PATH_MAX
        throw Refused{"cannot load it: descriptor " + std::to_string(fd) + " already named 2048 plugins"};
    const std::string name = "/proc/self/fd" + std::string(uses++, '/') + "/" + std::to_string(fd);
    auto library = std::make_unique<boost::dll::shared_library>();
    try {
        library->load(name, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
    } catch (const std::exception &e) {
        // Boost words it "...(dlerror system message: WHY): <errno text>";
        // the errno text is stale, the dlerror part is the reason. It names
        // the file as dlopen knew it; the user knows it by its path.
        std::string why = e.what();
        const std::string marker = "dlerror system message: ";
        if (auto at = why.find(marker); at != std::string::npos) {
            auto end = why.rfind("):");
            why = why.substr(at + marker.size(),
                             end != std::string::npos && end > at ? end - at - marker.size() : std::string::npos);
        }
        for (size_t at = 0; (at = why.find(name, at)) != std::string::npos;) {
            const size_t end = at + name.size();
            if (end < why.size() && std::isdigit(static_cast<unsigned char>(why[end]))) {
                at = end;  // another descriptor's name
                continue;
            }
            why.replace(at, name.size(), display_path(file));
            at += display_path(file).size();
        }
        throw Refused{"not a loadable library: " + why};
    }
    return library;
}

// Element i of a plugin-declared array whose elements all start with
// struct_size; the first element's size is the stride.
template <class T>
const T *element(const T *array, uint32_t i)
{
    const auto stride = static_cast<size_t>(array[0].struct_size);
    return reinterpret_cast<const T *>(reinterpret_cast<const unsigned char *>(array) + stride * i);
}

// Checks the shape of a plugin-declared table of `count` specs (`what`:
// "option" or "control"): there when count > 0, at most `limit` entries, the
// first entry at least v1's size and every entry the same size, each with a
// valid name; then calls `each` on every entry in order.
template <class Spec, class Each>
void for_each_spec(const Spec *table, uint32_t count, uint32_t limit, size_t v1_size, const std::string &what,
                   Each &&each)
{
    if (count == 0)
        return;
    if (!table)
        throw Refused{"descriptor declares " + std::to_string(count) + " " + what + "s but no " + what + " table"};
    if (count > limit)
        throw Refused{"descriptor declares " + std::to_string(count) + " " + what + "s (at most " +
                      std::to_string(limit) + ")"};
    const uint32_t stride = table[0].struct_size;
    if (stride < v1_size)
        throw Refused{what + " spec struct_size " + std::to_string(stride) + " is smaller than v1's " +
                      std::to_string(v1_size)};
    for (uint32_t i = 0; i < count; i++) {
        const Spec *s = element(table, i);
        if (s->struct_size != stride)
            throw Refused{what + " spec " + std::to_string(i) + " has struct_size " + std::to_string(s->struct_size) +
                          ", the first has " + std::to_string(stride)};
        // The header's rule, applied as written (plugin.h).
        if (!devhost_identifier_valid(s->name))
            throw Refused{what + " spec " + std::to_string(i) + " has an invalid name (expected [a-z0-9-])"};
        each(*s);
    }
}

std::vector<OptionSpec> copy_options(const devhost_plugin_descriptor &d)
{
    std::vector<OptionSpec> out;
    for_each_spec(d.options, d.option_count, 256, v1_option_spec_size, "option", [&](const devhost_option_spec &s) {
        OptionSpec spec;
        spec.name = s.name;
        spec.type = s.type;
        if (devhost_option_name_reserved(s.name))
            throw Refused{"option '" + spec.name + "': a reserved name (the config keeps it for every device)"};
        // Fields of 1.1, read only when the spec's struct_size covers them.
        if (DEVHOST_HAS_FIELD(devhost_option_spec, s.struct_size, reserved) && s.reserved != 0)
            throw Refused{"option '" + spec.name + "': reserved field is " + std::to_string(s.reserved) +
                          " (must be 0)"};
        if (DEVHOST_HAS_FIELD(devhost_option_spec, s.struct_size, flags))
            spec.flags = s.flags;
        if (s.type < DEVHOST_OPTION_STRING || s.type > DEVHOST_OPTION_DURATION)
            throw Refused{"option '" + spec.name + "': unknown type " + std::to_string(s.type)};
        spec.help = text_or_empty(s.help);
        spec.min = s.min;
        spec.max = s.max;
        if (s.type == DEVHOST_OPTION_ENUM) {
            if (!s.choices || !*s.choices)
                throw Refused{"option '" + spec.name + "': enum without choices"};
            spec.choices = text::split(s.choices, '|');
        }
        if (s.type == DEVHOST_OPTION_INT && spec.min > spec.max)
            throw Refused{"option '" + spec.name + "': min is greater than max"};
        if (s.default_value) {
            spec.default_value = s.default_value;
            std::string error;
            auto parsed = parse_option_value(spec, *spec.default_value, error);
            if (!parsed)
                throw Refused{"option '" + spec.name + "': default '" + *spec.default_value + "': " + error};
            spec.default_integer = *parsed;
        }
        for (const auto &other : out) {
            if (other.name == spec.name)
                throw Refused{"option '" + spec.name + "' is declared twice"};
            for (auto [flag, word] : one_bool_flags)
                if ((other.flags & spec.flags & flag) != 0)
                    throw Refused{"options '" + other.name + "' and '" + spec.name + "' are both flagged " + word +
                                  " (at most one may be)"};
        }
        for (auto [flag, word] : one_bool_flags)
            if ((spec.flags & flag) && spec.type != DEVHOST_OPTION_BOOL)
                throw Refused{"option '" + spec.name + "': flagged " + word + " but not a bool"};
        out.push_back(std::move(spec));
    });
    return out;
}

std::vector<ControlSpec> copy_controls(const devhost_plugin_descriptor &d)
{
    std::vector<ControlSpec> out;
    for_each_spec(d.controls, d.control_count, 1024, v1_control_spec_size, "control",
                  [&](const devhost_control_spec &s) {
                      ControlSpec c{s.name, s.code, text_or_empty(s.help), s.flags};
                      for (const auto &other : out)
                          if (other.name == c.name || other.code == c.code)
                              throw Refused{"control '" + c.name + "' repeats the name or code of '" + other.name +
                                            "'"};
                      out.push_back(std::move(c));
                  });
    return out;
}

// The descriptor's path_patterns (since 1.1: read only when its struct_size
// covers the field), bounded: at most max_path_patterns patterns of at most
// max_path_pattern_bytes each, none empty.
std::vector<std::string> copy_path_patterns(const devhost_plugin_descriptor &d)
{
    std::vector<std::string> out;
    if (!DEVHOST_HAS_FIELD(devhost_plugin_descriptor, d.struct_size, path_patterns) || !d.path_patterns)
        return out;
    for (size_t i = 0; d.path_patterns[i]; i++) {
        if (i == max_path_patterns)
            throw Refused{"descriptor declares more than " + std::to_string(max_path_patterns) + " path patterns"};
        const char *p = d.path_patterns[i];
        const size_t len = strnlen(p, max_path_pattern_bytes + 1);
        if (len == 0)
            throw Refused{"path pattern " + std::to_string(i) + " is empty"};
        if (len > max_path_pattern_bytes)
            throw Refused{"path pattern " + std::to_string(i) + " is longer than " +
                          std::to_string(max_path_pattern_bytes) + " bytes"};
        out.emplace_back(p, len);
    }
    return out;
}

// Calls the library's entry point and checks the ABI version it answers;
// returns the negotiation (its descriptor not checked yet).
devhost_negotiation negotiate(boost::dll::shared_library &library)
{
    if (!library.has(DEVHOST_ENTRY_POINT_NAME))
        throw Refused{"no entry point " DEVHOST_ENTRY_POINT_NAME};
    auto entry = library.get<devhost_status(devhost_negotiation *)>(DEVHOST_ENTRY_POINT_NAME);
    devhost_error error{};
    error.struct_size = sizeof error;
    devhost_negotiation n{};
    n.struct_size = sizeof n;
    n.host_abi_version = host_max_abi_version;
    n.host_min_abi_version = host_min_abi_version;
    n.services = logging::host_services();
    n.error = &error;
    devhost_status status = entry(&n);
    if (status != DEVHOST_OK) {
        error.message[sizeof error.message - 1] = '\0';
        throw Refused{std::string("plugin refused: ") + (error.message[0] ? error.message : devhost_status_name(status))};
    }
    const uint32_t v = n.plugin_abi_version;
    if (DEVHOST_VERSION_MAJOR(v) != DEVHOST_VERSION_MAJOR(host_max_abi_version) || v > host_max_abi_version ||
        v < host_min_abi_version)
        throw Refused{"plugin speaks ABI " + format_version(v) + ", host speaks " + format_version(host_min_abi_version) +
                      " to " + format_version(host_max_abi_version)};
    n.error = nullptr;  // `error` ends here
    return n;
}

// Refuses a descriptor the host cannot use as plugin.h promises it.
void check_descriptor(const devhost_plugin_descriptor *d)
{
    if (!d)
        throw Refused{"no descriptor returned"};
    if (d->struct_size < v1_descriptor_size)
        throw Refused{"descriptor struct_size " + std::to_string(d->struct_size) + " is smaller than v1's " +
                      std::to_string(v1_descriptor_size)};
    if (!devhost_identifier_valid(d->device_class))
        throw Refused{"descriptor has no valid device class (expected [a-z0-9-])"};
    // A reserved field set: a later minor may give it a meaning this host
    // would miss, so the plugin is refused (plugin.h, the v1 contract).
    if (d->reserved != 0)
        throw Refused{"descriptor reserved field is " + std::to_string(d->reserved) + " (must be 0)"};
    if (DEVHOST_HAS_FIELD(devhost_plugin_descriptor, d->struct_size, reserved_1_1) && d->reserved_1_1 != 0)
        throw Refused{"descriptor reserved_1_1 field is " + std::to_string(d->reserved_1_1) + " (must be 0)"};
    // A requirement the host does not know is a promise it cannot keep.
    for (auto [bits, what] : {std::pair{d->transfer_requires, "transfer_requires"},
                              std::pair{d->lock_requires, "lock_requires"}})
        if (bits & ~static_cast<uint32_t>(DEVHOST_REQUIRES_KNOWN)) {
            char hex[16];
            std::snprintf(hex, sizeof hex, "0x%x", static_cast<unsigned>(bits & ~DEVHOST_REQUIRES_KNOWN));
            throw Refused{std::string("descriptor ") + what + " sets requirement bits this host does not know (" +
                          hex + ")"};
        }
    if (!d->name || !*d->name)
        throw Refused{"descriptor has no name"};
    if (!d->hooks)
        throw Refused{"hooks table missing"};
    if (d->hooks->struct_size < v1_hooks_size)
        throw Refused{"hooks struct_size " + std::to_string(d->hooks->struct_size) + " is smaller than v1's " +
                      std::to_string(v1_hooks_size)};
    if (d->hooks->reserved != 0)
        throw Refused{"hooks reserved field is " + std::to_string(d->hooks->reserved) + " (must be 0)"};
    if (!d->hooks->open || !d->hooks->close)
        throw Refused{"hooks table lacks open or close (both are required)"};
    if (d->transfer_ops & ~((DEVHOST_OP_BIT(DEVHOST_OP_LAST) << 1) - DEVHOST_OP_BIT(1)))
        throw Refused{"descriptor declares unknown transfer ops"};
    if (d->transfer_ops && !d->hooks->transfer)
        throw Refused{"descriptor declares transfer ops but has no transfer hook"};
}

// Deletes a plugin's library: calls its unload hook first, once, when it has
// one. The last holder of Plugin::library() (the Plugin, or a device that
// outlives it) lets go only after every device of the plugin is gone.
struct UnloadThenClose {
    void (*unload)(void) = nullptr;
    void operator()(boost::dll::shared_library *library) const
    {
        if (unload)
            unload();
        delete library;
    }
};

uint32_t hook_mask_of(const devhost_hooks &h)
{
    uint32_t mask = 0;
    auto set = [&](bool present, HookSlot slot) {
        if (present)
            mask |= hook_bit(slot);
    };
    set(h.connect, HookSlot::Connect);
    set(h.disconnect, HookSlot::Disconnect);
    set(h.lock, HookSlot::Lock);
    set(h.unlock, HookSlot::Unlock);
    set(h.info, HookSlot::Info);
    set(h.transfer, HookSlot::Transfer);
    set(h.enumerate, HookSlot::Enumerate);
    set(h.unload, HookSlot::Unload);
    return mask;
}

}  // namespace

const OptionSpec *Plugin::flagged_option(uint32_t flag) const
{
    for (const auto &o : options_)
        if (o.flags & flag)
            return &o;
    return nullptr;
}

const OptionSpec *Plugin::find_option(std::string_view name) const
{
    for (const auto &o : options_)
        if (o.name == name)
            return &o;
    return nullptr;
}

const ControlSpec *Plugin::find_control(std::string_view name) const
{
    for (const auto &c : controls_)
        if (c.name == name)
            return &c;
    return nullptr;
}

const ControlSpec *Plugin::find_control(uint32_t code) const
{
    for (const auto &c : controls_)
        if (c.code == code)
            return &c;
    return nullptr;
}

std::optional<CheckedFile> PluginRegistry::open_file(const fs::path &file)
{
    try {
        // Resolved and checked by descriptor (trusted_file.hpp); whoever
        // loads it loads that same descriptor.
        CheckedFile checked;
        checked.file = file;
        TrustRefusal untrusted;
        checked.fd = open_trusted_file(file, checked.st, untrusted);
        if (!checked.fd)
            refuse_untrusted(untrusted, file);
        // The same library by another path (a link, a second directory)
        // would be the loaded copy again: its unload, run when this load is
        // refused, would pull the library from under the plugin using it.
        // Every plugin loaded or described came through here: opened_ has them all.
        for (const auto &[dev, ino, other] : opened_)
            if (dev == checked.st.st_dev && ino == checked.st.st_ino)
                throw Refused{"the same library as " + display_path(other) + ", which is loaded already"};
        check_elf_layout(checked.fd.get(), static_cast<uint64_t>(checked.st.st_size));
        opened_.push_back({checked.st.st_dev, checked.st.st_ino, file});
        return checked;
    } catch (const Refused &r) {
        refuse(file, r.reason);
        return std::nullopt;
    }
}

std::shared_ptr<const Plugin> PluginRegistry::load_file(const fs::path &file)
{
    auto checked = open_file(file);
    return checked ? load_checked(std::move(*checked)) : nullptr;
}

std::shared_ptr<const Plugin> PluginRegistry::load_checked(CheckedFile checked)
{
    const fs::path &file = checked.file;
    try {
        auto library = load_library(checked.fd.get(), file);
        const devhost_negotiation n = negotiate(*library);
        const uint32_t v = n.plugin_abi_version;
        const devhost_plugin_descriptor *d = n.descriptor;
        check_descriptor(d);

        auto plugin = std::make_shared<Plugin>();
        plugin->file_ = file;
        plugin->dev_ = checked.st.st_dev;
        plugin->ino_ = checked.st.st_ino;
        plugin->name_ = d->name;
        plugin->class_ = d->device_class;
        plugin->version_ = text_or_empty(d->version);
        plugin->description_ = text_or_empty(d->description);
        plugin->abi_version_ = v;
        plugin->flags_ = d->flags;
        plugin->transfer_ops_ = d->transfer_ops;
        plugin->transfer_requires_ = d->transfer_requires;
        plugin->lock_requires_ = d->lock_requires;
        plugin->options_ = copy_options(*d);
        plugin->controls_ = copy_controls(*d);
        plugin->path_patterns_ = copy_path_patterns(*d);
        // Since 1.1, and a 1.1 rule: read only when the descriptor has the
        // field and the plugin keeps 1.1's rules.
        if (v >= DEVHOST_MAKE_VERSION(1, 1) && DEVHOST_HAS_FIELD(devhost_plugin_descriptor, d->struct_size, path_types))
            plugin->path_types_ = d->path_types;
        // Slots past the plugin's struct_size (enumerate and unload from a
        // 1.0 table) stay NULL; slots past this host's are not copied.
        std::memcpy(&plugin->hooks_, d->hooks, std::min<size_t>(d->hooks->struct_size, sizeof(devhost_hooks)));
        plugin->hooks_.struct_size = sizeof(devhost_hooks);
        plugin->hook_mask_ = hook_mask_of(plugin->hooks_);
        // Accepted as a plugin: from here its unload hook runs before the
        // library is unloaded, whatever happens to it next.
        plugin->library_ = std::shared_ptr<boost::dll::shared_library>(library.release(),
                                                                       UnloadThenClose{plugin->hooks_.unload});
        return add(plugin);
    } catch (const Refused &r) {
        refuse(file, r.reason);
        return nullptr;
    }
}

std::shared_ptr<const Plugin> PluginRegistry::add(std::shared_ptr<const Plugin> plugin)
{
    if (auto taken = find(plugin->class_)) {
        refuse(plugin->file_, "class '" + plugin->class_ + "' already provided by " + display_path(taken->file()));
        return nullptr;
    }
    plugins_.push_back(plugin);
    spdlog::debug("{} plugin {} (class {}, version {}, ABI {}) from {}", plugin->loaded() ? "loaded" : "described",
                  plugin->name_, plugin->class_, plugin->version_, format_version(plugin->abi_version_),
                  display_path(plugin->file_));
    return plugin;
}

void PluginRegistry::refuse(const fs::path &file, const std::string &reason)
{
    refusals_.push_back({file, reason});
    if (!quiet_)
        spdlog::warn("plugin {} refused: {}", display_path(file), reason);
}

std::vector<fs::path> PluginRegistry::directory_files(const fs::path &dir)
{
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        spdlog::debug("plugin directory {} does not exist; skipped", dir.string());
        return {};
    }
    // Names only: whatever an entry is (a directory, a symlink loop, a name
    // too long to resolve, something the host may not read), open_file
    // finds out and refuses it alone.
    std::vector<fs::path> files;
    fs::directory_iterator it(dir, ec), end;
    for (; !ec && it != end; it.increment(ec))
        if (it->path().extension() == ".so")
            files.push_back(it->path());
    if (ec)
        spdlog::warn("plugin directory {} cannot be read: {}; {}", dir.string(), ec.message(),
                     files.empty() ? "skipped" : "only the files listed before the error are loaded");
    std::sort(files.begin(), files.end());
    return files;
}

void PluginRegistry::load_directory(const fs::path &dir)
{
    for (const auto &f : directory_files(dir))
        load_file(f);
}

std::shared_ptr<const Plugin> PluginRegistry::find(std::string_view device_class) const
{
    for (const auto &p : plugins_)
        if (p->device_class() == device_class)
            return p;
    return nullptr;
}

UniqueFd open_trusted_library(const fs::path &file, std::string &error)
{
    try {
        struct stat st {};
        TrustRefusal untrusted;
        UniqueFd fd = open_trusted_file(file, st, untrusted);
        if (!fd)
            refuse_untrusted(untrusted, file);
        check_elf_layout(fd.get(), static_cast<uint64_t>(st.st_size));
        return fd;
    } catch (const Refused &r) {
        error = display_path(file) + ": " + r.reason;
        return UniqueFd();
    }
}

std::shared_ptr<boost::dll::shared_library> load_trusted_library(const fs::path &file, std::string &error)
{
    const UniqueFd fd = open_trusted_library(file, error);
    if (!fd)
        return nullptr;
    try {
        return load_library(fd.get(), file);
    } catch (const Refused &r) {
        error = display_path(file) + ": " + r.reason;
        return nullptr;
    }
}

std::string display_path(const fs::path &file)
{
    const std::string &s = file.native();
    return text::to_printable(reinterpret_cast<const uint8_t *>(s.data()), s.size());
}

std::vector<fs::path> plugin_search_path(const std::optional<std::string> &cli_path,
                                         const std::optional<std::string> &config_path)
{
    std::vector<fs::path> dirs;
    auto add_list = [&](const std::string &list) {
        for (const auto &part : text::split(list, ':'))
            if (!part.empty())
                dirs.emplace_back(part);
    };
    if (cli_path)
        add_list(*cli_path);
    if (const char *env = std::getenv("DEVHOST_PLUGIN_PATH"))
        add_list(env);
    if (config_path)
        add_list(*config_path);
    std::error_code ec;
    fs::path exe = boost::dll::program_location(ec);
    if (!ec)
        dirs.push_back((exe.parent_path() / ".." / "lib" / "devhost" / "plugins").lexically_normal());
    return dirs;
}

}  // namespace devhost
