// The serial class: descriptor, option schema, control table and the hook
// table, behind the v1 C ABI. The tty work is in serial_port.cpp; this file
// turns option values into Settings and keeps C++ exceptions from crossing
// the ABI (every hook catches everything and returns a status).
#include "serial_port.hpp"

#include <devhost/plugin.h>

#include <cstring>
#include <new>
#include <string>

using devhost::serial::Flow;
using devhost::serial::Line;
using devhost::serial::Parity;
using devhost::serial::Port;
using devhost::serial::Settings;

struct devhost_device {
    Port port;
    devhost_device(const devhost_host_services *s, const devhost_host_device *d, int cancel_fd)
        : port(s, d, cancel_fd)
    {
    }
};

namespace {

const devhost_host_services *g_services = nullptr;

constexpr uint32_t S = sizeof(devhost_option_spec);
const devhost_option_spec k_options[] = {
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
    {S, DEVHOST_OPTION_BOOL, "exclusive", "true", "refuse other users: flock and TIOCEXCL", nullptr, 0, 0},
    {S, DEVHOST_OPTION_BOOL, "overlapped", "false", "non-blocking, readiness-driven handle (default: synchronous)", nullptr, 0, 0},
};

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

const devhost_option_value *option(const devhost_open_params *p, const char *name)
{
    if (!p->options || p->option_count == 0)
        return nullptr;
    const devhost_option_value *v = devhost_option_find(p, name);
    return v && v->is_set ? v : nullptr;
}

// Reads Settings from the option values (the host has validated them against
// the schema; check again, the values are not trusted blindly).
devhost_status read_settings(const devhost_open_params *p, Settings &s, devhost_error *err)
{
    auto integer = [&](const char *name, int64_t fallback) {
        const devhost_option_value *v = option(p, name);
        return v ? v->integer : fallback;
    };
    auto text = [&](const char *name, const char *fallback) {
        const devhost_option_value *v = option(p, name);
        return std::string(v ? v->text : fallback);
    };
    int64_t baud = integer("baud", 9600);
    if (baud < 50 || baud > 4000000)
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "serial: baud=%lld is out of range 50..4000000", (long long)baud);
    s.baud = uint32_t(baud);
    s.data_bits = int(integer("data-bits", 8));
    if (s.data_bits < 5 || s.data_bits > 8)
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "serial: data-bits=%d is not 5 to 8", s.data_bits);
    s.stop_bits = int(integer("stop-bits", 1));
    if (s.stop_bits != 1 && s.stop_bits != 2)
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "serial: stop-bits=%d is not 1 or 2", s.stop_bits);
    std::string parity = text("parity", "none");
    if (parity == "none") s.parity = Parity::none;
    else if (parity == "odd") s.parity = Parity::odd;
    else if (parity == "even") s.parity = Parity::even;
    else if (parity == "mark") s.parity = Parity::mark;
    else if (parity == "space") s.parity = Parity::space;
    else return devhost_fail(err, DEVHOST_E_INVALID, 0, "serial: parity=%s is not none|odd|even|mark|space", parity.c_str());
    std::string flow = text("flow", "none");
    if (flow == "none") s.flow = Flow::none;
    else if (flow == "rtscts") s.flow = Flow::rtscts;
    else if (flow == "xonxoff") s.flow = Flow::xonxoff;
    else return devhost_fail(err, DEVHOST_E_INVALID, 0, "serial: flow=%s is not none|rtscts|xonxoff", flow.c_str());
    struct { const char *name; Line *line; } lines[] = {{"dtr", &s.dtr}, {"rts", &s.rts}, {"hupcl", &s.hupcl}};
    for (auto &l : lines) {
        std::string v = text(l.name, "unchanged");
        if (v == "unchanged") *l.line = Line::unchanged;
        else if (v == "on") *l.line = Line::on;
        else if (v == "off") *l.line = Line::off;
        else return devhost_fail(err, DEVHOST_E_INVALID, 0, "serial: %s=%s is not unchanged|on|off", l.name, v.c_str());
    }
    s.read_total_ms = integer("read-total-timeout", 0);
    s.read_interval_ms = integer("read-interval-timeout", 0);
    if (s.read_total_ms < 0 || s.read_interval_ms < 0)
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "serial: read timeouts cannot be negative");
    s.exclusive = integer("exclusive", 1) != 0;
    s.overlapped = integer("overlapped", 0) != 0;
    s.inherit = (p->flags & DEVHOST_OPEN_INHERIT) != 0;
    return DEVHOST_OK;
}

