/*
 * The v1 ABI as a C99 compiler sees it (built with -std=c99 -Wpedantic):
 * every struct starts with a 4-byte struct_size; on LP64 every v1 field sits
 * where v1 put it and no struct shrank below its v1 size (fields may only be
 * appended, so sizes may grow, never offsets move); every status has a name;
 * versions pack as documented. A failure prints what moved and exits 1.
 */
#include <devhost/plugin.h>

#include <stdio.h>
#include <string.h>

static int failures;

static void check(int ok, const char *what, long got, long want)
{
    if (!ok) {
        printf("FAILED: %s: got %ld, want %ld\n", what, got, want);
        failures++;
    }
}

/* The offset of a v1 field on LP64 (x86-64, aarch64: the platforms devhost
 * builds for). Other data models only check struct_size. */
#define LP64 (sizeof(void *) == 8 && sizeof(long) == 8)
#define FIELD(type, field, lp64_offset)                                                 \
    do {                                                                                \
        if (LP64)                                                                       \
            check(offsetof(type, field) == (lp64_offset), "offsetof(" #type ", " #field ")", \
                  (long)offsetof(type, field), (long)(lp64_offset));                    \
    } while (0)
/* struct_size first and 4 bytes wide, and no smaller than in v1. */
#define V1_SIZE(type, lp64_size)                                                        \
    do {                                                                                \
        check(offsetof(type, struct_size) == 0, "offsetof(" #type ", struct_size)",     \
              (long)offsetof(type, struct_size), 0);                                    \
        check(sizeof(((type *)0)->struct_size) == 4, "sizeof(" #type ".struct_size)",   \
              (long)sizeof(((type *)0)->struct_size), 4);                               \
        if (LP64)                                                                       \
            check(sizeof(type) >= (lp64_size), "sizeof(" #type ") (at least)",          \
                  (long)sizeof(type), (long)(lp64_size));                               \
    } while (0)

