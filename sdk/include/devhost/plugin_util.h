/*
 * devhost/plugin_util.h: the small things every plugin needs, written once.
 *
 * C99, header-only (everything static inline), compiles unchanged as C++.
 * It is not part of the ABI: nothing here crosses between host and plugin,
 * so it may grow freely; it only builds on <devhost/plugin.h>. It needs the
 * POSIX clocks and poll(): a C file defines _POSIX_C_SOURCE 200809L (or
 * _GNU_SOURCE) before its first #include, as any POSIX program does.
 *
 * Contents
 *   1. Deadlines: one type and one convention
 *   2. Waiting for a descriptor and the cancel handle under a deadline
 *   3. Options by schema index
 *   4. Text: parse_bool and friends
 *   5. Error records, strings
 *   6. Descriptors the host holds (share_fd)
 *
 * Not here: the negotiation is plugin.h's devhost_negotiate() (since ABI
 * 1.1; devhost_util_negotiate, its alias in earlier copies of this header,
 * is gone: call devhost_negotiate), and a hook's deadline is plugin.h's
 * devhost_hook_deadline().
 *
 * Every function is named devhost_util_*. None prints (section 6 logs
 * through the host's log service), none allocates except
 * devhost_util_copy_string.
 */
#ifndef DEVHOST_PLUGIN_UTIL_H
#define DEVHOST_PLUGIN_UTIL_H

#include <devhost/plugin.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if !defined(CLOCK_MONOTONIC)
#error "devhost/plugin_util.h needs the POSIX clocks: define _POSIX_C_SOURCE 200809L (or _GNU_SOURCE) before the first #include"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * 1. Deadlines
 *
 * A deadline is an absolute time on CLOCK_MONOTONIC, in nanoseconds, in a
 * uint64_t: the clock of the host's monotonic_ns service, so a deadline
 * from either compares with the other. DEVHOST_DEADLINE_NONE means "no
 * deadline": it never passes. A hook turns the timeout_ms it was given
 * (-1: none) into a deadline once, on entry, and hands the deadline down,
 * so that every wait inside one call shares the one budget. A deadline the
 * host hands a hook itself has this same shape.
 * ------------------------------------------------------------------------ */

#ifndef DEVHOST_DEADLINE_NONE
#define DEVHOST_DEADLINE_NONE UINT64_MAX
#endif

/* CLOCK_MONOTONIC now, in nanoseconds. */
static inline uint64_t devhost_util_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The deadline timeout_ms from now; a negative timeout is none. A timeout
 * too long to represent is none as well. */
static inline uint64_t devhost_util_deadline_ms(int64_t timeout_ms)
{
    uint64_t now;
    if (timeout_ms < 0)
        return DEVHOST_DEADLINE_NONE;
    now = devhost_util_now_ns();
    if ((uint64_t)timeout_ms >= (DEVHOST_DEADLINE_NONE - now) / 1000000u)
        return DEVHOST_DEADLINE_NONE;
    return now + (uint64_t)timeout_ms * 1000000u;
}

