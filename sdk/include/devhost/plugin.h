/*
 * devhost plugin ABI, version 1.1.
 *
 * This is the only header a devhost plugin needs. It is C99 and compiles
 * unchanged as C++. Nothing from C++ crosses it.
 *
 * Contents
 *   1. Versions and the export macro
 *   2. Status codes, devhost_status_name(), the error record
 *   3. Host services (log, clock), passed to the plugin at negotiation
 *   4. Option schema and control-code table, declared by the plugin
 *   5. Open and connect parameters, the info sink
 *   6. The transfer struct
 *   7. The hook table
 *   8. The plugin descriptor
 *   9. The entry point (negotiation)
 *  10. Inline helpers for plugin authors
 *
 * The numbered MUSTs ([MUST-N] below) are the contract devhost-conformance
 * checks, one test or more each (devhost-conformance --list).
 *
 * Rules that hold for every struct in this file (the v1 contract):
 *   - It starts with `uint32_t struct_size`, set by whoever fills it in to
 *     sizeof() of the struct as that side compiled it.
 *   - Fields are only ever appended, under a "since v1.N" comment; the
 *     comment "since v1.N: append here" marks where the next minor's go
 *     ("append values here" in an enum). A reader touches a field only
 *     after checking that struct_size covers it (DEVHOST_HAS_FIELD). Enum
 *     values are only appended, never renumbered.
 *   - A field named `reserved` is written as zero and read by no one; the
 *     host refuses a plugin whose descriptor or hook table has one set (so
 *     that a later minor can give it a meaning).
 *   - Names a plugin declares (its class, option and control names) follow
 *     one rule, devhost_identifier_valid() below, which the host applies as
 *     written.
 *
 * What governs what (v1.1):
 *   - struct_size governs FIELDS AND SLOTS: whether a field or a hook slot
 *     exists in the struct the other side filled. A reader checks it before
 *     touching anything appended after v1.0, whatever version was
 *     negotiated: a 1.1 plugin on a 1.0 host finds no deadline_ns service,
 *     and a 1.0 plugin's hook table has no enumerate slot.
 *   - The negotiated minor (devhost_negotiation.plugin_abi_version) governs
 *     SEMANTICS: which rules of this header both sides keep. A plugin that
 *     answered 1.0 is held to 1.0's rules (the host does not, for example,
 *     expect it to honour a deadline in close); one that answered 1.1 keeps
 *     every rule marked "since v1.1". devhost_negotiate() answers the right
 *     version for you.
 *   - Ownership: the side that allocates frees. Strings and arrays the host
 *     passes in are valid for the duration of the call only, unless a comment
 *     says otherwise. Everything the plugin hands the host (descriptor, option
 *     specs, hook table) must stay valid while the library is loaded: in
 *     practice, static const data.
 *
 * Threading: the host never calls two hooks of one device at the same time.
 * [MUST-9] Different devices, of the same plugin or not, may be driven from
 * different threads at the same time, so process-wide plugin state needs its
 * own lock.
 *
 * Blocking: every hook that can block has a deadline, and every device has a
 * cancel handle (an eventfd, see devhost_open_params.cancel_fd). [MUST-6] A
 * hook that waits must poll the cancel handle with whatever it waits on, and
 * return DEVHOST_E_CANCELLED when it becomes readable (devhost-conformance
 * allows 100 ms). No hook may block forever.
 * Since v1.1 every hook's deadline, including those of info, unlock,
 * disconnect and close, which take no timeout argument, is what the host's
 * deadline_ns service answers during the call (an absolute CLOCK_MONOTONIC
 * time); the timeout_ms arguments of open, connect, lock and transfer give
 * the same deadline, relative. [MUST-7] A hook that waits returns
 * DEVHOST_E_TIMEOUT at its deadline. A hook that returns more than 20 ms after
 * its deadline (the host's slack for scheduling) is recorded as
 * DEVHOST_E_TIMEOUT ("plugin overran its deadline by N ms") whatever it
 * returned.
 *
 * Printing: plugins never write to stdout or stderr. They log through
 * devhost_host_services.log, which the host routes into its own log with the
 * device's name.
 */
#ifndef DEVHOST_PLUGIN_H
#define DEVHOST_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * 1. Versions and the export macro
 * ------------------------------------------------------------------------ */

/* An ABI version is major << 16 | minor. A host speaks one major and every
 * minor up to its own; a plugin built against 1.N runs on any 1.M host with
 * M >= N, and on older 1.M hosts if it checks struct sizes as required. */
#define DEVHOST_MAKE_VERSION(major, minor) \
    ((uint32_t)(((uint32_t)(major) << 16) | ((uint32_t)(minor) & 0xffffu)))
#define DEVHOST_VERSION_MAJOR(v) ((uint32_t)(v) >> 16)
#define DEVHOST_VERSION_MINOR(v) ((uint32_t)(v) & 0xffffu)

#define DEVHOST_ABI_VERSION_MAJOR 1
#define DEVHOST_ABI_VERSION_MINOR 1
/* The version this header describes. */
#define DEVHOST_ABI_VERSION \
    DEVHOST_MAKE_VERSION(DEVHOST_ABI_VERSION_MAJOR, DEVHOST_ABI_VERSION_MINOR)

/* Marks the one symbol a plugin exports. Build plugins with
 * -fvisibility=hidden so that nothing else leaks out of the library. */
#if defined(__GNUC__) || defined(__clang__)
#define DEVHOST_EXPORT __attribute__((visibility("default")))
#else
#define DEVHOST_EXPORT
#endif

