// filterport: the client side of a filter communication port (the
// FilterConnectCommunicationPort family). The descriptor, the option schema
// and the device class, written on devhost/plugin.hpp (which generates the
// hook table and catches every exception at the boundary); the socket work
// is in backend_socket.cpp. Options and info keys are listed in README.md.
//
//   open        checks the path names an existing socket; no I/O with it
//   connect     context/size rule and arguments checked first, then connect,
//               HELLO with the context, WELCOME (or the server's refusal);
//               the connected socket is handed to the host (share_fd
//               "socket"), its copy taken back before every close of it
//   transfer    REQUEST (FilterSendMessage), GET_MESSAGE (FilterGetMessage),
//               REPLY (FilterReplyMessage); needs connected
//   info        path, handle kind, server credentials, queued messages
//   disconnect, close   close the socket: nothing to wait for
//   enumerate   the sockets in the port directory ($DEVHOST_PORT_DIR, else
//               /run/devhost/ports), listed without connecting
// Every hook keeps to the host's deadline (ABI 1.1): connect and transfers
// wait until the earlier of their timeout and the hook's deadline; open,
// info, disconnect and close wait for nothing.
#include "filterport_private.hpp"

#include <devhost/plugin.hpp>
#include <devhost/port.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <sys/stat.h>

namespace {

// The schema, in this order (options are looked up by index).
enum Option : uint32_t { opt_sync, opt_max_message, opt_server_uid, opt_count };

constexpr devhost_option_spec option(uint32_t type, const char *name, const char *def, const char *help,
                                     int64_t min = 0, int64_t max = 0)
{
    return devhost_option_spec{sizeof(devhost_option_spec), type, name, def, help, nullptr, min, max};
}

const devhost_option_spec k_options[opt_count] = {
    option(DEVHOST_OPTION_BOOL, "sync", "false",
           "synchronous handle (FLT_PORT_FLAG_SYNC_HANDLE): one server message at a time; connect sync= overrides"),
    option(DEVHOST_OPTION_INT, "max-message", "65536",
           "largest message or reply accepted from the server, in bytes", 1, DEVHOST_PORT_MAX_PAYLOAD),
    option(DEVHOST_OPTION_INT, "server-uid", nullptr,
           "connect only to a server run by this uid (SO_PEERCRED), e.g. 0; another is refused with E_ACCESS", 0,
           UINT32_MAX - 1),
};

// The paths the class serves (ABI 1.1): the ports of the default port
// directory, where the host puts `\Name`; and, by its kind of file
// (path_types: DEVHOST_PATH_SOCKET), a socket anywhere else, such as a port
// of another [host] port-dir once its server has made it. A port whose
// socket does not exist yet is named with `class = filterport`.
constexpr auto k_paths = devhost::path_patterns(DEVHOST_PORT_DEFAULT_DIR "/*");

class FilterPortDevice {
public:
    // enumerate: the sockets in the port directory (filterport::
    // enumerate_dir), without connecting. Returns OK (a missing directory
    // has no ports); E_ACCESS or E_IO (it cannot be read); E_TIMEOUT, with
    // what was found by then, once deadline(nullptr) passes.
    static devhost_status enumerate(const devhost_enumerate_params &, devhost::found_sink &sink, devhost_error &err)
    {
        std::vector<filterport::FoundPort> found;
        devhost_status status =
            filterport::enumerate_ports(filterport::enumerate_dir(), devhost::deadline(nullptr), found, &err);
        for (const auto &f : found)
            sink.put({f.path, "", f.description, "", "", ""});
        return status;
    }