/* The earlier of two deadlines. */
static inline uint64_t devhost_util_deadline_min(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* True once the deadline has passed; never for DEVHOST_DEADLINE_NONE. */
static inline int devhost_util_deadline_passed(uint64_t deadline)
{
    return deadline != DEVHOST_DEADLINE_NONE && devhost_util_now_ns() >= deadline;
}

/* The timeout to give poll() for a deadline: -1 for none, 0 once it has
 * passed, else the milliseconds left rounded up (so a wait never ends just
 * short of its deadline), at most INT_MAX. */
static inline int devhost_util_poll_timeout(uint64_t deadline)
{
    uint64_t now, left;
    if (deadline == DEVHOST_DEADLINE_NONE)
        return -1;
    now = devhost_util_now_ns();
    if (now >= deadline)
        return 0;
    left = (deadline - now + 999999u) / 1000000u;
    return left > (uint64_t)INT_MAX ? INT_MAX : (int)left;
}

/* ------------------------------------------------------------------------
 * 2. Waiting
 * ------------------------------------------------------------------------ */

/* True when the cancel handle has fired. Never blocks, never reads it; a
 * negative cancel_fd never fires. */
static inline int devhost_util_cancelled(int cancel_fd)
{
    struct pollfd p;
    if (cancel_fd < 0)
        return 0;
    p.fd = cancel_fd;
    p.events = POLLIN;
    p.revents = 0;
    return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/*
 * Waits until `fd` is ready for `events` (POLLIN, POLLOUT...), the cancel
 * handle fires, or the deadline passes, whichever comes first.
 *
 *   fd < 0          waits for the cancel handle and the deadline only (a
 *                   sleep that cancel cuts short)
 *   cancel_fd < 0   no cancel handle
 *   deadline        absolute (section 1); once it has passed, the wait still
 *                   looks once without waiting, so what is already there is
 *                   taken (a caller may wait before its first read)
 *   revents         if not NULL, set to fd's poll revents on DEVHOST_OK; they
 *                   may hold POLLHUP, POLLERR or POLLNVAL instead of `events`:
 *                   the read or write that follows tells what happened
 *
 * The cancel handle is checked first: a fired cancel wins over a ready fd.
 * Interrupted polls (EINTR) are resumed with the time left.
 *
 * Returns DEVHOST_OK (fd ready); DEVHOST_E_CANCELLED ("WHO: cancelled DOING",
 * ECANCELED); DEVHOST_E_TIMEOUT ("WHO: timed out DOING", ETIMEDOUT);
 * DEVHOST_E_IO (poll failed, or the cancel handle is not a valid descriptor:
 * "WHO: poll: <strerror>", with its errno); DEVHOST_E_INVALID (nothing to
 * wait for: no fd, no cancel handle and no deadline). The message goes to
 * `err` (which may be NULL); `who` names the device ("serial: /dev/ttyS1"),
 * `doing` what was waited for ("reading"); either may be NULL.
 */
static inline devhost_status devhost_util_wait(int fd, short events, int cancel_fd, uint64_t deadline,
                                               short *revents, devhost_error *err, const char *who,
                                               const char *doing)
{
    const char *sep = doing ? " " : "";
    who = who ? who : "wait";
    doing = doing ? doing : "";
    if (fd < 0 && cancel_fd < 0 && deadline == DEVHOST_DEADLINE_NONE)
        return devhost_fail(err, DEVHOST_E_INVALID, EINVAL, "%s: nothing to wait for%s%s", who, sep, doing);
    for (;;) {
        struct pollfd p[2];
        int ms = devhost_util_poll_timeout(deadline);
        int n;
        p[0].fd = fd;
        p[0].events = events;
        p[0].revents = 0;
        p[1].fd = cancel_fd;
        p[1].events = POLLIN;
        p[1].revents = 0;
        n = poll(p, 2, ms); /* poll skips a negative fd */
        if (n < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            return devhost_fail(err, DEVHOST_E_IO, e, "%s: poll: %s", who, strerror(e));
        }
        if (p[1].revents & POLLIN)
            return devhost_fail(err, DEVHOST_E_CANCELLED, ECANCELED, "%s: cancelled%s%s", who, sep, doing);
        if (p[1].revents & POLLNVAL)
            return devhost_fail(err, DEVHOST_E_IO, EBADF, "%s: poll: the cancel handle is not a valid descriptor",
                                who);
        if (p[0].revents) {
            if (revents)
                *revents = p[0].revents;
            return DEVHOST_OK;
        }
        if (ms == 0)
            return devhost_fail(err, DEVHOST_E_TIMEOUT, ETIMEDOUT, "%s: timed out%s%s", who, sep, doing);
    }
}

/* ------------------------------------------------------------------------
 * 3. Options by schema index
 *
 * The host passes open one option value per entry of the plugin's schema,
 * in schema order, so a plugin can name its options by index (an enum that
 * follows its schema array) instead of searching by name.
 * ------------------------------------------------------------------------ */

/* The value of `schema[index]` (schema: the plugin's own option array, as
 * its descriptor declares it) when it is set (configured, or defaulted);
 * NULL when it is not, or when the host passed no such value. A value at
 * that index that names another option is looked up by name instead. */
static inline const devhost_option_value *
devhost_util_option(const devhost_open_params *params, const devhost_option_spec *schema, uint32_t index)
{
    const devhost_option_value *v = NULL;
    size_t stride;
    if (!params || !params->options || params->option_count == 0)
        return NULL;
    stride = params->options[0].struct_size;
    if (!DEVHOST_HAS_FIELD(devhost_option_value, stride, is_set))
        return NULL;
    if (index < params->option_count) {
        v = (const devhost_option_value *)(const void *)((const unsigned char *)params->options + stride * index);
        if (!v->name || strcmp(v->name, schema[index].name) != 0)
            v = NULL;
    }
    if (!v)
        v = devhost_option_find(params, schema[index].name);
    return v && v->is_set ? v : NULL;
}

/* The option's integer (INT: the value; BOOL: 0 or 1; DURATION: ms; ENUM:
 * the choice's index), or `fallback` when it is not set. */
static inline int64_t devhost_util_option_int(const devhost_open_params *params, const devhost_option_spec *schema,
                                              uint32_t index, int64_t fallback)
{
    const devhost_option_value *v = devhost_util_option(params, schema, index);
    return v ? v->integer : fallback;
}

/* The number of choices in an ENUM spec's `choices` ("none|odd|even": 3);
 * 0 for NULL. */
static inline int devhost_util_choice_count(const char *choices)
{
    int n = 1;
    if (!choices)
        return 0;
    for (; *choices; choices++)
        n += *choices == '|';
    return n;
}

/* An ENUM option's choice: the index the host parsed it to (its integer),
 * or `fallback` when it is not set; -1 when that index is not one of the
 * spec's choices (a host that did not check it). Name the choices by a C
 * enum in the order of the spec's `choices` and this is the enum's value:
 * the option's text need not be compared again. */
static inline int devhost_util_option_choice(const devhost_open_params *params, const devhost_option_spec *schema,
                                             uint32_t index, int fallback)
{
    const devhost_option_value *v = devhost_util_option(params, schema, index);
    if (!v)
        return fallback;
    return v->integer >= 0 && v->integer < devhost_util_choice_count(schema[index].choices) ? (int)v->integer : -1;
}

/* The option's text as configured (or defaulted), or `fallback`. */
static inline const char *devhost_util_option_text(const devhost_open_params *params,
                                                   const devhost_option_spec *schema, uint32_t index,
                                                   const char *fallback)
{
    const devhost_option_value *v = devhost_util_option(params, schema, index);
    return v && v->text ? v->text : fallback;
}

/* ------------------------------------------------------------------------
 * 4. Text
 * ------------------------------------------------------------------------ */

/* True when the first n bytes of a and b are equal ignoring ASCII case. */
static inline int devhost_util_iequal_n(const char *a, const char *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return 0;
    }
    return 1;
}

/* True when a and b are equal ignoring ASCII case. */
static inline int devhost_util_iequal(const char *a, const char *b)
{
    size_t n = strlen(a);
    return strlen(b) == n && devhost_util_iequal_n(a, b, n);
}

/* Parses a boolean the way the host parses a BOOL option: true/false,
 * yes/no, on/off, 1/0, in any case. Returns 1 and sets *out (0 or 1), or
 * returns 0 and leaves *out alone. */
static inline int devhost_util_parse_bool(const char *text, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    size_t i;
    if (!text)
        return 0;
    for (i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (devhost_util_iequal(text, yes[i])) {
            *out = 1;
            return 1;
        }
        if (devhost_util_iequal(text, no[i])) {
            *out = 0;
            return 1;
        }
    }
    return 0;
}

/* The index of `text` among `choices` ("none|odd|even", as an ENUM option
 * spec lists them), in any case; -1 when it is none of them. For text the
 * host does not parse (a step's argument): an ENUM option's value comes
 * parsed, read it with devhost_util_option_choice. */
static inline int devhost_util_parse_choice(const char *text, const char *choices)
{
    int index;
    size_t n;
    if (!text || !choices)
        return -1;
    n = strlen(text);
    for (index = 0;; index++) {
        const char *bar = strchr(choices, '|');
        size_t len = bar ? (size_t)(bar - choices) : strlen(choices);
        if (len == n && devhost_util_iequal_n(text, choices, n))
            return index;
        if (!bar)
            return -1;
        choices = bar + 1;
    }
}

/* ------------------------------------------------------------------------
 * 5. Error records, strings
 * ------------------------------------------------------------------------ */

/* Makes `err` an empty record of this header's size, for the calls a plugin
 * makes on its own (a release whose failure is only logged). */
static inline void devhost_util_error_init(devhost_error *err)
{
    memset(err, 0, sizeof *err);
    err->struct_size = (uint32_t)sizeof *err;
}

/* A malloc'd copy of s (strdup is POSIX, not C99); NULL when out of memory. */
static inline char *devhost_util_copy_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = (char *)malloc(n);
    if (copy)
        memcpy(copy, s, n);
    return copy;
}