/* True when a struct that declares `size` bytes contains `field`. */
#define DEVHOST_HAS_FIELD(type, size, field) \
    ((size_t)(size) >= offsetof(type, field) + sizeof(((type *)0)->field))

/* Since v1.1: "no deadline", as the deadline_ns service answers it and as
 * <devhost/plugin_util.h> uses it: a deadline that never passes. */
#ifndef DEVHOST_DEADLINE_NONE
#define DEVHOST_DEADLINE_NONE UINT64_MAX
#endif

/* ------------------------------------------------------------------------
 * 2. Status codes and the error record
 * ------------------------------------------------------------------------ */

/* 0 is success; every failure is negative. A fixed-width type, so that the
 * ABI does not depend on how a compiler sizes enums. */
typedef int32_t devhost_status;

/* When you append a value here, also update devhost_status_name() below
 * and DEVHOST_STATUS_LAST. Values are never renumbered or reused. */
enum {
    DEVHOST_OK = 0,
    DEVHOST_E_INVALID = -1,     /* an argument or option is not acceptable */
    DEVHOST_E_NOT_FOUND = -2,   /* no such device, port, message or code */
    DEVHOST_E_BUSY = -3,        /* held by another client; never blocks */
    DEVHOST_E_STATE = -4,       /* call not allowed in the device's state */
    DEVHOST_E_TIMEOUT = -5,     /* the deadline passed before completion */
    DEVHOST_E_REMOVED = -6,     /* the device went away (unplug, peer gone) */
    DEVHOST_E_IO = -7,          /* the device or OS reported an I/O error */
    DEVHOST_E_UNSUPPORTED = -8, /* hook, op, option or code not supported */
    DEVHOST_E_ACCESS = -9,      /* permission denied, or write not allowed */
    DEVHOST_E_NO_MEMORY = -10,  /* allocation failed */
    DEVHOST_E_PROTOCOL = -11,   /* the peer broke the protocol or expectation */
    DEVHOST_E_CANCELLED = -12,  /* the device's cancel handle fired */
    /* since v1.1 */
    DEVHOST_E_HOST_FAILED = -13 /* the process running the plugin died or was
                                   stopped while the call was pending; the
                                   host, never a plugin, reports it */
    /* since v1.2: append values here */
};
#define DEVHOST_STATUS_LAST DEVHOST_E_HOST_FAILED

/* The status's name, e.g. "DEVHOST_E_BUSY"; "DEVHOST_E_UNKNOWN" for a value
 * this header does not know (one appended by a newer ABI). */
static inline const char *devhost_status_name(devhost_status status)
{
    switch (status) {
    case DEVHOST_OK: return "DEVHOST_OK";
    case DEVHOST_E_INVALID: return "DEVHOST_E_INVALID";
    case DEVHOST_E_NOT_FOUND: return "DEVHOST_E_NOT_FOUND";
    case DEVHOST_E_BUSY: return "DEVHOST_E_BUSY";
    case DEVHOST_E_STATE: return "DEVHOST_E_STATE";
    case DEVHOST_E_TIMEOUT: return "DEVHOST_E_TIMEOUT";
    case DEVHOST_E_REMOVED: return "DEVHOST_E_REMOVED";
    case DEVHOST_E_IO: return "DEVHOST_E_IO";
    case DEVHOST_E_UNSUPPORTED: return "DEVHOST_E_UNSUPPORTED";
    case DEVHOST_E_ACCESS: return "DEVHOST_E_ACCESS";
    case DEVHOST_E_NO_MEMORY: return "DEVHOST_E_NO_MEMORY";
    case DEVHOST_E_PROTOCOL: return "DEVHOST_E_PROTOCOL";
    case DEVHOST_E_CANCELLED: return "DEVHOST_E_CANCELLED";
    case DEVHOST_E_HOST_FAILED: return "DEVHOST_E_HOST_FAILED";
    default: return "DEVHOST_E_UNKNOWN";
    }
}

#define DEVHOST_ERROR_MESSAGE_MAX 512

/* Filled in by the callee when a call fails. The caller allocates it, sets
 * struct_size, zeroes the rest, and passes it to every hook. A plugin that
 * fails should set message (one line, no trailing newline, naming what was
 * wrong) and os_errno (the errno that caused it, or 0). */
typedef struct devhost_error {
    uint32_t struct_size;
    int32_t os_errno;
    char message[DEVHOST_ERROR_MESSAGE_MAX];
    /* since v1.2: append here */
} devhost_error;

/* ------------------------------------------------------------------------
 * 3. Host services
 * ------------------------------------------------------------------------ */

typedef enum devhost_log_level {
    DEVHOST_LOG_TRACE = 0,
    DEVHOST_LOG_DEBUG = 1,
    DEVHOST_LOG_INFO = 2,
    DEVHOST_LOG_WARN = 3,
    DEVHOST_LOG_ERROR = 4
    /* since v1.2: append values here */
} devhost_log_level;

/* The host's per-device token, passed to the plugin in open. The plugin
 * stores it and hands it back to log(); it is valid until close returns. */
typedef struct devhost_host_device devhost_host_device;

/* Provided by the host, valid while the plugin is loaded. Every function here
 * is thread-safe. */