static void check_layout(void)
{
    FIELD(devhost_error, struct_size, 0);
    FIELD(devhost_error, os_errno, 4);
    FIELD(devhost_error, message, 8);
    V1_SIZE(devhost_error, 520);

    FIELD(devhost_host_services, struct_size, 0);
    FIELD(devhost_host_services, host_abi_version, 4);
    FIELD(devhost_host_services, log, 8);
    FIELD(devhost_host_services, monotonic_ns, 16);
    V1_SIZE(devhost_host_services, 24);

    FIELD(devhost_option_spec, struct_size, 0);
    FIELD(devhost_option_spec, type, 4);
    FIELD(devhost_option_spec, name, 8);
    FIELD(devhost_option_spec, default_value, 16);
    FIELD(devhost_option_spec, help, 24);
    FIELD(devhost_option_spec, choices, 32);
    FIELD(devhost_option_spec, min, 40);
    FIELD(devhost_option_spec, max, 48);
    V1_SIZE(devhost_option_spec, 56);

    FIELD(devhost_control_spec, struct_size, 0);
    FIELD(devhost_control_spec, code, 4);
    FIELD(devhost_control_spec, name, 8);
    FIELD(devhost_control_spec, help, 16);
    FIELD(devhost_control_spec, flags, 24);
    V1_SIZE(devhost_control_spec, 32);

    FIELD(devhost_option_value, struct_size, 0);
    FIELD(devhost_option_value, type, 4);
    FIELD(devhost_option_value, name, 8);
    FIELD(devhost_option_value, text, 16);
    FIELD(devhost_option_value, integer, 24);
    FIELD(devhost_option_value, is_set, 32);
    FIELD(devhost_option_value, reserved, 36);
    V1_SIZE(devhost_option_value, 40);

    FIELD(devhost_open_params, struct_size, 0);
    FIELD(devhost_open_params, flags, 4);
    FIELD(devhost_open_params, device_name, 8);
    FIELD(devhost_open_params, path, 16);
    FIELD(devhost_open_params, configured_path, 24);
    FIELD(devhost_open_params, options, 32);
    FIELD(devhost_open_params, option_count, 40);
    FIELD(devhost_open_params, timeout_ms, 44);
    FIELD(devhost_open_params, cancel_fd, 48);
    FIELD(devhost_open_params, reserved, 52);
    FIELD(devhost_open_params, host_device, 56);
    V1_SIZE(devhost_open_params, 64);

    FIELD(devhost_connect_params, struct_size, 0);
    FIELD(devhost_connect_params, reserved, 4);
    FIELD(devhost_connect_params, context, 8);
    FIELD(devhost_connect_params, context_size, 16);
    FIELD(devhost_connect_params, arg_count, 20);
    FIELD(devhost_connect_params, args, 24);
    FIELD(devhost_connect_params, timeout_ms, 32);
    FIELD(devhost_connect_params, reserved2, 36);
    V1_SIZE(devhost_connect_params, 40);

    FIELD(devhost_info_sink, struct_size, 0);
    FIELD(devhost_info_sink, reserved, 4);
    FIELD(devhost_info_sink, context, 8);
    FIELD(devhost_info_sink, put, 16);
    V1_SIZE(devhost_info_sink, 24);

    FIELD(devhost_transfer, struct_size, 0);
    FIELD(devhost_transfer, op, 4);
    FIELD(devhost_transfer, flags, 8);
    FIELD(devhost_transfer, timeout_ms, 12);
    FIELD(devhost_transfer, offset, 16);
    FIELD(devhost_transfer, out, 24);
    FIELD(devhost_transfer, out_len, 32);
    FIELD(devhost_transfer, in, 40);
    FIELD(devhost_transfer, in_capacity, 48);
    FIELD(devhost_transfer, delimiter, 56);
    FIELD(devhost_transfer, delimiter_len, 64);
    FIELD(devhost_transfer, message_id, 72);
    FIELD(devhost_transfer, control_code, 80);
    FIELD(devhost_transfer, reserved, 84);
    FIELD(devhost_transfer, out_done, 88);
    FIELD(devhost_transfer, in_len, 96);
    V1_SIZE(devhost_transfer, 104);

    FIELD(devhost_hooks, struct_size, 0);
    FIELD(devhost_hooks, reserved, 4);
    FIELD(devhost_hooks, open, 8);
    FIELD(devhost_hooks, close, 16);
    FIELD(devhost_hooks, connect, 24);
    FIELD(devhost_hooks, disconnect, 32);
    FIELD(devhost_hooks, lock, 40);
    FIELD(devhost_hooks, unlock, 48);
    FIELD(devhost_hooks, info, 56);
    FIELD(devhost_hooks, transfer, 64);
    V1_SIZE(devhost_hooks, 72);

    FIELD(devhost_plugin_descriptor, struct_size, 0);
    FIELD(devhost_plugin_descriptor, flags, 4);
    FIELD(devhost_plugin_descriptor, name, 8);
    FIELD(devhost_plugin_descriptor, device_class, 16);
    FIELD(devhost_plugin_descriptor, version, 24);
    FIELD(devhost_plugin_descriptor, description, 32);
    FIELD(devhost_plugin_descriptor, options, 40);
    FIELD(devhost_plugin_descriptor, option_count, 48);
    FIELD(devhost_plugin_descriptor, control_count, 52);
    FIELD(devhost_plugin_descriptor, controls, 56);
    FIELD(devhost_plugin_descriptor, hooks, 64);
    FIELD(devhost_plugin_descriptor, transfer_ops, 72);
    FIELD(devhost_plugin_descriptor, transfer_requires, 76);
    FIELD(devhost_plugin_descriptor, lock_requires, 80);
    FIELD(devhost_plugin_descriptor, reserved, 84);
    V1_SIZE(devhost_plugin_descriptor, 88);

    FIELD(devhost_negotiation, struct_size, 0);
    FIELD(devhost_negotiation, host_abi_version, 4);
    FIELD(devhost_negotiation, host_min_abi_version, 8);
    FIELD(devhost_negotiation, plugin_abi_version, 12);
    FIELD(devhost_negotiation, services, 16);
    FIELD(devhost_negotiation, descriptor, 24);
    FIELD(devhost_negotiation, error, 32);
    V1_SIZE(devhost_negotiation, 40);
}

