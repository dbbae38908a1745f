// Installs the build into a temporary prefix (cmake --install), configures
// and builds the installed plugin template against it with find_package
// (devhost), runs the template's own test (ctest), loads the plugin it made,
// and checks the template's README against it as readme_test checks the
// in-tree plugins'. Needs the whole build, as `cmake --install` does.
#include "devhost_test.hpp"

#include "device.hpp"
#include "loader.hpp"
#include "plugin_readme.hpp"

#include <catch2/catch.hpp>

using namespace devhost;
using namespace devhost::test;

namespace {

ProcessResult run(const std::vector<std::string> &argv)
{
    ProcessResult r = run_process(argv, {.timeout = 120s});
    INFO("command: " << argv[0] << " " << (argv.size() > 1 ? argv[1] : "") << "\nstdout:\n"
                     << r.out << "\nstderr:\n" << r.err);
    REQUIRE_FALSE(r.timed_out);
    REQUIRE(r.exit_code == 0);
    return r;
}

}  // namespace

TEST_CASE("sdk: the installed template builds against find_package(devhost) and loads", "[sdk]")
{
    const std::string cmake = DEVHOST_CMAKE_COMMAND;
    TempDir tmp;
    const fs::path prefix = tmp / "prefix";
    run({cmake, "--install", binary_dir().string(), "--prefix", prefix.string()});

    // What an OEM needs is there.
    CHECK(fs::exists(prefix / "include/devhost/plugin.h"));
    CHECK(fs::exists(prefix / "include/devhost/plugin.hpp"));
    CHECK(fs::exists(prefix / "include/devhost/plugin_util.h"));
    CHECK(fs::exists(prefix / "include/devhost/vport_wire.h"));  // the virtual parallel port protocol
    const fs::path tmpl = prefix / "share/devhost/plugin-template";
    REQUIRE(fs::exists(tmpl / "CMakeLists.txt"));
    // The shape of every plugin folder (plugins/README.md).
    for (const char *file : {"plugin.c", "backend_counter.c", "my_device_private.h", "README.md", "example.ini",
                             "tests/CMakeLists.txt", "tests/my_plugin_test.c", "tests/devhost_expect.cmake"})
        CHECK(fs::exists(tmpl / file));

    // devhost.pc names the prefix it was installed to, the plugin directory
    // the installed host reads and the ABI version of the headers.
    // (in LIBDIR/pkgconfig: lib/pkgconfig, or Debian's lib/<triplet>/pkgconfig
    // once the build is configured for the packages' /usr)
    fs::path pc_file;
    for (const auto &entry : fs::recursive_directory_iterator(prefix / "lib"))
        if (entry.path().filename() == "devhost.pc")
            pc_file = entry.path();
    REQUIRE(pc_file.parent_path().filename() == "pkgconfig");
    const std::string pc = read_file(pc_file);
    CHECK_THAT(pc, Catch::Contains("prefix=" + prefix.string() + "\n"));
    CHECK_THAT(pc, Catch::Contains("plugindir=${prefix}/lib/devhost/plugins\n"));
    CHECK_THAT(pc, Catch::Contains("abi_version=" + std::to_string(DEVHOST_ABI_VERSION_MAJOR) + "." +
                                   std::to_string(DEVHOST_ABI_VERSION_MINOR) + "\n"));
    CHECK_THAT(pc, Catch::Contains("Libs: -L${libdir} -ldevhost-port\n"));
    // Only the SDK's files are in a plain install: the packages' own
    // (the conffile, copyright, changelog) are installed by CPack alone.
    CHECK_FALSE(fs::exists(prefix / "share/doc"));
    CHECK_FALSE(fs::exists(prefix / "etc"));

    const fs::path build = tmp / "build";
    run({cmake, "-S", tmpl.string(), "-B", build.string(), "-DCMAKE_PREFIX_PATH=" + prefix.string(),
         "-DCMAKE_BUILD_TYPE=Release"});
    run({cmake, "--build", build.string()});
    // The template's own test, which drives the plugin it built.
    const fs::path ctest = fs::path(cmake).parent_path() / "ctest";
    // my_plugin_listed, _check and _run run the installed devhost: none is
    // skipped, since it is installed.
    const ProcessResult tested =
        run({ctest.string(), "--test-dir", build.string(), "--output-on-failure", "--no-tests=error"});
    // ... and my_plugin_conformance runs the installed devhost-conformance.
    CHECK_THAT(tested.out, Catch::Contains("100% tests passed, 0 tests failed out of 5"));
    CHECK_THAT(tested.out, Catch::Contains("my_plugin_conformance ....") && Catch::Contains("Passed"));
    CHECK_THAT(tested.out, !Catch::Contains("Skipped"));

    PluginRegistry registry;
    auto plugin = registry.load_file(build / "my_plugin.so");
    INFO((registry.refusals().empty() ? std::string() : registry.refusals().back().reason));
    REQUIRE(plugin);
    CHECK(plugin->device_class() == "my-device");
    CHECK(plugin->name() == "my_plugin");
    CHECK(plugin->abi_version() == DEVHOST_ABI_VERSION);

    Device dev(plugin, "mine");
    OpenRequest request;
    request.path = "anything";
    REQUIRE(dev.open(request).ok());
    const std::string data = "12345";
    devhost_transfer x{};
    x.op = DEVHOST_OP_WRITE;
    x.out = reinterpret_cast<const uint8_t *>(data.data());
    x.out_len = data.size();
    REQUIRE(dev.transfer(x).ok());
    CHECK(x.out_done == 5);
    InfoList info;
    REQUIRE(dev.info(info).ok());
    CHECK(info == InfoList{{"written", "5"}});
    CHECK(dev.lock(0).status == DEVHOST_E_UNSUPPORTED);
    CHECK(dev.close().ok());

    // Its README lists what it declares and the key its info reports.
    const std::string readme = read_file(tmpl / "README.md");
    check_readme_declarations(*plugin, readme, "sdk/template/README.md");
    check_readme_info_keys(readme, "sdk/template/README.md", {"written"}, {});

    // The installed loop plugin loads from the installed layout too.
    auto loop = registry.load_file(prefix / "lib/devhost/plugins/loop.so");
    REQUIRE(loop);
    CHECK(loop->device_class() == "loop");
}
