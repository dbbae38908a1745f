// The serial class: descriptor, option schema, control table and the device
// class behind the v1 C ABI, written on devhost/plugin.hpp (which generates
// the hook table and catches every exception at the boundary). This file
// turns option values into Settings; the tty work is in backend_tty.cpp,
// the sysfs look-ups in backend_sysfs.cpp, the machine's ttys in
// backend_enumerate.cpp, the close signal in close_signal.cpp. Options,
// controls and info keys are listed in README.md.
//
//   open        the constructor: options -> Settings, then Port::open;
//               exclusive, the tty is handed to the host (share_fd "tty")
//   close       lets queued output drain until just before the hook's
//               deadline, discards the rest, restores the termios found at
//               open, drops the locks, takes back the host's copy of the
//               tty; the kernel's wait in the final close(2) is cut at the
//               deadline (close_signal.cpp)
//   info        name, path, tty, driver, mode, settings, modem lines, USB ids
//   transfer    WRITE, READ, READ_EXACT, READ_UNTIL, REQUEST, CONTROL
//   enumerate   ttys with a driver (ptys with DEVHOST_ENUMERATE_ALL)
//   unload      gives back the close signal's handler (SIGRTMAX-4)
//   connect, disconnect, lock, unlock: none (NULL hooks)
// Every hook keeps to the host's deadline (devhost::deadline, ABI 1.1).
#include "serial_private.hpp"

#include <devhost/plugin.hpp>

#include <string>
#include <vector>

using devhost::serial::choices_follow;
using devhost::serial::Flow;
using devhost::serial::flow_name;
using devhost::serial::Line;
using devhost::serial::line_name;
using devhost::serial::Parity;
using devhost::serial::parity_name;
using devhost::serial::Port;
using devhost::serial::Settings;

