// serial_close_probe: serial's close under a deadline on a real UART held by
// XOFF, for the hil guest (guest-run.sh), where the kernel's closing wait
// (30 s by default) is what a close would otherwise wait.
//
//   serial_close_probe PLUGIN TTY
//
// Loads PLUGIN (serial.so) with a services table whose deadline_ns answers
// what this program sets (the host gives close no deadline before ABI 1.1's
// host side), opens TTY with flow=xonxoff, writes XOFF (0x13), which the
// hil peer echoes back so that the tty stops its own output, waits for the
// echo, writes 4000 bytes (queued: none can go), and closes with a deadline
// 300 ms away. Prints
//   HIL-CLOSE-XOFF queued=N status=NAME ms=M
//   HIL-CLOSE-LOG <each line the plugin logged>
// Exit 0 when it got that far, 1 otherwise (the reason on stdout).
#include <devhost/plugin.h>
#include <devhost/plugin_util.h>

#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <string>
#include <sys/ioctl.h>
#include <unistd.h>
#include <vector>

namespace {

uint64_t g_deadline = DEVHOST_DEADLINE_NONE;
std::vector<std::string> g_log;

void log_line(const devhost_host_device *, int32_t, const char *message) { g_log.emplace_back(message); }
uint64_t deadline_ns(const devhost_host_device *) { return g_deadline; }
devhost_status share_fd(const devhost_host_device *, int32_t, const char *) { return DEVHOST_E_UNSUPPORTED; }

const devhost_host_services services = {sizeof(devhost_host_services), DEVHOST_ABI_VERSION, log_line,
                                        devhost_util_now_ns, deadline_ns, share_fd};

int failed(const char *what, const devhost_error &err)
{
    std::printf("HIL-CLOSE-XOFF failed: %s: %s\n", what, err.message);
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
// (closed again: the plugin's close must be the last).
int queued(const char *tty)
{
    int fd = ::open(tty, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    int n = -1;
    if (fd >= 0 && ioctl(fd, TIOCOUTQ, &n) != 0)
        n = -1;
    if (fd >= 0)
        ::close(fd);
    return n;
}

}  // namespace

int main(int argc, char **argv)
{
    if (argc != 3) {
        std::printf("usage: serial_close_probe PLUGIN TTY\n");
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    auto negotiate = lib ? reinterpret_cast<devhost_negotiate_fn>(dlsym(lib, DEVHOST_ENTRY_POINT_NAME)) : nullptr;
    devhost_error err;
    devhost_util_error_init(&err);
    devhost_negotiation n{};
    n.struct_size = sizeof n;
    n.host_abi_version = DEVHOST_ABI_VERSION;
    n.host_min_abi_version = DEVHOST_MAKE_VERSION(1, 0);
    n.services = &services;
    n.error = &err;
    if (!negotiate || negotiate(&n) != DEVHOST_OK)
        return failed("loading the plugin", err);
    const devhost_hooks &hooks = *n.descriptor->hooks;

    // Options by name (the plugin finds a value whose index does not match).
    const devhost_option_value options[] = {
        {sizeof(devhost_option_value), DEVHOST_OPTION_ENUM, "flow", "xonxoff", 2, 1, 0},
        {sizeof(devhost_option_value), DEVHOST_OPTION_BOOL, "exclusive", "false", 0, 1, 0},
    };
    devhost_open_params p{};
    p.struct_size = sizeof p;
    p.device_name = "probe";
    p.path = argv[2];
    p.configured_path = argv[2];
    p.options = options;
    p.option_count = 2;
    p.timeout_ms = -1;
    p.cancel_fd = -1;
    devhost_device *dev = nullptr;
    if (hooks.open(&p, &dev, &err) != DEVHOST_OK)
        return failed("open", err);
    if (write_bytes(hooks, dev, "\x13", err) != DEVHOST_OK)
        return failed("writing XOFF", err);
    usleep(500 * 1000);  // its echo comes back and stops the tty's output
    if (write_bytes(hooks, dev, std::string(4000, 'q'), err) != DEVHOST_OK)
        return failed("writing 4000 bytes", err);
    const int held = queued(argv[2]);

    g_deadline = devhost_util_now_ns() + 300 * 1000000ull;
    const uint64_t t0 = devhost_util_now_ns();
    devhost_status s = hooks.close(dev, &err);
    const uint64_t ms = (devhost_util_now_ns() - t0) / 1000000u;
    std::printf("HIL-CLOSE-XOFF queued=%d status=%s ms=%llu\n", held, devhost_status_name(s),
                static_cast<unsigned long long>(ms));
    for (const auto &line : g_log)
        std::printf("HIL-CLOSE-LOG %s\n", line.c_str());
    return 0;
}
