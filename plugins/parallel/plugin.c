/*
 * The parallel plugin: class `parallel`, a shared parallel port driven with
 * claim and release, IEEE 1284 negotiation, status decoding and a strobe
 * handshake. This file holds the descriptor, its option schema and control
 * table, the hooks, the hook table and the entry point; the OS work is in
 * the backends, chosen by path (options, controls and info keys are listed
 * in README.md):
 *   /dev/parportN  ->  backend_ppdev.c (Linux ppdev)
 *   vport:NAME     ->  backend_vport.c (devhost-vdev's parallel-port peer)
 *
 * Sequence (from the seed): open, connect, info, lock, transfers,
 * disconnect, unlock, close. The port is shared: many clients may have it
 * open; lock claims it (waiting in line), unlock releases it, and transfers
 * need the claim. `exclusive = true` refuses to share at all.
 *
 * ABI 1.1: every hook starts with par_hook_begin, which takes its deadline
 * from the host (deadline_ns) and, for open, connect, lock and transfer,
 * the earlier of that and timeout_ms; every wait below and in the backends
 * (a claim, a peer's answer, a register poll) ends by it, so info, unlock,
 * disconnect and close against a peer that stopped answering return at
 * their deadline (E_TIMEOUT) too. enumerate lists ports
 * (backend_enumerate.c); unload gives back ppdev's signal handler. The
 * backend's descriptor carries the port's registration and claims, so open
 * hands the host a copy of it (share_fd: "ppdev", or "vport" for the
 * socket), taken back before the backend closes it (par_share_fd).
 */
#define _GNU_SOURCE

#include "parallel_private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const devhost_host_services *par_services;

/* ------------------------------------------------------------------------
 * Helpers shared with the backends
 * ------------------------------------------------------------------------ */

void par_hook_begin(par_device *d, int64_t timeout_ms)
{
    d->deadline = devhost_util_deadline_min(devhost_hook_deadline(par_services, d->host_device),
                                            devhost_util_deadline_ms(timeout_ms));
}

void par_share_fd(par_device *d, int fd)
{
    d->shared = devhost_util_share_fd_or_warn(par_services, d->host_device, fd, d->backend->fd_role, d->path);
}

void par_unshare_fd(par_device *d)
{
    if (d->shared)
        devhost_util_unshare_fd(par_services, d->host_device, d->backend->fd_role, d->path);
    d->shared = 0;
}

uint64_t par_bounded(const par_device *d, uint64_t deadline)
{
    return devhost_util_deadline_min(deadline, d->deadline);
}

devhost_status par_sleep(par_device *d, int ms, uint64_t deadline, devhost_error *err)
{
    devhost_status st;
    if (devhost_util_deadline_passed(deadline))
        return DEVHOST_E_TIMEOUT;
    st = devhost_util_wait(-1, 0, d->cancel_fd, devhost_util_deadline_min(deadline, devhost_util_deadline_ms(ms)),
                           NULL, NULL, NULL, NULL);
    if (st == DEVHOST_E_CANCELLED)
        return devhost_fail(err, DEVHOST_E_CANCELLED, 0, "%s: cancelled while waiting", d->path);
    return DEVHOST_OK; /* slept its time (the deadline is for the caller's next look) */
}

static const char *const mode_names[VPORT_MODE_COUNT] = {"compat", "nibble", "byte", "ecp", "epp"};

const char *par_mode_name(int mode)
{
    return mode >= 0 && mode < VPORT_MODE_COUNT ? mode_names[mode] : "unknown";
}

devhost_status par_printer_fault(par_device *d, uint8_t status, size_t index, devhost_error *err)
{
    if ((status & VPORT_STATUS_PAPEROUT) && !(status & VPORT_STATUS_ERROR))
        return devhost_fail(err, DEVHOST_E_IO, EIO, "%s: printer reports paper out (status 0x%02x) at byte %zu",
                            d->path, status, index);
    if (!(status & VPORT_STATUS_SELECT))
        return devhost_fail(err, DEVHOST_E_IO, EIO, "%s: printer is offline (SELECT low, status 0x%02x) at byte %zu",
                            d->path, status, index);
    return DEVHOST_OK;
}

