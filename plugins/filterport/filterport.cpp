// filterport: the client side of a filter communication port (the
// FilterConnectCommunicationPort family). The descriptor, the option schema
// and the hooks; the socket work is in port_client.cpp.
//
//   open        checks the path names an existing socket; no I/O with it
//   connect     context/size rule and arguments checked first, then connect,
//               HELLO with the context, WELCOME (or the server's refusal)
//   transfer    REQUEST (FilterSendMessage), GET_MESSAGE (FilterGetMessage),
//               REPLY (FilterReplyMessage); needs connected
//   info        path, handle kind, server credentials, queued messages
//   disconnect, close
#include "port_client.hpp"

#include <devhost/plugin.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <string>

#include <sys/stat.h>

struct devhost_device {
    filterport::PortClient client;
};

namespace {

const devhost_host_services *g_services = nullptr;

constexpr devhost_option_spec option(uint32_t type, const char *name, const char *def, const char *help,
                                     int64_t min = 0, int64_t max = 0)
{
    return devhost_option_spec{sizeof(devhost_option_spec), type, name, def, help, nullptr, min, max};
}

const devhost_option_spec k_options[] = {
    option(DEVHOST_OPTION_BOOL, "sync", "false",
           "synchronous handle (FLT_PORT_FLAG_SYNC_HANDLE): one server message at a time; connect sync= overrides"),
    option(DEVHOST_OPTION_INT, "max-message", "65536",
           "largest message or reply accepted from the server, in bytes", 1, DEVHOST_PORT_MAX_PAYLOAD),
    option(DEVHOST_OPTION_INT, "server-uid", nullptr,
           "connect only to a server run by this uid (SO_PEERCRED), e.g. 0; another is refused with E_ACCESS", 0,
           UINT32_MAX - 1),
};

template <typename F>
devhost_status guarded(devhost_error *err, F &&body)
{
    try {
        return body();
    } catch (const std::bad_alloc &) {
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, ENOMEM, "filterport: out of memory");
    } catch (const std::exception &e) {
        return devhost_fail(err, DEVHOST_E_IO, 0, "filterport: %s", e.what());
    }
}

bool parse_bool(const char *text, bool &out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (const char *y : yes)
        if (std::strcmp(text, y) == 0)
            return out = true, true;
    for (const char *n : no)
        if (std::strcmp(text, n) == 0)
            return out = false, true;
    return false;
}

/* open: called first for a device. Checks that params->path names an
 * existing socket and records the options; it does not connect (connect
 * does) and creates nothing. Returns OK; E_NOT_FOUND (nothing at the path);
 * E_INVALID (empty path, or not a socket); E_ACCESS; E_IO; E_NO_MEMORY. On
 * failure *device is NULL. params' pointers are used during the call only,
 * except host_device and cancel_fd. */
devhost_status fp_open(const devhost_open_params *params, devhost_device **device, devhost_error *err)
{
    *device = nullptr;
    return guarded(err, [&]() -> devhost_status {
        const char *path = params->path;
        if (!path || !*path)
            return devhost_fail(err, DEVHOST_E_INVALID, 0, "filterport: empty port path");
        struct stat st;
        if (::stat(path, &st) != 0) {
            int e = errno;
            if (e == ENOENT || e == ENOTDIR)
                return devhost_fail(err, DEVHOST_E_NOT_FOUND, e, "no port at %s (is its server running?)", path);
            if (e == EACCES)
                return devhost_fail(err, DEVHOST_E_ACCESS, e, "port %s: %s", path, std::strerror(e));
            return devhost_fail(err, DEVHOST_E_IO, e, "port %s: %s", path, std::strerror(e));
        }
        if (!S_ISSOCK(st.st_mode))
            return devhost_fail(err, DEVHOST_E_INVALID, 0, "%s is not a filter port (not a socket)", path);
        auto *dev = new devhost_device;
        dev->client.path = path;
        dev->client.inherit = (params->flags & DEVHOST_OPEN_INHERIT) != 0;
        dev->client.cancel_fd = params->cancel_fd;
        dev->client.services = g_services;
        dev->client.host_device = params->host_device;
        if (const devhost_option_value *v = devhost_option_find(params, "sync"))
            dev->client.sync = v->is_set && v->integer != 0;
        if (const devhost_option_value *v = devhost_option_find(params, "max-message"))
            if (v->is_set)
                dev->client.max_payload = static_cast<uint32_t>(v->integer);
        if (const devhost_option_value *v = devhost_option_find(params, "server-uid"))
            if (v->is_set)
                dev->client.server_uid = v->integer;
        *device = dev;
        return DEVHOST_OK;
    });
}

