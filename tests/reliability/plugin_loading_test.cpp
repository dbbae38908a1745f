// The plugin loader against real attacks and real bad directory entries:
// another user (nobody, through setpriv) who owns a directory on a plugin's
// path, or may write to one several levels up; a file swapped between the
// check and the load; a host without /proc; and plugin directories holding
// symlink loops, names too long to resolve, targets the host may not read and
// directories named like plugins. devhost runs as root, so each of these
// must be one refused line, never a load and never the end of the scan.
#include "devhost_test.hpp"

#include "loader.hpp"
#include <devhost/unique_fd.hpp>

#include <catch2/catch.hpp>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace devhost;
using namespace devhost::test;

namespace {

constexpr uid_t nobody = 65534;

// A good plugin, class "abitest" (the catalogue's control row), and one of
// another class, "throwing".
fs::path good_plugin() { return binary_dir() / "tests/bad-plugins/none.so"; }
fs::path other_class_plugin() { return DEVHOST_OTHER_CLASS_PLUGIN; }

bool root_or_skip(const char *what)
{
    if (::geteuid() == 0)
        return true;
    devhost::test::mark_skipped(std::string(what) + " needs root (files given to another user, setpriv)");
    return false;
}

// Runs argv as nobody, in `cwd`.
ProcessResult as_nobody(std::vector<std::string> argv, const fs::path &cwd = {})
{
    argv.insert(argv.begin(), {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
    return run_process(argv, {.timeout = 30s, .cwd = cwd});
}

// A copy of `from` at `to`, owned by `uid`, mode 0755.
void install(const fs::path &from, const fs::path &to, uid_t uid = 0)
{
    fs::copy_file(from, to);
    REQUIRE(::chown(to.c_str(), uid, uid) == 0);
    REQUIRE(::chmod(to.c_str(), 0755) == 0);
}

void make_dir(const fs::path &dir, mode_t mode, uid_t uid = 0)
{
    fs::create_directories(dir);
    REQUIRE(::chown(dir.c_str(), uid, uid) == 0);
    REQUIRE(::chmod(dir.c_str(), mode) == 0);
}

// The lines of `text` that contain `piece`.
int count_lines(const std::string &text, const std::string &piece)
{
    int n = 0;
    for (const auto &line : lines(text))
        n += line.find(piece) != std::string::npos;
    return n;
}

// `devhost plugins` lists `file` as refused for `reason`: once on stdout,
// once in the log.
void check_refused_once(const ProcessResult &r, const fs::path &file, const std::string &reason)
{
    INFO(file.string() << ": " << reason);
    CHECK(count_lines(r.out, "refused: " + file.string() + ": " + reason) == 1);
    CHECK(count_lines(r.err, "plugin " + file.string() + " refused: " + reason) == 1);
}

// `devhost plugins --json` lists `file` as refused for `reason` once.
void check_json_refused_once(const std::string &json, const fs::path &file, const std::string &reason)
{
    INFO(file.string() << ": " << reason);
    const std::string entry = "{\"file\":\"" + file.string() + "\",\"reason\":\"" + reason + "\"}";
    const std::string named = "{\"file\":\"" + file.string() + "\",";
    const size_t at = json.find(entry);
    CHECK(at != std::string::npos);
    CHECK(json.find(named) == at);
    CHECK(json.find(named, at + 1) == std::string::npos);
}

}  // namespace

TEST_CASE("a plugin reached through a symlink into another user's directory is refused, naming it and its owner",
          "[loader][security]")
{
    if (!root_or_skip("a directory owned by nobody"))
        return;
    TempDir t;
    make_dir(t.path(), 0755);
    const fs::path plugins = t / "plugins", home = t / "home";
    make_dir(plugins, 0755);
    make_dir(home, 0755, nobody);
    // Root's own plugin file, in nobody's directory, reached from root's
    // plugin directory: every file check passes, only the directory is bad.
    install(good_plugin(), home / "abitest.so");
    fs::create_symlink(home / "abitest.so", plugins / "abitest.so");

    // nobody really can replace root's file there whenever they like.
    auto swap = as_nobody({"/bin/sh", "-c", "mv abitest.so moved.so && mv moved.so abitest.so"}, home);
    INFO("swap: " << swap.err);
    REQUIRE(swap.exit_code == 0);
    struct stat st {};
    REQUIRE(::stat((home / "abitest.so").c_str(), &st) == 0);
    REQUIRE(st.st_uid == 0);

    auto r = run_devhost({"--plugin-path", plugins.string(), "plugins"});
    INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
    CHECK(r.exit_code == 0);
    check_refused_once(r, plugins / "abitest.so",
                       "its directory " + home.string() +
                           " is owned by uid 65534, not by root or the host's user: its owner could replace the plugin");
    CHECK(r.out.find("\nabitest: ") == std::string::npos);
    CHECK(r.out.find("\nloop: loop") != std::string::npos);  // the others load
}

TEST_CASE("a directory others may write to, several levels above a plugin, is refused unless sticky",
          "[loader][security]")
{
    if (!root_or_skip("a directory nobody writes to"))
        return;
    TempDir t;
    make_dir(t.path(), 0755);
    const fs::path open_dir = t / "a", plugins = t / "a/b/c/plugins";
    make_dir(plugins, 0755);
    for (const auto *d : {"a/b", "a/b/c"})
        REQUIRE(::chmod((t / d).c_str(), 0755) == 0);
    REQUIRE(::chmod(open_dir.c_str(), 0777) == 0);
    install(good_plugin(), plugins / "abitest.so");
    const std::string reason = "the directory " + open_dir.string() +
                               " above it is writable by group or others (mode 0777): anyone there could replace the plugin";

    auto r = run_devhost({"--plugin-path", plugins.string(), "plugins"});
    INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
    CHECK(r.exit_code == 0);
    check_refused_once(r, plugins / "abitest.so", reason);
    CHECK(r.out.find("\nabitest: ") == std::string::npos);

    // What that stops: nobody moves root's whole tree aside and builds the
    // same path of their own, down to a plugin file.
    auto swap = as_nobody({"/bin/sh", "-c", "mv b b.root && mkdir -p b/c/plugins && cp b.root/c/plugins/abitest.so "
                                            "b/c/plugins/abitest.so"},
                          open_dir);
    INFO("swap: " << swap.err);
    REQUIRE(swap.exit_code == 0);
    struct stat st {};
    REQUIRE(::stat(plugins.c_str(), &st) == 0);
    CHECK(st.st_uid == nobody);
    r = run_devhost({"--plugin-path", plugins.string(), "plugins"});
    check_refused_once(r, plugins / "abitest.so", reason);

    // Root's tree back, and the directory sticky like /tmp: nobody may no
    // longer move root's entries, and the plugin loads.
    fs::remove_all(open_dir / "b");
    fs::rename(open_dir / "b.root", open_dir / "b");
    REQUIRE(::chmod(open_dir.c_str(), 01777) == 0);
    swap = as_nobody({"/bin/mv", "b", "b.nobody"}, open_dir);
    CHECK(swap.exit_code != 0);
    CHECK(fs::is_directory(plugins));
    r = run_devhost({"--plugin-path", plugins.string(), "plugins"});
    INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("\nabitest: abitest-bad 1.0.0, ABI 1.1, " + (plugins / "abitest.so").string() + "\n") !=
          std::string::npos);
    CHECK(r.err.find("refused") == std::string::npos);
}

TEST_CASE("the loader maps the very file it checked, even when the path is swapped right after the check",
          "[loader][security]")
{
    if (!root_or_skip("fanotify permission events"))
        return;
    // fanotify holds each open of the plugin file until this test answers:
    // at the first, the loader's own open, the path gets another plugin,
    // the luckiest timing a swap could have. The directory is root's, so
    // the swapper is root here (someone upgrading the file): the chain
    // check keeps everyone else out, and this proves that what is checked
    // is what runs.
    UniqueFd fan(::fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_CLOEXEC));
    if (!fan) {
        DEVHOST_SKIP(std::string("fanotify is not available here: ") + std::strerror(errno));
    }
    TempDir t;
    make_dir(t.path(), 0755);
    const fs::path plugins = t / "plugins", file = plugins / "abitest.so";
    make_dir(plugins, 0755);
    install(good_plugin(), file);
    install(other_class_plugin(), t / "swap.so");
    if (::fanotify_mark(fan.get(), FAN_MARK_ADD, FAN_OPEN_PERM, AT_FDCWD, file.c_str()) != 0) {
        DEVHOST_SKIP(std::string("fanotify permission events are not available here: ") + std::strerror(errno));
    }

