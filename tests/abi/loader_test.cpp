// The loader against real files: every variant of abi_variant.c, a text file
// named like a plugin, a plugin file writable by group or others. Each bad
// file is refused with its reason and its name, in the registry and in one
// log line, and the registry goes on to load the good ones.
#include "devhost_test.hpp"

#include "device.hpp"
#include "loader.hpp"

#include <catch2/catch.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

using namespace devhost;
using namespace devhost::test;

namespace {

fs::path abi_dir() { return DEVHOST_ABI_PLUGIN_DIR; }

// Captures what the host logs while it lives.
class LogCapture {
public:
    LogCapture() : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(text_))
    {
        spdlog::default_logger()->sinks().push_back(sink_);
    }
    ~LogCapture()
    {
        auto &sinks = spdlog::default_logger()->sinks();
        sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
    }
    std::string text() const { return text_.str(); }

private:
    std::ostringstream text_;
    std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

// Loads `file`, which must be refused; returns the reason after checking
// that the refusal names the file in the registry and in one log line.
std::string refusal(PluginRegistry &registry, const fs::path &file)
{
    LogCapture log;
    const size_t before = registry.refusals().size();
    auto plugin = registry.load_file(file);
    CHECK(plugin == nullptr);
    REQUIRE(registry.refusals().size() == before + 1);
    const Refusal &r = registry.refusals().back();
    CHECK(r.file == file);
    CHECK(r.reason.find('\n') == std::string::npos);
    std::string logged = log.text();
    INFO("log: " << logged);
    CHECK(lines(logged).size() == 1);
    CHECK_THAT(logged, Catch::Contains(file.string()) && Catch::Contains(r.reason));
    return r.reason;
}

}  // namespace

TEST_CASE("loader refuses each bad plugin file with its reason and loads the good ones after", "[loader]")
{
    PluginRegistry registry;

    CHECK_THAT(refusal(registry, abi_dir() / "not_a_library.so"), Catch::Contains("not a loadable library"));
    CHECK_THAT(refusal(registry, abi_dir() / "no_entry.so"),
               Catch::Contains("no entry point") && Catch::Contains("devhost_plugin_negotiate"));
    CHECK_THAT(refusal(registry, abi_dir() / "abi_major2.so"),
               Catch::Contains("ABI 2.0") && Catch::Contains("host speaks 1.0"));
    CHECK_THAT(refusal(registry, abi_dir() / "abi_too_new_minor.so"),
               Catch::Contains("ABI 1.99") && Catch::Contains("host speaks 1.0"));
    CHECK_THAT(refusal(registry, abi_dir() / "small_descriptor.so"),
               Catch::Contains("struct_size 16") && Catch::Contains("smaller than v1"));
    CHECK_THAT(refusal(registry, abi_dir() / "no_hooks.so"), Catch::Contains("hooks table missing"));
    CHECK_THAT(refusal(registry, abi_dir() / "refuses.so"),
               Catch::Contains("plugin refused") && Catch::Contains("abitest refuses this host on purpose"));
    CHECK_THAT(refusal(registry, abi_dir() / "bad_option.so"), Catch::Contains("option 'x': unknown type 99"));
    CHECK_THAT(refusal(registry, abi_dir() / "missing.so"), Catch::Equals("cannot open: No such file or directory"));
    CHECK(registry.plugins().empty());

    auto good = registry.load_file(abi_dir() / "good.so");
    REQUIRE(good);
    CHECK(good->device_class() == "abitest");
    CHECK(good->name() == "abitest-good");
    CHECK(good->abi_version() == DEVHOST_ABI_VERSION);
    CHECK(good->file() == abi_dir() / "good.so");

    std::string dup = refusal(registry, abi_dir() / "dup_class.so");
    CHECK_THAT(dup, Catch::Contains("class 'abitest' already") && Catch::Contains((abi_dir() / "good.so").string()));

    auto loop = registry.load_file(plugin_dir() / "loop.so");
    REQUIRE(loop);
    CHECK(loop->device_class() == "loop");
    auto throwing = registry.load_file(abi_dir() / "throwing.so");
    REQUIRE(throwing);
    CHECK(registry.plugins().size() == 3);
    CHECK(registry.find("abitest") == good);
    CHECK(registry.refusals().size() == 10);

    // The good plugin works after all of that.
    Device dev(good, "after-refusals");
    OpenRequest request;
    request.path = "anything";
    REQUIRE(dev.open(request).ok());
    InfoList info;
    REQUIRE(dev.info(info).ok());
    REQUIRE(info.size() == 1);
    CHECK(info[0] == std::pair<std::string, std::string>("variant", "good"));
    CHECK(dev.close().ok());
}

