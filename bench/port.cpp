// Filter port: 64-byte request/reply messages per second, 1 and 8 clients.
//   devhost: a port.h server (libdevhost-port, its one service thread,
//     echoing in the message callback) and filterport devices driven through
//     the host's Device API, one client thread each
//   baseline: a plain SOCK_SEQPACKET server (one thread polling every
//     client, the same shape as the library's) and plain send/recv clients
#include "bench.hpp"

#include <device.hpp>

#include <devhost/port.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <latch>
#include <thread>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace bench {
namespace {

constexpr size_t message_size = 64;

// Starts `clients` threads; each runs setup, then (all together) `count`
// round trips. Returns the aggregate messages per second.
template <typename Setup, typename Trip, typename Teardown>
double run_clients(int clients, int count, Setup setup, Trip trip, Teardown teardown)
{
    std::latch ready(clients + 1), go(1);
    std::atomic<bool> failed{false};
    std::string failure;
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; c++) {
        threads.emplace_back([&, c] {
            auto state = setup(c);
            ready.count_down();
            go.wait();
            try {
                for (int i = 0; i < count; i++)
                    trip(state);
            } catch (const std::exception &e) {
                if (!failed.exchange(true))
                    failure = e.what();
            }
            teardown(state);
        });
    }
    ready.arrive_and_wait();
    const auto start = Clock::now();
    go.count_down();
    for (auto &t : threads)
        t.join();
    double s = seconds_since(start);
    if (failed)
        fail(failure);
    return double(clients) * count / s;
}

sockaddr_un address(const fs::path &path)
{
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    return a;
}

double baseline(const Params &p, int clients, int count)
{
    const fs::path path = p.work_dir / "baseline.sock";
    fs::remove(path);
    int listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un a = address(path);
    if (bind(listener, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 || listen(listener, 64) != 0)
        fail("baseline server: bind/listen " + path.string() + ": " + std::strerror(errno));
    std::thread server([listener, clients] {
        std::vector<pollfd> fds{{listener, POLLIN, 0}};
        int accepted = 0;
        char buf[1 << 16];
        while (accepted < clients || fds.size() > 1) {
            if (::poll(fds.data(), fds.size(), -1) < 0)
                continue;
            for (size_t i = fds.size(); i-- > 0;) {
                if (!fds[i].revents)
                    continue;
                if (fds[i].fd == listener) {
                    int c = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
                    if (c >= 0) {
                        fds.push_back({c, POLLIN, 0});
                        accepted++;
                    }
                    continue;
                }
                ssize_t n = recv(fds[i].fd, buf, sizeof buf, 0);
                if (n <= 0) {
                    ::close(fds[i].fd);
                    fds.erase(fds.begin() + long(i));
                    continue;
                }
                send(fds[i].fd, buf, size_t(n), MSG_NOSIGNAL);
            }
        }
    });
    const std::string msg(message_size, 'm');
    double rate = run_clients(
        clients, count,
        [&](int) {
            int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
            if (connect(fd, reinterpret_cast<const sockaddr *>(&a), sizeof a) != 0)
                fd = -1;
            return fd;
        },
        [&](int fd) {
            char buf[4096];
            if (send(fd, msg.data(), msg.size(), MSG_NOSIGNAL) != ssize_t(msg.size()))
                fail("baseline client: send failed");
            if (recv(fd, buf, sizeof buf, 0) != ssize_t(message_size))
                fail("baseline client: short reply");
        },
        [](int fd) { ::close(fd); });
    server.join();
    ::close(listener);
    fs::remove(path);
    return rate;
}

devhost_status echo(void *, uint64_t, const void *request, size_t len, void *reply, size_t capacity, size_t *reply_len,
                    devhost_error *)
{
    size_t n = std::min(len, capacity);
    if (n)
        std::memcpy(reply, request, n);
    *reply_len = n;
    return DEVHOST_OK;
}

double with_devhost(const Params &p, int clients, int count)
{
    auto plugin = load_plugin(p, "filterport");
    const fs::path path = p.work_dir / "devhost.sock";
    devhost_port_callbacks cb{};
    cb.struct_size = sizeof cb;
    cb.message = echo;
    devhost_port_config config{};
    config.struct_size = sizeof config;
    config.max_connections = 64;
    config.path = path.c_str();
    config.mode = 0600;
    config.callbacks = &cb;
    devhost_port *port = nullptr;
    devhost_error err{};
    err.struct_size = sizeof err;
    if (devhost_port_create(&config, &port, &err) != DEVHOST_OK)
        fail(std::string("devhost_port_create: ") + err.message);
    const std::string msg(message_size, 'm');
    struct Client {
        std::unique_ptr<devhost::Device> dev;
        std::vector<uint8_t> buf;
    };
    double rate = run_clients(
        clients, count,
        [&](int c) {
            Client client{std::make_unique<devhost::Device>(plugin, "client" + std::to_string(c)),
                          std::vector<uint8_t>(4096)};
            if (!client.dev->open({.path = path.string()}).ok() || !client.dev->connect({}).ok())
                client.dev.reset();
            return client;
        },
        [&](Client &client) {
            if (!client.dev)
                fail("filterport client could not open and connect");
            devhost_transfer x{};
            x.op = DEVHOST_OP_REQUEST;
            x.timeout_ms = 5000;
            x.out = reinterpret_cast<const uint8_t *>(msg.data());
            x.out_len = msg.size();
            x.in = client.buf.data();
            x.in_capacity = client.buf.size();
            devhost::Outcome o = client.dev->transfer(x);
            if (!o.ok())
                fail("filterport request: " + o.message);
            if (x.in_len != message_size)
                fail("filterport request: short reply");
        },
        [](Client &client) {
            if (client.dev) {
                client.dev->disconnect();
                client.dev->close();
            }
        });
    devhost_port_close(port);
    return rate;
}

}  // namespace

void bench_port(const Params &p, Report &report)
{
    const int count = p.smoke ? 200 : 20000;
    for (int clients : {1, 8}) {
        Result r{"port", "64 B request/reply, " + std::to_string(clients) + " client" + (clients > 1 ? "s" : ""),
                 "msgs/s", true, "plain SOCK_SEQPACKET ping-pong, one polling server thread", {}, {}, ""};
        const int per_client = clients > 1 ? count / 4 : count;
        report.add(compare(p, r, [&] { return with_devhost(p, clients, per_client); },
                           [&] { return baseline(p, clients, per_client); }));
    }
}

}  // namespace bench