namespace {

// The schema, in this order (options are looked up by index).
enum Option : uint32_t {
    opt_baud,
    opt_data_bits,
    opt_parity,
    opt_stop_bits,
    opt_flow,
    opt_read_total_timeout,
    opt_read_interval_timeout,
    opt_dtr,
    opt_rts,
    opt_hupcl,
    opt_exclusive,
    opt_overlapped,
    opt_count
};

constexpr uint32_t S = sizeof(devhost_option_spec);
constexpr devhost_option_spec k_options[opt_count] = {
    {S, DEVHOST_OPTION_INT, "baud", "9600", "line speed; any rate the driver can make (termios2/BOTHER)", nullptr, 50, 4000000},
    {S, DEVHOST_OPTION_INT, "data-bits", "8", "data bits per character, 5 to 8", nullptr, 5, 8},
    {S, DEVHOST_OPTION_ENUM, "parity", "none", "parity bit", "none|odd|even|mark|space", 0, 0},
    {S, DEVHOST_OPTION_INT, "stop-bits", "1", "stop bits, 1 or 2", nullptr, 1, 2},
    {S, DEVHOST_OPTION_ENUM, "flow", "none", "flow control", "none|rtscts|xonxoff", 0, 0},
    {S, DEVHOST_OPTION_DURATION, "read-total-timeout", "0", "longest any read may take (0: only the step's timeout)", nullptr, 0, 0},
    {S, DEVHOST_OPTION_DURATION, "read-interval-timeout", "0", "longest gap between two received bytes (0: no limit)", nullptr, 0, 0},
    {S, DEVHOST_OPTION_ENUM, "dtr", "unchanged", "DTR line after open", "unchanged|on|off", 0, 0},
    {S, DEVHOST_OPTION_ENUM, "rts", "unchanged", "RTS line after open (ignored by the driver with flow=rtscts)", "unchanged|on|off", 0, 0},
    {S, DEVHOST_OPTION_ENUM, "hupcl", "unchanged", "drop DTR/RTS on last close", "unchanged|on|off", 0, 0},
    {S, DEVHOST_OPTION_BOOL, "exclusive", "true", "refuse other users: flock and TIOCEXCL", nullptr, 0, 0,
     DEVHOST_OPTION_EXCLUSIVE, 0},
    {S, DEVHOST_OPTION_BOOL, "overlapped", "false", "non-blocking, readiness-driven handle (default: synchronous)", nullptr, 0, 0},
};

// Each ENUM option's choices are its enum's values, in order (the host
// passes a choice as its index: see serial_private.hpp).
static_assert(choices_follow(k_options[opt_parity].choices, parity_name), "parity's choices follow Parity");
static_assert(choices_follow(k_options[opt_flow].choices, flow_name), "flow's choices follow Flow");
static_assert(choices_follow(k_options[opt_dtr].choices, line_name), "dtr's choices follow Line");
static_assert(choices_follow(k_options[opt_rts].choices, line_name), "rts's choices follow Line");
static_assert(choices_follow(k_options[opt_hupcl].choices, line_name), "hupcl's choices follow Line");

constexpr uint32_t C = sizeof(devhost_control_spec);
const devhost_control_spec k_controls[] = {
    {C, devhost::serial::control_set_dtr, "set-dtr", "raise DTR", DEVHOST_CONTROL_MODIFIES},
    {C, devhost::serial::control_clear_dtr, "clear-dtr", "drop DTR", DEVHOST_CONTROL_MODIFIES},
    {C, devhost::serial::control_set_rts, "set-rts", "raise RTS", DEVHOST_CONTROL_MODIFIES},
    {C, devhost::serial::control_clear_rts, "clear-rts", "drop RTS", DEVHOST_CONTROL_MODIFIES},
    {C, devhost::serial::control_get_modem_lines, "get-modem-lines", "read DTR RTS CTS DSR DCD RI as text", 0},
    {C, devhost::serial::control_send_break, "send-break", "hold a break; input: its length in ms (default 250)", DEVHOST_CONTROL_MODIFIES},
    {C, devhost::serial::control_flush_input, "flush-input", "discard received bytes, buffered ones included", DEVHOST_CONTROL_MODIFIES},
    {C, devhost::serial::control_flush_output, "flush-output", "discard bytes not yet sent", DEVHOST_CONTROL_MODIFIES},
    {C, devhost::serial::control_drain, "drain", "wait until every written byte has left", 0},
};

// The paths the class serves (ABI 1.1): the ttys (/dev/tty*, /dev/pts/*),
// the common kinds named (a more specific pattern wins over another
// class's broader one), and the udev links under /dev/serial/ (by-id,
// by-path: the host matches without FNM_PATHNAME, so one * takes any
// depth).
constexpr auto k_paths = devhost::path_patterns("/dev/ttyS*", "/dev/ttyUSB*", "/dev/ttyACM*", "/dev/ttyAMA*",
                                                "/dev/pts/*", "/dev/serial/*", "/dev/tty*");

// Throws the DEVHOST_E_INVALID that names a bad option value.
[[noreturn]] void invalid(const std::string &what)
{
    throw devhost::error(DEVHOST_E_INVALID, "serial: " + what);
}

// An ENUM option as E, whose values are the option's choices in order: the
// index the host parsed the text to (the host refused any other text).
template <class E>
E choice(const devhost_open_params &p, Option o, E fallback)
{
    const int index = devhost_util_option_choice(&p, k_options, o, static_cast<int>(fallback));
    if (index < 0)
        invalid(std::string(k_options[o].name) + ": choice " +
                std::to_string(devhost_util_option_int(&p, k_options, o, 0)) + " is not one of " +
                k_options[o].choices);
    return static_cast<E>(index);
}

// Reads Settings from the option values (the host has validated them against
// the schema; check again, the values are not trusted blindly).
Settings read_settings(const devhost_open_params &p)
{
    // An option's integer; an INT within the bounds its schema entry
    // declares (the one place they are written).
    auto integer = [&](Option o, int64_t fallback) {
        const int64_t v = devhost_util_option_int(&p, k_options, o, fallback);
        if (k_options[o].type == DEVHOST_OPTION_INT && (v < k_options[o].min || v > k_options[o].max))
            invalid(std::string(k_options[o].name) + "=" + std::to_string(v) + " is out of range " +
                    std::to_string(k_options[o].min) + ".." + std::to_string(k_options[o].max));
        return v;
    };
    Settings s;
    s.baud = uint32_t(integer(opt_baud, 9600));
    s.data_bits = int(integer(opt_data_bits, 8));
    s.stop_bits = int(integer(opt_stop_bits, 1));
    s.parity = choice(p, opt_parity, Parity::none);
    s.flow = choice(p, opt_flow, Flow::none);
    s.dtr = choice(p, opt_dtr, Line::unchanged);
    s.rts = choice(p, opt_rts, Line::unchanged);
    s.hupcl = choice(p, opt_hupcl, Line::unchanged);
    s.read_total_ms = integer(opt_read_total_timeout, 0);
    s.read_interval_ms = integer(opt_read_interval_timeout, 0);
    if (s.read_total_ms < 0 || s.read_interval_ms < 0)
        invalid("read timeouts cannot be negative");
    s.exclusive = integer(opt_exclusive, 1) != 0;
    s.overlapped = integer(opt_overlapped, 0) != 0;
    s.inherit = (p.flags & DEVHOST_OPEN_INHERIT) != 0;
    return s;
}

// One serial device: a Port, whose members report the C way (a status, and
// the host's error record filled).
class SerialDevice {
public:
    // open: first call for a device. Statuses: NOT_FOUND, BUSY, ACCESS,
    // INVALID (bad option, not a tty), UNSUPPORTED (a setting the device did
    // not take), IO, NO_MEMORY. A failure closes what was opened (~Port).
    // params and its strings are borrowed for this call; host_device and
    // cancel_fd are kept until close.
    explicit SerialDevice(const devhost_open_params &params)
        : port_(params.cancel_fd, devhost::host_services(), params.host_device)
    {
        if (!params.path || !*params.path)
            throw devhost::error(DEVHOST_E_INVALID, "serial: no path given");
        Settings s = read_settings(params);
        devhost_error err = devhost::error_record();
        devhost::check(port_.open(params.device_name ? params.device_name : "", params.path, s, &err), err);
        devhost_logf(devhost::host_services(), params.host_device, DEVHOST_LOG_DEBUG, "opened %s at %u baud%s",
                     params.path, s.baud, s.exclusive ? ", exclusive" : "");
    }

