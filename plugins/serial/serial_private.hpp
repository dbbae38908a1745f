// The serial plugin's private header: the settings plugin.cpp reads from the
// options, and the backends behind them: one open tty, its locks, its
// termios settings and transfers (backend_tty.cpp), its sysfs facts
// (backend_sysfs.cpp), the ttys of this machine (backend_enumerate.cpp),
// and the signal that cuts a tty's final close at its deadline
// (close_signal.cpp). Linux only (termios2, TIOCEXCL, flock, sysfs).
// Everything here reports failures through a devhost_error and a
// devhost_status, as a C hook does; nothing throws on purpose (plugin.hpp's
// guard still catches).
#pragma once

#include <devhost/plugin.h>
#include <devhost/unique_fd.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace devhost::serial {

// Settings as configured; "unchanged" is a value for the lines and hupcl.
// Each enum is its ENUM option's choices, in order: the host hands open a
// choice as its index, which is the enum's value. Its name function spells
// the choices (and "?" past the last), and plugin.cpp's schema is checked
// against it at compile time (choices_follow), so the two cannot drift.
enum class Parity { none, odd, even, mark, space };
enum class Flow { none, rtscts, xonxoff };
enum class Line { unchanged, on, off };

constexpr const char *parity_name(Parity p)
{
    switch (p) {
    case Parity::none: return "none";
    case Parity::odd: return "odd";
    case Parity::even: return "even";
    case Parity::mark: return "mark";
    case Parity::space: return "space";
    }
    return "?";
}

constexpr const char *flow_name(Flow f)
{
    switch (f) {
    case Flow::none: return "none";
    case Flow::rtscts: return "rtscts";
    case Flow::xonxoff: return "xonxoff";
    }
    return "?";
}

constexpr const char *line_name(Line l)
{
    switch (l) {
    case Line::unchanged: return "unchanged";
    case Line::on: return "on";
    case Line::off: return "off";
    }
    return "?";
}

// Whether `choices` ("a|b|c", an ENUM spec's) names E's values in order,
// name(E(0)) first, and E has no value past the last choice.
template <class E>
constexpr bool choices_follow(const char *choices, const char *(*name)(E))
{
    int index = 0;
    for (const char *c = choices;; index++) {
        const char *n = name(static_cast<E>(index));
        while (*n && *n == *c) {
            n++;
            c++;
        }
        if (*n || (*c != '|' && *c != '\0'))
            return false;
        if (*c++ == '\0')
            break;
    }
    return name(static_cast<E>(index + 1))[0] == '?';
}

struct Settings {
    uint32_t baud = 9600;
    int data_bits = 8;
    Parity parity = Parity::none;
    int stop_bits = 1;
    Flow flow = Flow::none;
    Line hupcl = Line::unchanged;
    Line dtr = Line::unchanged;
    Line rts = Line::unchanged;
    int64_t read_total_ms = 0;     // 0: only the transfer's own timeout
    int64_t read_interval_ms = 0;  // 0: no inter-byte limit
    bool exclusive = true;
    bool overlapped = false;
    bool inherit = false;
};

// Control codes (the numbers are the ABI codes in the control table).
enum Control : uint32_t {
    control_set_dtr = 1,
    control_clear_dtr = 2,
    control_set_rts = 3,
    control_clear_rts = 4,
    control_get_modem_lines = 5,
    control_send_break = 6,
    control_flush_input = 7,
    control_flush_output = 8,
    control_drain = 9,
};

class Port {
public:
    // cancel_fd: the host's cancel handle for the device, polled by every
    // wait; valid until close. services and host_device: where the hook
    // deadline comes from (devhost_hook_deadline; none from a 1.0 host).
    Port(int cancel_fd, const devhost_host_services *services, const devhost_host_device *host_device);
    ~Port();  // closes without reporting (close() reports)
    Port(const Port &) = delete;
    Port &operator=(const Port &) = delete;