// One plugin source built from three headers: plugin.h as released at 1.0,
// today's, and a later minor's (every struct larger, a hook slot set that
// this host does not know). Each loads on this host, negotiates the version
// both speak, and runs a pipeline; the unknown hook is never called (it
// aborts the test if it is).
TEST_CASE("loader drives plugins built from the 1.0 header and from a newer minor's header", "[loader]")
{
    struct Case {
        const char *file;
        const char *variant;
        uint32_t negotiated;
    };
    const Case cases[] = {
        {"v1_0.so", "v1_0", DEVHOST_MAKE_VERSION(1, 0)},
        {"good.so", "good", DEVHOST_ABI_VERSION},
        {"future.so", "future", DEVHOST_ABI_VERSION},
    };
    for (const Case &c : cases) {
        INFO(c.file);
        PluginRegistry registry;
        auto plugin = registry.load_file(abi_dir() / c.file);
        REQUIRE(plugin);
        CHECK(plugin->abi_version() == c.negotiated);
        CHECK(plugin->options().size() == 1);
        Device dev(plugin, c.variant);
        OpenRequest request;
        request.path = "anything";
        REQUIRE(dev.open(request).ok());
        InfoList info;
        REQUIRE(dev.info(info).ok());
        REQUIRE(info.size() == 1);
        CHECK(info[0] == std::pair<std::string, std::string>("variant", c.variant));
        CHECK(dev.close().ok());
    }
}

TEST_CASE("loader refuses a plugin file writable by group or others", "[loader]")
{
    TempDir dir;
    const fs::path copy = dir / "abitest.so";
    fs::copy_file(abi_dir() / "good.so", copy);

    {
        PluginRegistry registry;
        REQUIRE(::chmod(copy.c_str(), 0664) == 0);
        CHECK_THAT(refusal(registry, copy), Catch::Contains("writable by group or others (mode 0664)"));
        REQUIRE(::chmod(copy.c_str(), 0646) == 0);
        CHECK_THAT(refusal(registry, copy), Catch::Contains("writable by group or others (mode 0646)"));
        CHECK(registry.plugins().empty());
    }
    // The same bytes with the owner alone allowed to write load fine.
    PluginRegistry registry;
    REQUIRE(::chmod(copy.c_str(), 0755) == 0);
    auto plugin = registry.load_file(copy);
    REQUIRE(plugin);
    CHECK(plugin->device_class() == "abitest");
}

TEST_CASE("loader refuses a plugin that someone other than root or the host's user could replace", "[loader]")
{
    TempDir dir;
    const fs::path sub = dir / "plugins";
    fs::create_directory(sub);
    const fs::path copy = sub / "abitest.so";
    fs::copy_file(abi_dir() / "good.so", copy);
    REQUIRE(::chmod(copy.c_str(), 0755) == 0);
    {
        PluginRegistry registry;
        REQUIRE(::chmod(sub.c_str(), 0777) == 0);
        CHECK_THAT(refusal(registry, copy),
                   Catch::Contains("its directory " + sub.string() + " is writable by group or others (mode 0777)"));
        // A sticky directory (like /tmp) keeps others from replacing the file.
        REQUIRE(::chmod(sub.c_str(), 01777) == 0);
        CHECK(registry.load_file(copy));
    }
    REQUIRE(::chmod(sub.c_str(), 0755) == 0);
    if (::geteuid() != 0) {
        DEVHOST_SKIP("changing a file's owner to another user needs root");
    }
    const uid_t other = 65534;  // nobody
    {
        PluginRegistry registry;
        REQUIRE(::chown(copy.c_str(), other, static_cast<gid_t>(-1)) == 0);
        CHECK_THAT(refusal(registry, copy), Catch::Contains("owned by uid 65534, not by root or the host's user"));
        REQUIRE(::chown(copy.c_str(), 0, static_cast<gid_t>(-1)) == 0);
        REQUIRE(::chown(sub.c_str(), other, static_cast<gid_t>(-1)) == 0);
        CHECK_THAT(refusal(registry, copy),
                   Catch::Contains("its directory " + sub.string() + " is owned by uid 65534"));
        REQUIRE(::chown(sub.c_str(), 0, static_cast<gid_t>(-1)) == 0);
    }
    PluginRegistry registry;
    CHECK(registry.load_file(copy));
}