/* VPORT_MODE_* for a mode's name (or "compatibility", "spp"), any case; -1
 * for none: a connect step's mode= (option `mode` comes as its index). */
static int parse_mode(const char *text)
{
    int i;
    for (i = 0; i < VPORT_MODE_COUNT; i++)
        if (devhost_util_iequal(text, mode_names[i]))
            return i;
    if (devhost_util_iequal(text, "compatibility") || devhost_util_iequal(text, "spp"))
        return VPORT_MODE_COMPAT;
    return -1;
}

/* ------------------------------------------------------------------------
 * Descriptor: options and control codes
 * ------------------------------------------------------------------------ */

/* The schema, looked up by these indexes. The ENUM options' choices are
 * enums, in order, so the index the host passes is the value: `mode` lists
 * the VPORT_MODE_* names (mode_names), `write-method` the PAR_WRITE_*
 * ones (parallel_options_test checks both against the plugin's behaviour). */
enum { OPT_EXCLUSIVE, OPT_MODE, OPT_FALLBACK, OPT_WRITE_METHOD, OPT_CLAIM_TIMEOUT, OPT_COUNT };

#define OPTION_SIZE sizeof(devhost_option_spec)
static const devhost_option_spec par_options[OPT_COUNT] = {
    [OPT_EXCLUSIVE] = {.struct_size = OPTION_SIZE, .type = DEVHOST_OPTION_BOOL, .name = "exclusive",
                       .default_value = "false",
                       .help = "refuse to share the port (PPEXCL): other opens fail with busy",
                       .flags = DEVHOST_OPTION_EXCLUSIVE},
    [OPT_MODE] = {.struct_size = OPTION_SIZE, .type = DEVHOST_OPTION_ENUM, .name = "mode", .default_value = "compat",
                  .help = "IEEE 1284 mode connect negotiates when its step names none",
                  .choices = "compat|nibble|byte|ecp|epp"},
    [OPT_FALLBACK] = {.struct_size = OPTION_SIZE, .type = DEVHOST_OPTION_BOOL, .name = "fallback",
                      .default_value = "false",
                      .help = "when the port refuses the mode, fall back to compat instead of failing"},
    [OPT_WRITE_METHOD] = {.struct_size = OPTION_SIZE, .type = DEVHOST_OPTION_ENUM, .name = "write-method",
                          .default_value = "handshake",
                          .help = "handshake: strobe each byte and wait for busy/ack; driver: the driver's write()",
                          .choices = "handshake|driver"},
    [OPT_CLAIM_TIMEOUT] = {.struct_size = OPTION_SIZE, .type = DEVHOST_OPTION_DURATION, .name = "claim-timeout",
                           .default_value = "2s",
                           .help = "how long connect, info and disconnect wait for a brief claim when not locked",
                           .max = 3600000},
};

enum {
    PAR_CTL_READ_STATUS = 1,
    PAR_CTL_READ_CONTROL = 2,
    PAR_CTL_WRITE_CONTROL = 3,
    PAR_CTL_READ_DATA = 4,
    PAR_CTL_WRITE_DATA = 5
};

#define CONTROL_SIZE sizeof(devhost_control_spec)
static const devhost_control_spec par_controls[] = {
    {.struct_size = CONTROL_SIZE, .code = PAR_CTL_READ_STATUS, .name = "read-status",
     .help = "read the status register (1 byte: busy 0x80 inverted, ack 0x40, paper-out 0x20, select 0x10, error 0x08 inverted)"},
    {.struct_size = CONTROL_SIZE, .code = PAR_CTL_READ_CONTROL, .name = "read-control",
     .help = "read the control register (1 byte: select 0x08, init 0x04, autofd 0x02, strobe 0x01)"},
    {.struct_size = CONTROL_SIZE, .code = PAR_CTL_WRITE_CONTROL, .name = "write-control",
     .help = "write the control register (input: 1 byte)", .flags = DEVHOST_CONTROL_MODIFIES},
    {.struct_size = CONTROL_SIZE, .code = PAR_CTL_READ_DATA, .name = "read-data",
     .help = "read the data register (1 byte)"},
    {.struct_size = CONTROL_SIZE, .code = PAR_CTL_WRITE_DATA, .name = "write-data",
     .help = "write the data register (input: 1 byte), without strobing", .flags = DEVHOST_CONTROL_MODIFIES},
};

