#include "plugin_cache.hpp"

#include "plugin_description.hpp"
#include "trusted_dir.hpp"

#include <boost/dll/runtime_symbol_info.hpp>
#include <cerrno>
#include <fcntl.h>
#include <iterator>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

namespace devhost {

namespace {

using json = nlohmann::json;

constexpr const char *cache_file = "plugins.json";
constexpr size_t max_cache_bytes = 8u << 20;
constexpr size_t max_entries = 256;  // past it, the entries of other devhost builds go first

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

// The cache file's text, when it is one we may trust.
std::optional<std::string> read_cache(int dir_fd)
{
    UniqueFd fd(::openat(dir_fd, cache_file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() ||
        (st.st_mode & 022) || st.st_nlink != 1 || static_cast<size_t>(st.st_size) > max_cache_bytes)
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
    if (!dir_)
        return;
    trusted_dir::Dir d = open_dir(*dir_, 0);
    if (!d)
        return;
    auto text = read_cache(d.fd());
    if (!text)
        return;
    const json doc = json::parse(*text, nullptr, false);
    if (!doc.is_object() || !doc.contains("plugins") || !doc["plugins"].is_object())
        return;
    for (const auto &[key, value] : doc["plugins"].items())
        if (value.is_object())
            entries_[key] = value.dump();
}

std::shared_ptr<Plugin> PluginCache::find(const std::filesystem::path &file, const struct stat &st) const
{
    auto it = entries_.find(key_of(file, st));
    if (it == entries_.end())
        return nullptr;
    std::string error;
    auto plugin = PluginCodec::from_json(json::parse(it->second, nullptr, false), error);
    if (!plugin || plugin->file_dev() != st.st_dev || plugin->file_ino() != st.st_ino)
        return nullptr;
    return plugin;
}

void PluginCache::keep(const Plugin &plugin, const struct stat &st)
{
    if (!dir_)
        return;
    entries_[key_of(plugin.file(), st)] = PluginCodec::to_json(plugin).dump();
    changed_ = true;
}

void PluginCache::save()
{
    if (!dir_ || !changed_)
        return;
    trusted_dir::Dir d = open_dir(*dir_, 0700);
    if (!d)
        return;
    const std::string mine = host_identity() + "|";
    for (auto it = entries_.begin(); entries_.size() > max_entries && it != entries_.end();)
        it = it->first.rfind(mine, 0) == 0 ? std::next(it) : entries_.erase(it);
    json plugins = json::object();
    for (const auto &[key, text] : entries_)
        plugins[key] = json::parse(text, nullptr, false);
    const std::string text = json{{"plugins", plugins}}.dump(-1, ' ', false, json::error_handler_t::replace);
    const std::string temp = std::string(cache_file) + ".new." + std::to_string(::getpid());
    UniqueFd fd(::openat(d.fd(), temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) {
        spdlog::debug("describe cache: cannot write {}: {}", temp, std::strerror(errno));
        return;
    }
    bool ok = ::fchmod(fd.get(), 0600) == 0;
    for (size_t done = 0; ok && done < text.size();) {
        ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
        ok = n > 0;
        done += ok ? static_cast<size_t>(n) : 0;
    }
    ok = ok && ::fsync(fd.get()) == 0 && ::renameat(d.fd(), temp.c_str(), d.fd(), cache_file) == 0;
    if (!ok) {
        spdlog::debug("describe cache: cannot replace {}: {}", cache_file, std::strerror(errno));
        ::unlinkat(d.fd(), temp.c_str(), 0);
    }
    changed_ = false;
}

}  // namespace devhost
