// serial_close_probe: serial's close under a deadline on a real UART whose
// output cannot go out, for the hil guest (guest-run.sh), where the kernel
// would otherwise hold the close.
//
//   serial_close_probe PLUGIN TTY xoff
//   serial_close_probe PLUGIN TTY stall
//
// Loads PLUGIN (serial.so) with a services table whose deadline_ns answers
// what this program sets (the host gives close no deadline before ABI 1.1's
// host side).
//
// xoff: opens TTY with flow=xonxoff, writes XOFF (0x13), which the hil peer
// echoes back so that the tty stops its own output, waits for the echo,
// writes 4000 bytes (queued: none can go), and closes with a deadline 300 ms
// away, where the kernel's closing wait (closing_wait, 30 s) would hold the
// close. Prints
//   HIL-CLOSE-XOFF queued=N status=NAME ms=M
//   HIL-CLOSE-LOG <each line the plugin logged>
//
// stall: TTY's far end (the host side of QEMU's chardev) never reads, so
// QEMU's UART keeps the byte in its transmitter and the FIFO behind it
// never empties. Sets TTY to 50 baud first (the rate the port has when the
// plugin opens it, and restores at close), opens it at 50 baud, writes 4000
// bytes (the first ones fill the peer's socket and the UART, the rest stay
// queued), and closes with a deadline 300 ms away, where serial-core's wait
// for the transmitter (twice the FIFO's time, 6.4 s at 50 baud) would hold
// the close. Then opens it again at once and closes it with no deadline
// (the kernel's own wait, for the figure) and unloads the plugin. Checks
// that close returned OK by its deadline plus 200 ms, logged the cut, that
// the port opened again at once, and that the plugin's signal (SIGRTMAX-4)
// had its handler while loaded and the default again after unload. Prints
//   HIL-CLOSE-STALL held=N transmitter=busy|empty status=NAME ms=M
//   HIL-CLOSE-STALL-LOG <each line the plugin logged>
//   HIL-CLOSE-STALL-REOPEN status=NAME ms=M
//   HIL-CLOSE-STALL-NODEADLINE status=NAME ms=M
//   HIL-CLOSE-STALL-SIGNAL loaded=handler|default unloaded=handler|default
//   HIL-CLOSE-STALL-RESULT ok            (or FAILED: what did not hold)
//
// Exit 0 when it got that far (xoff) or every check held (stall), 1
// otherwise (the reason on stdout).
#include <devhost/plugin.h>
#include <devhost/plugin_util.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <string>
#include <sys/ioctl.h>
#include <unistd.h>
#include <vector>

// termios2 from the kernel headers (they clash with glibc's <termios.h>).
#include <asm/termbits.h>