/* ------------------------------------------------------------------------
 * Brief claims for connect, info and disconnect
 * ------------------------------------------------------------------------ */

/* Claims the port within timeout_ms (-1: until cancelled) and the hook's
 * deadline and, when it got it, sets *held: d->claimed for lock(), a brief
 * claim's own flag. */
static devhost_status claim_into(par_device *d, int32_t timeout_ms, int *held, devhost_error *err)
{
    devhost_status st = d->backend->claim(d, par_bounded(d, devhost_util_deadline_ms(timeout_ms)), err);
    if (st == DEVHOST_OK)
        *held = 1;
    return st;
}

/* Claims the port unless lock() already holds it, waiting at most
 * claim-timeout; *took says whether this call took it (and must give it
 * back with brief_release). */
static devhost_status brief_claim(par_device *d, int32_t timeout_ms, int *took, devhost_error *err)
{
    *took = 0;
    if (d->claimed)
        return DEVHOST_OK;
    if (timeout_ms < 0 || timeout_ms > d->claim_timeout_ms)
        timeout_ms = d->claim_timeout_ms;
    return claim_into(d, timeout_ms, took, err);
}

static void brief_release(par_device *d, int took)
{
    devhost_error ignored;
    if (!took)
        return;
    devhost_util_error_init(&ignored);
    if (d->backend->release(d, &ignored) != DEVHOST_OK)
        PAR_LOG(d, DEVHOST_LOG_WARN, "%s: release after a brief claim failed: %s", d->path, ignored.message);
}

static devhost_status check_removed(par_device *d, devhost_error *err)
{
    if (d->removed)
        return devhost_fail(err, DEVHOST_E_REMOVED, ENODEV, "%s: the port was removed", d->path);
    return DEVHOST_OK;
}

/* Negotiates `mode` under a brief claim (none when locked); d->mode follows
 * what took effect. With fallback, a mode the port or peripheral refuses
 * falls back to compat, logged (connect's fallback=); disconnect asks for
 * compat without it. */
static devhost_status negotiate_briefly(par_device *d, int32_t timeout_ms, int mode, int fallback,
                                        devhost_error *err)
{
    int took = 0;
    devhost_status st = brief_claim(d, timeout_ms, &took, err);
    if (st != DEVHOST_OK)
        return st;
    st = d->backend->negotiate(d, mode, err);
    if (st == DEVHOST_OK) {
        d->mode = mode;
    } else if (st != DEVHOST_E_REMOVED && st != DEVHOST_E_CANCELLED && fallback && mode != VPORT_MODE_COMPAT) {
        PAR_LOG(d, DEVHOST_LOG_WARN, "%s: IEEE 1284 mode '%s' refused (%s); falling back to compat", d->path,
                par_mode_name(mode), err->message);
        memset(err->message, 0, sizeof err->message);
        err->os_errno = 0;
        st = d->backend->negotiate(d, VPORT_MODE_COMPAT, err);
        if (st == DEVHOST_OK)
            d->mode = VPORT_MODE_COMPAT;
    }
    brief_release(d, took);
    return st;
}

/* ------------------------------------------------------------------------
 * Hooks
 * ------------------------------------------------------------------------ */

/* close: when the host is done with the device (or a failed open). State:
 * any; a claim the pipeline forgot is released here and logged. Returns OK
 * or E_IO (E_TIMEOUT: by the deadline) when the release failed; `device` is
 * freed either way. */
static devhost_status par_close(devhost_device *device, devhost_error *err)
{
    par_device *d = (par_device *)device;
    devhost_status st = DEVHOST_OK;
    if (!d)
        return DEVHOST_OK;
    par_hook_begin(d, -1);
    if (d->claimed && d->backend && !d->removed) {
        PAR_LOG(d, DEVHOST_LOG_WARN, "%s: released the port on close because the pipeline did not unlock it",
                d->path);
        st = d->backend->release(d, err);
        d->claimed = 0;
    }
    if (d->backend)
        d->backend->close(d);
    free(d);
    return st;
}