typedef struct devhost_host_services {
    uint32_t struct_size;
    uint32_t host_abi_version;
    /* Log one line. `device` may be NULL for messages not about a device.
     * `message` is copied before log returns. */
    void (*log)(const devhost_host_device *device, int32_t level,
                const char *message);
    /* CLOCK_MONOTONIC in nanoseconds: use it for deadlines. */
    uint64_t (*monotonic_ns)(void);
    /* since v1.1 */
    /* The deadline of the hook now running for `device` (NULL: the hook
     * that has no device, enumerate), as an absolute CLOCK_MONOTONIC time
     * in nanoseconds, or DEVHOST_DEADLINE_NONE. Call it from inside the
     * hook, on the hook's thread; it answers the same value for the whole
     * call. Every hook keeps to it, those without a timeout argument too. */
    uint64_t (*deadline_ns)(const devhost_host_device *device);
    /* Hand the host a reference to a descriptor that carries the device's
     * state (its exclusive open, claim or lock), from open or connect, so
     * that if the process running the plugin dies the host still holds the
     * device, releases it properly and no other program grabs it in the
     * gap. The host duplicates `fd`; the plugin keeps and closes its own.
     * `role` names what the descriptor is ("tty", "ppdev", "block"), [a-z0-9-].
     * The host keeps one copy per device and role: sharing a role again
     * replaces it, and fd -1 drops it (from any hook), which a plugin does
     * before it closes a descriptor it shared, so that its own close stays
     * the last one; the host drops what is left when close returns.
     * Returns OK, or E_UNSUPPORTED where the host keeps no descriptors (a
     * host running plugins in its own process). devhost/plugin_util.h's
     * devhost_util_share_fd_or_warn and _unshare_fd call it. */
    devhost_status (*share_fd)(const devhost_host_device *device, int32_t fd,
                               const char *role);
    /* since v1.2: append here */
} devhost_host_services;

/* ------------------------------------------------------------------------
 * 4. Option schema and control codes
 * ------------------------------------------------------------------------ */

/* Types of a device option. The host parses and validates every configured
 * value against its type before any device is opened. */
enum {
    DEVHOST_OPTION_STRING = 1,   /* any text */
    DEVHOST_OPTION_INT = 2,      /* integer in [min, max]; 0x prefix allowed */
    DEVHOST_OPTION_BOOL = 3,     /* true/false, yes/no, on/off, 1/0 */
    DEVHOST_OPTION_ENUM = 4,     /* one of `choices`, "a|b|c" */
    DEVHOST_OPTION_DURATION = 5  /* 250ms, 2s, 1m; passed as milliseconds */
    /* since v1.2: append values here */
};

/* Option flags, since v1.1. */
enum {
    /* The option has no default and must be configured: `devhost check`
     * refuses a device that leaves it out. */
    DEVHOST_OPTION_REQUIRED = 1u << 0,
    /* A BOOL option that, set false, lets this device share its path with
     * other devices of the class (`exclusive = false`): `devhost check`
     * allows two devices on one path when every one of them sets it false.
     * At most one option of a schema has this flag. */
    DEVHOST_OPTION_EXCLUSIVE = 1u << 1,
    /* A BOOL option that, set false, keeps the device read-only: the plugin
     * refuses writes and the controls flagged DEVHOST_CONTROL_MODIFIES
     * (`allow-write = false`). `devhost check` warns about such steps on a
     * device that leaves it false. At most one option of a schema has this
     * flag. */
    DEVHOST_OPTION_WRITABLE = 1u << 2
    /* since v1.2: append values here */
};


/* One configurable key of a device of this class, e.g. "baud". The host
 * rejects config keys that no spec names. */
typedef struct devhost_option_spec {
    uint32_t struct_size;
    uint32_t type;             /* DEVHOST_OPTION_* */
    const char *name;          /* lower-case, [a-z0-9-], unique */
    const char *default_value; /* text as in a config; NULL: no default */
    const char *help;          /* one line, shown by `devhost plugins` */
    const char *choices;       /* ENUM only: "none|odd|even"; else NULL */
    int64_t min;               /* INT only: inclusive bounds */
    int64_t max;
    /* since v1.1 */
    uint32_t flags;            /* DEVHOST_OPTION_REQUIRED, _EXCLUSIVE; the
                                  name may not be a reserved one (see
                                  devhost_option_name_reserved) */
    uint32_t reserved;
    /* since v1.2: append here */
} devhost_option_spec;

/* Flags of a control code. */
enum {
    /* The code changes the device (host-side policy may refuse it). */
    DEVHOST_CONTROL_MODIFIES = 1u << 0
};

/* A device control code (the DeviceIoControl analogue), so that configs can
 * name codes and `devhost check` can validate them without a device. */
typedef struct devhost_control_spec {
    uint32_t struct_size;
    uint32_t code;             /* passed in devhost_transfer.control_code */
    const char *name;          /* e.g. "get-length"; unique, [a-z0-9-] */
    const char *help;          /* one line */
    uint32_t flags;            /* DEVHOST_CONTROL_* */
    /* since v1.2: append here */
} devhost_control_spec;

/* ------------------------------------------------------------------------
 * 5. Open and connect parameters, the info sink
 * ------------------------------------------------------------------------ */

/* A validated option value. The host passes one for every option in the
 * plugin's schema, in schema order: configured ones, and defaults for the
 * rest. An option with no default that was not configured has is_set = 0. */
typedef struct devhost_option_value {
    uint32_t struct_size;
    uint32_t type;             /* DEVHOST_OPTION_* as in the schema */
    const char *name;
    const char *text;          /* as configured (or the default); never NULL */
    int64_t integer;           /* INT: the value; BOOL: 0 or 1;
                                  DURATION: milliseconds; ENUM: choice index */
    uint32_t is_set;
    uint32_t reserved;
    /* since v1.2: append here */
} devhost_option_value;