    // enumerate: the ttys of this machine (ptys too with
    // DEVHOST_ENUMERATE_ALL), from sysfs and /dev, by deadline(nullptr).
    // Returns OK, or TIMEOUT with what was found by then.
    static devhost_status enumerate(const devhost_enumerate_params &params, devhost::found_sink &sink,
                                    devhost_error &err)
    {
        std::vector<devhost::serial::FoundTty> found;
        devhost_status status =
            devhost::serial::enumerate_ttys(params.flags & DEVHOST_ENUMERATE_ALL, devhost::deadline(nullptr), found, &err);
        for (const auto &f : found)
            sink.put({f.path, f.by_id, f.description, f.usb_vendor, f.usb_product, f.usb_serial});
        return status;
    }

    // close: any state; lets queued output drain until just before the
    // hook's deadline and discards the rest, restores the termios found at
    // open, drops flock and TIOCEXCL, closes the fd, the kernel's wait for
    // the transmitter in that close cut at the deadline (a 1.0 host gives no
    // deadline: then the kernel's closing wait applies, as before).
    // Returns OK or IO (settings not restored); a cut close is OK, logged.
    devhost_status close(devhost_error &err) { return port_.close(&err); }

    // unload: every device is closed; gives back the disposition of the
    // close signal (SIGRTMAX-4) if its handler is still ours.
    static void unload() { devhost::serial::give_back_close_signal(); }

    // info: state open; waits for nothing (sysfs and ioctls that do not
    // block), so it ends well within any deadline. Returns OK. The sink's
    // strings are copied by the host.
    devhost_status info(devhost::info_sink &sink, devhost_error &err) { return port_.info(&sink.c_sink(), &err); }

    // transfer: state open (serial needs no connect or lock). Returns OK,
    // TIMEOUT, CANCELLED, REMOVED (hang-up, EIO/ENXIO), PROTOCOL (no delimiter
    // within the buffer), INVALID, UNSUPPORTED (control not possible on this
    // tty; an offset), IO. The host owns x and its buffers.
    devhost_status transfer(devhost_transfer &x, devhost_error &err)
    {
        if (x.flags & DEVHOST_TRANSFER_HAS_OFFSET)
            return devhost_fail(&err, DEVHOST_E_UNSUPPORTED, 0, "serial: a serial port has no offsets");
        return port_.transfer(&x, &err);
    }

private:
    Port port_;
};

const devhost_plugin_descriptor k_descriptor = [] {
    auto d = devhost::describe<SerialDevice>(
        "serial", "serial", "1.0.0",
        "Serial ports (ttys): exclusive open, termios settings, read/write/expect, modem-line controls");
    devhost::set_options(d, k_options);
    devhost::set_controls(d, k_controls);
    devhost::set_path_patterns(d, k_paths);
    d.transfer_ops = DEVHOST_OP_BIT(DEVHOST_OP_WRITE) | DEVHOST_OP_BIT(DEVHOST_OP_READ) |
                     DEVHOST_OP_BIT(DEVHOST_OP_READ_EXACT) | DEVHOST_OP_BIT(DEVHOST_OP_READ_UNTIL) |
                     DEVHOST_OP_BIT(DEVHOST_OP_REQUEST) | DEVHOST_OP_BIT(DEVHOST_OP_CONTROL);
    return d;
}();

}  // namespace

DEVHOST_PLUGIN_ENTRY(k_descriptor)