static void check_status_names(void)
{
    /* Every value from DEVHOST_OK down to DEVHOST_STATUS_LAST has its own
     * name, spelled after the constant; the next value is unknown. */
    devhost_status s, t;
    for (s = DEVHOST_OK; s >= DEVHOST_STATUS_LAST; s--) {
        const char *name = devhost_status_name(s);
        check(strncmp(name, "DEVHOST_", 8) == 0 && strcmp(name, "DEVHOST_E_UNKNOWN") != 0,
              "devhost_status_name() knows the status", (long)s, (long)s);
        for (t = DEVHOST_OK; t > s; t--)
            check(strcmp(name, devhost_status_name(t)) != 0, "status names are distinct", (long)s, (long)t);
    }
    check(strcmp(devhost_status_name(DEVHOST_STATUS_LAST - 1), "DEVHOST_E_UNKNOWN") == 0,
          "the status after DEVHOST_STATUS_LAST is unknown", (long)(DEVHOST_STATUS_LAST - 1), 0);
    check(strcmp(devhost_status_name(1), "DEVHOST_E_UNKNOWN") == 0, "positive status is unknown", 1, 0);
    check(strcmp(devhost_status_name(DEVHOST_E_CANCELLED), "DEVHOST_E_CANCELLED") == 0, "name of DEVHOST_E_CANCELLED",
          (long)DEVHOST_E_CANCELLED, 0);
    check(DEVHOST_E_INVALID == -1 && DEVHOST_E_BUSY == -3 && DEVHOST_E_TIMEOUT == -5 &&
              DEVHOST_E_UNSUPPORTED == -8 && DEVHOST_E_CANCELLED == -12,
          "status values are as in v1", 0, 0);
}

static void check_versions(void)
{
    check(DEVHOST_ABI_VERSION == 0x10001u, "DEVHOST_ABI_VERSION is 1.1", (long)DEVHOST_ABI_VERSION, 0x10001);
    check(DEVHOST_VERSION_MAJOR(DEVHOST_MAKE_VERSION(2, 7)) == 2, "DEVHOST_VERSION_MAJOR", 0, 2);
    check(DEVHOST_VERSION_MINOR(DEVHOST_MAKE_VERSION(2, 7)) == 7, "DEVHOST_VERSION_MINOR", 0, 7);
    check(DEVHOST_OP_WRITE == 1 && DEVHOST_OP_CONTROL == 8 && DEVHOST_OP_LAST == DEVHOST_OP_CONTROL,
          "transfer op values are as in v1", (long)DEVHOST_OP_LAST, 8);
    check(DEVHOST_HAS_FIELD(devhost_transfer, sizeof(devhost_transfer), in_len), "DEVHOST_HAS_FIELD, whole", 0, 1);
    check(!DEVHOST_HAS_FIELD(devhost_transfer, offsetof(devhost_transfer, in_len), in_len),
          "DEVHOST_HAS_FIELD, short", 1, 0);
}

static void check_error_helpers(void)
{
    devhost_error err;
    devhost_status s;
    memset(&err, 0, sizeof err);
    err.struct_size = sizeof err;
    s = devhost_fail(&err, DEVHOST_E_BUSY, 16, "port %s is busy", "x");
    check(s == DEVHOST_E_BUSY, "devhost_fail returns the status", (long)s, (long)DEVHOST_E_BUSY);
    check(err.os_errno == 16, "devhost_fail sets os_errno", (long)err.os_errno, 16);
    check(strcmp(err.message, "port x is busy") == 0, "devhost_fail formats the message", 0, 0);
    /* A record too small for a message is left alone. */
    memset(&err, 0, sizeof err);
    err.struct_size = 4;
    devhost_error_set(&err, 5, "ignored");
    check(err.message[0] == '\0' && err.os_errno == 0, "devhost_error_set respects struct_size", 0, 0);
}