/* Open flags. */
enum {
    /* The handle may be inherited by child processes (default: close-on-exec). */
    DEVHOST_OPEN_INHERIT = 1u << 0
};

typedef struct devhost_open_params {
    uint32_t struct_size;
    uint32_t flags;                   /* DEVHOST_OPEN_* */
    const char *device_name;          /* the config's name, e.g. "modem" */
    const char *path;                 /* resolved Linux path (or a class path
                                         such as vport:NAME); never NULL */
    const char *configured_path;      /* as written, e.g. "\\\\.\\COM7" */
    const devhost_option_value *options; /* one per schema entry */
    uint32_t option_count;
    int32_t timeout_ms;               /* for the open itself; -1: none */
    /* An eventfd owned by the host, readable once the device is cancelled
     * (shutdown, or the pipeline was aborted). Poll it with anything you
     * wait on; never read, write or close it. Valid until close returns. */
    int32_t cancel_fd;
    uint32_t reserved;
    const devhost_host_device *host_device; /* pass to services->log */
    /* since v1.2: append here */
} devhost_open_params;

/* A key=value pair from a step line (e.g. `connect mode=ecp`). The value
 * is NUL-terminated text: a value holding a NUL byte (written \x00 in a
 * step) is cut there. devhost_arg (since v1.1) carries it whole. */
typedef struct devhost_kv {
    const char *key;
    const char *value;
} devhost_kv;

/* Since v1.1: a step's key=value pair with the value's size, so that a
 * binary value keeps its NUL bytes. value[value_size] is a NUL the host
 * adds (not counted), so text values read as C strings too. */
typedef struct devhost_arg {
    uint32_t struct_size;
    uint32_t reserved;
    const char *key;
    const uint8_t *value;
    size_t value_size;
    /* since v1.2: append here */
} devhost_arg;

typedef struct devhost_connect_params {
    uint32_t struct_size;
    uint32_t reserved;
    /* Connection context bytes (a filter port's connect context). NULL when
     * the step gave none. context_size is as the step gave it (context-size=)
     * or the context's length: the plugin validates the pair, because a
     * context with size 0 or a size with no context is for it to refuse. */
    const void *context;
    uint32_t context_size;
    uint32_t arg_count;
    const devhost_kv *args;           /* the step's other key=value pairs */
    int32_t timeout_ms;               /* -1: none */
    uint32_t reserved2;
    /* since v1.1: the same pairs as `args`, in the same order, with their
     * sizes; arg_count elements of sized_args[0].struct_size bytes each
     * (use devhost_connect_arg()). */
    const devhost_arg *sized_args;
    /* since v1.2: append here */
} devhost_connect_params;

/* Where info() reports what it knows, one key and value at a time. Keys are
 * lower-case with dashes ("baud", "usb-vendor"). Both strings are copied by
 * the host before put() returns. */
typedef struct devhost_info_sink {
    uint32_t struct_size;
    uint32_t reserved;
    void *context;                    /* host's; pass back to put() */
    void (*put)(void *context, const char *key, const char *value);
    /* since v1.2: append here */
} devhost_info_sink;

/* ------------------------------------------------------------------------
 * 6. Transfers
 * ------------------------------------------------------------------------ */

/* Transfer operations. A plugin declares the ones it supports in
 * devhost_plugin_descriptor.transfer_ops as (1u << op). */
enum {
    DEVHOST_OP_WRITE = 1,        /* send out[0..out_len); set out_done */
    DEVHOST_OP_READ = 2,         /* read 1..in_capacity bytes: returns as soon
                                    as some data is there */
    DEVHOST_OP_READ_EXACT = 3,   /* read exactly in_capacity bytes */
    DEVHOST_OP_READ_UNTIL = 4,   /* read until `delimiter` has been received
                                    (it is included in in); surplus bytes stay
                                    with the device for the next read */
    DEVHOST_OP_REQUEST = 5,      /* send out, wait for the reply into in (with
                                    a delimiter: read until it, else one
                                    message or one read) */
    DEVHOST_OP_GET_MESSAGE = 6,  /* receive a message the peer started into
                                    in; set message_id */
    DEVHOST_OP_REPLY = 7,        /* reply to message_id with out */
    DEVHOST_OP_CONTROL = 8       /* control_code with out as input and in
                                    as output */
    /* since v1.2: append values here */
};
#define DEVHOST_OP_LAST DEVHOST_OP_CONTROL
#define DEVHOST_OP_BIT(op) (1u << (op))

/* Transfer flags. */
enum {
    DEVHOST_TRANSFER_HAS_OFFSET = 1u << 0  /* `offset` applies (raw devices) */
};

/* One transfer. The host owns the struct and both buffers. [MUST-5] The
 * plugin reads out[0..out_len), writes into in[0..in_capacity) and never past
 * it, and reports what it did in out_done, in_len and message_id (DEVHOST_OK
 * means all of it: out_done == out_len). On failure these
 * still tell how far it got (bytes written before the error, bytes read and
 * kept in `in`). */