/* close: drops the connection if any and frees the device. State: any,
 * including a device whose connect failed. Returns OK. */
devhost_status fp_close(devhost_device *device, devhost_error *)
{
    delete device;
    return DEVHOST_OK;
}

/* connect: the FilterConnectCommunicationPort call. State: open, not
 * connected. Before any I/O, checks the seed's rule (a context needs a
 * non-zero size, no context needs size 0, the size fits in 16 bits) and the
 * arguments (only sync=BOOL). Then connects, sends the context and waits up
 * to params->timeout_ms for the server's answer. Returns OK; E_INVALID;
 * E_NOT_FOUND (no server); E_ACCESS (socket mode, the server's credential
 * check, or a server not run by the server-uid option's uid); E_BUSY (the port's maximum of connections); any status the
 * server's connect callback refused with; E_TIMEOUT; E_CANCELLED; E_IO. A
 * failed connect leaves no descriptor open. params is valid for this call. */
devhost_status fp_connect(devhost_device *device, const devhost_connect_params *params, devhost_error *err)
{
    return guarded(err, [&]() -> devhost_status {
        const bool has_context = params->context != nullptr;
        if (has_context && params->context_size == 0)
            return devhost_fail(err, DEVHOST_E_INVALID, 0,
                                "connect: a context needs a non-zero context size");
        if (!has_context && params->context_size != 0)
            return devhost_fail(err, DEVHOST_E_INVALID, 0,
                                "connect: context-size=%u given without a context (no context needs size 0)",
                                (unsigned)params->context_size);
        if (params->context_size > DEVHOST_PORT_MAX_CONTEXT)
            return devhost_fail(err, DEVHOST_E_INVALID, 0,
                                "connect: context size %u does not fit in 16 bits (at most %u)",
                                (unsigned)params->context_size, (unsigned)DEVHOST_PORT_MAX_CONTEXT);
        bool sync = device->client.sync;
        for (uint32_t i = 0; i < params->arg_count; i++) {
            const devhost_kv &kv = params->args[i];
            if (std::strcmp(kv.key, "sync") != 0)
                return devhost_fail(err, DEVHOST_E_INVALID, 0, "connect: unknown argument '%s' (expected sync=BOOL)",
                                    kv.key);
            if (!parse_bool(kv.value, sync))
                return devhost_fail(err, DEVHOST_E_INVALID, 0, "connect: sync=%s: expected true or false", kv.value);
        }
        return device->client.connect(params->context, params->context_size, sync, params->timeout_ms, err);
    });
}

/* disconnect: closes the connection (the server's disconnect callback runs).
 * State: connected. Returns OK. */
devhost_status fp_disconnect(devhost_device *device, devhost_error *)
{
    device->client.disconnect();
    return DEVHOST_OK;
}

/* info: reports path, handle (sync or async), inherit, connected, the
 * server's pid/uid/gid when connected, and queued/unanswered message counts.
 * State: open. Returns OK. */
