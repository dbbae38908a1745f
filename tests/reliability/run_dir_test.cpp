// The run directories and the vport endpoint trust nothing they did not
// create (issue 12): /run/devhost, /run/devhost/vdev and each run's private
// directory get explicit modes whatever the umask, are refused when they
// exist with a bad owner or mode, and the run's directory is used through
// its descriptor; a vport socket planted by nobody in a predictable place
// does not receive root's print job.
//
// The /run cases run in a child process with a mount namespace of its own
// and a fresh tmpfs on /run, so the machine's /run is never touched and the
// mount goes away with the child, whatever happens.
#include "devhost_test.hpp"

#include "device.hpp"
#include "loader.hpp"
#include "trusted_dir.hpp"
#include "virtual_devices.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <functional>
#include <optional>
#include <thread>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace devhost;
using namespace devhost::test;

namespace {

constexpr uid_t nobody = 65534;

std::string mode_of(const fs::path &p)
{
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0)
        return "missing";
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return buf;
}

VirtualConfig serial_echo(const std::string &name)
{
    VirtualConfig v;
    v.name = name;
    v.kind = {"kind", "serial-echo", 1};
    return v;
}

struct Umask {
    mode_t old;
    explicit Umask(mode_t m) : old(::umask(m)) {}
    ~Umask() { ::umask(old); }
};

}  // namespace

TEST_CASE("run directories get their modes whatever the umask", "[run-dir][hardening]")
{
    if (::geteuid() != 0) {
        DEVHOST_SKIP("/run/devhost is root's");
    }
    for (mode_t mask : {mode_t(0000), mode_t(0077), mode_t(0777)}) {
        std::string result = with_private_run([&] {
            Umask m(mask);
            VirtualDevices vd(bin_dir() / "devhost-vdev");
            std::string error;
            bool usage = false;
            if (!vd.start(serial_echo("modem"), 10000, error, usage))
                return "start failed: " + error;
            std::string r = "devhost=" + mode_of("/run/devhost") + " vdev=" + mode_of("/run/devhost/vdev") +
                            " run=" + mode_of(vd.dir()) + " in-vdev=" +
                            std::to_string(vd.dir().parent_path() == "/run/devhost/vdev");
            const fs::path dir = vd.dir();
            vd.stop_all();
            return r + " removed=" + std::to_string(!fs::exists(fs::symlink_status(dir)));
        });
        if (skipped_by(result))
            return;
        INFO("umask " << mask);
        CHECK(result == "devhost=0755 vdev=0755 run=0700 in-vdev=1 removed=1");
    }
}

TEST_CASE("an existing run directory with a bad owner or mode is refused", "[run-dir][hardening]")
{
    if (::geteuid() != 0) {
        DEVHOST_SKIP("/run/devhost is root's");
    }
    auto attempt = [](const std::function<void()> &plant) {
        return with_private_run([&] {
            plant();
            VirtualDevices vd(bin_dir() / "devhost-vdev");
            std::string error;
            bool usage = false;
            bool ok = vd.start(serial_echo("modem"), 10000, error, usage);
            return ok ? std::string("started in ") + vd.dir().string() : error;
        });
    };
    SECTION("/run/devhost mode 0777")
    {
        std::string r = attempt([] {
            ::mkdir("/run/devhost", 0700);
            ::chmod("/run/devhost", 0777);
        });
        if (skipped_by(r))
            return;
        CHECK(r == "[virtual modem] (serial-echo): directory /run/devhost is writable by group or others (mode 0777) "
                   "and is not a sticky directory owned by root");
    }
    SECTION("/run/devhost/vdev owned by nobody")
    {
        std::string r = attempt([] {
            ::mkdir("/run/devhost", 0755);
            ::mkdir("/run/devhost/vdev", 0755);
            [[maybe_unused]] int rc = ::chown("/run/devhost/vdev", nobody, nobody);
        });
        if (skipped_by(r))
            return;
        CHECK(r == "[virtual modem] (serial-echo): directory /run/devhost/vdev is owned by uid 65534 (not root or "
                   "uid 0)");
    }
    SECTION("/run/devhost a link to a directory nobody owns")
    {
        std::string r = attempt([] {
            ::mkdir("/run/elsewhere", 0755);
            [[maybe_unused]] int rc = ::chown("/run/elsewhere", nobody, nobody);
            rc = ::symlink("/run/elsewhere", "/run/devhost");
        });
        if (skipped_by(r))
            return;
        CHECK(r == "[virtual modem] (serial-echo): directory /run/elsewhere is owned by uid 65534 (not root or "
                   "uid 0)");
    }
}