typedef struct devhost_transfer {
    uint32_t struct_size;
    uint32_t op;                      /* DEVHOST_OP_* */
    uint32_t flags;                   /* DEVHOST_TRANSFER_* */
    int32_t timeout_ms;               /* for the whole transfer; -1: none */
    uint64_t offset;                  /* with DEVHOST_TRANSFER_HAS_OFFSET */
    const uint8_t *out;               /* bytes to the device; may be NULL */
    size_t out_len;
    uint8_t *in;                      /* host's buffer for bytes from the
                                         device; may be NULL if capacity 0 */
    size_t in_capacity;
    const uint8_t *delimiter;         /* READ_UNTIL, REQUEST; else NULL */
    size_t delimiter_len;
    uint64_t message_id;              /* GET_MESSAGE: out; REPLY: in */
    uint32_t control_code;            /* CONTROL */
    uint32_t reserved;
    size_t out_done;                  /* out: bytes of `out` sent */
    size_t in_len;                    /* out: bytes placed in `in` */
    /* since v1.2: append here */
} devhost_transfer;

/* ------------------------------------------------------------------------
 * 7. Hooks
 * ------------------------------------------------------------------------ */

/* The plugin's per-device state, defined by the plugin. */
typedef struct devhost_device devhost_device;

/* Since v1.1: what enumerate() is asked. */
enum {
    /* Also list what is normally left out as not a device (pseudo-terminals
     * for serial, for example). */
    DEVHOST_ENUMERATE_ALL = 1u << 0
};

typedef struct devhost_enumerate_params {
    uint32_t struct_size;
    uint32_t flags;                   /* DEVHOST_ENUMERATE_* */
    /* since v1.2: append here */
} devhost_enumerate_params;

/* Since v1.1: one device enumerate() found. Every string is NULL when not
 * known, and is copied by the host before put() returns. */
typedef struct devhost_found_device {
    uint32_t struct_size;
    uint32_t reserved;
    const char *path;                 /* what a config's `path =` takes */
    const char *by_id;                /* a stable link (/dev/serial/by-id/...,
                                         /dev/disk/by-id/...) */
    const char *description;          /* one line for a person: driver, size,
                                         model */
    const char *usb_vendor;           /* "0403", from sysfs */
    const char *usb_product;          /* "6001" */
    const char *usb_serial;
    /* since v1.2: append here */
} devhost_found_device;

typedef struct devhost_found_sink {
    uint32_t struct_size;
    uint32_t reserved;
    void *context;                    /* host's; pass back to put() */
    void (*put)(void *context, const devhost_found_device *found);
    /* since v1.2: append here */
} devhost_found_sink;

/*
 * The hook table. A NULL hook means "not supported": the host answers
 * DEVHOST_E_UNSUPPORTED itself and never calls through NULL. Only open and
 * close are required.
 *
 * [MUST-4] The host checks each hook's precondition before calling it (see
 * "state" below) and refuses a call in the wrong state with
 * DEVHOST_E_STATE without reaching the plugin, so a plugin may assume it; a plugin that keeps its own state should
 * still refuse a call it cannot honour with DEVHOST_E_STATE.
 *
 * Every hook that can fail takes `err`, owned by the host, already zeroed with
 * struct_size set. On failure fill err->message and err->os_errno.
 *
 * Statuses every hook may return, besides those listed for it:
 * DEVHOST_E_NO_MEMORY; DEVHOST_E_CANCELLED (when it waited, and cancel_fd
 * fired); [MUST-10] DEVHOST_E_REMOVED (the device is gone: the host then
 * unwinds; never a hang).
 */
