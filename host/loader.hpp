// Plugin discovery and loading: finds plugin files, loads them with
// Boost.DLL, negotiates the ABI, validates the descriptor, and refuses
// anything unsafe with a one-line reason. The loaded library stays alive as
// long as the Plugin object or any device opened through it.
#pragma once

#include <devhost/plugin.h>
#include <devhost/unique_fd.hpp>

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace boost::dll {
class shared_library;
}

namespace devhost {

namespace fs = std::filesystem;

// The oldest and newest ABI versions this host speaks.
inline constexpr uint32_t host_min_abi_version = DEVHOST_MAKE_VERSION(1, 0);
inline constexpr uint32_t host_max_abi_version = DEVHOST_ABI_VERSION;

std::string format_version(uint32_t abi_version);  // "1.0"

// A plugin's option schema entry, copied out of the descriptor.
struct OptionSpec {
    std::string name;
    uint32_t type = DEVHOST_OPTION_STRING;
    std::optional<std::string> default_value;
    int64_t default_integer = 0;  // the default parsed (parse_option_value), once, by the loader
    std::string help;
    std::vector<std::string> choices;  // ENUM only
    int64_t min = 0;
    int64_t max = 0;
    uint32_t flags = 0;  // DEVHOST_OPTION_REQUIRED, _EXCLUSIVE (since 1.1; 0 from a 1.0 spec)
};

// The bounds on a descriptor's path_patterns: more patterns, or a longer
// one, and the loader refuses the plugin.
inline constexpr size_t max_path_patterns = 64;
inline constexpr size_t max_path_pattern_bytes = 256;

struct ControlSpec {
    std::string name;
    uint32_t code = 0;
    std::string help;
    uint32_t flags = 0;
};

// The hooks besides open and close (which every plugin has), by slot: which
// ones a plugin has is part of its description, known without its code.
enum class HookSlot : uint32_t { Connect, Disconnect, Lock, Unlock, Info, Transfer, Enumerate, Unload };
constexpr uint32_t hook_bit(HookSlot slot) { return 1u << static_cast<uint32_t>(slot); }

// A plugin: its description, copied out of its descriptor, and, where its
// library is loaded in this process, its hooks. The supervisor knows plugins
// only by description (a worker loaded them, plugin_description.hpp): their
// hooks are all NULL there and loaded() is false.
class Plugin {
public:
    const fs::path &file() const { return file_; }
    const std::string &name() const { return name_; }
    const std::string &device_class() const { return class_; }
    const std::string &version() const { return version_; }
    const std::string &description() const { return description_; }
    uint32_t abi_version() const { return abi_version_; }
    // Whether the plugin negotiated 1.1 or later, and so keeps 1.1's rules
    // (a deadline in every hook, among others).
    bool speaks_1_1() const { return abi_version_ >= DEVHOST_MAKE_VERSION(1, 1); }
    uint32_t flags() const { return flags_; }
    uint32_t transfer_ops() const { return transfer_ops_; }
    uint32_t transfer_requires() const { return transfer_requires_; }
    uint32_t lock_requires() const { return lock_requires_; }
    bool supports_op(uint32_t op) const { return op < 32 && (transfer_ops_ & DEVHOST_OP_BIT(op)); }
    const std::vector<OptionSpec> &options() const { return options_; }
    const OptionSpec *find_option(std::string_view name) const;
    const std::vector<ControlSpec> &controls() const { return controls_; }
    const ControlSpec *find_control(std::string_view name) const;
    const ControlSpec *find_control(uint32_t code) const;
    // The paths the class serves, as fnmatch(3) patterns matched without
    // FNM_PATHNAME (since 1.1; empty when the plugin declares none).
    const std::vector<std::string> &path_patterns() const { return path_patterns_; }
    // The kinds of file the class serves at paths no pattern names,
    // DEVHOST_PATH_* bits as declared, unknown ones included (since 1.1; 0
    // from a descriptor without the field or a plugin that negotiated 1.0).
    uint32_t path_types() const { return path_types_; }
    // The option flagged DEVHOST_OPTION_EXCLUSIVE, or nullptr.
    const OptionSpec *exclusive_option() const { return flagged_option(DEVHOST_OPTION_EXCLUSIVE); }
    // The option flagged DEVHOST_OPTION_WRITABLE, or nullptr.
    const OptionSpec *writable_option() const { return flagged_option(DEVHOST_OPTION_WRITABLE); }
    // The first option with `flag`, or nullptr.
    const OptionSpec *flagged_option(uint32_t flag) const;
    // Whether the plugin has the hook in `slot` (loaded or described).
    bool has_hook(HookSlot slot) const { return hook_mask_ & hook_bit(slot); }
    uint32_t hook_mask() const { return hook_mask_; }
    // Whether the library is loaded here (its hooks may be called).
    bool loaded() const { return library_ != nullptr; }
    dev_t file_dev() const { return dev_; }
    ino_t file_ino() const { return ino_; }
    // The plugin's hook table, copied; hooks past the plugin's struct_size
    // are NULL, and so is every hook of a plugin that is not loaded().
    const devhost_hooks &hooks() const { return hooks_; }
    // Devices keep this alive so the code they call stays mapped. When the
    // last holder lets go, the plugin's unload hook (if any) runs once, then
    // the library is unloaded: after every device of the plugin is gone.
    const std::shared_ptr<boost::dll::shared_library> &library() const { return library_; }

private:
    friend class PluginRegistry;
    friend struct PluginCodec;  // plugin_description.cpp
    fs::path file_;
    std::string name_, class_, version_, description_;
    uint32_t abi_version_ = 0, flags_ = 0, transfer_ops_ = 0, transfer_requires_ = 0, lock_requires_ = 0,
             path_types_ = 0;
    std::vector<OptionSpec> options_;
    std::vector<ControlSpec> controls_;
    std::vector<std::string> path_patterns_;
    devhost_hooks hooks_{};
    uint32_t hook_mask_ = 0;  // hook_bit()s
    std::shared_ptr<boost::dll::shared_library> library_;
    // The file loaded (by descriptor): the dynamic linker keeps one copy of
    // a library per device and inode, whatever path reached it.
    dev_t dev_ = 0;
    ino_t ino_ = 0;
};

struct Refusal {
    fs::path file;
    std::string reason;
};

// A plugin file resolved and checked by descriptor, not loaded yet: the
// supervisor checks it, a worker loads that same descriptor.
struct CheckedFile {
    fs::path file;  // as given
    UniqueFd fd;
    struct stat st {};
};

class PluginRegistry {
public:
    // Checks one plugin file without loading it: resolves and checks it and
    // every directory on its way by descriptor (trusted_file.hpp), refuses
    // a library reached already by another path, checks its ELF header. On
    // refusal, records it (refuse()) and returns nullopt.
    std::optional<CheckedFile> open_file(const fs::path &file);
    // Loads a file open_file checked (in this process): negotiates, checks
    // and copies the descriptor, and add()s the plugin; nullptr, with the
    // refusal recorded, when it is no plugin this host takes.
    std::shared_ptr<const Plugin> load_checked(CheckedFile checked);
    // Adds a plugin loaded here or described by a worker; refused (nullptr)
    // when its class is served already.
    std::shared_ptr<const Plugin> add(std::shared_ptr<const Plugin> plugin);
    // Records a refusal and logs one warning line naming the file (as
    // given) and the reason (unless quiet: a worker's refusals are the
    // supervisor's to log).
    void refuse(const fs::path &file, const std::string &reason);
    void set_quiet(bool quiet) { quiet_ = quiet; }
    // The entries named *.so in `dir`, in name order (a missing directory:
    // none, said at debug level; one that cannot be read: a warning).
    static std::vector<fs::path> directory_files(const fs::path &dir);
    // Loads one plugin file: resolves and checks it and every directory on
    // its way by descriptor (trusted_file.hpp), checks its ELF header, and
    // loads the checked descriptor. On refusal, records it, logs one warning
    // line naming the file (as given) and the reason, and returns nullptr.
    std::shared_ptr<const Plugin> load_file(const fs::path &file);
    // Loads every entry named *.so in `dir`, in name order; one that is no
    // plugin (a directory, a symlink loop, a target it may not read) is one
    // refusal like any other. A missing directory is logged at debug level
    // and skipped, one that cannot be read is a warning.
    void load_directory(const fs::path &dir);
    // The plugin serving `device_class`, or nullptr.
    std::shared_ptr<const Plugin> find(std::string_view device_class) const;
    const std::vector<std::shared_ptr<const Plugin>> &plugins() const { return plugins_; }
    const std::vector<Refusal> &refusals() const { return refusals_; }

private:
    std::vector<std::shared_ptr<const Plugin>> plugins_;
    std::vector<Refusal> refusals_;
    struct Opened {
        dev_t dev;
        ino_t ino;
        fs::path file;
    };
    std::vector<Opened> opened_;  // every file open_file accepted
    bool quiet_ = false;
};

// A plugin file's path for a log line or a listing: printable (text::
// to_printable), so a file name holding a newline stays on its line.
std::string display_path(const fs::path &file);

// Opens `file` by the plugins' rules (trusted_file.hpp, the ELF header),
// without loading it; empty with `error`, one line naming the file.
UniqueFd open_trusted_library(const fs::path &file, std::string &error);
// open_trusted_library, then loads that descriptor, without taking it for a
// plugin: for the host's own modules (fleet_module.hpp). nullptr with `error`.
std::shared_ptr<boost::dll::shared_library> load_trusted_library(const fs::path &file, std::string &error);

// The directories to search, in order: --plugin-path, DEVHOST_PLUGIN_PATH,
// the config's [host] plugin-path (each may list several, ':'-separated),
// then ../lib/devhost/plugins relative to the executable.
std::vector<fs::path> plugin_search_path(const std::optional<std::string> &cli_path,
                                         const std::optional<std::string> &config_path);

}  // namespace devhost