TEST_CASE("loader scans a directory in name order and goes on after every refusal", "[loader]")
{
    PluginRegistry registry;
    registry.load_directory(abi_dir());
    // dup_class.so sorts before good.so, so it is the one that takes the
    // class and good.so is the duplicate.
    REQUIRE(registry.plugins().size() == 3);
    REQUIRE(registry.find("abitest"));
    CHECK(registry.find("abitest")->file() == abi_dir() / "dup_class.so");
    CHECK(registry.find("throwing"));
    CHECK(registry.find("reporting"));

    std::map<std::string, std::string> reasons;
    for (const auto &r : registry.refusals())
        reasons[r.file.filename().string()] = r.reason;
    CHECK(reasons.size() == 11);
    CHECK_THAT(reasons["abi_major2.so"], Catch::Contains("ABI 2.0"));
    CHECK_THAT(reasons["abi_too_new_minor.so"], Catch::Contains("ABI 1.99"));
    CHECK_THAT(reasons["bad_option.so"], Catch::Contains("unknown type 99"));
    CHECK_THAT(reasons["good.so"], Catch::Contains("class 'abitest' already provided by"));
    CHECK_THAT(reasons["no_entry.so"], Catch::Contains("no entry point"));
    CHECK_THAT(reasons["no_hooks.so"], Catch::Contains("hooks table missing"));
    CHECK_THAT(reasons["not_a_library.so"], Catch::Contains("not a loadable library"));
    CHECK_THAT(reasons["refuses.so"], Catch::Contains("plugin refused"));
    CHECK_THAT(reasons["small_descriptor.so"], Catch::Contains("struct_size 16"));
    // The same class built from the 1.0 and a future header: good plugins,
    // refused here only as duplicates.
    CHECK_THAT(reasons["future.so"], Catch::Contains("class 'abitest' already provided by"));
    CHECK_THAT(reasons["v1_0.so"], Catch::Contains("class 'abitest' already provided by"));
}

TEST_CASE("loader: a missing plugin directory is skipped", "[loader]")
{
    PluginRegistry registry;
    registry.load_directory(abi_dir() / "no-such-dir");
    CHECK(registry.plugins().empty());
    CHECK(registry.refusals().empty());
}

TEST_CASE("devhost plugins reports every refused file on one line and lists the good plugins", "[loader][cli]")
{
    ProcessResult r = run_devhost({"plugins", "--plugin-path", abi_dir().string()});
    INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("\nabitest: abitest-dup_class") && Catch::Contains("\nthrowing: throwing") &&
                          Catch::Contains("\nloop: loop"));
    const std::vector<std::pair<std::string, std::string>> refused = {
        {"abi_major2.so", "ABI 2.0"},
        {"abi_too_new_minor.so", "ABI 1.99"},
        {"bad_option.so", "option 'x': unknown type 99"},
        {"good.so", "class 'abitest' already provided by"},
        {"no_entry.so", "no entry point devhost_plugin_negotiate"},
        {"no_hooks.so", "hooks table missing"},
        {"not_a_library.so", "not a loadable library"},
        {"refuses.so", "plugin refused: abitest refuses this host on purpose"},
        {"small_descriptor.so", "descriptor struct_size 16 is smaller than v1"},
    };
    for (const auto &[file, reason] : refused) {
        const std::string path = (abi_dir() / file).string();
        int on_stdout = 0, on_stderr = 0;
        for (const auto &line : lines(r.out))
            if (line.find("refused: " + path + ": ") == 0 && line.find(reason) != std::string::npos)
                on_stdout++;
        for (const auto &line : lines(r.err))
            if (line.find(path) != std::string::npos && line.find(reason) != std::string::npos)
                on_stderr++;
        INFO(file);
        CHECK(on_stdout == 1);
        CHECK(on_stderr == 1);
    }
}