    // open: checks that params.path names an existing socket and records the
    // options; it does not connect (connect does) and creates nothing.
    // Throws E_NOT_FOUND (nothing at the path); E_INVALID (empty path, or not
    // a socket); E_ACCESS; E_IO. params' pointers are used during the call
    // only, except host_device and cancel_fd.
    explicit FilterPortDevice(const devhost_open_params &params)
    {
        const char *path = params.path;
        if (!path || !*path)
            throw devhost::error(DEVHOST_E_INVALID, "filterport: empty port path");
        struct stat st;
        if (::stat(path, &st) != 0) {
            int e = errno;
            if (e == ENOENT || e == ENOTDIR)
                throw devhost::error(DEVHOST_E_NOT_FOUND, e,
                                     "no port at " + std::string(path) + " (is its server running?)");
            throw devhost::error(e == EACCES ? DEVHOST_E_ACCESS : DEVHOST_E_IO, e,
                                 "port " + std::string(path) + ": " + std::strerror(e));
        }
        if (!S_ISSOCK(st.st_mode))
            throw devhost::error(DEVHOST_E_INVALID, std::string(path) + " is not a filter port (not a socket)");
        client_.path = path;
        client_.inherit = (params.flags & DEVHOST_OPEN_INHERIT) != 0;
        client_.cancel_fd = params.cancel_fd;
        client_.services = devhost::host_services();
        client_.host_device = params.host_device;
        client_.sync = devhost_util_option_int(&params, k_options, opt_sync, 0) != 0;
        client_.max_payload = static_cast<uint32_t>(
            devhost_util_option_int(&params, k_options, opt_max_message, DEVHOST_PORT_MAX_PAYLOAD));
        client_.server_uid = devhost_util_option_int(&params, k_options, opt_server_uid, -1);
    }

    // close (~FilterPortDevice): drops the connection if any. State: any,
    // including a device whose connect failed.

    // connect: the FilterConnectCommunicationPort call. State: open, not
    // connected. Before any I/O, checks the seed's rule (a context needs a
    // non-zero size, no context needs size 0, the size fits in 16 bits) and
    // the arguments (only sync=BOOL). Then connects, sends the context and
    // waits for the server's answer until the earlier of params.timeout_ms
    // and the hook's deadline. Returns OK;
    // E_INVALID; E_NOT_FOUND (no server); E_ACCESS (socket mode, a server
    // not run by the server-uid option's uid, or the
    // server's credential check); E_BUSY (the port's maximum of connections);
    // any status the server's connect callback refused with; E_TIMEOUT;
    // E_CANCELLED; E_IO. A failed connect leaves no descriptor open.
    devhost_status connect(const devhost_connect_params &params, devhost_error &err)
    {
        const bool has_context = params.context != nullptr;
        if (has_context && params.context_size == 0)
            return devhost_fail(&err, DEVHOST_E_INVALID, 0, "connect: a context needs a non-zero context size");
        if (!has_context && params.context_size != 0)
            return devhost_fail(&err, DEVHOST_E_INVALID, 0,
                                "connect: context-size=%u given without a context (no context needs size 0)",
                                (unsigned)params.context_size);
        if (params.context_size > DEVHOST_PORT_MAX_CONTEXT)
            return devhost_fail(&err, DEVHOST_E_INVALID, 0,
                                "connect: context size %u does not fit in 16 bits (at most %u)",
                                (unsigned)params.context_size, (unsigned)DEVHOST_PORT_MAX_CONTEXT);
        int sync = client_.sync;
        for (uint32_t i = 0; i < params.arg_count; i++) {
            const devhost_kv &kv = params.args[i];
            if (std::strcmp(kv.key, "sync") != 0)
                return devhost_fail(&err, DEVHOST_E_INVALID, 0,
                                    "connect: unknown argument '%s' (expected sync=BOOL)", kv.key);
            if (!devhost_util_parse_bool(kv.value, &sync))
                return devhost_fail(&err, DEVHOST_E_INVALID, 0, "connect: sync=%s: expected true or false",
                                    kv.value);
        }
        return client_.connect(params.context, params.context_size, sync != 0, params.timeout_ms, &err);
    }