    Child host({devhost_exe().string(), "--plugin-path", plugins.string(), "plugins", "--json"}, t.path());
    int opens = 0;
    ProcessResult r;
    r.timed_out = true;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (r.timed_out && std::chrono::steady_clock::now() < deadline) {
        pollfd p{fan.get(), POLLIN, 0};
        ::poll(&p, 1, 20);
        alignas(fanotify_event_metadata) char buf[4096];
        ssize_t n = ::read(fan.get(), buf, sizeof buf);
        for (auto *m = reinterpret_cast<fanotify_event_metadata *>(buf); n > 0 && FAN_EVENT_OK(m, n);
             m = FAN_EVENT_NEXT(m, n)) {
            if (opens++ == 0) {
                fs::rename(file, t / "checked.so");
                fs::rename(t / "swap.so", file);
            }
            fanotify_response answer{m->fd, FAN_ALLOW};
            CHECK(::write(fan.get(), &answer, sizeof answer) == sizeof answer);
            ::close(m->fd);
        }
        r = host.wait(0ms);
    }
    fan.reset();  // any open still held goes on, so the host can end
    INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 0);
    CHECK(opens >= 1);
    // The path now holds the other plugin; what was loaded from it is the
    // file the checks saw.
    CHECK(fs::file_size(file) == fs::file_size(other_class_plugin()));
    CHECK(r.out.find("\"class\":\"abitest\"") != std::string::npos);
    CHECK(r.out.find("\"file\":\"" + file.string() + "\"") != std::string::npos);
    CHECK(r.out.find("\"class\":\"throwing\"") == std::string::npos);
    CHECK(r.err.find("refused") == std::string::npos);
}

