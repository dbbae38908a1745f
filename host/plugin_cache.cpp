#include "plugin_cache.hpp"

#include "plugin_description.hpp"
#include "trusted_dir.hpp"

#include <boost/dll/runtime_symbol_info.hpp>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <tuple>
#include <vector>
#include <fcntl.h>
#include <iterator>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

namespace devhost {

namespace {

using json = nlohmann::json;

constexpr const char *legacy_file = "plugins.json";  // the one file of earlier versions: removed
constexpr const char *entry_suffix = ".plugin.json";
constexpr size_t max_entry_bytes = 1u << 20;
constexpr size_t max_entries = 256;  // past it, the entries used least lately go

// This devhost: a description is only as good as the host that made it.
std::string host_identity()
{
    struct stat st {};
    std::string id = DEVHOST_VERSION;
    if (::stat("/proc/self/exe", &st) == 0)
        id += ":" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) +
              ":" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
    return id;
}

// A file as this devhost described it: several devhost builds (a package
// and a build tree, say) share the cache without evicting each other.
std::string key_of(const std::filesystem::path &file, const struct stat &st)
{
    static const std::string host = host_identity();
    return host + "|" + file.string() + "|" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
           std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
           std::to_string(st.st_mtim.tv_nsec);
}

trusted_dir::Dir open_dir(const std::filesystem::path &dir, mode_t create_mode)
{
    trusted_dir::Error err;
    trusted_dir::Dir d = trusted_dir::open(dir.string(), create_mode, err);
    if (!d)
        spdlog::debug("describe cache {}: {}", dir.string(), err.message);
    return d;
}

// The file of one entry: named by the devhost executable's and the plugin
// file's device and inode (digits only, so a safe name), which the key
// inside repeats with the rest of both identities.
std::string entry_name(const struct stat &file)
{
    static const std::string host = [] {
        struct stat st {};
        return ::stat("/proc/self/exe", &st) == 0 ? std::to_string(st.st_dev) + "-" + std::to_string(st.st_ino)
                                                  : std::string("0-0");
    }();
    return host + "-" + std::to_string(file.st_dev) + "-" + std::to_string(file.st_ino) + entry_suffix;
}

// An entry's text, when it is a file we may trust.
std::optional<std::string> read_entry(int dir_fd, const std::string &name)
{
    UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() ||
        (st.st_mode & 022) || st.st_nlink != 1 || static_cast<size_t>(st.st_size) > max_entry_bytes)
        return std::nullopt;
    std::string text(static_cast<size_t>(st.st_size), '\0');
    size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::read(fd.get(), text.data() + done, text.size() - done);
        if (n <= 0)
            return std::nullopt;
        done += static_cast<size_t>(n);
    }
    return text;
}

// Writes `text` as entry `name`: a temporary file renamed over it, so a
// reader sees the old entry or the new one, whole. Not synced: an entry a
// crash damaged does not parse or does not match its key, and is described
// again.
bool write_entry(int dir_fd, const std::string &name, const std::string &text)
{
    const std::string temp = name + ".new." + std::to_string(::getpid());
    UniqueFd fd(::openat(dir_fd, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd)
        return false;
    bool ok = ::fchmod(fd.get(), 0600) == 0;
    for (size_t done = 0; ok && done < text.size();) {
        ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
        ok = n > 0;
        done += ok ? static_cast<size_t>(n) : 0;
    }
    ok = ok && ::renameat(dir_fd, temp.c_str(), dir_fd, name.c_str()) == 0;
    if (!ok)
        ::unlinkat(dir_fd, temp.c_str(), 0);
    return ok;
}

// Past max_entries, removes the entries (and leftover temporary files)
// used least lately: a hit touches its entry (futimens).
void trim(int dir_fd)
{
    UniqueFd list(::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    DIR *d = list ? ::fdopendir(list.get()) : nullptr;
    if (!d)
        return;
    [[maybe_unused]] const int owned_by_d = list.release();
    std::vector<std::pair<struct timespec, std::string>> entries;
    while (const dirent *e = ::readdir(d)) {
        const std::string name = e->d_name;
        struct stat st {};
        if (name.find(entry_suffix) == std::string::npos ||
            ::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        entries.push_back({st.st_mtim, name});
    }
    ::closedir(d);
    if (entries.size() <= max_entries)
        return;
    std::sort(entries.begin(), entries.end(), [](const auto &a, const auto &b) {
        return std::tie(a.first.tv_sec, a.first.tv_nsec) < std::tie(b.first.tv_sec, b.first.tv_nsec);
    });
    for (size_t i = 0; i + max_entries < entries.size(); i++)
        ::unlinkat(dir_fd, entries[i].second.c_str(), 0);
}

}  // namespace

std::optional<std::filesystem::path> cache_dir(const std::optional<std::string> &configured, bool disabled)
{
    if (disabled)
        return std::nullopt;
    if (configured)
        return std::filesystem::path(*configured);
    if (::geteuid() == 0)
        return std::filesystem::path("/var/cache/devhost");
    return std::nullopt;
}

PluginCache::PluginCache(std::optional<std::filesystem::path> dir) : dir_(std::move(dir))
{
    if (dir_)
        dir_fd_ = open_dir(*dir_, 0);
}

std::shared_ptr<Plugin> PluginCache::find(const std::filesystem::path &file, const struct stat &st) const
{
    if (!dir_fd_)
        return nullptr;
    const std::string key = key_of(file, st);
    const std::string name = entry_name(st);
    auto text = read_entry(dir_fd_.fd(), name);
    if (!text)
        return nullptr;
    const json doc = json::parse(*text, nullptr, false);
    if (!doc.is_object() || doc.value("key", "") != key || !doc.contains("plugin"))
        return nullptr;
    std::string error;
    auto plugin = PluginCodec::from_json(doc["plugin"], error);
    if (!plugin || plugin->file_dev() != st.st_dev || plugin->file_ino() != st.st_ino)
        return nullptr;
    // Used lately: the last to be trimmed.
    ::utimensat(dir_fd_.fd(), name.c_str(), nullptr, AT_SYMLINK_NOFOLLOW);
    return plugin;
}

void PluginCache::keep(const Plugin &plugin, const struct stat &st)
{
    if (!dir_)
        return;
    const std::string key = key_of(plugin.file(), st);
    pending_.push_back({entry_name(st), json{{"key", key}, {"plugin", PluginCodec::to_json(plugin)}}.dump(
                                             -1, ' ', false, json::error_handler_t::replace)});
}

void PluginCache::save()
{
    if (!dir_ || pending_.empty())
        return;
    if (!dir_fd_)
        dir_fd_ = open_dir(*dir_, 0700);
    if (!dir_fd_)
        return;
    for (const auto &[name, text] : pending_)
        if (!write_entry(dir_fd_.fd(), name, text))
            spdlog::debug("describe cache: cannot write {}/{}: {}", dir_->string(), name, std::strerror(errno));
    pending_.clear();
    ::unlinkat(dir_fd_.fd(), legacy_file, 0);
    trim(dir_fd_.fd());
}

}  // namespace devhost