    // Opens and sets up the tty; exclusive, it then hands the host a copy
    // of it (share_fd, role "tty": devhost/plugin_util.h, section 6).
    devhost_status open(const std::string &name, const std::string &path, const Settings &settings,
                        devhost_error *err);
    // Restores the settings found at open, drops the locks, takes back the
    // host's copy, closes the fd, by the hook's deadline (see settle_output
    // and close_by_deadline).
    devhost_status close(devhost_error *err);
    devhost_status transfer(devhost_transfer *xfer, devhost_error *err);
    devhost_status info(const devhost_info_sink *sink, devhost_error *err);

private:
    devhost_status take_locks(devhost_error *err);
    devhost_status apply_settings(devhost_error *err);
    devhost_status set_lines(int bits, bool on, const char *what, devhost_error *err);
    devhost_status get_lines(int &bits, devhost_error *err);

    // Waits for `events` on the fd until `deadline_ns` (absolute monotonic,
    // DEVHOST_DEADLINE_NONE: none; see devhost/plugin_util.h). Returns OK
    // when ready, E_TIMEOUT, E_CANCELLED, E_REMOVED (POLLHUP/POLLERR) or E_IO.
    // POLLIN with a hang-up is OK (data is handed out first) and sets hup_seen_.
    devhost_status wait(short events, uint64_t deadline_ns, devhost_error *err, const char *doing);
    // One read of whatever is there (at most `max`), appended to pending_.
    // Nothing there (EAGAIN) is OK, unless the last wait saw a hang-up.
    devhost_status read_some(size_t max, devhost_error *err);
    // poll_first: wait for room before the first write too.
    devhost_status write_all(devhost_transfer *xfer, uint64_t deadline_ns, bool poll_first, devhost_error *err);
    // poll_first: wait before the first read (the bytes cannot be there yet).
    devhost_status read_op(devhost_transfer *xfer, uint64_t deadline_ns, bool poll_first, devhost_error *err);
    struct Read;  // one read_op in progress (backend_tty.cpp)
    devhost_status control(devhost_transfer *xfer, uint64_t deadline_ns, devhost_error *err);
    // Control codes with more to them than one ioctl: send-break (holds the
    // break for its length, or until cancelled or the deadline) and drain (polls the output
    // queue until it is empty, under the deadline).
    devhost_status send_break(devhost_transfer *xfer, uint64_t deadline_ns, devhost_error *err);
    devhost_status drain(uint64_t deadline_ns, devhost_error *err);
    // A control's ioctl failed (errno): removed for a hang-up, else E_IO
    // naming `what`.
    devhost_status control_failed(const char *what, devhost_error *err);
    devhost_status removed(int os_errno, const char *doing, devhost_error *err);
    // The running hook's deadline from the host (DEVHOST_DEADLINE_NONE from
    // a 1.0 host).
    uint64_t hook_deadline() const;
    // A transfer's deadline: the earlier of the hook's and timeout_ms, for
    // reads shortened by read-total-timeout.
    uint64_t deadline(int32_t timeout_ms, bool reading) const;
    // Before the final close: output still queued may drain until shortly
    // before the deadline; what is left then is discarded (TCOFLUSH), so
    // the kernel's closing wait has nothing left to wait for. No deadline
    // (a 1.0 host): nothing is done, as before ABI 1.1.
    void settle_output(uint64_t deadline_ns);
    // Whether the UART's transmitter still holds bytes (its FIFO or shift
    // register), which the kernel's close waits for: TIOCSERGETLSR
    // (serial-core drivers); unknown where the driver cannot tell (USB
    // serial); empty on a pty.
    enum class Tx { empty, busy, unknown };
    Tx transmitter() const;