TEST_CASE("without /proc a plugin is refused, not loaded again by its path", "[loader][security]")
{
#if defined(__SANITIZE_ADDRESS__)
    // The sanitizer's runtime reads /proc/self/maps itself and, without it,
    // reports false stack errors before devhost reaches its own check.
    DEVHOST_SKIP("AddressSanitizer cannot run without /proc (the normal build runs this test)");
#endif
    if (!root_or_skip("a mount namespace"))
        return;
    if (run_process({"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/true"}).exit_code != 0) {
        DEVHOST_SKIP(std::string("no mount namespace can be made here (unshare --mount)"));
    }
    TempDir t;
    make_dir(t.path(), 0755);
    const fs::path plugins = t / "plugins";
    make_dir(plugins, 0755);
    install(good_plugin(), plugins / "abitest.so");
    // A tmpfs over /proc, in a mount namespace of the host's own.
    auto r = run_process({"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                          "mount -t tmpfs none /proc && exec \"$0\" --plugin-path \"$1\" plugins",
                          devhost_exe().string(), plugins.string()});
    INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
    CHECK(r.exit_code == 3);  // no usable plugin
    // No worker can start (it is devhost again, through /proc/self/exe), so
    // nothing loads the plugin, by descriptor or by path. (Inside a worker,
    // the loader refuses the same way: "cannot load it through its
    // descriptor: /proc is not mounted".)
    check_refused_once(r, plugins / "abitest.so",
                       "cannot start a worker: /proc is not mounted (a worker is this executable again, started "
                       "through /proc/self/exe)");
}