/* open: when a pipeline opens the port. State: none. Chooses the backend by
 * path, opens it, applies `exclusive`. Returns OK; E_NOT_FOUND; E_BUSY (the
 * port is held exclusively, or exclusive access is refused); E_ACCESS;
 * E_INVALID (path form); E_IO. *device (owned by the host until close) may
 * be half-built on failure. */
static devhost_status par_open(const devhost_open_params *params, devhost_device **device,
                               devhost_error *err)
{
    par_device *d;
    int choice;
    *device = NULL;
    if (strlen(params->path) >= sizeof d->path)
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "parallel: path '%.64s...' is too long", params->path);
    d = calloc(1, sizeof *d);
    if (!d)
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, ENOMEM, "parallel: out of memory");
    *device = (devhost_device *)d;
    strcpy(d->path, params->path);
    d->host_device = params->host_device;
    par_hook_begin(d, params->timeout_ms);
    d->cancel_fd = params->cancel_fd;
    d->mode = VPORT_MODE_COMPAT;
    d->exclusive = devhost_util_option_int(params, par_options, OPT_EXCLUSIVE, 0) != 0;
    /* An index outside the choices (which the host never passes) keeps the
     * default. */
    choice = devhost_util_option_choice(params, par_options, OPT_WRITE_METHOD, PAR_WRITE_HANDSHAKE);
    d->write_method = choice >= 0 ? choice : PAR_WRITE_HANDSHAKE;
    choice = devhost_util_option_choice(params, par_options, OPT_MODE, VPORT_MODE_COMPAT);
    d->default_mode = choice >= 0 ? choice : VPORT_MODE_COMPAT;
    d->default_fallback = devhost_util_option_int(params, par_options, OPT_FALLBACK, 0) != 0;
    d->claim_timeout_ms = (int32_t)devhost_util_option_int(params, par_options, OPT_CLAIM_TIMEOUT, 2000);

    if (strncmp(d->path, VPORT_PATH_PREFIX, strlen(VPORT_PATH_PREFIX)) == 0)
        d->backend = &par_vport_backend;
    else if (d->path[0] == '/')
        d->backend = &par_ppdev_backend;
    else
        return devhost_fail(err, DEVHOST_E_INVALID, 0,
                            "parallel: path '%s' is neither /dev/parportN nor vport:NAME", d->path);
    return d->backend->open(d, params, err);
}

/* The mode and fallback a connect step asks for; E_INVALID for unknown
 * keys or values. */
static devhost_status connect_args(par_device *d, const devhost_connect_params *p, int *mode,
                                   int *fallback, devhost_error *err)
{
    uint32_t i;
    if (p->context || p->context_size)
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "%s: connect takes no context for class parallel", d->path);
    for (i = 0; i < p->arg_count; i++) {
        const char *k = p->args[i].key, *val = p->args[i].value ? p->args[i].value : "";
        if (strcmp(k, "mode") == 0) {
            if ((*mode = parse_mode(val)) < 0)
                return devhost_fail(err, DEVHOST_E_INVALID, 0,
                                    "%s: connect mode=%s: expected compat, nibble, byte, ecp or epp", d->path, val);
        } else if (strcmp(k, "fallback") == 0) {
            if (!devhost_util_parse_bool(val, fallback))
                return devhost_fail(err, DEVHOST_E_INVALID, 0, "%s: connect fallback=%s: expected true or false",
                                    d->path, val);
        } else {
            return devhost_fail(err, DEVHOST_E_INVALID, 0,
                                "%s: connect: unknown argument '%s' (expected mode= or fallback=)", d->path, k);
        }
    }
    return DEVHOST_OK;
}

/* connect: negotiate the IEEE 1284 mode (step's mode=, else option `mode`).
 * State: open, not connected; takes a brief claim when not locked. Returns
 * OK; E_INVALID (bad argument); E_UNSUPPORTED (the port lacks the mode);
 * E_PROTOCOL (the peripheral rejected it); E_IO (negotiation failed);
 * E_TIMEOUT/E_BUSY (no claim). With fallback, a refused mode leaves the
 * device connected in compat mode, logged. */