/* ------------------------------------------------------------------------
 * 6. Descriptors the host holds (the share_fd service, since ABI 1.1)
 *
 * A descriptor that carries the device's state -- a tty in exclusive mode
 * (TIOCEXCL, and the flock on it), a ppdev port's registration and claims,
 * a block device opened O_EXCL, an image file's flock, the connection on
 * which a server keeps this client's claim or session -- is handed to the
 * host once it is fully set up (exclusive mode, claim or lock taken), from
 * open, or from connect where the descriptor appears there. If the process
 * running the plugin dies, the host still holds the device, releases it
 * properly (TIOCNXCL then close for a tty; close for the rest) and no other
 * program takes it in the gap. A descriptor that holds nothing of the kind
 * (a tty opened with exclusive = false) is not shared: the host would only
 * keep it open, and its release could undo another program's exclusive
 * mode. Roles name what a descriptor is: "tty", "ppdev", "vport", "block",
 * "file", "socket" ([a-z0-9-]).
 *
 * The host keeps one copy per device and role: sharing a role again
 * replaces its copy, and fd -1 drops it. A plugin that shared a descriptor
 * drops the host's copy before it closes its own, early (a disconnect, a
 * reopen) or in close: its own close then stays the last one, so what the
 * kernel does at the last close (a tty's wait for its transmitter, a block
 * device's write-back and its error, ppdev's release) happens in the
 * plugin, under the hook's deadline. The host drops whatever is left when
 * close returns.
 *
 * A host that runs plugins in its own process keeps no descriptors: it
 * answers DEVHOST_E_UNSUPPORTED, which is normal, and so does a 1.0 host
 * (no such service). Any other failure costs only the safety net: the
 * device works, the plugin logs one warning and goes on.
 * ------------------------------------------------------------------------ */