/* devhost_negotiate(), the one negotiation (since v1.1): what it answers a
 * host of each kind, and what it refuses. */
static const devhost_hooks negotiate_hooks = {sizeof(devhost_hooks), 0, NULL, NULL, NULL, NULL,
                                              NULL, NULL, NULL, NULL};

static void check_negotiate(void)
{
    devhost_plugin_descriptor descriptor;
    devhost_host_services services;
    const devhost_host_services *stored = NULL;
    devhost_negotiation n;
    devhost_error err;
    devhost_status s;

    memset(&descriptor, 0, sizeof descriptor);
    descriptor.struct_size = sizeof descriptor;
    descriptor.name = "util";
    descriptor.hooks = &negotiate_hooks;
    memset(&services, 0, sizeof services);
    memset(&err, 0, sizeof err);
    err.struct_size = sizeof err;
    memset(&n, 0, sizeof n);
    n.struct_size = sizeof n;
    n.host_abi_version = DEVHOST_MAKE_VERSION(1, 0);
    n.host_min_abi_version = DEVHOST_MAKE_VERSION(1, 0);
    n.services = &services;
    n.error = &err;
    s = devhost_negotiate(&n, &descriptor, &stored);
    check(s == DEVHOST_OK, "a 1.0 host is accepted", (long)s, 0);
    check(n.plugin_abi_version == DEVHOST_MAKE_VERSION(1, 0), "the answer is 1.0", (long)n.plugin_abi_version,
          0x10000);
    check(n.descriptor == &descriptor && stored == &services, "descriptor handed over, services stored", 0, 0);

    n.host_abi_version = DEVHOST_MAKE_VERSION(1, 9);
    s = devhost_negotiate(&n, &descriptor, NULL);
    check(s == DEVHOST_OK && n.plugin_abi_version == DEVHOST_ABI_VERSION, "a newer 1.x host gets this header's 1.x",
          (long)n.plugin_abi_version, (long)DEVHOST_ABI_VERSION);

    n.host_abi_version = DEVHOST_MAKE_VERSION(2, 0);
    s = devhost_negotiate(&n, &descriptor, NULL);
    check(s == DEVHOST_E_UNSUPPORTED, "another major is refused", (long)s, (long)DEVHOST_E_UNSUPPORTED);
    check(strcmp(err.message, "util speaks ABI 1.x, the host offers 2.0") == 0, "refusal message: another major",
          0, 0);

    n.host_abi_version = DEVHOST_MAKE_VERSION(1, 9);
    n.host_min_abi_version = DEVHOST_MAKE_VERSION(1, 9);
    s = devhost_negotiate(&n, &descriptor, NULL);
    check(s == DEVHOST_E_UNSUPPORTED, "a host needing a later minor is refused", (long)s,
          (long)DEVHOST_E_UNSUPPORTED);
    check(strcmp(err.message, "util speaks ABI up to 1.1, the host needs at least 1.9") == 0,
          "refusal message: a later minor", 0, 0);

    n.struct_size = 8;
    check(devhost_negotiate(&n, &descriptor, NULL) == DEVHOST_E_INVALID, "a too small negotiation", 0,
          (long)DEVHOST_E_INVALID);
    check(devhost_negotiate(NULL, &descriptor, NULL) == DEVHOST_E_INVALID, "no negotiation", 0,
          (long)DEVHOST_E_INVALID);
}

int main(void)
{
    check_layout();
    check_status_names();
    check_versions();
    check_error_helpers();
    check_negotiate();
    if (failures)
        printf("%d ABI check(s) failed\n", failures);
    else
        printf("ABI v1 layout, status names, helpers and negotiation: all checks passed\n");
    return failures ? 1 : 0;
}