    int cancel_fd_;
    const devhost_host_services *services_;
    const devhost_host_device *host_device_;
    UniqueFd fd_;
    bool excl_set_ = false;     // we set TIOCEXCL (undo with TIOCNXCL)
    bool shared_ = false;       // the host holds a copy of fd_ ("tty"; share_fd)
    bool saved_valid_ = false;  // saved_ holds the termios found at open
    bool gone_ = false;         // the device was removed
    bool is_pty_ = false;
    // The fd stays O_NONBLOCK while open (reads and writes are tried first
    // and wait with poll only on EAGAIN), except for a synchronous handle
    // that is inherited: then it stays blocking for whoever inherits it, and
    // blocking_fl_ holds its flags, made non-blocking around each write.
    bool nonblocking_ = true;
    int blocking_fl_ = -1;
    bool hup_seen_ = false;     // the last wait saw POLLHUP/POLLERR with POLLIN
    unsigned char saved_[64];   // struct termios2, kept opaque here
    std::string name_, path_;
    std::string who_;           // "serial: PATH", what wait messages start with
    Settings settings_;
    std::vector<uint8_t> pending_;  // bytes read but not yet handed out
};

// The close signal (close_signal.cpp): a tty's final close(2) cut at the
// hook's deadline by SIGRTMAX-4 sent to the closing thread, whose empty
// handler is installed at the first close under a deadline (unless the
// process has a handler of its own) and given back by unload.
int close_signal();
struct TtyClose {
    bool late = false;        // close(2) returned at or after the deadline
    bool began_late = false;  // ... and had begun after it already
    std::string unarmed;      // why the close could not be cut ("": it could)
};
// Closes `fd`, the last descriptor of a tty (never retried: Linux releases it
// even when interrupted), its kernel waits cut at `deadline_ns`; with
// DEVHOST_DEADLINE_NONE a plain close(2). Leaves no instance of the signal
// pending and the thread's signal mask as it found it.
TtyClose close_by_deadline(int fd, uint64_t deadline_ns);
// The unload hook: gives the disposition back while our handler is still
// the one installed. Every device must be closed.
void give_back_close_signal();

// sysfs and /proc look-ups (backend_sysfs.cpp).
std::string read_line(const std::string &file);  // its first line, "" if none
std::string real_path(const std::string &p);     // realpath(3), "" if none
std::string base_name(const std::string &p);     // after the last '/'
struct TtyFacts {
    std::string tty;        // kernel name, e.g. ttyUSB0, pts/3
    std::string driver;     // e.g. ftdi_sio, serial8250, pty_slave
    std::string usb_vendor, usb_product, usb_serial, usb_manufacturer, usb_product_name;
};
TtyFacts tty_facts(int fd);
// Pids (other than our own fd `self_fd`) holding the same tty: from
// /proc/locks (flock holders) and /proc/*/fd. Empty when none can be found.
std::vector<long> tty_holders(int fd, int self_fd);
std::string format_holders(const std::vector<long> &pids);
// The USB device above a sysfs device directory (its idVendor, idProduct,
// serial, manufacturer and product), into f; false when there is none.
bool usb_facts(const std::string &sysfs_device, TtyFacts &f);

// One tty enumerate found (backend_enumerate.cpp); empty: not known.
struct FoundTty {
    std::string path, by_id, description, usb_vendor, usb_product, usb_serial;
};
// The ttys of this machine a serial device can be opened on, from sysfs and
// /dev alone: ttys whose device has a driver (a serial-core port only with
// a UART behind it: its type is not PORT_UNKNOWN), and with `all` the
// pseudo-terminal slaves (/dev/pts/N) too. Never opens the console; opens
// no tty at all where sysfs tells the UART type. Lists only paths that
// exist as the tty's character device. Returns DEVHOST_E_TIMEOUT (with
// what it found so far) once `deadline_ns` passes.
devhost_status enumerate_ttys(bool all, uint64_t deadline_ns, std::vector<FoundTty> &found, devhost_error *err);

}  // namespace devhost::serial