typedef struct devhost_hooks {
    uint32_t struct_size;
    uint32_t reserved;

    /* open: create per-device state for params->path and store it in
     * *device. State: none; this is the first call for a device.
     * Must open existing devices only and never create anything at a device
     * path. Unless DEVHOST_OPEN_INHERIT is set, descriptors are close-on-exec.
     * [MUST-3] On failure, *device may be left NULL, or point at a half-built
     * state that close() can take: the host then calls close() on it.
     * Returns: OK; E_NOT_FOUND (no such path); E_BUSY (held by another
     * client: must not wait); E_ACCESS; E_INVALID (bad option value or path
     * form); E_IO; E_TIMEOUT. Pointers in params are valid for this call only,
     * except host_device and cancel_fd, valid until close returns. */
    devhost_status (*open)(const devhost_open_params *params,
                           devhost_device **device, devhost_error *err);

    /* close: [MUST-8] release everything the device holds (claims, locks,
     * fds, memory) and free `device`. State: any, including a half-opened device
     * and one whose connect or lock failed; close also drops a lock or
     * connection the pipeline did not undo. Called exactly once; `device` is
     * invalid afterwards. Returns OK, or a status describing a problem met
     * while releasing (e.g. settings could not be restored); the device is
     * freed either way. Since v1.1 close keeps to the hook's deadline
     * (devhost_hook_deadline()): what cannot be finished by then (output
     * still queued, a peer that does not answer) is given up, said in the
     * log, and the device freed; close never waits past it. */
    devhost_status (*close)(devhost_device *device, devhost_error *err);

    /* connect: establish the session with the device (e.g. negotiate a
     * parallel mode, connect to a filter port). State: open, not connected.
     * A failed connect leaves the device open and not connected.
     * Returns: OK; E_INVALID (bad context/size pair or argument, checked
     * before any I/O); E_NOT_FOUND; E_BUSY; E_ACCESS; E_PROTOCOL (refused by
     * the peer); E_TIMEOUT; E_IO. */
    devhost_status (*connect)(devhost_device *device,
                              const devhost_connect_params *params,
                              devhost_error *err);

    /* disconnect: end the session. State: connected. Since v1.1 it keeps to
     * the hook's deadline (devhost_hook_deadline()) and the cancel handle.
     * Returns: OK; E_IO; E_TIMEOUT (since v1.1). The device is not connected
     * afterwards either way. */
    devhost_status (*disconnect)(devhost_device *device, devhost_error *err);

    /* lock: take the device for exclusive driving (e.g. claim a parallel
     * port), waiting up to timeout_ms (-1: until cancelled) for other clients.
     * State: open (and connected if the descriptor's lock_requires says so),
     * not locked. Returns: OK; E_TIMEOUT (still held by another client when
     * the time ran out); E_BUSY; E_IO. */
    devhost_status (*lock)(devhost_device *device, int32_t timeout_ms,
                           devhost_error *err);

    /* unlock: release what lock took. State: locked. Since v1.1 it keeps to
     * the hook's deadline (devhost_hook_deadline()) and the cancel handle.
     * Returns: OK; E_IO; E_TIMEOUT (since v1.1). The device is not locked
     * afterwards either way. */
    devhost_status (*unlock)(devhost_device *device, devhost_error *err);

    /* info: report what is known about the device through `sink`.
     * State: open. Since v1.1 it keeps to the hook's deadline
     * (devhost_hook_deadline()): a fact that needs a slow query is left out
     * when the deadline comes. Returns: OK; E_IO; E_TIMEOUT (since v1.1). */
    devhost_status (*info)(devhost_device *device,
                           const devhost_info_sink *sink, devhost_error *err);

    /* transfer: perform one transfer (see devhost_transfer). State: what the
     * descriptor's transfer_requires declares; the op is one the descriptor
     * declares in transfer_ops. Must respect xfer->timeout_ms and cancel_fd.
     * Returns: OK; E_TIMEOUT (deadline passed; in_len/out_done tell how much
     * got through); E_INVALID (bad length, offset, alignment or id);
     * E_UNSUPPORTED (op not supported, or, since v1.1, a control code the
     * plugin does not know: that one status for every unknown code);
     * E_ACCESS (write not
     * allowed); E_PROTOCOL (peer answered nonsense); E_REMOVED; E_IO. */
    devhost_status (*transfer)(devhost_device *device, devhost_transfer *xfer,
                               devhost_error *err);

    /* since v1.1 */

    /* enumerate: list the devices this plugin could drive on this machine,
     * one sink->put() each, without opening any of them for I/O (read sysfs,
     * list /dev, stat; never send a byte to a device). `devhost scan` calls
     * it. Keeps to the deadline_ns(NULL) deadline. May be NULL (the class
     * cannot list its devices). Every reserved field of a found device is
     * zero (the host leaves out an entry that is not). Returns OK; E_IO;
     * E_ACCESS (a place it must read is not readable); E_TIMEOUT. */
    devhost_status (*enumerate)(const devhost_enumerate_params *params,
                                const devhost_found_sink *sink,
                                devhost_error *err);

    /* unload: called once, after every device of the plugin is closed and
     * just before the library is unloaded: undo what the plugin did to the
     * process (signal handlers, threads, atexit-like state). May be NULL. */
    void (*unload)(void);

    /* since v1.2: append here */
} devhost_hooks;

/* ------------------------------------------------------------------------
 * 8. The plugin descriptor
 * ------------------------------------------------------------------------ */

/* What a step needs besides "open" (bits for transfer_requires and
 * lock_requires). Since v1.1 the host refuses to load a plugin that sets a
 * requirement bit it does not know: it could not keep the promise. Unknown
 * FLAG bits (descriptor flags, option and control flags) are ignored. */
enum {
    DEVHOST_REQUIRES_CONNECTED = 1u << 0,
    DEVHOST_REQUIRES_LOCKED = 1u << 1
};
#define DEVHOST_REQUIRES_KNOWN (DEVHOST_REQUIRES_CONNECTED | DEVHOST_REQUIRES_LOCKED)

/* Descriptor flags. */
enum {
    /* Several devices of this class may be opened on one path at once (a
     * shared parallel port): `devhost check` does not refuse two devices on
     * one path for this class. */
    DEVHOST_PLUGIN_SHARED_PATHS = 1u << 0,
    /* Transfers take an offset (DEVHOST_TRANSFER_HAS_OFFSET: a random-access
     * device, such as a disk). `devhost check` warns about an offset= on a
     * class without this flag; the plugin still decides when the step runs. */
    DEVHOST_PLUGIN_OFFSETS = 1u << 1
};

/* Kinds of file, the bits of the descriptor's path_types (since v1.1). */
enum {
    DEVHOST_PATH_REGULAR = 1u << 0, /* a regular file (a disk image) */
    DEVHOST_PATH_BLOCK = 1u << 1,   /* a block device */
    DEVHOST_PATH_CHAR = 1u << 2,    /* a character device */
    DEVHOST_PATH_SOCKET = 1u << 3   /* a Unix-domain socket */
    /* since v1.2: append values here */
};

/* [MUST-2] The descriptor, its option schema and its control table are well
 * formed: names valid (devhost_identifier_valid) and unique, ENUM choices
 * given, INT bounds ordered, defaults of the option's type, one-line help;
 * the loader refuses a plugin whose descriptor is not. */
