// The describe cache (host/plugin_cache.hpp), through `devhost check` with
// `[host] cache-dir` in a directory of the test's own: one file per plugin,
// made 0700/0600 whatever the umask; a hit rewrites nothing; a changed
// plugin file is described again; entries someone else could have written
// (another owner, group or world writable, a link, a second hard link) or
// that name another key are never believed; runs describing different
// plugins at once lose none of each other's entries; the cache is trimmed
// to its bound, keeping what is in use.
#include "devhost_test.hpp"

#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace devhost;
using namespace devhost::test;

namespace {

struct CacheDir {
    CacheDir()
    {
        REQUIRE(::chmod(base.path().c_str(), 0755) == 0);
        fs::create_directory(plugins);
        REQUIRE(::chmod(plugins.c_str(), 0755) == 0);
        for (const char *name : {"loop.so", "raw.so"}) {
            fs::copy_file(plugin_dir() / name, plugins / name);
            REQUIRE(::chmod((plugins / name).c_str(), 0755) == 0);
        }
        write_file(config, "[host]\ncache-dir = " + cache.string() + "\nplugin-path = " + plugins.string() +
                               "\n[device l]\nclass = loop\npath = loop:l\nstep = open\nstep = close\n");
    }
    TempDir base;
    fs::path plugins = base / "plugins";
    fs::path cache = base / "cache";
    fs::path config = base / "c.ini";
};

ProcessResult check(const fs::path &config)
{
    ProcessOptions options;
    options.before_exec = [] { ::umask(0); };
    return run_devhost({"check", config.string()}, options);
}

// Entry file name -> inode, for the entries of the cache.
std::map<std::string, ino_t> entries(const fs::path &cache)
{
    std::map<std::string, ino_t> out;
    std::error_code ec;
    for (const auto &e : fs::directory_iterator(cache, ec)) {
        struct stat st {};
        if (e.path().string().find(".plugin.json") != std::string::npos && ::lstat(e.path().c_str(), &st) == 0)
            out[e.path().filename().string()] = st.st_ino;
    }
    return out;
}

// The entry describing the plugin file `plugin` (the test's copy, not the
// built-in file of the same class, which has an entry too): entries are
// named by the plugin file's device and inode.
fs::path entry_of(const fs::path &cache, const fs::path &plugin)
{
    struct stat st {};
    REQUIRE(::stat(plugin.c_str(), &st) == 0);
    const std::string ends = "-" + std::to_string(st.st_dev) + "-" + std::to_string(st.st_ino) + ".plugin.json";
    for (const auto &[name, ino] : entries(cache))
        if (name.size() > ends.size() && name.compare(name.size() - ends.size(), ends.size(), ends) == 0)
            return cache / name;
    return {};
}

mode_t mode_of(const fs::path &p)
{
    struct stat st {};
    REQUIRE(::lstat(p.c_str(), &st) == 0);
    return st.st_mode;
}

}  // namespace

TEST_CASE("describe cache entries are 0600 in a 0700 directory, and a hit rewrites nothing", "[plugin-cache]")
{
    CacheDir d;
    auto r = check(d.config);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK((mode_of(d.cache) & 07777) == 0700);
    // The built-in loop.so and raw.so, shadowed by the test's copies, are
    // refused by the first describing worker (it loads a class's first file
    // first) and described alone, then kept, by the second run.
    REQUIRE(check(d.config).exit_code == 0);
    // One per plugin: the two of the test's directory, and the built-in
    // ones they do not shadow.
    const auto first = entries(d.cache);
    REQUIRE_FALSE(entry_of(d.cache, d.plugins / "loop.so").empty());
    REQUIRE_FALSE(entry_of(d.cache, d.plugins / "raw.so").empty());
    for (const auto &[name, ino] : first)
        CHECK(mode_of(d.cache / name) == (S_IFREG | 0600));

    REQUIRE(check(d.config).exit_code == 0);
    CHECK(entries(d.cache) == first);  // the same inodes: read, not replaced

    // A plugin file that changed is described again; the other entry stays.
    const auto loop_entry = entry_of(d.cache, d.plugins / "loop.so").filename().string();
    REQUIRE_FALSE(loop_entry.empty());
    fs::last_write_time(d.plugins / "loop.so", fs::last_write_time(d.plugins / "loop.so") + std::chrono::seconds(5));
    REQUIRE(check(d.config).exit_code == 0);
    const auto after = entries(d.cache);
    REQUIRE(after.size() == first.size());
    for (const auto &[name, ino] : after)
        CHECK((ino != first.at(name)) == (name == loop_entry));
}

