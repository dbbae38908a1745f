// The describe cache: plugin descriptions as workers gave them, kept by the
// identity of the file they came from (device, inode, size, modification
// time) and of this devhost (its version and its executable's identity:
// several builds share the cache, up to 256 entries), so
// that `devhost check` and `devhost plugins` need no worker when no plugin
// file changed. One small JSON file per entry in the cache directory
// (`[host] cache-dir`; for root, /var/cache/devhost unless `cache-dir =
// none`; otherwise none unless configured), named by the identities of
// this devhost and of the plugin file, and holding the whole key: a run reads only the entries of its own plugins, and
// runs that describe at the same time replace each other's entries, never
// lose them. Past 256 entries, those used least lately go.
//
// devhost runs as root: the directory is opened by descriptor with every
// directory above it trusted (trusted_dir.hpp) and created 0700 whatever the
// umask; an entry is read only when it is a regular file of ours, not
// writable by others, with one link, opened without following a link, and
// replaced whole (a temporary file renamed over it). A cache that cannot be
// used is no error: the workers describe the plugins, as without one.
#pragma once

#include "loader.hpp"
#include "trusted_dir.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>
#include <sys/stat.h>

namespace devhost {

class PluginCache {
public:
    // The cache in `dir` (nullopt: none; every lookup misses, nothing is kept).
    explicit PluginCache(std::optional<std::filesystem::path> dir);

    // The description of the file with this stat, when the cache has it.
    std::shared_ptr<Plugin> find(const std::filesystem::path &file, const struct stat &st) const;
    // Keeps `plugin`, described from the file with this stat.
    void keep(const Plugin &plugin, const struct stat &st);
    // Writes what was kept, when anything changed (a debug line when it cannot).
    void save();

private:
    std::optional<std::filesystem::path> dir_;
    trusted_dir::Dir dir_fd_;                                 // open when the directory is there
    std::vector<std::pair<std::string, std::string>> pending_;  // entry file name, text: kept, not yet saved
};

// The cache directory for these settings: `configured`, none when
// `disabled`, else /var/cache/devhost for root and none for anyone else.
std::optional<std::filesystem::path> cache_dir(const std::optional<std::string> &configured, bool disabled);

}  // namespace devhost