namespace {

uint64_t g_deadline = DEVHOST_DEADLINE_NONE;
std::vector<std::string> g_log;

void log_line(const devhost_host_device *, int32_t, const char *message) { g_log.emplace_back(message); }
uint64_t deadline_ns(const devhost_host_device *) { return g_deadline; }
devhost_status share_fd(const devhost_host_device *, int32_t, const char *) { return DEVHOST_E_UNSUPPORTED; }

const devhost_host_services services = {sizeof(devhost_host_services), DEVHOST_ABI_VERSION, log_line,
                                        devhost_util_now_ns, deadline_ns, share_fd};

uint64_t ms_since(uint64_t t0) { return (devhost_util_now_ns() - t0) / 1000000u; }

int failed(const char *tag, const char *what, const devhost_error &err)
{
    std::printf("%s failed: %s: %s\n", tag, what, err.message);
    return 1;
}

devhost_status write_bytes(const devhost_hooks &hooks, devhost_device *dev, const std::string &bytes,
                           devhost_error &err)
{
    devhost_transfer x{};
    x.struct_size = sizeof x;
    x.op = DEVHOST_OP_WRITE;
    x.timeout_ms = 1000;
    x.out = reinterpret_cast<const uint8_t *>(bytes.data());
    x.out_len = bytes.size();
    return hooks.transfer(dev, &x, &err);
}

// The bytes queued in the tty's output, asked on a descriptor of its own
// (closed again: the plugin's close must be the last; root passes
// TIOCEXCL). *busy: the UART's transmitter still holds bytes (its FIFO or
// shift register: TIOCSERGETLSR has no TIOCSER_TEMT).
int queued(const char *tty, bool *busy)
{
    int fd = ::open(tty, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    int n = -1;
    unsigned lsr = 0;
    if (fd >= 0 && ioctl(fd, TIOCOUTQ, &n) != 0)
        n = -1;
    if (busy)
        *busy = fd >= 0 && ioctl(fd, TIOCSERGETLSR, &lsr) == 0 && !(lsr & TIOCSER_TEMT);
    if (fd >= 0)
        ::close(fd);
    return n;
}

// The plugin loaded and negotiated, its hooks; nullptr when that failed.
const devhost_hooks *load(const char *file, devhost_error &err)
{
    void *lib = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    auto negotiate = lib ? reinterpret_cast<devhost_negotiate_fn>(dlsym(lib, DEVHOST_ENTRY_POINT_NAME)) : nullptr;
    devhost_negotiation n{};
    n.struct_size = sizeof n;
    n.host_abi_version = DEVHOST_ABI_VERSION;
    n.host_min_abi_version = DEVHOST_MAKE_VERSION(1, 0);
    n.services = &services;
    n.error = &err;
    if (!negotiate || negotiate(&n) != DEVHOST_OK)
        return nullptr;
    return n.descriptor->hooks;
}

// Opens `tty` with the options given by name (the plugin finds a value
// whose index does not match) and no deadline.
devhost_status open_tty(const devhost_hooks &hooks, const char *tty, const std::vector<devhost_option_value> &options,
                        devhost_device **dev, devhost_error &err)
{
    devhost_open_params p{};
    p.struct_size = sizeof p;
    p.device_name = "probe";
    p.path = tty;
    p.configured_path = tty;
    p.options = options.data();
    p.option_count = uint32_t(options.size());
    p.timeout_ms = -1;
    p.cancel_fd = -1;
    g_deadline = DEVHOST_DEADLINE_NONE;
    return hooks.open(&p, dev, &err);
}

int xoff(const devhost_hooks &hooks, const char *tty, devhost_error &err)
{
    const std::vector<devhost_option_value> options = {
        {sizeof(devhost_option_value), DEVHOST_OPTION_ENUM, "flow", "xonxoff", 2, 1, 0},
        {sizeof(devhost_option_value), DEVHOST_OPTION_BOOL, "exclusive", "false", 0, 1, 0},
    };
    devhost_device *dev = nullptr;
    if (open_tty(hooks, tty, options, &dev, err) != DEVHOST_OK)
        return failed("HIL-CLOSE-XOFF", "open", err);
    if (write_bytes(hooks, dev, "\x13", err) != DEVHOST_OK)
        return failed("HIL-CLOSE-XOFF", "writing XOFF", err);
    usleep(500 * 1000);  // its echo comes back and stops the tty's output
    if (write_bytes(hooks, dev, std::string(4000, 'q'), err) != DEVHOST_OK)
        return failed("HIL-CLOSE-XOFF", "writing 4000 bytes", err);
    const int held = queued(tty, nullptr);

    g_deadline = devhost_util_now_ns() + 300 * 1000000ull;
    const uint64_t t0 = devhost_util_now_ns();
    devhost_status s = hooks.close(dev, &err);
    const uint64_t ms = ms_since(t0);
    std::printf("HIL-CLOSE-XOFF queued=%d status=%s ms=%llu\n", held, devhost_status_name(s),
                static_cast<unsigned long long>(ms));
    for (const auto &line : g_log)
        std::printf("HIL-CLOSE-LOG %s\n", line.c_str());
    return 0;
}

// Sets `tty` to 50 baud on a descriptor of its own, so that the settings
// the plugin finds at open, and restores before its final close, are 50
// baud's: the kernel's wait for the transmitter is then 50 baud's too.
bool set_50_baud(const char *tty)
{
    int fd = ::open(tty, O_RDWR | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    struct termios2 t;
    bool ok = fd >= 0 && ioctl(fd, TCGETS2, &t) == 0;
    if (ok) {
        t.c_cflag &= ~tcflag_t(CBAUD | (CBAUD << IBSHIFT));
        t.c_cflag |= B50 | (B50 << IBSHIFT);
        t.c_ispeed = t.c_ospeed = 50;
        ok = ioctl(fd, TCSETS2, &t) == 0 && ioctl(fd, TCGETS2, &t) == 0 && t.c_ospeed == 50;
    }
    if (fd >= 0)
        ::close(fd);
    return ok;
}

// "handler" when SIGRTMAX-4 (the plugin's close signal) has one, else
// "default" or "ignored".
const char *disposition()
{
    struct sigaction sa;
    if (sigaction(SIGRTMAX - 4, nullptr, &sa) != 0)
        return "unknown";
    if (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL)
        return "default";
    if (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN)
        return "ignored";
    return "handler";
}

bool logged(const std::string &line)
{
    for (const auto &l : g_log)
        if (l == line)
            return true;
    return false;
}

int stall(const devhost_hooks &hooks, const char *tty, devhost_error &err)
{
    std::string failures;
    auto expect = [&](bool ok, const std::string &what) {
        if (!ok)
            failures += (failures.empty() ? "" : "; ") + what;
    };
    if (!set_50_baud(tty))
        return std::printf("HIL-CLOSE-STALL failed: cannot set %s to 50 baud\n", tty), 1;
    const std::vector<devhost_option_value> options = {
        {sizeof(devhost_option_value), DEVHOST_OPTION_INT, "baud", "50", 50, 1, 0},
    };
    devhost_device *dev = nullptr;
    if (open_tty(hooks, tty, options, &dev, err) != DEVHOST_OK)
        return failed("HIL-CLOSE-STALL", "open", err);
    if (write_bytes(hooks, dev, std::string(4000, 's'), err) != DEVHOST_OK)
        return failed("HIL-CLOSE-STALL", "writing 4000 bytes", err);
    usleep(300 * 1000);  // the UART sends what the peer's socket takes, then holds
    bool busy = false;
    const int held = queued(tty, &busy);
    expect(held > 0 && busy, "the output was not held (QEMU's UART sent it all)");

    g_deadline = devhost_util_now_ns() + 300 * 1000000ull;
    uint64_t t0 = devhost_util_now_ns();
    devhost_status s = hooks.close(dev, &err);
    const uint64_t ms = ms_since(t0);
    std::printf("HIL-CLOSE-STALL held=%d transmitter=%s status=%s ms=%llu\n", held, busy ? "busy" : "empty",
                devhost_status_name(s), static_cast<unsigned long long>(ms));
    for (const auto &line : g_log)
        std::printf("HIL-CLOSE-STALL-LOG %s\n", line.c_str());
    expect(s == DEVHOST_OK, "close returned " + std::string(devhost_status_name(s)));
    expect(ms < 300 + 200, "close took " + std::to_string(ms) + " ms, not < 500 (its deadline 300 ms + 200)");
    expect(logged("serial: " + std::string(tty) +
                  ": the kernel was still sending the last bytes (the transmitter's FIFO) when close's deadline "
                  "came; close was cut there and they may be lost"),
           "no log line for the cut close");
    const char *loaded = disposition();

    // Opened again at once (the locks are gone, the port closed), then
    // closed with no deadline: the kernel's own wait for the transmitter.
    g_log.clear();
    t0 = devhost_util_now_ns();
    s = open_tty(hooks, tty, options, &dev, err);
    const uint64_t reopen_ms = ms_since(t0);
    std::printf("HIL-CLOSE-STALL-REOPEN status=%s ms=%llu\n", devhost_status_name(s),
                static_cast<unsigned long long>(reopen_ms));
    expect(s == DEVHOST_OK && reopen_ms < 100, "the port did not open again at once");
    if (s == DEVHOST_OK) {
        g_deadline = DEVHOST_DEADLINE_NONE;
        t0 = devhost_util_now_ns();
        s = hooks.close(dev, &err);
        std::printf("HIL-CLOSE-STALL-NODEADLINE status=%s ms=%llu\n", devhost_status_name(s),
                    static_cast<unsigned long long>(ms_since(t0)));
    }

    if (DEVHOST_HAS_FIELD(devhost_hooks, hooks.struct_size, unload) && hooks.unload)
        hooks.unload();
    const char *unloaded = disposition();
    std::printf("HIL-CLOSE-STALL-SIGNAL loaded=%s unloaded=%s\n", loaded, unloaded);
    expect(std::strcmp(loaded, "handler") == 0, "SIGRTMAX-4 had no handler after the close");
    expect(std::strcmp(unloaded, "default") == 0, "unload did not give SIGRTMAX-4 back");
    if (!failures.empty())
        return std::printf("HIL-CLOSE-STALL-RESULT FAILED: %s\n", failures.c_str()), 1;
    std::printf("HIL-CLOSE-STALL-RESULT ok\n");
    return 0;
}

}  // namespace

int main(int argc, char **argv)
{
    const std::string scenario = argc == 4 ? argv[3] : "";
    if (scenario != "xoff" && scenario != "stall") {
        std::printf("usage: serial_close_probe PLUGIN TTY xoff|stall\n");
        return 2;
    }
    const char *tag = scenario == "xoff" ? "HIL-CLOSE-XOFF" : "HIL-CLOSE-STALL";
    devhost_error err;
    devhost_util_error_init(&err);
    const devhost_hooks *hooks = load(argv[1], err);
    if (!hooks)
        return failed(tag, "loading the plugin", err);
    return scenario == "xoff" ? xoff(*hooks, argv[2], err) : stall(*hooks, argv[2], err);
}