    // disconnect: closes the connection (the server's disconnect callback
    // runs). State: connected. Waits for nothing.
    void disconnect() { client_.disconnect(); }

    // info: path, handle (sync or async), inherit, connected, the server's
    // pid/uid/gid when connected, and queued/unanswered message counts.
    // State: open. Waits for nothing (getsockopt on its own socket).
    void info(devhost::info_sink &sink) const
    {
        const auto &c = client_;
        sink.put("path", c.path);
        sink.put("connected", c.fd() >= 0 ? "yes" : "no");
        sink.put("handle", (c.fd() >= 0 ? c.sync_handle() : c.sync) ? "sync" : "async");
        sink.put("inherit", c.inherit ? "yes" : "no");
        sink.put("max-message", std::to_string(c.max_payload));
        int pid;
        unsigned uid, gid;
        if (c.server_credentials(pid, uid, gid)) {
            sink.put("server-pid", std::to_string(pid));
            sink.put("server-uid", std::to_string(uid));
            sink.put("server-gid", std::to_string(gid));
        }
        sink.put("queued-messages", std::to_string(c.queued_messages()));
        sink.put("unanswered-messages", std::to_string(c.unanswered_messages()));
    }

    // transfer: REQUEST (out -> server, its response -> in; a delimiter is
    // not used: a response is one message), GET_MESSAGE (the oldest server
    // message -> in, its id -> message_id), REPLY (out -> the server, to
    // message_id). State: connected. Respects timeout_ms, the hook's
    // deadline (the earlier wins) and cancel_fd.
    // Returns OK; E_TIMEOUT; E_CANCELLED; E_INVALID (reply to an unknown or
    // already answered id; data over the bound; a message or response larger
    // than in_capacity); E_STATE (sync handle: get-message before replying to
    // the previous one); E_REMOVED (the server went away: this and every
    // later transfer); E_PROTOCOL (the server broke the protocol: the
    // connection is closed); any status the server failed a request with;
    // E_UNSUPPORTED (an offset); E_IO.
    devhost_status transfer(devhost_transfer &x, devhost_error &err)
    {
        if (x.flags & DEVHOST_TRANSFER_HAS_OFFSET)
            return devhost_fail(&err, DEVHOST_E_UNSUPPORTED, 0, "filterport: a port has no offsets");
        auto &c = client_;
        switch (x.op) {
        case DEVHOST_OP_REQUEST:
            return c.request(x.out, x.out_len, x.in, x.in_capacity, x.in_len, x.out_done, x.timeout_ms, &err);
        case DEVHOST_OP_GET_MESSAGE:
            return c.get_message(x.in, x.in_capacity, x.in_len, x.message_id, x.timeout_ms, &err);
        case DEVHOST_OP_REPLY:
            return c.reply(x.message_id, x.out, x.out_len, x.out_done, x.timeout_ms, &err);
        default:
            return devhost_fail(&err, DEVHOST_E_UNSUPPORTED, 0, "filterport: transfer op %u is not supported",
                                (unsigned)x.op);
        }
    }

private:
    filterport::PortClient client_;
};

const devhost_plugin_descriptor k_descriptor = [] {
    auto d = devhost::describe<FilterPortDevice>(
        "filterport", "filterport", "1.0.0",
        "filter communication port client (Unix SOCK_SEQPACKET, devhost port protocol v1)");
    devhost::set_options(d, k_options);
    devhost::set_path_patterns(d, k_paths);
    d.path_types = DEVHOST_PATH_SOCKET;
    d.transfer_ops =
        DEVHOST_OP_BIT(DEVHOST_OP_REQUEST) | DEVHOST_OP_BIT(DEVHOST_OP_GET_MESSAGE) | DEVHOST_OP_BIT(DEVHOST_OP_REPLY);
    d.transfer_requires = DEVHOST_REQUIRES_CONNECTED;
    return d;
}();

}  // namespace

DEVHOST_PLUGIN_ENTRY(k_descriptor)