// open: called first for a device; *device gets a Port that close() takes
// even when open fails half-way (the host then calls close). Statuses:
// OK, NOT_FOUND, BUSY, ACCESS, INVALID (bad option, not a tty),
// UNSUPPORTED (a setting the device did not take), IO, NO_MEMORY.
// params and its strings are borrowed for this call; host_device and
// cancel_fd are kept until close.
devhost_status serial_open(const devhost_open_params *params, devhost_device **device, devhost_error *err)
{
    try {
        *device = nullptr;
        if (!params || !params->path || !*params->path)
            return devhost_fail(err, DEVHOST_E_INVALID, 0, "serial: no path given");
        Settings s;
        devhost_status st = read_settings(params, s, err);
        if (st != DEVHOST_OK)
            return st;
        auto *dev = new devhost_device(g_services, params->host_device, params->cancel_fd);
        *device = dev;
        st = dev->port.open(params->device_name ? params->device_name : "", params->path, s, err);
        if (st == DEVHOST_OK)
            devhost_logf(g_services, params->host_device, DEVHOST_LOG_DEBUG, "opened %s at %u baud%s", params->path,
                         s.baud, s.exclusive ? ", exclusive" : "");
        return st;
    } catch (const std::bad_alloc &) {
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, ENOMEM, "serial: out of memory opening the port");
    } catch (const std::exception &e) {
        return devhost_fail(err, DEVHOST_E_IO, 0, "serial: open failed: %s", e.what());
    } catch (...) {
        return devhost_fail(err, DEVHOST_E_IO, 0, "serial: open failed");
    }
}

// close: any state, half-opened included; restores the termios found at
// open, drops flock/TIOCEXCL, closes the fd and frees `device` whatever the
// status. Returns OK or IO (settings could not be restored).
devhost_status serial_close(devhost_device *device, devhost_error *err)
{
    if (!device)
        return DEVHOST_OK;
    devhost_status st = DEVHOST_OK;
    try {
        st = device->port.close(err);
    } catch (...) {
        st = devhost_fail(err, DEVHOST_E_IO, 0, "serial: close failed");
    }
    delete device;
    return st;
}

// info: state open. Reports name, path, tty, driver, mode, settings, modem
// lines, USB ids. Returns OK. The sink's strings are copied by the host.
devhost_status serial_info(devhost_device *device, const devhost_info_sink *sink, devhost_error *err)
{
    try {
        return device->port.info(sink, err);
    } catch (const std::bad_alloc &) {
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, ENOMEM, "serial: out of memory in info");
    } catch (...) {
        return devhost_fail(err, DEVHOST_E_IO, 0, "serial: info failed");
    }
}

// transfer: state open (serial needs no connect or lock). Ops: WRITE, READ,
// READ_EXACT, READ_UNTIL, REQUEST, CONTROL. Returns OK, TIMEOUT, CANCELLED,
// REMOVED (hang-up, EIO/ENXIO), PROTOCOL (no delimiter within the buffer),
// INVALID, UNSUPPORTED (control not possible on this tty; an offset), IO. The host owns
// xfer and its buffers.
devhost_status serial_transfer(devhost_device *device, devhost_transfer *xfer, devhost_error *err)
{
    if (xfer->flags & DEVHOST_TRANSFER_HAS_OFFSET)
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "serial: a serial port has no offsets");
    try {
        return device->port.transfer(xfer, err);
    } catch (const std::bad_alloc &) {
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, ENOMEM, "serial: out of memory in a transfer");
    } catch (...) {
        return devhost_fail(err, DEVHOST_E_IO, 0, "serial: transfer failed");
    }
}

const devhost_hooks k_hooks = {
    sizeof(devhost_hooks), 0, serial_open, serial_close, nullptr, nullptr, nullptr, nullptr, serial_info, serial_transfer,
};

const devhost_plugin_descriptor k_descriptor = {
    sizeof(devhost_plugin_descriptor),
    0,
    "serial",
    "serial",
    "1.0.0",
    "Serial ports (ttys): exclusive open, termios settings, read/write/expect, modem-line controls",
    k_options,
    uint32_t(sizeof k_options / sizeof k_options[0]),
    uint32_t(sizeof k_controls / sizeof k_controls[0]),
    k_controls,
    &k_hooks,
    DEVHOST_OP_BIT(DEVHOST_OP_WRITE) | DEVHOST_OP_BIT(DEVHOST_OP_READ) | DEVHOST_OP_BIT(DEVHOST_OP_READ_EXACT) |
        DEVHOST_OP_BIT(DEVHOST_OP_READ_UNTIL) | DEVHOST_OP_BIT(DEVHOST_OP_REQUEST) | DEVHOST_OP_BIT(DEVHOST_OP_CONTROL),
    0,
    0,
    0,
};

}  // namespace

extern "C" DEVHOST_EXPORT devhost_status devhost_plugin_negotiate(devhost_negotiation *n)
{
    if (!n || !DEVHOST_HAS_FIELD(devhost_negotiation, n->struct_size, descriptor))
        return DEVHOST_E_INVALID;
    if (DEVHOST_VERSION_MAJOR(n->host_abi_version) != DEVHOST_ABI_VERSION_MAJOR) {
        if (n->error)
            devhost_error_set(n->error, 0, "serial: speaks ABI 1.x, host offers %u.%u",
                              DEVHOST_VERSION_MAJOR(n->host_abi_version), DEVHOST_VERSION_MINOR(n->host_abi_version));
        return DEVHOST_E_UNSUPPORTED;
    }
    g_services = n->services;
    n->plugin_abi_version = DEVHOST_MAKE_VERSION(1, 0);
    n->descriptor = &k_descriptor;
    return DEVHOST_OK;
}