typedef struct devhost_plugin_descriptor {
    uint32_t struct_size;
    uint32_t flags;                   /* DEVHOST_PLUGIN_* */
    const char *name;                 /* plugin name, e.g. "serial" */
    const char *device_class;         /* class it serves, [a-z0-9-]; one
                                         plugin per class */
    const char *version;              /* plugin's own version, "1.2.0" */
    const char *description;          /* one line */
    const devhost_option_spec *options; /* array of option_count specs, all
                                         with the same struct_size */
    uint32_t option_count;
    uint32_t control_count;
    const devhost_control_spec *controls; /* array of control_count specs, all
                                         with the same struct_size */
    const devhost_hooks *hooks;       /* required */
    uint32_t transfer_ops;            /* DEVHOST_OP_BIT(op) for each op */
    uint32_t transfer_requires;       /* DEVHOST_REQUIRES_* */
    uint32_t lock_requires;           /* DEVHOST_REQUIRES_CONNECTED or 0 */
    uint32_t reserved;
    /* since v1.1: the paths this class serves, as fnmatch(3) patterns
     * matched without FNM_PATHNAME, so that '*' also matches '/' and one
     * pattern covers any depth ("/dev/ttyS*", "/dev/parport[0-9]*",
     * "vport:*", which takes vport:/run/a/b.sock too), ending with NULL;
     * NULL for none. `devhost probe` and `check` pick a device's class from
     * them (the most specific pattern, by its literal prefix, the part
     * before its first * ? [ or \, wins; two classes matching alike is an
     * error the user resolves with `class =`), so the host knows no class's
     * paths. */
    const char *const *path_patterns;
    /* since v1.1: the kinds of file this class serves at a path that no
     * plugin's pattern names (DEVHOST_PATH_*, or'd; 0 for none): when no
     * pattern matches, `devhost probe` and `check` stat the path and pick
     * the one class whose path_types has the file's kind (a disk image
     * anywhere is DEVHOST_PATH_REGULAR). A guess made for the user, not a
     * security decision: the plugin still checks what it opens. Two classes
     * declaring the kind alike is an error naming both, resolved with
     * `class =`; a path that does not exist has no kind. Unknown bits are
     * ignored: these are flags, not requirements. The host reads the field
     * only from a plugin that negotiated 1.1 or later. */
    uint32_t path_types;
    /* since v1.1: zero (the host refuses a plugin that sets it); it fills
     * what would be padding, so that the next member starts past it. */
    uint32_t reserved_1_1;
    /* since v1.2: append here */
} devhost_plugin_descriptor;

/* ------------------------------------------------------------------------
 * 9. The entry point
 * ------------------------------------------------------------------------ */

/* The one symbol a plugin exports, found by this name. */
#define DEVHOST_ENTRY_POINT devhost_plugin_negotiate
#define DEVHOST_ENTRY_POINT_NAME "devhost_plugin_negotiate"

/* In and out of the negotiation. The host fills the "in" fields, zeroes the
 * rest and calls the entry point once, from one thread, right after loading.
 */
typedef struct devhost_negotiation {
    uint32_t struct_size;
    /* in: the newest ABI version the host speaks, and the oldest it accepts */
    uint32_t host_abi_version;
    uint32_t host_min_abi_version;
    /* out: the version the plugin will speak; [MUST-1] it must not be newer
     * than host_abi_version (a plugin built against a newer minor answers the
     * host's version and keeps to what it covers). */
    uint32_t plugin_abi_version;
    /* in: the host's services, valid while the library stays loaded */
    const devhost_host_services *services;
    /* out: the plugin's descriptor, valid while the library stays loaded */
    const devhost_plugin_descriptor *descriptor;
    /* in: where a refusing plugin says why */
    devhost_error *error;
    /* since v1.2: append here */
} devhost_negotiation;

/* Returns DEVHOST_OK after filling plugin_abi_version and descriptor, or a
 * failure status (and error->message) to refuse ([MUST-1]: a host of another
 * major is refused), e.g. DEVHOST_E_UNSUPPORTED
 * when it cannot speak any version the host offers. */
typedef devhost_status (*devhost_negotiate_fn)(devhost_negotiation *negotiation);

/* A plugin defines it as:
 *   DEVHOST_EXPORT devhost_status
 *   devhost_plugin_negotiate(devhost_negotiation *n)
 *   {
 *       return devhost_negotiate(n, &my_descriptor, &my_services);
 *   }
 * devhost_negotiate() (section 10) is the one correct answer; write your own
 * only to refuse a host for a reason of your own, and then call it too. */
DEVHOST_EXPORT devhost_status devhost_plugin_negotiate(devhost_negotiation *negotiation);

/* ------------------------------------------------------------------------
 * 10. Inline helpers for plugin authors
 * ------------------------------------------------------------------------ */

/* Fill an error record: printf-style message, truncated to fit. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static inline void devhost_error_set(devhost_error *err, int os_errno,
                                     const char *fmt, ...)
{
    if (err && DEVHOST_HAS_FIELD(devhost_error, err->struct_size, message)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->os_errno = os_errno;
    }
}

/* Fill an error record and return `status`, for `return devhost_fail(...)`. */
#define devhost_fail(err, status, os_errno, ...) \
    (devhost_error_set((err), (os_errno), __VA_ARGS__), (devhost_status)(status))

/* Log a printf-style line through the host. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 4, 5)))
#endif
static inline void devhost_logf(const devhost_host_services *services,
                                const devhost_host_device *device,
                                int32_t level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    if (!services || !services->log)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    services->log(device, level, line);
}

/* Since v1.1: whether `s` is a valid name for a device class, an option or
 * a control code: 1 to DEVHOST_IDENTIFIER_MAX characters of [a-z0-9-],
 * starting with a letter or a digit. The host checks every name a plugin
 * declares with this very function. */