devhost_status fp_info(devhost_device *device, const devhost_info_sink *sink, devhost_error *err)
{
    return guarded(err, [&]() -> devhost_status {
        const auto &c = device->client;
        sink->put(sink->context, "path", c.path.c_str());
        sink->put(sink->context, "connected", c.fd() >= 0 ? "yes" : "no");
        sink->put(sink->context, "handle", (c.fd() >= 0 ? c.sync_handle() : c.sync) ? "sync" : "async");
        sink->put(sink->context, "inherit", c.inherit ? "yes" : "no");
        sink->put(sink->context, "max-message", std::to_string(c.max_payload).c_str());
        int pid;
        unsigned uid, gid;
        if (c.server_credentials(pid, uid, gid)) {
            sink->put(sink->context, "server-pid", std::to_string(pid).c_str());
            sink->put(sink->context, "server-uid", std::to_string(uid).c_str());
            sink->put(sink->context, "server-gid", std::to_string(gid).c_str());
        }
        sink->put(sink->context, "queued-messages", std::to_string(c.queued_messages()).c_str());
        sink->put(sink->context, "unanswered-messages", std::to_string(c.unanswered_messages()).c_str());
        return DEVHOST_OK;
    });
}

/* transfer: REQUEST (out -> server, its response -> in; a delimiter is not
 * used: a response is one message), GET_MESSAGE (the oldest server message
 * -> in, its id -> message_id), REPLY (out -> the server, to message_id).
 * State: connected. Respects timeout_ms and cancel_fd. Returns OK;
 * E_TIMEOUT; E_CANCELLED; E_INVALID (reply to an unknown or already answered
 * id; data over the bound; a message or response larger than in_capacity);
 * E_STATE (sync handle: get-message before replying to the previous one);
 * E_REMOVED (the server went away: this and every later transfer);
 * E_PROTOCOL (the server broke the protocol: the connection is closed);
 * any status the server failed a request with; E_UNSUPPORTED (an offset);
 * E_IO. */
devhost_status fp_transfer(devhost_device *device, devhost_transfer *x, devhost_error *err)
{
    if (x->flags & DEVHOST_TRANSFER_HAS_OFFSET)
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "filterport: a port has no offsets");
    return guarded(err, [&]() -> devhost_status {
        auto &c = device->client;
        switch (x->op) {
        case DEVHOST_OP_REQUEST:
            return c.request(x->out, x->out_len, x->in, x->in_capacity, x->in_len, x->out_done, x->timeout_ms, err);
        case DEVHOST_OP_GET_MESSAGE:
            return c.get_message(x->in, x->in_capacity, x->in_len, x->message_id, x->timeout_ms, err);
        case DEVHOST_OP_REPLY:
            return c.reply(x->message_id, x->out, x->out_len, x->out_done, x->timeout_ms, err);
        default:
            return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "filterport: transfer op %u is not supported",
                                (unsigned)x->op);
        }
    });
}

const devhost_hooks k_hooks = {
    sizeof(devhost_hooks), 0, fp_open, fp_close, fp_connect, fp_disconnect, nullptr, nullptr, fp_info, fp_transfer,
};

const devhost_plugin_descriptor k_descriptor = {
    sizeof(devhost_plugin_descriptor),
    0,
    "filterport",
    "filterport",
    "1.0.0",
    "filter communication port client (Unix SOCK_SEQPACKET, devhost port protocol v1)",
    k_options,
    sizeof k_options / sizeof k_options[0],
    0,
    nullptr,
    &k_hooks,
    DEVHOST_OP_BIT(DEVHOST_OP_REQUEST) | DEVHOST_OP_BIT(DEVHOST_OP_GET_MESSAGE) | DEVHOST_OP_BIT(DEVHOST_OP_REPLY),
    DEVHOST_REQUIRES_CONNECTED,
    0,
    0,
};

}  // namespace

extern "C" DEVHOST_EXPORT devhost_status devhost_plugin_negotiate(devhost_negotiation *n)
{
    if (!n || DEVHOST_VERSION_MAJOR(n->host_abi_version) != DEVHOST_ABI_VERSION_MAJOR) {
        if (n)
            devhost_fail(n->error, DEVHOST_E_UNSUPPORTED, 0, "filterport speaks ABI major %d only",
                         DEVHOST_ABI_VERSION_MAJOR);
        return DEVHOST_E_UNSUPPORTED;
    }
    n->plugin_abi_version = DEVHOST_ABI_VERSION < n->host_abi_version ? DEVHOST_ABI_VERSION : n->host_abi_version;
    n->descriptor = &k_descriptor;
    g_services = n->services;
    return DEVHOST_OK;
}
