// Shared helpers for the filterport tests: an in-process port server with
// std::function callbacks, a raw socket client that writes frames by hand,
// and a filterport device driven through the host's Device class.
#pragma once

#include "devhost_test.hpp"
#include "devices.hpp"

#include <device.hpp>
#include <loader.hpp>

#include <devhost/port.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace porttest {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

inline std::string str(const std::vector<uint8_t> &v) { return std::string(v.begin(), v.end()); }

// A port server in this process.
class Server {
public:
    struct Options {
        uint32_t max_connections = 8;
        uint32_t mode = 0600;
        uint32_t max_message_size = 0;
        std::vector<uint32_t> uids, gids;
        uint32_t hello_timeout_ms = 0;     // 0: the library's default
        uint32_t max_pending_per_uid = 0;  // 0: the library's default
        int refuse_errno = 0;              // os_errno of the callbacks' refusals
        std::function<devhost_status(uint64_t, const devhost_port_peer &, const std::string &, std::string &)> on_connect;
        std::function<devhost_status(uint64_t, const std::string &, std::string &)> on_message;
    };

    Server(const fs::path &path, Options options) : options_(std::move(options)), path_(path)
    {
        devhost_port_callbacks cb{};
        cb.struct_size = sizeof cb;
        cb.user = this;
        cb.connect = [](void *u, uint64_t id, const devhost_port_peer *peer, const void *ctx, uint32_t n,
                        devhost_error *err) -> devhost_status {
            auto *s = static_cast<Server *>(u);
            {
                std::lock_guard lock(s->mu_);
                s->contexts_.push_back(std::string(static_cast<const char *>(ctx), ctx ? n : 0));
                s->peers_.push_back(*peer);
            }
            if (!s->options_.on_connect)
                return DEVHOST_OK;
            std::string why;
            devhost_status st = s->options_.on_connect(id, *peer, std::string(static_cast<const char *>(ctx), ctx ? n : 0), why);
            if (st != DEVHOST_OK)
                devhost_error_set(err, s->options_.refuse_errno, "%s", why.c_str());
            return st;
        };
        cb.disconnect = [](void *u, uint64_t id) {
            auto *s = static_cast<Server *>(u);
            std::lock_guard lock(s->mu_);
            s->disconnected_.push_back(id);
        };
        cb.message = [](void *u, uint64_t id, const void *req, size_t len, void *reply, size_t cap, size_t *out,
                        devhost_error *err) -> devhost_status {
            auto *s = static_cast<Server *>(u);
            std::string in(static_cast<const char *>(req), req ? len : 0);
            std::string answer = in;
            devhost_status st = DEVHOST_OK;
            if (s->options_.on_message)
                st = s->options_.on_message(id, in, answer);
            if (st != DEVHOST_OK) {
                devhost_error_set(err, s->options_.refuse_errno, "%s", answer.c_str());
                return st;
            }
            *out = std::min(answer.size(), cap);
            std::memcpy(reply, answer.data(), *out);
            return DEVHOST_OK;
        };
        cb.log = [](void *u, int32_t, const char *line) {
            auto *s = static_cast<Server *>(u);
            std::lock_guard lock(s->mu_);
            s->log_.push_back(line);
        };
        devhost_port_config cfg{};
        cfg.struct_size = sizeof cfg;
        cfg.path = path_.c_str();
        cfg.max_connections = options_.max_connections;
        cfg.mode = options_.mode;
        cfg.max_message_size = options_.max_message_size;
        cfg.allowed_uids = options_.uids.data();
        cfg.allowed_uid_count = static_cast<uint32_t>(options_.uids.size());
        cfg.allowed_gids = options_.gids.data();
        cfg.allowed_gid_count = static_cast<uint32_t>(options_.gids.size());
        cfg.callbacks = &cb;
        cfg.hello_timeout_ms = options_.hello_timeout_ms;
        cfg.max_pending_per_uid = options_.max_pending_per_uid;
        devhost_error err{};
        err.struct_size = sizeof err;
        status_ = devhost_port_create(&cfg, &port_, &err);
        error_ = err.message;
    }
    ~Server() { close(); }
    void close()
    {
        devhost_port_close(port_);
        port_ = nullptr;
    }
    devhost_port *port() const { return port_; }
    devhost_status status() const { return status_; }
    const std::string &error() const { return error_; }
    std::vector<uint64_t> clients() const
    {
        uint64_t ids[64];
        uint32_t n = devhost_port_clients(port_, ids, 64);
        return std::vector<uint64_t>(ids, ids + std::min<uint32_t>(n, 64));
    }
    // Waits until `n` clients are connected.
    bool wait_clients(size_t n, std::chrono::milliseconds timeout = 5s) const
    {
        auto end = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < end) {
            if (clients().size() == n)
                return true;
            usleep(2000);
        }
        return false;
    }
    struct SendResult {
        devhost_status status;
        std::string reply;
        std::string message;
    };
    SendResult send(uint64_t client, const std::string &msg, int32_t timeout_ms, size_t capacity = 4096)
    {
        std::vector<char> buf(capacity);
        size_t len = 0;
        devhost_error err{};
        err.struct_size = sizeof err;
        devhost_status st = devhost_port_send(port_, client, msg.data(), msg.size(), buf.data(), buf.size(), &len,
                                              timeout_ms, &err);
        return {st, std::string(buf.data(), std::min(len, capacity)), err.message};
    }
    template <typename F>
    auto locked(F f) const
    {
        std::lock_guard lock(mu_);
        return f();
    }
    std::vector<std::string> contexts() const { return locked([&] { return contexts_; }); }
    std::vector<devhost_port_peer> peers() const { return locked([&] { return peers_; }); }
    std::vector<uint64_t> disconnected() const { return locked([&] { return disconnected_; }); }
    std::vector<std::string> log() const { return locked([&] { return log_; }); }