TEST_CASE("a plugin directory scan survives every entry: each bad one is one refused line, the good plugins load",
          "[loader]")
{
    TempDir t;
    make_dir(t.path(), 0755);
    const fs::path plugins = t / "plugins";
    make_dir(plugins, 0755);
    install(good_plugin(), plugins / "good.so");
    fs::create_symlink("loop.so", plugins / "loop.so");               // a symlink loop
    fs::create_symlink(std::string(300, 'n'), plugins / "long.so");  // a name too long to resolve
    fs::create_directory(plugins / "x.so");                           // a directory named like a plugin
    fs::create_symlink(t / "gone.so", plugins / "gone.so");           // a target that is not there
    write_file(plugins / "forged\nabitest: forged.so", "text, with a name that would forge a line\n");
    const std::vector<std::pair<std::string, std::string>> refused = {
        {"gone.so", "cannot open " + (t / "gone.so").string() + ": No such file or directory"},
        {"long.so", "cannot open " + plugins.string() + "/nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn...(300 bytes): File name too long"},
        {"loop.so", "cannot open: Too many levels of symbolic links"},
        {"x.so", "not a regular file (a directory)"},
    };

    auto r = run_devhost({"--plugin-path", plugins.string(), "plugins"});
    INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("\nabitest: abitest-bad 1.0.0, ABI 1.1, " + (plugins / "good.so").string() + "\n") !=
          std::string::npos);
    CHECK(r.out.find("\nloop: loop") != std::string::npos);
    for (const auto &[name, reason] : refused)
        check_refused_once(r, plugins / name, reason);
    // A name holding a newline stays on its one line, printed escaped.
    const std::string forged = plugins.string() + "/forged\\nabitest: forged.so";
    CHECK(count_lines(r.out, "refused: " + forged + ": not a loadable library: " + forged + ": file too short") == 1);
    CHECK(count_lines(r.err, "plugin " + forged + " refused: ") == 1);
    for (const auto &line : lines(r.out + r.err))
        CHECK(line.rfind("abitest: forged", 0) == std::string::npos);
    CHECK(count_lines(r.out, "refused: ") == 5);

    r = run_devhost({"--plugin-path", plugins.string(), "plugins", "--json"});
    INFO("json:\n" << r.out);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("\"class\":\"abitest\"") != std::string::npos);
    for (const auto &[name, reason] : refused)
        check_json_refused_once(r.out, plugins / name, reason);

    // check and run go on with the good plugin.
    const fs::path config = t / "good.ini";
    write_file(config, "[device d]\nclass = abitest\npath = x\nstep = open\nstep = write \"hi\"\nstep = close\n");
    r = run_devhost({"--plugin-path", plugins.string(), "check", config.string()});
    INFO("check stderr:\n" << r.err);
    CHECK(r.exit_code == 0);
    r = run_devhost({"--plugin-path", plugins.string(), "run", config.string()});
    INFO("run stdout:\n" << r.out << "\nrun stderr:\n" << r.err);
    CHECK(r.exit_code == 0);
    CHECK(count_lines(r.out, "\"status\":\"DEVHOST_OK\"") == 3);
    CHECK(count_lines(r.err, " refused: ") == 5);
}