static devhost_status par_connect(devhost_device *device, const devhost_connect_params *params,
                                  devhost_error *err)
{
    par_device *d = (par_device *)device;
    int mode = d->default_mode, fallback = d->default_fallback;
    devhost_status st;
    par_hook_begin(d, params->timeout_ms);
    if ((st = check_removed(d, err)) != DEVHOST_OK)
        return st;
    if ((st = connect_args(d, params, &mode, &fallback, err)) != DEVHOST_OK)
        return st;
    st = negotiate_briefly(d, params->timeout_ms, mode, fallback, err);
    if (st == DEVHOST_OK)
        d->connected = 1;
    return st;
}

/* disconnect: return to compat mode. State: connected. Returns OK, or E_IO
 * when compat could not be negotiated, E_TIMEOUT when the port or the peer
 * did not answer by the deadline; not connected afterwards either way. */
static devhost_status par_disconnect(devhost_device *device, devhost_error *err)
{
    par_device *d = (par_device *)device;
    par_hook_begin(d, -1);
    d->connected = 0;
    if (d->removed || d->mode == VPORT_MODE_COMPAT)
        return DEVHOST_OK;
    return negotiate_briefly(d, d->claim_timeout_ms, VPORT_MODE_COMPAT, 0, err);
}

/* lock: claim the port, waiting in line behind other clients up to
 * timeout_ms (-1: until cancelled). State: open, not locked. Returns OK;
 * E_TIMEOUT; E_BUSY (the port is held exclusively by another client);
 * E_CANCELLED; E_REMOVED; E_IO. */
static devhost_status par_lock(devhost_device *device, int32_t timeout_ms, devhost_error *err)
{
    par_device *d = (par_device *)device;
    devhost_status st;
    par_hook_begin(d, timeout_ms);
    if ((st = check_removed(d, err)) != DEVHOST_OK)
        return st;
    if (d->claimed)
        return devhost_fail(err, DEVHOST_E_STATE, 0, "%s: lock: the port is already claimed by this device", d->path);
    return claim_into(d, timeout_ms, &d->claimed, err);
}

/* unlock: release the claim; the next waiting client gets the port. State:
 * locked. Returns OK; E_IO; E_TIMEOUT (a virtual port's peer did not confirm
 * by the deadline); not locked afterwards either way. */
static devhost_status par_unlock(devhost_device *device, devhost_error *err)
{
    par_device *d = (par_device *)device;
    devhost_status st = DEVHOST_OK;
    par_hook_begin(d, -1);
    if (!d->claimed)
        return devhost_fail(err, DEVHOST_E_STATE, 0, "%s: unlock: the port is not claimed", d->path);
    d->claimed = 0;
    if (!d->removed)
        st = d->backend->release(d, err);
    return st;
}

static void put_yes_no(const devhost_info_sink *sink, const char *key, int value)
{
    sink->put(sink->context, key, value ? "yes" : "no");
}

static void caps_text(uint32_t caps, char *out, size_t size)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {{VPORT_CAP_PCSPP, "pcspp"},   {VPORT_CAP_TRISTATE, "tristate"}, {VPORT_CAP_EPP, "epp"},
                 {VPORT_CAP_ECP, "ecp"},       {VPORT_CAP_COMPAT, "compat"},     {VPORT_CAP_DMA, "dma"},
                 {VPORT_CAP_SAFEININT, "safeinint"}};
    size_t i, used = 0;
    out[0] = '\0';
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (caps & names[i].bit) {
            int n = snprintf(out + used, size - used, "%s%s", used ? "," : "", names[i].name);
            if (n < 0 || (size_t)n >= size - used)
                return;
            used += (size_t)n;
        }
    }
}

/* info: backend, modes the port offers (PPGETMODES), the current mode, the
 * status lines decoded and the peripheral's IEEE 1284 device ID. State:
 * open. On ppdev it takes a brief claim when not locked, to read the lines
 * (when the port stays busy, the lines are reported unavailable). Returns OK; E_REMOVED;
 * E_IO; E_TIMEOUT (a virtual port's peer did not answer by the deadline). */