private:
    Options options_;
    std::string path_;
    devhost_port *port_ = nullptr;
    devhost_status status_ = DEVHOST_E_IO;
    std::string error_;
    mutable std::mutex mu_;
    std::vector<std::string> contexts_, log_;
    std::vector<devhost_port_peer> peers_;
    std::vector<uint64_t> disconnected_;
};

struct Frame {
    int type = 0;
    int32_t status = 0;
    uint64_t id = 0;
    uint16_t flags = 0;
    std::string payload;
};

inline std::vector<uint8_t> encode(uint32_t type, uint64_t id, const std::string &payload, uint32_t flags = 0,
                                   int32_t status = 0)
{
    std::vector<uint8_t> buf(DEVHOST_PORT_HEADER_SIZE + payload.size());
    size_t n = devhost_port_frame_encode(buf.data(), buf.size(), type, flags, status, id, payload.data(),
                                         static_cast<uint32_t>(payload.size()));
    buf.resize(n);
    return buf;
}

// A client that writes frames by hand (for malformed frames and pipelining).
class RawClient {
public:
    explicit RawClient(const fs::path &path)
    {
        fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
        if (::connect(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0)
            throw std::runtime_error("connect " + path.string() + ": " + std::strerror(errno));
    }
    ~RawClient()
    {
        if (fd_ >= 0)
            ::close(fd_);
    }
    int fd() const { return fd_; }
    bool send_raw(const std::vector<uint8_t> &bytes)
    {
        return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
    }
    bool send(uint32_t type, uint64_t id, const std::string &payload, uint32_t flags = 0)
    {
        return send_raw(encode(type, id, payload, flags));
    }
    // The next frame, or nullopt on end of stream or timeout.
    std::optional<Frame> recv(std::chrono::milliseconds timeout = 5s)
    {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0)
            return std::nullopt;
        std::vector<uint8_t> buf(DEVHOST_PORT_HEADER_SIZE + DEVHOST_PORT_MAX_PAYLOAD);
        ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
        if (n <= 0)
            return std::nullopt;
        devhost_port_frame f;
        if (devhost_port_frame_decode(buf.data(), static_cast<size_t>(n), DEVHOST_PORT_MAX_PAYLOAD, &f, nullptr, 0) !=
            DEVHOST_OK)
            throw std::runtime_error("the server sent a malformed frame");
        return Frame{f.type, f.status, f.id, f.flags,
                     std::string(reinterpret_cast<const char *>(f.payload), f.payload ? f.length : 0)};
    }
    // True once the peer has closed (end of stream), waiting up to timeout.
    bool closed(std::chrono::milliseconds timeout = 5s)
    {
        for (;;) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0)
                return false;
            char buf[256];
            ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno == ECONNRESET))
                return true;
            if (n < 0 && errno != EAGAIN)
                return true;
        }
    }
    // HELLO and WELCOME; returns the WELCOME.
    std::optional<Frame> hello(const std::string &context = {}, uint32_t flags = 0)
    {
        if (!send(DEVHOST_PORT_FRAME_HELLO, 0, context, flags))
            return std::nullopt;
        return recv();
    }