TEST_CASE("the run's directory is used through its descriptor, not its path", "[run-dir][hardening]")
{
    if (::geteuid() != 0) {
        DEVHOST_SKIP("/run/devhost is root's");
    }
    std::string result = with_private_run([] {
        ::mkdir("/run/victim", 0755);
        VirtualDevices vd(bin_dir() / "devhost-vdev");
        std::string error;
        bool usage = false;
        if (!vd.start(serial_echo("first"), 10000, error, usage))
            return "first start failed: " + error;
        const fs::path dir = vd.dir(), moved = dir.string() + ".moved";
        // The path is swapped for a link to another directory.
        if (::rename(dir.c_str(), moved.c_str()) != 0 || ::symlink("/run/victim", dir.c_str()) != 0)
            return std::string("cannot swap the directory: ") + std::strerror(errno);
        bool second = vd.start(serial_echo("second"), 10000, error, usage);
        std::string r = "second=" + std::string(second ? "started" : error);
        r += " victim-while-running=" + std::to_string(std::distance(fs::directory_iterator("/run/victim"), {}));
        vd.stop_all();
        r += " victim=" + std::to_string(std::distance(fs::directory_iterator("/run/victim"), {}));
        r += " moved=" + std::to_string(std::distance(fs::directory_iterator(moved), {}));
        r += " link=" + std::to_string(fs::is_symlink(dir));
        return r;
    });
    if (skipped_by(result))
        return;
    CHECK(result.find("second=[virtual second] (serial-echo): /run/devhost/vdev/run-") == 0);
    CHECK(result.find(" no longer names this run's directory (moved or replaced); not starting a peer there "
                      "victim-while-running=0 victim=0 moved=0 link=1") != std::string::npos);
}

TEST_CASE("trusted_dir::open creates missing directories with the exact mode whatever the umask",
          "[run-dir][hardening]")
{
    TempDir top;
    for (mode_t mask : {mode_t(0000), mode_t(0077), mode_t(0777)}) {
        Umask m(mask);
        const fs::path d = top / ("u" + std::to_string(mask)) / "a" / "b";
        trusted_dir::Error err;
        auto dir = trusted_dir::open(d.string(), 0755, err);
        INFO("umask " << mask << ": " << err.message);
        REQUIRE(dir);
        CHECK(mode_of(d) == "0755");
        CHECK(mode_of(d.parent_path()) == "0755");
        std::string name;
        auto priv = trusted_dir::make_private(dir, "run-", name, err);
        REQUIRE(priv);
        CHECK(mode_of(d / name) == "0700");
    }
}

namespace {

// A vport server run by nobody at DIR/NAME.sock (DIR created by nobody, mode
// 0777): prints LISTENING, then GOT <hex> for whatever a client sends.
const char *const vport_squatter = R"PY(
import os, socket, sys
d, name = sys.argv[1], sys.argv[2]
os.makedirs(d, exist_ok=True)
os.chmod(d, 0o777)
p = os.path.join(d, name + ".sock")
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(p)
os.chmod(p, 0o777)
s.listen(4)
print("LISTENING", flush=True)
s.settimeout(30)
c, _ = s.accept()
print("GOT", c.recv(4096).hex(), flush=True)
)PY";

std::string cannot_attack()
{
    if (::geteuid() != 0)
        return "dropping to nobody needs root";
    if (::access("/usr/bin/setpriv", X_OK) != 0 || ::access("/usr/bin/python3", X_OK) != 0)
        return "no /usr/bin/setpriv or /usr/bin/python3";
    return {};
}

std::shared_ptr<const Plugin> parallel_plugin()
{
    static PluginRegistry registry;
    static std::shared_ptr<const Plugin> plugin = registry.load_file(plugin_dir() / "parallel.so");
    REQUIRE(plugin);
    return plugin;
}

// Restores DEVHOST_VPORT_DIR and XDG_RUNTIME_DIR whatever happens.
struct SavedEnv {
    std::vector<std::pair<std::string, std::optional<std::string>>> saved;
    SavedEnv()
    {
        for (const char *k : {"DEVHOST_VPORT_DIR", "XDG_RUNTIME_DIR"}) {
            const char *v = std::getenv(k);
            saved.emplace_back(k, v ? std::optional<std::string>(v) : std::nullopt);
        }
    }
    ~SavedEnv()
    {
        for (auto &[k, v] : saved)
            v ? ::setenv(k.c_str(), v->c_str(), 1) : ::unsetenv(k.c_str());
    }
};

}  // namespace