TEST_CASE("a describe cache entry anyone else could have written, or of another key, is never believed",
          "[plugin-cache]")
{
    // Each variant plants a forged loop entry (its class renamed): believed,
    // it would leave class loop without a plugin and fail the check.
    const std::string variant = GENERATE("other owner", "group writable", "world writable", "link",
                                         "hard link", "other key");
    INFO(variant);
    CacheDir d;
    REQUIRE(check(d.config).exit_code == 0);
    const fs::path entry = entry_of(d.cache, d.plugins / "loop.so");
    REQUIRE_FALSE(entry.empty());
    auto doc = nlohmann::json::parse(read_file(entry));
    doc["plugin"]["class"] = "forged";
    if (variant == "other key")
        doc["key"] = doc["key"].get<std::string>() + "x";
    const std::string forged = doc.dump();
    fs::remove(entry);
    if (variant == "link" || variant == "hard link") {
        const fs::path target = d.base / "forged.json";
        write_file(target, forged);
        REQUIRE(::chmod(target.c_str(), 0600) == 0);
        if (variant == "link")
            fs::create_symlink(target, entry);
        else
            fs::create_hard_link(target, entry);
    } else {
        write_file(entry, forged);
        REQUIRE(::chmod(entry.c_str(), variant == "group writable" ? 0620
                                       : variant == "world writable" ? 0602
                                                                     : 0600) == 0);
        if (variant == "other owner")
            REQUIRE(::chown(entry.c_str(), 65534, 65534) == 0);
    }
    auto r = check(d.config);
    INFO(r.err);
    CHECK(r.exit_code == 0);
    // Described again and replaced by an entry of ours.
    CHECK(mode_of(entry) == (S_IFREG | 0600));
    CHECK(nlohmann::json::parse(read_file(entry))["plugin"]["class"] == "loop");
    if (variant == "link" || variant == "hard link")
        CHECK(read_file(d.base / "forged.json") == forged);  // what the link led to is untouched
}

TEST_CASE("runs describing different plugins at once keep each other's describe cache entries", "[plugin-cache]")
{
    CacheDir d;
    // A second plugin directory with other plugins, same cache.
    const fs::path other = d.base / "other";
    fs::create_directory(other);
    REQUIRE(::chmod(other.c_str(), 0755) == 0);
    for (const char *name : {"serial.so", "parallel.so"}) {
        fs::copy_file(plugin_dir() / name, other / name);
        REQUIRE(::chmod((other / name).c_str(), 0755) == 0);
    }
    const fs::path config2 = d.base / "c2.ini";
    write_file(config2, "[host]\ncache-dir = " + d.cache.string() + "\nplugin-path = " + other.string() +
                            "\n[device l]\nclass = loop\npath = loop:l\nstep = open\nstep = close\n");
    // What each describes alone (with the built-in plugins it does not shadow).
    REQUIRE(check(d.config).exit_code == 0);
    auto expected = entries(d.cache);
    fs::remove_all(d.cache);
    REQUIRE(check(config2).exit_code == 0);
    for (const auto &[name, ino] : entries(d.cache))
        expected[name] = 0;
    for (int round = 0; round < 3; round++) {
        fs::remove_all(d.cache);
        ProcessResult a, b;
        std::thread t([&] { a = check(d.config); });
        b = check(config2);
        t.join();
        INFO(a.err << b.err);
        REQUIRE(a.exit_code == 0);
        REQUIRE(b.exit_code == 0);
        const auto both = entries(d.cache);
        CHECK(both.size() == expected.size());
        for (const auto &[name, ino] : expected)
            CHECK(both.count(name) == 1);
    }
}

TEST_CASE("past 256 describe cache entries the least used go, and the old single file is removed",
          "[plugin-cache]")
{
    CacheDir d;
    fs::create_directory(d.cache);
    REQUIRE(::chmod(d.cache.c_str(), 0700) == 0);
    for (int i = 0; i < 300; i++) {
        const fs::path stale = d.cache / ("1-1-1-" + std::to_string(i) + ".plugin.json");
        write_file(stale, "{}");
        REQUIRE(::chmod(stale.c_str(), 0600) == 0);
        fs::last_write_time(stale, fs::file_time_type::clock::now() - std::chrono::hours(24));
    }
    write_file(d.cache / "plugins.json", "{\"plugins\":{}}");
    auto r = check(d.config);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const auto left = entries(d.cache);
    CHECK(left.size() == 256);
    CHECK_FALSE(entry_of(d.cache, d.plugins / "loop.so").empty());
    CHECK_FALSE(entry_of(d.cache, d.plugins / "raw.so").empty());
    CHECK_FALSE(fs::exists(d.cache / "plugins.json"));
}