static devhost_status par_info(devhost_device *device, const devhost_info_sink *sink, devhost_error *err)
{
    par_device *d = (par_device *)device;
    par_port_info *info;
    devhost_error claim_err;
    devhost_status st;
    char text[128];
    int took = 0;
    par_hook_begin(d, -1);
    if ((st = check_removed(d, err)) != DEVHOST_OK)
        return st;
    info = calloc(1, sizeof *info);
    if (!info)
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, ENOMEM, "%s: out of memory", d->path);
    devhost_util_error_init(&claim_err);
    if (d->backend->query_needs_claim && brief_claim(d, d->claim_timeout_ms, &took, &claim_err) != DEVHOST_OK &&
        d->removed) {
        free(info);
        return devhost_fail(err, DEVHOST_E_REMOVED, ENODEV, "%s", claim_err.message);
    }
    st = d->backend->query(d, info, err);
    brief_release(d, took);
    if (st != DEVHOST_OK) {
        free(info);
        return st;
    }
    sink->put(sink->context, "backend", d->backend->name);
    sink->put(sink->context, "path", d->path);
    put_yes_no(sink, "exclusive", d->exclusive);
    put_yes_no(sink, "claimed", d->claimed);
    put_yes_no(sink, "connected", d->connected);
    caps_text(info->caps, text, sizeof text);
    sink->put(sink->context, "modes", text);
    sink->put(sink->context, "mode", par_mode_name(info->mode));
    if (info->have_lines) {
        snprintf(text, sizeof text, "0x%02x", info->status);
        sink->put(sink->context, "status", text);
        put_yes_no(sink, "busy", !(info->status & VPORT_STATUS_BUSY));
        put_yes_no(sink, "ack", !(info->status & VPORT_STATUS_ACK));
        put_yes_no(sink, "paper-out", info->status & VPORT_STATUS_PAPEROUT);
        put_yes_no(sink, "select", info->status & VPORT_STATUS_SELECT);
        put_yes_no(sink, "error", !(info->status & VPORT_STATUS_ERROR));
        snprintf(text, sizeof text, "0x%02x", info->control);
        sink->put(sink->context, "control", text);
    } else {
        snprintf(text, sizeof text, "unavailable (port not claimed: %.80s)",
                 claim_err.message[0] ? claim_err.message : "held by another client");
        sink->put(sink->context, "status", text);
    }
    sink->put(sink->context, "device-id", info->device_id[0] ? info->device_id : "none");
    free(info);
    return DEVHOST_OK;
}

/* What wait_status waits for: the peripheral ready for a byte (BUSY line
 * low), or its ACK pulse (nAck low) after a strobe. */
enum { UNTIL_READY, UNTIL_ACK };

/* Reads the status register until the peripheral is where `until` wants
 * it, for byte `index`: the first 32 looks back to back (a peripheral
 * answers within microseconds), then one a millisecond, watching the cancel
 * handle, until the deadline (E_TIMEOUT). Waiting for ready, paper out and
 * offline are E_IO at once. */
static devhost_status wait_status(par_device *d, int until, size_t index, uint64_t deadline, devhost_error *err)
{
    unsigned polls = 0;
    for (;;) {
        uint8_t st;
        devhost_status s = d->backend->reg_read(d, VPORT_REG_STATUS, &st, err);
        if (s != DEVHOST_OK)
            return s;
        if (until == UNTIL_READY ? (st & VPORT_STATUS_BUSY) != 0 : !(st & VPORT_STATUS_ACK))
            return DEVHOST_OK;
        if (until == UNTIL_READY && (s = par_printer_fault(d, st, index, err)) != DEVHOST_OK)
            return s;
        if (++polls > 32)
            s = par_sleep(d, 1, deadline, err);
        else if (devhost_util_deadline_passed(deadline))
            s = DEVHOST_E_TIMEOUT;
        if (s == DEVHOST_E_TIMEOUT && until == UNTIL_READY)
            return devhost_fail(err, DEVHOST_E_TIMEOUT, ETIMEDOUT,
                                "%s: peripheral stayed busy (status 0x%02x) before byte %zu", d->path, st, index);
        if (s == DEVHOST_E_TIMEOUT)
            return devhost_fail(err, DEVHOST_E_TIMEOUT, ETIMEDOUT,
                                "%s: peripheral never acknowledged byte %zu (status 0x%02x)", d->path, index, st);
        if (s != DEVHOST_OK)
            return s;
    }
}