TEST_CASE("a vport socket planted by nobody does not receive root's print job", "[vport][hardening]")
{
    if (auto why = cannot_attack(); !why.empty()) {
        DEVHOST_SKIP(why);
    }
    SavedEnv env;
    ::unsetenv("DEVHOST_VPORT_DIR");
    const std::string name = "lp-squat-" + std::to_string(::getpid());
    TempDir top;
    ::chmod(top.path().c_str(), 0755);
    fs::path planted_dir;

    SECTION("the old fallback /tmp/devhost-vport-UID")
    {
        ::unsetenv("XDG_RUNTIME_DIR");
        planted_dir = "/tmp/devhost-vport-" + std::to_string(::getuid());
    }
    SECTION("$XDG_RUNTIME_DIR/devhost/vport in a directory nobody owns")
    {
        const fs::path xdg = top / "xdg";
        ::mkdir(xdg.c_str(), 0700);
        REQUIRE(::chown(xdg.c_str(), nobody, nobody) == 0);
        ::setenv("XDG_RUNTIME_DIR", xdg.c_str(), 1);
        planted_dir = xdg / "devhost" / "vport";
    }
    struct Cleanup {
        fs::path dir;
        ~Cleanup()
        {
            std::error_code ec;
            if (dir.string().rfind("/tmp/devhost-vport-", 0) == 0)
                fs::remove_all(dir, ec);
        }
    } cleanup{planted_dir};
    std::error_code ec;
    if (planted_dir.string().rfind("/tmp/devhost-vport-", 0) == 0)
        fs::remove_all(planted_dir, ec);  // root's own leftover from before

    Child squatter({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c",
                    vport_squatter, planted_dir.string(), name},
                   top.path());
    REQUIRE(squatter.wait_for_output("LISTENING", 10s));

    Device dev(parallel_plugin(), "printer");
    OpenRequest r;
    r.path = "vport:" + name;
    r.configured_path = r.path;
    r.timeout_ms = 1000;
    Outcome o = dev.open(r);
    INFO(o.message);
    CHECK_FALSE(o.ok());
    CHECK((o.status == DEVHOST_E_NOT_FOUND || o.status == DEVHOST_E_ACCESS));
    if (o.status == DEVHOST_E_ACCESS)
        CHECK(o.message.find("not connecting to " + (planted_dir / (name + ".sock")).string()) != std::string::npos);
    std::this_thread::sleep_for(200ms);
    CHECK(squatter.out().find("GOT") == std::string::npos);
}

TEST_CASE("the default port directory is created 0755 whatever the umask and a bad one is refused",
          "[run-dir][hardening]")
{
    if (::geteuid() != 0) {
        DEVHOST_SKIP("/run/devhost is root's");
    }
    TempDir logs;
    auto echo = [&](mode_t mask, const std::function<void()> &plant) {
        return with_private_run([&] {
            plant();
            Umask m(mask);
            ::unsetenv("DEVHOST_VDEV_DIR");
            ProcessResult r;
            {
                Child peer({(bin_dir() / "devhost-vdev").string(), "filterport-echo", "--port=Echo"}, logs.path());
                if (!peer.wait_for_output("READY", 10s)) {
                    auto done = peer.wait(5s);
                    return "exit " + std::to_string(done.exit_code) + ": " + peer.err();
                }
                std::string modes = "devhost=" + mode_of("/run/devhost") + " ports=" + mode_of("/run/devhost/ports") +
                                    " socket=" + mode_of("/run/devhost/ports/Echo");
                peer.signal(SIGTERM);
                peer.wait(5s);
                return modes;
            }
        });
    };
    for (mode_t mask : {mode_t(0000), mode_t(0077)}) {
        std::string r = echo(mask, [] {});
        if (skipped_by(r))
            return;
        INFO("umask " << mask);
        CHECK(r == "devhost=0755 ports=0755 socket=0600");
    }
    std::string bad = echo(022, [] {
        ::mkdir("/run/devhost", 0755);
        ::mkdir("/run/devhost/ports", 0755);
        ::chmod("/run/devhost/ports", 0777);
    });
    CHECK(bad == "exit 1: devhost-vdev: filterport-echo: --port-dir=/run/devhost/ports: directory /run/devhost/ports "
                 "is writable by group or others (mode 0777) and is not a sticky directory owned by root\n");
}