/* Hands the host a reference to `fd` under `role` (fd -1: drops the host's
 * copy of that role). Returns what the host's share_fd answered (OK: it
 * holds a duplicate; the plugin keeps and closes its own), or
 * DEVHOST_E_UNSUPPORTED when the host has no such service (a 1.0 host, or
 * NULL services). */
static inline devhost_status devhost_util_share_fd(const devhost_host_services *services,
                                                   const devhost_host_device *device, int fd, const char *role)
{
    if (!services || !DEVHOST_HAS_FIELD(devhost_host_services, services->struct_size, share_fd) ||
        !services->share_fd)
        return DEVHOST_E_UNSUPPORTED;
    return services->share_fd(device, (int32_t)fd, role);
}

/* devhost_util_share_fd with what a plugin does about the answer: returns
 * 1 when the host now holds a copy (OK), else 0. E_UNSUPPORTED is silent;
 * any other status logs one warning through the host, for `device`:
 *   "WHO: share_fd (role ROLE): STATUS: the device works, but the host
 *    does not hold it should this process die"
 * `who` names the device ("serial: /dev/ttyUSB0"). Keep the answer: only a
 * descriptor the host holds needs devhost_util_unshare_fd. */
static inline int devhost_util_share_fd_or_warn(const devhost_host_services *services,
                                                const devhost_host_device *device, int fd, const char *role,
                                                const char *who)
{
    devhost_status status = devhost_util_share_fd(services, device, fd, role);
    if (status == DEVHOST_OK)
        return 1;
    if (status != DEVHOST_E_UNSUPPORTED)
        devhost_logf(services, device, DEVHOST_LOG_WARN,
                     "%s: share_fd (role %s): %s: the device works, but the host does not hold it should this "
                     "process die",
                     who ? who : "device", role, devhost_status_name(status));
    return 0;
}

/* Drops the host's copy of `role` (share_fd with fd -1), for a descriptor
 * devhost_util_share_fd_or_warn handed over (it returned 1), just before
 * the plugin closes its own. A failure logs one warning through the host,
 *   "WHO: share_fd (role ROLE, dropping the host's copy): STATUS"
 * and nothing more can be done: the host drops it when close returns. */
static inline void devhost_util_unshare_fd(const devhost_host_services *services,
                                           const devhost_host_device *device, const char *role, const char *who)
{
    devhost_status status = devhost_util_share_fd(services, device, -1, role);
    if (status != DEVHOST_OK)
        devhost_logf(services, device, DEVHOST_LOG_WARN, "%s: share_fd (role %s, dropping the host's copy): %s",
                     who ? who : "device", role, devhost_status_name(status));
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* DEVHOST_PLUGIN_UTIL_H */
