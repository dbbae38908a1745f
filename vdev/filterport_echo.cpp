// filterport-echo: a filter-port server (devhost/port.h) that answers every
// request with the request's bytes, and optionally sends every connected
// client a message at a fixed period, logging each reply.
#include "vdev.hpp"

#include <devhost/port.h>

#include "port_server.hpp"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <thread>

namespace devhost::vdev {
namespace {

struct Echo {
    const Context *ctx = nullptr;
    std::string accept_context;  // empty: any context
    int delay_ms = 0;            // before each response
};

devhost_status echo_connect(void *user, uint64_t client, const devhost_port_peer *peer, const void *context,
                            uint32_t context_size, devhost_error *err)
{
    auto *e = static_cast<Echo *>(user);
    std::string ctx(static_cast<const char *>(context), context ? context_size : 0);
    if (!e->accept_context.empty() && ctx != e->accept_context)
        return devhost_fail(err, DEVHOST_E_ACCESS, 0, "context '%.64s' is not accepted by this port", ctx.c_str());
    e->ctx->log("client " + std::to_string(client) + " connected (pid " + std::to_string(peer->pid) + ", context " +
                std::to_string(context_size) + " bytes" +
                ((peer->flags & DEVHOST_PORT_HELLO_SYNC) ? ", synchronous handle)" : ")"));
    return DEVHOST_OK;
}

void echo_disconnect(void *user, uint64_t client)
{
    static_cast<Echo *>(user)->ctx->log("client " + std::to_string(client) + " disconnected");
}

devhost_status echo_message(void *user, uint64_t, const void *request, size_t request_len, void *reply,
                            size_t reply_capacity, size_t *reply_len, devhost_error *err)
{
    auto *e = static_cast<Echo *>(user);
    if (e->delay_ms > 0) {
        // A slow server: waits on the stop handle, so stopping is prompt.
        pollfd p{e->ctx->stop_fd, POLLIN, 0};
        if (::poll(&p, 1, e->delay_ms) > 0)
            return devhost_fail(err, DEVHOST_E_CANCELLED, 0, "the echo port is stopping");
    }
    *reply_len = request_len < reply_capacity ? request_len : reply_capacity;
    if (*reply_len)
        std::memcpy(reply, request, *reply_len);
    return DEVHOST_OK;
}

void echo_log(void *user, int32_t, const char *line) { static_cast<Echo *>(user)->ctx->log(line); }

// The options of one echo port, read and checked.
struct Options {
    std::string dir, name;
    double every = 0;  // seconds between messages to every client; 0: none
    std::string message;
    long long max_conn = 16;
    long mode = 0600;
};

Options read_options(Context &ctx, Echo &echo)
{
    Options o;
    o.dir = ctx.get("port-dir", ctx.run_dir.empty() ? DEVHOST_PORT_DEFAULT_DIR : ctx.run_dir);
    o.name = ctx.get("port", ctx.name);
    o.every = ctx.get_seconds("send-every", 0);
    o.message = ctx.get("message", "ping");
    o.max_conn = ctx.get_int("max-connections", 16);
    const std::string mode_text = ctx.get("mode", "0600");
    char *mode_end = nullptr;
    o.mode = std::strtol(mode_text.c_str(), &mode_end, 8);
    if (mode_text.empty() || *mode_end || o.mode <= 0 || o.mode > 0777)
        throw std::invalid_argument("--mode=" + mode_text + ": expected an octal file mode like 0600");
    echo.accept_context = ctx.get("accept-context");
    echo.delay_ms = static_cast<int>(ctx.get_seconds("delay", 0) * 1000);
    ctx.reject_unknown();
    if (o.name.empty() || o.name.find('/') != std::string::npos)
        throw std::invalid_argument("--port=" + o.name + ": expected a port name without /");
    if (o.max_conn < 1 || o.max_conn > 1024)
        throw std::invalid_argument("--max-connections: expected 1 to 1024");
    return o;
}

// The sender (--send-every): every period, one message to each client,
// each reply logged, until stop_fd is readable or `stopping` is set.
void send_periodically(const Context &ctx, devhost_port *port, const Options &o, const std::atomic<bool> &stopping)
{
    const int period_ms = static_cast<int>(o.every * 1000);
    while (!stopping) {
        pollfd p{ctx.stop_fd, POLLIN, 0};
        if (::poll(&p, 1, period_ms) != 0)
            break;
        uint64_t ids[64];
        uint32_t n = devhost_port_clients(port, ids, 64);
        for (uint32_t i = 0; i < n && i < 64 && !stopping; i++) {
            char reply[256];
            size_t len = 0;
            devhost_error e{};
            e.struct_size = sizeof e;
            devhost_status st = devhost_port_send(port, ids[i], o.message.data(), o.message.size(), reply,
                                                  sizeof reply, &len, period_ms > 1000 ? period_ms : 1000, &e);
            if (st == DEVHOST_OK)
                ctx.log("client " + std::to_string(ids[i]) + " replied \"" +
                        std::string(reply, len < sizeof reply ? len : sizeof reply) + "\"");
            else
                ctx.log("client " + std::to_string(ids[i]) + ": " + devhost_status_name(st) + ": " + e.message);
        }
    }
}

int run(Context &ctx)
{
    Echo echo;
    echo.ctx = &ctx;
    const Options o = read_options(ctx, echo);
    // The port directory: created 0755 whatever the umask, and with every
    // directory above it owned by root or us and writable by nobody else.
    const std::string path = port_server::path_in(o.dir, o.name);
    port_server::Port port = port_server::create(
        {.path = path, .max_connections = static_cast<uint32_t>(o.max_conn), .mode = static_cast<uint32_t>(o.mode),
         .user = &echo, .connect = echo_connect, .disconnect = echo_disconnect, .message = echo_message,
         .log = echo_log});

    std::atomic<bool> stopping{false};
    std::thread sender;
    if (o.every > 0)
        sender = std::thread([&] { send_periodically(ctx, port.get(), o, stopping); });
    ctx.ready(path);
    pollfd p{ctx.stop_fd, POLLIN, 0};
    while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
    }
    stopping = true;
    if (sender.joinable())
        sender.join();  // a send in progress ends within its timeout
    port.reset();
    return 0;
}

}  // namespace

DEVHOST_VDEV_KIND("filterport-echo",
                   "a filter port (devhost/port.h) that echoes requests and can send clients messages",
                   {{"port-dir", "DIR (default: $DEVHOST_VDEV_DIR, else /run/devhost/ports)", "string"},
                    {"port", "NAME (default: --name)", "string"},
                    {"send-every", "D", "duration"},
                    {"message", "TEXT", "string"},
                    {"max-connections", "16", "int"},
                    {"mode", "0600", "string"},
                    {"accept-context", "TEXT", "string"},
                    {"delay", "D", "duration"}},
                   run);

}  // namespace devhost::vdev