/* Compatibility-mode write, byte by byte: wait for not-busy, put the byte on
 * the data lines, pulse STROBE with INIT and SELECT held high, wait for ACK. */
static devhost_status handshake_write(par_device *d, devhost_transfer *x, uint64_t deadline, devhost_error *err)
{
    const uint8_t base = VPORT_CONTROL_INIT | VPORT_CONTROL_SELECT;
    devhost_status st = d->backend->reg_write(d, VPORT_REG_CONTROL, base, err);
    size_t i;
    for (i = 0; st == DEVHOST_OK && i < x->out_len; i++) {
        if ((st = wait_status(d, UNTIL_READY, i, deadline, err)) != DEVHOST_OK)
            break;
        if ((st = d->backend->reg_write(d, VPORT_REG_DATA, x->out[i], err)) != DEVHOST_OK)
            break;
        if ((st = d->backend->reg_write(d, VPORT_REG_CONTROL, base | VPORT_CONTROL_STROBE, err)) != DEVHOST_OK)
            break;
        if ((st = d->backend->reg_write(d, VPORT_REG_CONTROL, base, err)) != DEVHOST_OK)
            break;
        if ((st = wait_status(d, UNTIL_ACK, i, deadline, err)) != DEVHOST_OK)
            break;
        x->out_done = i + 1;
    }
    return st;
}

static devhost_status control_transfer(par_device *d, devhost_transfer *x, devhost_error *err)
{
    uint8_t value = 0;
    int reg, writing;
    devhost_status st;
    switch (x->control_code) {
    case PAR_CTL_READ_STATUS: reg = VPORT_REG_STATUS; writing = 0; break;
    case PAR_CTL_READ_CONTROL: reg = VPORT_REG_CONTROL; writing = 0; break;
    case PAR_CTL_WRITE_CONTROL: reg = VPORT_REG_CONTROL; writing = 1; break;
    case PAR_CTL_READ_DATA: reg = VPORT_REG_DATA; writing = 0; break;
    case PAR_CTL_WRITE_DATA: reg = VPORT_REG_DATA; writing = 1; break;
    default:
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "%s: unknown control code %u", d->path, x->control_code);
    }
    if (writing) {
        if (x->out_len != 1 || !x->out)
            return devhost_fail(err, DEVHOST_E_INVALID, 0, "%s: control %u needs exactly 1 input byte, got %zu",
                                d->path, x->control_code, x->out_len);
        st = d->backend->reg_write(d, reg, x->out[0], err);
        if (st == DEVHOST_OK)
            x->out_done = 1;
        return st;
    }
    if (x->in_capacity < 1 || !x->in)
        return devhost_fail(err, DEVHOST_E_INVALID, 0, "%s: control %u needs room for 1 output byte", d->path,
                            x->control_code);
    st = d->backend->reg_read(d, reg, &value, err);
    if (st == DEVHOST_OK) {
        x->in[0] = value;
        x->in_len = 1;
    }
    return st;
}

/* transfer: write (strobe handshake or the driver's write), read (reverse
 * modes), control (registers). State: locked (the claim is held). Returns
 * OK; E_STATE (no claim, or read in compat mode); E_INVALID; E_UNSUPPORTED
 * (op, code or an offset); E_TIMEOUT (peripheral never ready or never acknowledged;
 * out_done/in_len tell how far it got); E_IO (paper out, offline, driver
 * error); E_REMOVED; E_CANCELLED; E_PROTOCOL (a virtual port answered
 * nonsense). */