TEST_CASE("a scan by a host running as nobody refuses what it may not read, alone", "[loader]")
{
    if (!root_or_skip("files of two users"))
        return;
    if (as_nobody({"/usr/bin/test", "-x", devhost_exe().string()}).exit_code != 0) {
        DEVHOST_SKIP(std::string("nobody cannot run ") + devhost_exe().string() + " (a build directory closed to others)");
    }
    TempDir t;
    make_dir(t.path(), 0755);
    // The host runs as nobody: nobody's plugin directory and files are the
    // host user's own. Root's private directory and root's mode-000 file
    // are what it may not read.
    const fs::path plugins = t / "plugins", secret = t / "secret";
    make_dir(plugins, 0755, nobody);
    make_dir(secret, 0700);
    install(good_plugin(), plugins / "good.so", nobody);
    install(good_plugin(), secret / "hidden.so");
    install(good_plugin(), t / "sealed.so");
    REQUIRE(::chmod((t / "sealed.so").c_str(), 0) == 0);
    fs::create_symlink(secret / "hidden.so", plugins / "hidden.so");
    fs::create_symlink(t / "sealed.so", plugins / "sealed.so");
    const std::vector<std::pair<std::string, std::string>> refused = {
        {"hidden.so", "cannot open " + (secret / "hidden.so").string() + ": Permission denied"},
        {"sealed.so", "cannot open " + (t / "sealed.so").string() + ": Permission denied"},
    };

    auto r = as_nobody({devhost_exe().string(), "--plugin-path", plugins.string(), "plugins"});
    INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("\nabitest: abitest-bad 1.0.0, ABI 1.1, " + (plugins / "good.so").string() + "\n") !=
          std::string::npos);
    for (const auto &[name, reason] : refused)
        check_refused_once(r, plugins / name, reason);

    r = as_nobody({devhost_exe().string(), "--plugin-path", plugins.string(), "plugins", "--json"});
    CHECK(r.exit_code == 0);
    for (const auto &[name, reason] : refused)
        check_json_refused_once(r.out, plugins / name, reason);

    // A whole plugin directory it may not read is a warning, and the next
    // directory still loads.
    const fs::path closed = t / "closed";
    make_dir(closed, 0700);
    install(good_plugin(), closed / "abitest.so");
    r = as_nobody({devhost_exe().string(), "--plugin-path", closed.string() + ":" + plugins.string(), "plugins"});
    INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
    CHECK(r.exit_code == 0);
    CHECK(count_lines(r.err, "warning: plugin directory " + closed.string() + " cannot be read: Permission denied; skipped") == 1);
    CHECK(r.out.find("\nabitest: abitest-bad 1.0.0, ABI 1.1, " + (plugins / "good.so").string() + "\n") !=
          std::string::npos);
}

TEST_CASE("plugins loaded one after another, through the same descriptor number, each get their own library",
          "[loader]")
{
    // dlopen knows a library by the name it was opened by; the loader's
    // /proc/self/fd/N names must not let a later plugin get an earlier one.
    TempDir t;
    make_dir(t.path(), 0755);
    install(good_plugin(), t / "a.so");
    install(other_class_plugin(), t / "b.so");
    install(binary_dir() / "tests/bad-plugins/refuses.so", t / "c.so");
    {
        PluginRegistry registry;
        auto a = registry.load_file(t / "a.so");
        REQUIRE(a);
        CHECK(a->device_class() == "abitest");
        auto b = registry.load_file(t / "b.so");
        REQUIRE(b);
        CHECK(b->device_class() == "throwing");
        CHECK(b->file() == t / "b.so");
        CHECK(registry.load_file(t / "c.so") == nullptr);
        REQUIRE(registry.refusals().size() == 1);
        CHECK(registry.refusals()[0].reason == "plugin refused: this plugin refuses every host");
    }
    // Another registry, after the first unloaded (or kept mapped) its
    // libraries: the same again, in another order.
    PluginRegistry registry;
    CHECK(registry.load_file(t / "c.so") == nullptr);
    auto b = registry.load_file(t / "b.so");
    REQUIRE(b);
    CHECK(b->device_class() == "throwing");
    auto a = registry.load_file(t / "a.so");
    REQUIRE(a);
    CHECK(a->device_class() == "abitest");
    CHECK(a->library() != b->library());
}