private:
    int fd_ = -1;
};

inline std::shared_ptr<const devhost::Plugin> plugin()
{
    static devhost::PluginRegistry reg;
    static auto p = reg.load_file(devhost::test::plugin_dir() / "filterport.so");
    if (!p)
        throw std::runtime_error("cannot load filterport.so");
    return p;
}

// A filterport device driven through the host's Device class.
struct Port {
    devhost::Device dev;
    std::vector<uint8_t> in;
    uint64_t message_id = 0;
    explicit Port(const std::string &name = "port") : dev(plugin(), name) {}

    devhost::Outcome open(const fs::path &path, std::map<std::string, std::string> options = {}, bool inherit = false)
    {
        devhost::OpenRequest r;
        r.path = path.string();
        r.configured_path = path.string();
        r.options = std::move(options);
        r.inherit = inherit;
        r.timeout_ms = 2000;
        return dev.open(r);
    }
    devhost::Outcome connect(std::optional<std::string> context = std::nullopt,
                             std::optional<uint32_t> size = std::nullopt,
                             std::vector<std::pair<std::string, std::string>> args = {}, int32_t timeout = 3000)
    {
        devhost::ConnectRequest r;
        if (context)
            r.context = std::vector<uint8_t>(context->begin(), context->end());
        r.context_size = size;
        r.args = std::move(args);
        r.timeout_ms = timeout;
        return dev.connect(r);
    }
    // The filter-port transfers through the shared helper; `in` keeps the
    // bytes back, `message_id` the id get-message gave.
    devhost::Outcome request(const std::string &data, int32_t timeout = 3000, size_t capacity = 4096)
    {
        return keep(devhost::test::transfer(
            dev, {.op = DEVHOST_OP_REQUEST, .out = data, .capacity = capacity, .timeout_ms = timeout}));
    }
    devhost::Outcome get_message(int32_t timeout = 3000, size_t capacity = 4096)
    {
        auto r =
            devhost::test::transfer(dev, {.op = DEVHOST_OP_GET_MESSAGE, .capacity = capacity, .timeout_ms = timeout});
        message_id = r.message_id;
        return keep(std::move(r));
    }
    devhost::Outcome reply(uint64_t id, const std::string &data, int32_t timeout = 3000)
    {
        return devhost::test::transfer(
                   dev, {.op = DEVHOST_OP_REPLY, .out = data, .timeout_ms = timeout, .message_id = id})
            .outcome;
    }
    devhost::Outcome keep(devhost::test::TransferResult r)
    {
        in.assign(r.data.begin(), r.data.end());
        return r.outcome;
    }
    std::string text() const { return str(in); }
    std::map<std::string, std::string> info()
    {
        devhost::InfoList list;
        dev.info(list);
        return std::map<std::string, std::string>(list.begin(), list.end());
    }
};

}  // namespace porttest