static devhost_status par_transfer(devhost_device *device, devhost_transfer *x, devhost_error *err)
{
    par_device *d = (par_device *)device;
    uint64_t deadline;
    devhost_status st;
    par_hook_begin(d, x->timeout_ms);
    deadline = d->deadline;
    if ((st = check_removed(d, err)) != DEVHOST_OK)
        return st;
    if (!d->claimed)
        return devhost_fail(err, DEVHOST_E_STATE, 0, "%s: transfers need the port claimed (lock first)", d->path);
    if (x->flags & DEVHOST_TRANSFER_HAS_OFFSET)
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "%s: a parallel port has no offsets", d->path);
    switch (x->op) {
    case DEVHOST_OP_WRITE:
        if (x->out_len == 0)
            return DEVHOST_OK;
        if (d->write_method == PAR_WRITE_HANDSHAKE && d->mode == VPORT_MODE_COMPAT)
            return handshake_write(d, x, deadline, err);
        return d->backend->write(d, x->out, x->out_len, &x->out_done, deadline, err);
    case DEVHOST_OP_READ:
    case DEVHOST_OP_READ_EXACT:
        if (d->mode == VPORT_MODE_COMPAT)
            return devhost_fail(err, DEVHOST_E_STATE, 0,
                                "%s: read needs a reverse mode (connect mode=nibble, byte, ecp or epp); the port is in compat",
                                d->path);
        if (x->in_capacity == 0 || !x->in)
            return devhost_fail(err, DEVHOST_E_INVALID, 0, "%s: read of 0 bytes", d->path);
        return d->backend->read(d, x->in, x->in_capacity, x->op == DEVHOST_OP_READ_EXACT, &x->in_len, deadline, err);
    case DEVHOST_OP_CONTROL:
        return control_transfer(d, x, err);
    default:
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "%s: transfer op %u not supported", d->path, x->op);
    }
}

/* unload: the only process-wide change the plugin makes is the handler of
 * ppdev's claim-interrupt signal (installed at the first claim on a ppdev
 * port, when the process has none); unload gives the old one back. */
static void par_unload(void)
{
    par_ppdev_unload();
}

/* ------------------------------------------------------------------------
 * Registration
 * ------------------------------------------------------------------------ */

static const devhost_hooks par_hooks = {
    .struct_size = sizeof(devhost_hooks),
    .open = par_open,
    .close = par_close,
    .connect = par_connect,
    .disconnect = par_disconnect,
    .lock = par_lock,
    .unlock = par_unlock,
    .info = par_info,
    .transfer = par_transfer,
    .enumerate = par_enumerate,
    .unload = par_unload,
};

/* The paths this class serves: ppdev's /dev/parportN (what \\.\LPTn
 * resolves to), vport:NAME, and vport:/ABS/PATH.sock, a socket a peer of
 * `devhost run` announced. The host matches them without FNM_PATHNAME, so
 * "vport:*" takes an absolute path of any depth. */
static const char *const par_path_patterns[] = {
    "/dev/parport[0-9]*",
    "vport:*",
    NULL,
};

static const devhost_plugin_descriptor par_descriptor = {
    .struct_size = sizeof(devhost_plugin_descriptor),
    .flags = DEVHOST_PLUGIN_SHARED_PATHS, /* a port is shared: several devices on one path */
    .name = "parallel",
    .device_class = "parallel",
    .version = "1.0.0",
    .description =
        "Shared parallel ports: claim/release, IEEE 1284 modes and device ID, strobe handshake (ppdev, vport)",
    .options = par_options,
    .option_count = OPT_COUNT,
    .control_count = sizeof par_controls / sizeof par_controls[0],
    .controls = par_controls,
    .hooks = &par_hooks,
    .transfer_ops = DEVHOST_OP_BIT(DEVHOST_OP_WRITE) | DEVHOST_OP_BIT(DEVHOST_OP_READ) |
                    DEVHOST_OP_BIT(DEVHOST_OP_READ_EXACT) | DEVHOST_OP_BIT(DEVHOST_OP_CONTROL),
    .transfer_requires = DEVHOST_REQUIRES_LOCKED,
    .path_patterns = par_path_patterns,
};

/* Speaks ABI 1.x; refuses other majors. */
DEVHOST_EXPORT devhost_status devhost_plugin_negotiate(devhost_negotiation *n)
{
    return devhost_negotiate(n, &par_descriptor, &par_services);
}