#define DEVHOST_IDENTIFIER_MAX 64
static inline int devhost_identifier_valid(const char *s)
{
    size_t n = 0;
    if (!s || !*s || *s == '-')
        return 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= DEVHOST_IDENTIFIER_MAX)
            return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return 0;
    }
    return 1;
}

/* Since v1.1: whether an option name is one the config keeps for itself in
 * a device section (today's keys and those `devhost serve` reads), which no
 * schema may declare: the host refuses a plugin whose schema does. The
 * list only grows, with the minor. */
static inline int devhost_option_name_reserved(const char *name)
{
    static const char *const reserved[] = {
        "class", "path", "inherit", "timeout", "step", "fault", /* v1.0 keys */
        "setup", "teardown", "run", "stale-after", "match", "isolation", NULL};
    size_t i;
    for (i = 0; name && reserved[i]; i++)
        if (strcmp(name, reserved[i]) == 0)
            return 1;
    return 0;
}

/* Since v1.1: the one negotiation every plugin needs. It checks that the
 * host's negotiation struct has the fields it reads (DEVHOST_HAS_FIELD),
 * refuses a host of another major, or one that no longer accepts this
 * plugin's version, with a message naming both versions (E_UNSUPPORTED),
 * answers the older of the host's version and this header's, hands over
 * `descriptor` and keeps the host's services table in *services (when
 * services is not NULL). A plugin built from a newer header answers the
 * host's older minor and then keeps to that minor's rules, checking
 * struct_size before it touches anything newer (see "What governs what"). */
static inline devhost_status devhost_negotiate(devhost_negotiation *n,
                                               const devhost_plugin_descriptor *descriptor,
                                               const devhost_host_services **services)
{
    uint32_t own = DEVHOST_ABI_VERSION;
    const char *name = descriptor && descriptor->name ? descriptor->name : "plugin";
    if (!n || !DEVHOST_HAS_FIELD(devhost_negotiation, n->struct_size, error))
        return DEVHOST_E_INVALID;
    if (DEVHOST_VERSION_MAJOR(n->host_abi_version) != DEVHOST_ABI_VERSION_MAJOR)
        return devhost_fail(n->error, DEVHOST_E_UNSUPPORTED, 0,
                            "%s speaks ABI %u.x, the host offers %u.%u", name,
                            (unsigned)DEVHOST_ABI_VERSION_MAJOR,
                            (unsigned)DEVHOST_VERSION_MAJOR(n->host_abi_version),
                            (unsigned)DEVHOST_VERSION_MINOR(n->host_abi_version));
    if (n->host_min_abi_version > own)
        return devhost_fail(n->error, DEVHOST_E_UNSUPPORTED, 0,
                            "%s speaks ABI up to %u.%u, the host needs at least %u.%u", name,
                            (unsigned)DEVHOST_VERSION_MAJOR(own), (unsigned)DEVHOST_VERSION_MINOR(own),
                            (unsigned)DEVHOST_VERSION_MAJOR(n->host_min_abi_version),
                            (unsigned)DEVHOST_VERSION_MINOR(n->host_min_abi_version));
    n->plugin_abi_version = n->host_abi_version < own ? n->host_abi_version : own;
    n->descriptor = descriptor;
    if (services)
        *services = n->services;
    return DEVHOST_OK;
}

/* Since v1.1: the deadline of the hook now running for `device`, from the
 * host's deadline_ns service, or DEVHOST_DEADLINE_NONE from a 1.0 host
 * (which has no such service: its hooks without a timeout have none). */
static inline uint64_t devhost_hook_deadline(const devhost_host_services *services,
                                             const devhost_host_device *device)
{
    if (!services || !DEVHOST_HAS_FIELD(devhost_host_services, services->struct_size, deadline_ns) ||
        !services->deadline_ns)
        return DEVHOST_DEADLINE_NONE;
    return services->deadline_ns(device);
}

/* Since v1.1: the i-th step argument of a connect, with its size, or NULL
 * past the end. From a 1.0 host (no sized_args) the text pair is turned
 * into *scratch, its size the text's length. */
static inline const devhost_arg *devhost_connect_arg(const devhost_connect_params *params,
                                                     uint32_t i, devhost_arg *scratch)
{
    if (!params || i >= params->arg_count)
        return NULL;
    if (DEVHOST_HAS_FIELD(devhost_connect_params, params->struct_size, sized_args) &&
        params->sized_args) {
        const unsigned char *p = (const unsigned char *)params->sized_args;
        return (const devhost_arg *)(const void *)(p + (size_t)i * params->sized_args[0].struct_size);
    }
    scratch->struct_size = (uint32_t)sizeof *scratch;
    scratch->reserved = 0;
    scratch->key = params->args[i].key;
    scratch->value = (const uint8_t *)params->args[i].value;
    scratch->value_size = strlen(params->args[i].value);
    return scratch;
}

/* The option named `name` among those passed to open, or NULL. */
static inline const devhost_option_value *
devhost_option_find(const devhost_open_params *params, const char *name)
{
    uint32_t i;
    const unsigned char *p = (const unsigned char *)params->options;
    for (i = 0; i < params->option_count; i++) {
        const devhost_option_value *v =
            (const devhost_option_value *)(const void *)(p + (size_t)i * params->options[0].struct_size);
        if (strcmp(v->name, name) == 0)
            return v;
    }
    return NULL;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* DEVHOST_PLUGIN_H */
