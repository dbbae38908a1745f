// libdevhost-port: the filter-port server (devhost/port.h). C API outside,
// C++ inside; no exception crosses the API.
//
// One service thread per port polls the listening socket, a wake eventfd and
// every client; it runs all callbacks. Other threads talk to it through the
// port's mutex: devhost_port_send registers a pending message and waits on
// the condition variable for the service thread to complete it.
#include <devhost/port.h>

#include "trusted_dir.hpp"

#include <devhost/unique_fd.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

using Clock = std::chrono::steady_clock;

// How long the service thread waits for a client that does not read before
// dropping it, and how many late reply ids a client's record remembers.
constexpr int send_stall_ms = 1000;
constexpr size_t expired_ids_kept = 4096;

using devhost::UniqueFd;

struct Client {
    uint64_t id = 0;
    UniqueFd fd;
    devhost_port_peer peer{};
    bool accepted = false;
    bool sync = false;
    bool gone = false;
    bool refused = false;              // answered at accept, kept until its HELLO
    Clock::time_point hello_deadline;  // closed if no HELLO by then
    std::set<uint64_t> outstanding;  // MESSAGE ids sent, not yet replied
    std::deque<uint64_t> expired;    // MESSAGE ids whose sender gave up
};

struct Pending {
    uint64_t client = 0;
    bool done = false;
    devhost_status status = DEVHOST_OK;
    std::string message;
    std::vector<uint8_t> reply;
};

void set_error(devhost_error *err, int os_errno, const std::string &text)
{
    if (err && DEVHOST_HAS_FIELD(devhost_error, err->struct_size, message)) {
        std::snprintf(err->message, sizeof err->message, "%s", text.c_str());
        err->os_errno = os_errno;
    }
}

devhost_status fail(devhost_error *err, devhost_status status, int os_errno, const std::string &text)
{
    set_error(err, os_errno, text);
    return status;
}

std::string errno_text(int e) { return std::strerror(e); }

}  // namespace

struct devhost_port {
    std::string path;
    UniqueFd dir_fd;            // the port's directory, checked at create
    std::string name;           // the socket's name in it
    uint32_t max_connections = 1;
    uint32_t hello_timeout_ms = DEVHOST_PORT_DEFAULT_HELLO_TIMEOUT_MS;
    uint32_t max_pending_per_uid = DEVHOST_PORT_DEFAULT_MAX_PENDING;
    uint32_t max_payload = DEVHOST_PORT_MAX_PAYLOAD;
    std::vector<uint32_t> uids, gids;
    devhost_port_callbacks cb{};
    UniqueFd listen_fd;
    UniqueFd wake_fd;
    dev_t sock_dev = 0;
    ino_t sock_ino = 0;
    std::thread thread;
    std::thread::id service_id;

    std::mutex mu;
    std::condition_variable cv;
    std::map<uint64_t, std::shared_ptr<Client>> clients;
    std::map<uint64_t, std::shared_ptr<Pending>> pending;  // by message id
    std::vector<uint64_t> to_disconnect;
    uint64_t next_client = 1;
    uint64_t next_message = 1;
    bool closing = false;
    int senders = 0;  // threads inside devhost_port_send

    std::vector<uint8_t> rx;  // service thread's receive buffer
    std::vector<uint8_t> tx;  // service thread's send buffer
    std::vector<uint8_t> reply_buf;

    void log(int32_t level, const char *fmt, ...) __attribute__((format(printf, 3, 4)))
    {
        if (!cb.log)
            return;
        char line[768];
        va_list ap;
        va_start(ap, fmt);
        std::vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        cb.log(cb.user, level, line);
    }

    void wake()
    {
        uint64_t one = 1;
        [[maybe_unused]] ssize_t n = ::write(wake_fd.get(), &one, sizeof one);
    }

    // Sends one frame from the service thread; false if the client cannot
    // take it (gone, or not reading for send_stall_ms).
    bool send_frame(Client &c, uint32_t type, int32_t status, uint64_t id, const void *payload, size_t len)
    {
        size_t n = devhost_port_frame_encode(tx.data(), tx.size(), type, 0, status, id, payload,
                                             static_cast<uint32_t>(len));
        if (n == 0)
            return false;
        auto deadline = Clock::now() + std::chrono::milliseconds(send_stall_ms);
        for (;;) {
            ssize_t w = ::send(c.fd.get(), tx.data(), n, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w == static_cast<ssize_t>(n))
                return true;
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
                if (left <= 0) {
                    log(DEVHOST_LOG_WARN, "port %s: client %llu does not read; dropping it", path.c_str(),
                        static_cast<unsigned long long>(c.id));
                    return false;
                }
                pollfd p{c.fd.get(), POLLOUT, 0};
                ::poll(&p, 1, static_cast<int>(left));
                continue;
            }
            return false;
        }
    }

    // A failure's text, and its OS errno when not 0 (port_wire.h, v1.1).
    bool send_text(Client &c, uint32_t type, int32_t status, uint64_t id, const std::string &text, int os_errno = 0)
    {
        char buf[DEVHOST_PORT_MAX_TEXT];
        size_t n = devhost_port_failure_encode(buf, sizeof buf, text.data(), text.size(), os_errno);
        return send_frame(c, type, status, id, buf, n);
    }

    // Refuses a frame: ERROR with the reason, then drop.
    void protocol_error(const std::shared_ptr<Client> &c, const std::string &why)
    {
        log(DEVHOST_LOG_WARN, "port %s: client %llu (pid %d): %s; closing its connection", path.c_str(),
            static_cast<unsigned long long>(c->id), c->peer.pid, why.c_str());
        send_text(*c, DEVHOST_PORT_FRAME_ERROR, DEVHOST_E_PROTOCOL, 0, why);
        drop(c);
    }

    // Removes a client: fails its pending messages, runs disconnect.
    void drop(const std::shared_ptr<Client> &c)
    {
        bool was_accepted;
        {
            std::lock_guard lock(mu);
            if (c->gone)
                return;
            c->gone = true;
            was_accepted = c->accepted;
            clients.erase(c->id);
            for (auto it = pending.begin(); it != pending.end();) {
                if (it->second->client == c->id) {
                    it->second->done = true;
                    it->second->status = DEVHOST_E_REMOVED;
                    it->second->message = "client " + std::to_string(c->id) + " went away before replying";
                    it = pending.erase(it);
                } else {
                    ++it;
                }
            }
            ::shutdown(c->fd.get(), SHUT_RDWR);
        }
        cv.notify_all();
        if (was_accepted && cb.disconnect)
            cb.disconnect(cb.user, c->id);
    }

    bool peer_allowed(const devhost_port_peer &p) const
    {
        if (uids.empty() && gids.empty())
            return true;
        return std::find(uids.begin(), uids.end(), p.uid) != uids.end() ||
               std::find(gids.begin(), gids.end(), p.gid) != gids.end();
    }

    void on_hello(const std::shared_ptr<Client> &c, const devhost_port_frame &f)
    {
        c->peer.flags = f.flags;  // the credentials were checked at accept
        size_t accepted = 0;
        {
            std::lock_guard lock(mu);
            for (auto &[id, other] : clients)
                accepted += other->accepted;
        }
        if (accepted >= max_connections) {
            std::string why = "port " + path + " is full: it already has its maximum of " +
                              std::to_string(max_connections) + " connection" + (max_connections == 1 ? "" : "s");
            send_text(*c, DEVHOST_PORT_FRAME_WELCOME, DEVHOST_E_BUSY, 0, why);
            drop(c);
            return;
        }
        if (cb.connect) {
            devhost_error err{};
            err.struct_size = sizeof err;
            devhost_status st = cb.connect(cb.user, c->id, &c->peer, f.payload, f.length, &err);
            if (st != DEVHOST_OK) {
                if (st > 0)
                    st = DEVHOST_E_ACCESS;
                std::string why(err.message, strnlen(err.message, sizeof err.message));
                if (why.empty())
                    why = std::string("the port's server refused the connection: ") + devhost_status_name(st);
                send_text(*c, DEVHOST_PORT_FRAME_WELCOME, st, 0, why, err.os_errno);
                drop(c);
                return;
            }
        }
        {
            std::lock_guard lock(mu);
            c->accepted = true;
            c->sync = (f.flags & DEVHOST_PORT_HELLO_SYNC) != 0;
        }
        if (!send_frame(*c, DEVHOST_PORT_FRAME_WELCOME, DEVHOST_OK, 0, nullptr, 0))
            drop(c);
    }

    void on_request(const std::shared_ptr<Client> &c, const devhost_port_frame &f)
    {
        devhost_error err{};
        err.struct_size = sizeof err;
        size_t len = 0;
        devhost_status st = DEVHOST_E_UNSUPPORTED;
        if (cb.message) {
            st = cb.message(cb.user, c->id, f.payload, f.length, reply_buf.data(), reply_buf.size(), &len, &err);
            if (st > 0)
                st = DEVHOST_E_IO;
        } else {
            set_error(&err, 0, "port " + path + " takes no requests");
        }
        bool ok;
        if (st == DEVHOST_OK) {
            ok = send_frame(*c, DEVHOST_PORT_FRAME_RESPONSE, DEVHOST_OK, f.id, reply_buf.data(),
                            std::min(len, reply_buf.size()));
        } else {
            std::string why(err.message, strnlen(err.message, sizeof err.message));
            ok = send_text(*c, DEVHOST_PORT_FRAME_RESPONSE, st, f.id, why, err.os_errno);
        }
        if (!ok)
            drop(c);
    }

    void on_reply(const std::shared_ptr<Client> &c, const devhost_port_frame &f)
    {
        bool matched = false, late = false;
        {
            std::lock_guard lock(mu);
            auto it = pending.find(f.id);
            if (it != pending.end() && it->second->client == c->id) {
                auto &p = *it->second;
                p.reply.assign(f.payload, f.payload + f.length);
                p.done = true;
                pending.erase(it);
                c->outstanding.erase(f.id);
                matched = true;
            } else {
                late = std::find(c->expired.begin(), c->expired.end(), f.id) != c->expired.end();
            }
        }
        if (matched) {
            cv.notify_all();
        } else if (late) {
            log(DEVHOST_LOG_DEBUG, "port %s: client %llu replied to message %llu after its sender gave up",
                path.c_str(), static_cast<unsigned long long>(c->id), static_cast<unsigned long long>(f.id));
        } else {
            protocol_error(c, "REPLY to unknown message id " + std::to_string(f.id));
        }
    }

    void on_readable(const std::shared_ptr<Client> &c)
    {
        ssize_t n = ::recv(c->fd.get(), rx.data(), rx.size(), MSG_TRUNC | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0 || c->refused) {
            drop(c);  // gone, or refused at accept and now read: closing cannot reset it
            return;
        }
        if (static_cast<size_t>(n) > rx.size()) {
            protocol_error(c, "oversized frame: " + std::to_string(n) + " bytes, the bound is " +
                                  std::to_string(rx.size()));
            return;
        }
        devhost_port_frame f;
        char why[256];
        if (devhost_port_frame_decode(rx.data(), static_cast<size_t>(n), max_payload, &f, why, sizeof why) !=
            DEVHOST_OK) {
            protocol_error(c, why);
            return;
        }
        if (!c->accepted) {
            if (f.type != DEVHOST_PORT_FRAME_HELLO) {
                protocol_error(c, std::string("expected HELLO first, got ") + devhost_port_frame_type_name(f.type));
                return;
            }
            on_hello(c, f);
            return;
        }
        switch (f.type) {
        case DEVHOST_PORT_FRAME_REQUEST: on_request(c, f); return;
        case DEVHOST_PORT_FRAME_REPLY: on_reply(c, f); return;
        case DEVHOST_PORT_FRAME_ERROR:
            log(DEVHOST_LOG_WARN, "port %s: client %llu reported: %.*s", path.c_str(),
                static_cast<unsigned long long>(c->id), static_cast<int>(f.length),
                f.payload ? reinterpret_cast<const char *>(f.payload) : "");
            drop(c);
            return;
        case DEVHOST_PORT_FRAME_HELLO: protocol_error(c, "second HELLO on a connected client"); return;
        default:
            protocol_error(c, std::string("a client may not send ") + devhost_port_frame_type_name(f.type));
            return;
        }
    }

    // Answers a connection that will not be served with a WELCOME saying
    // why, and closes it: at accept, before it has said anything. What it
    // may have sent already is read first, so that the close does not turn
    // into ECONNRESET before the client has read the answer.
    // Returns true when the client had already sent something.
    bool refuse_at_accept(Client &c, devhost_status status, const std::string &why)
    {
        int frames = 0;
        while (frames < 4 && ::recv(c.fd.get(), rx.data(), rx.size(), MSG_DONTWAIT) > 0)
            frames++;
        send_text(c, DEVHOST_PORT_FRAME_WELCOME, status, 0, why);
        return frames > 0;
    }

    // Why a new connection from `uid` cannot wait for its HELLO (the
    // per-uid and total bounds on such connections), or "".
    std::string pending_full(uint32_t uid)
    {
        size_t of_uid = 0, total = 0;
        std::lock_guard lock(mu);
        for (auto &[id, other] : clients) {
            if (other->accepted)
                continue;
            total++;
            of_uid += other->peer.uid == uid;
        }
        if (of_uid >= max_pending_per_uid)
            return "port " + path + " is full: uid " + std::to_string(uid) + " already has " +
                   std::to_string(of_uid) + " connections that have not said HELLO";
        if (total >= DEVHOST_PORT_MAX_PENDING_TOTAL)
            return "port " + path + " is full: " + std::to_string(total) + " connections have not said HELLO";
        return {};
    }

    // Accepts every queued connection. The peer's credentials are known now:
    // a peer that is not allowed is refused at once, and so is one over the
    // bounds on connections that have not said HELLO yet.
    void on_accept()
    {
        for (;;) {
            UniqueFd fd(::accept4(listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
            if (!fd)
                return;
            auto c = std::make_shared<Client>();
            c->fd = std::move(fd);  // closed with c unless kept
            ucred cred{};
            socklen_t len = sizeof cred;
            if (::getsockopt(c->fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
                log(DEVHOST_LOG_WARN, "port %s: SO_PEERCRED failed: %s; refusing", path.c_str(),
                    errno_text(errno).c_str());
                continue;
            }
            c->peer.struct_size = sizeof c->peer;
            c->peer.pid = cred.pid;
            c->peer.uid = cred.uid;
            c->peer.gid = cred.gid;
            std::string full = pending_full(cred.uid);
            if (!peer_allowed(c->peer)) {
                std::string why = "uid " + std::to_string(cred.uid) + " gid " + std::to_string(cred.gid) +
                                  " is not allowed to connect to port " + path;
                log(DEVHOST_LOG_WARN, "port %s: refused pid %d: %s", path.c_str(), cred.pid, why.c_str());
                if (refuse_at_accept(*c, DEVHOST_E_ACCESS, why) || !full.empty())
                    continue;  // closed now: it has spoken, or its uid holds enough already
                // Kept (within its uid's bound) until its HELLO arrives, so
                // that a v1.0 client, which sends HELLO before reading, can
                // still send it and read the answer instead of EPIPE.
                c->refused = true;
            } else if (!full.empty()) {
                log(DEVHOST_LOG_WARN, "port %s: refused pid %d: %s", path.c_str(), cred.pid, full.c_str());
                refuse_at_accept(*c, DEVHOST_E_BUSY, full);
                continue;
            }
            c->hello_deadline = Clock::now() + std::chrono::milliseconds(hello_timeout_ms);
            std::lock_guard lock(mu);
            c->id = next_client++;
            clients[c->id] = c;
        }
    }

    // Closes the connections whose time to say HELLO has passed; returns
    // the poll timeout until the next such deadline (-1: none).
    int expire_silent()
    {
        std::vector<std::shared_ptr<Client>> late;
        auto now = Clock::now();
        Clock::time_point next = Clock::time_point::max();
        {
            std::lock_guard lock(mu);
            for (auto &[id, c] : clients) {
                if (c->accepted)
                    continue;
                if (c->hello_deadline <= now)
                    late.push_back(c);
                else
                    next = std::min(next, c->hello_deadline);
            }
        }
        for (auto &c : late) {
            if (c->refused) {
                drop(c);  // it had its answer
                continue;
            }
            std::string why = "no HELLO within " + std::to_string(hello_timeout_ms) + " ms";
            log(DEVHOST_LOG_WARN, "port %s: closing the connection of pid %d (uid %u): %s", path.c_str(), c->peer.pid,
                c->peer.uid, why.c_str());
            send_text(*c, DEVHOST_PORT_FRAME_ERROR, DEVHOST_E_TIMEOUT, 0, why);
            drop(c);
        }
        if (next == Clock::time_point::max())
            return -1;
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
        return static_cast<int>(std::min<long long>(ms, 1 << 30));
    }

    void run()
    {
        std::vector<pollfd> fds;
        std::vector<std::shared_ptr<Client>> polled;
        for (;;) {
            const int timeout_ms = expire_silent();
            fds.clear();
            polled.clear();
            fds.push_back({wake_fd.get(), POLLIN, 0});
            fds.push_back({listen_fd.get(), POLLIN, 0});
            {
                std::lock_guard lock(mu);
                for (auto &[id, c] : clients) {
                    fds.push_back({c->fd.get(), POLLIN, 0});
                    polled.push_back(c);
                }
            }
            if (::poll(fds.data(), fds.size(), timeout_ms) < 0) {
                if (errno == EINTR)
                    continue;
                log(DEVHOST_LOG_ERROR, "port %s: poll failed: %s", path.c_str(), errno_text(errno).c_str());
                break;
            }
            if (fds[0].revents) {
                uint64_t v;
                [[maybe_unused]] ssize_t n = ::read(wake_fd.get(), &v, sizeof v);
                std::vector<uint64_t> doomed;
                bool stop;
                {
                    std::lock_guard lock(mu);
                    doomed.swap(to_disconnect);
                    stop = closing;
                }
                if (stop)
                    break;
                for (uint64_t id : doomed) {
                    std::shared_ptr<Client> c;
                    {
                        std::lock_guard lock(mu);
                        auto it = clients.find(id);
                        if (it != clients.end())
                            c = it->second;
                    }
                    if (c)
                        drop(c);
                }
            }
            if (fds[1].revents & POLLIN)
                on_accept();
            for (size_t i = 2; i < fds.size(); i++)
                if (fds[i].revents && !polled[i - 2]->gone)
                    on_readable(polled[i - 2]);
        }
        std::vector<std::shared_ptr<Client>> all;
        {
            std::lock_guard lock(mu);
            for (auto &[id, c] : clients)
                all.push_back(c);
        }
        for (auto &c : all)
            drop(c);
    }
};

namespace {

// Undoes a bind that went wrong after the socket file was made.
devhost_status unbind(devhost_port &port, devhost_error *err, int e, const std::string &what)
{
    port.listen_fd.reset();
    struct stat st;
    if (::fstatat(port.dir_fd.get(), port.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode) &&
        st.st_uid == ::geteuid())
        ::unlinkat(port.dir_fd.get(), port.name.c_str(), 0);
    port.wake_fd.reset();
    return fail(err, DEVHOST_E_IO, e, "port " + port.path + ": " + what + (e ? ": " + errno_text(e) : ""));
}

// Opens the port's directory, checking it and every directory above it
// (trusted_dir.hpp); the socket is then handled through it.
devhost_status open_directory(devhost_port &port, devhost_error *err)
{
    std::string abs = port.path;
    if (abs[0] != '/') {
        char cwd[4096];
        if (!::getcwd(cwd, sizeof cwd))
            return fail(err, DEVHOST_E_IO, errno, "port " + port.path + ": getcwd: " + errno_text(errno));
        abs = std::string(cwd) + "/" + abs;
    }
    const size_t slash = abs.rfind('/');
    port.name = abs.substr(slash + 1);
    if (port.name.empty() || port.name == "." || port.name == "..")
        return fail(err, DEVHOST_E_INVALID, 0, "port path " + port.path + " does not end in a name");
    devhost::trusted_dir::Error e;
    auto dir = devhost::trusted_dir::open(slash == 0 ? "/" : abs.substr(0, slash), 0, e);
    if (!dir) {
        devhost_status st = e.refused ? DEVHOST_E_ACCESS
                            : e.os_errno == ENOENT || e.os_errno == ENOTDIR ? DEVHOST_E_NOT_FOUND
                            : e.os_errno == EACCES ? DEVHOST_E_ACCESS
                                                   : DEVHOST_E_IO;
        return fail(err, st, e.os_errno, "cannot create port " + port.path + ": " + e.message);
    }
    port.dir_fd.reset(::fcntl(dir.fd(), F_DUPFD_CLOEXEC, 0));
    if (!port.dir_fd)
        return fail(err, DEVHOST_E_IO, errno, "port " + port.path + ": " + errno_text(errno));
    return DEVHOST_OK;
}

// Something at the path already: replace only a stale socket.
devhost_status clear_path(devhost_port &port, const sockaddr_un &addr, devhost_error *err)
{
    const std::string &path = port.path;
    struct stat st;
    if (::fstatat(port.dir_fd.get(), port.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return DEVHOST_OK;
    if (!S_ISSOCK(st.st_mode))
        return fail(err, DEVHOST_E_INVALID, 0, "port path " + path + " exists and is not a socket");
    UniqueFd probe(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!probe)
        return fail(err, DEVHOST_E_IO, errno, "socket: " + errno_text(errno));
    int rc = ::connect(probe.get(), reinterpret_cast<const sockaddr *>(&addr), sizeof addr);
    int e = errno;
    probe.reset();
    if (rc == 0)
        return fail(err, DEVHOST_E_BUSY, 0, "port " + path + " is already served by another server");
    if (e != ECONNREFUSED)
        return fail(err, DEVHOST_E_IO, e, "port " + path + ": cannot probe the existing socket: " + errno_text(e));
    ::unlinkat(port.dir_fd.get(), port.name.c_str(), 0);
    return DEVHOST_OK;
}

// Binds and listens. The socket inode's mode before bind, narrowed by the
// umask, is the file's mode at creation, so it is never wider than `mode`;
// when the umask narrowed it, the mode is set through the directory's
// descriptor without following a link (a link put in the socket's place
// is refused, never chmod-ed through).
devhost_status bind_socket(devhost_port &port, const sockaddr_un &addr, mode_t mode, devhost_error *err)
{
    const std::string &path = port.path;
    port.listen_fd.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!port.listen_fd)
        return fail(err, DEVHOST_E_IO, errno, "socket: " + errno_text(errno));
    if (::fchmod(port.listen_fd.get(), mode) != 0)
        return fail(err, DEVHOST_E_IO, errno, "port " + path + ": fchmod of the socket before bind: " + errno_text(errno));
    if (::bind(port.listen_fd.get(), reinterpret_cast<const sockaddr *>(&addr), sizeof addr) != 0) {
        int e = errno;
        port.listen_fd.reset();
        devhost_status s = e == ENOENT ? DEVHOST_E_NOT_FOUND
                           : e == EACCES || e == EPERM ? DEVHOST_E_ACCESS
                           : e == EADDRINUSE           ? DEVHOST_E_BUSY
                                                       : DEVHOST_E_IO;
        return fail(err, s, e, "cannot create port " + path + ": " + errno_text(e));
    }
    struct stat st;
    if (::fstatat(port.dir_fd.get(), port.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return unbind(port, err, errno, "stat of the new socket");
    if (!S_ISSOCK(st.st_mode) || st.st_uid != ::geteuid())
        return unbind(port, err, 0, "the new socket was replaced by something else");
    if ((st.st_mode & 07777) != mode) {
        if (::fchmodat(port.dir_fd.get(), port.name.c_str(), mode, AT_SYMLINK_NOFOLLOW) != 0)
            return unbind(port, err, errno, "setting the socket's mode");
        if (::fstatat(port.dir_fd.get(), port.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISSOCK(st.st_mode) ||
            (st.st_mode & 07777) != mode)
            return unbind(port, err, 0, "the new socket was replaced by something else");
    }
    port.sock_dev = st.st_dev;
    port.sock_ino = st.st_ino;
    if (::listen(port.listen_fd.get(), 64) != 0)
        return unbind(port, err, errno, "listen");
    return DEVHOST_OK;
}

// What create needs before anything is made: a config of a size it knows
// with its required fields, and a path that fits a Unix socket address
// (filled into `addr`).
devhost_status check_config(const devhost_port_config *config, sockaddr_un &addr, devhost_error *err)
{
    if (!config || !DEVHOST_HAS_FIELD(devhost_port_config, config->struct_size, callbacks))
        return fail(err, DEVHOST_E_INVALID, 0, "devhost_port_create: config is NULL or too small");
    if (!config->path || !*config->path)
        return fail(err, DEVHOST_E_INVALID, 0, "devhost_port_create: no socket path");
    std::string path = config->path;
    addr = sockaddr_un{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path)
        return fail(err, DEVHOST_E_INVALID, 0,
                    "port path '" + path + "' is too long for a Unix socket (" + std::to_string(path.size()) +
                        " bytes, at most " + std::to_string(sizeof addr.sun_path - 1) + ")");
    if (config->max_connections < 1)
        return fail(err, DEVHOST_E_INVALID, 0, "port " + path + ": max_connections must be at least 1");
    if ((config->allowed_uid_count && !config->allowed_uids) || (config->allowed_gid_count && !config->allowed_gids))
        return fail(err, DEVHOST_E_INVALID, 0, "port " + path + ": allowed uid/gid count without an array");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return DEVHOST_OK;
}

// Copies the settings of a checked config into a new port (the v1.1 fields
// only when its size covers them; the callbacks as far as both sizes go)
// and sizes the service thread's buffers.
void configure(devhost_port &port, const devhost_port_config &config)
{
    port.path = config.path;
    port.max_connections = config.max_connections;
    if (DEVHOST_HAS_FIELD(devhost_port_config, config.struct_size, max_pending_per_uid)) {
        if (config.hello_timeout_ms)
            port.hello_timeout_ms = config.hello_timeout_ms;
        if (config.max_pending_per_uid)
            port.max_pending_per_uid = config.max_pending_per_uid;
    }
    if (config.max_message_size && config.max_message_size < DEVHOST_PORT_MAX_PAYLOAD)
        port.max_payload = config.max_message_size;
    port.uids.assign(config.allowed_uids, config.allowed_uids + config.allowed_uid_count);
    port.gids.assign(config.allowed_gids, config.allowed_gids + config.allowed_gid_count);
    if (config.callbacks) {
        size_t n = std::min<size_t>(config.callbacks->struct_size, sizeof port.cb);
        std::memcpy(&port.cb, config.callbacks, n);
        port.cb.struct_size = sizeof port.cb;
    }
    port.rx.resize(DEVHOST_PORT_HEADER_SIZE + DEVHOST_PORT_MAX_PAYLOAD);  // decode applies max_payload
    port.tx.resize(DEVHOST_PORT_HEADER_SIZE + std::max(port.max_payload, DEVHOST_PORT_MAX_TEXT));
    port.reply_buf.resize(port.max_payload);
}

// Makes the port's descriptors: its directory, the socket (a stale one
// replaced), the wake eventfd. A failure leaves no socket file behind.
devhost_status open_endpoints(devhost_port &port, const sockaddr_un &addr, mode_t mode, devhost_error *err)
{
    devhost_status st = open_directory(port, err);
    if (st != DEVHOST_OK)
        return st;
    st = clear_path(port, addr, err);
    if (st != DEVHOST_OK)
        return st;
    st = bind_socket(port, addr, mode, err);
    if (st != DEVHOST_OK)
        return st;
    port.wake_fd.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!port.wake_fd)
        return unbind(port, err, errno, "eventfd");
    return DEVHOST_OK;
}

// Starts the service thread. It runs only once service_id and *out are set:
// a callback may read the caller's variable holding the port. If the thread
// cannot start, *out is NULL again, the socket is gone, and the error is
// rethrown.
void start_service(devhost_port *p, devhost_port **out)
{
    std::lock_guard lock(p->mu);
    *out = p;
    try {
        p->thread = std::thread([p] {
            { std::lock_guard started(p->mu); }
            p->run();
        });
    } catch (...) {
        *out = nullptr;
        unbind(*p, nullptr, 0, "");
        throw;
    }
    p->service_id = p->thread.get_id();
}

// What devhost_port_send checks before it touches the port's state.
devhost_status check_send(devhost_port *port, const void *message, size_t message_len, const void *reply,
                          size_t reply_capacity, devhost_error *err)
{
    if (!port)
        return fail(err, DEVHOST_E_INVALID, 0, "devhost_port_send: port is NULL");
    if (std::this_thread::get_id() == port->service_id)
        return fail(err, DEVHOST_E_STATE, 0,
                    "devhost_port_send called from a port callback (it would wait on itself)");
    if (message_len > port->max_payload)
        return fail(err, DEVHOST_E_INVALID, 0,
                    "message of " + std::to_string(message_len) + " bytes exceeds the port's bound of " +
                        std::to_string(port->max_payload));
    if ((message_len && !message) || (reply_capacity && !reply))
        return fail(err, DEVHOST_E_INVALID, 0, "devhost_port_send: NULL buffer with a non-zero size");
    return DEVHOST_OK;
}

// One devhost_port_send call, in its phases: register the message (lock
// held), write its frame (lock not held: the service thread must keep
// running to drain the client), then wait for the reply (lock held). While
// it lives it counts as a sender, so that devhost_port_close waits for it
// before freeing the port.
class Sender {
public:
    Sender(devhost_port &port, uint64_t client, int32_t timeout_ms)
        : port_(port), client_(client), forever_(timeout_ms < 0),
          deadline_(Clock::now() + std::chrono::milliseconds(forever_ ? 0 : timeout_ms)),
          who_("client " + std::to_string(client) + " of port " + port.path), lock_(port.mu)
    {
        port_.senders++;
    }
    ~Sender()
    {
        if (!lock_.owns_lock())
            lock_.lock();
        port_.senders--;
        port_.cv.notify_all();
    }
    Sender(const Sender &) = delete;
    Sender &operator=(const Sender &) = delete;

    // Lock held. Finds the accepted client, waits (within the deadline) for
    // a synchronous handle's previous message to be answered, and registers
    // a new message to it.
    devhost_status enqueue(devhost_error *err)
    {
        auto it = port_.clients.find(client_);
        if (it != port_.clients.end() && it->second->accepted)
            c_ = it->second;
        if (!c_ || port_.closing)
            return fail(err, DEVHOST_E_NOT_FOUND, 0, "no " + who_);
        if (c_->sync && !wait([&] { return port_.closing || c_->gone || c_->outstanding.empty(); }))
            return fail(err, DEVHOST_E_TIMEOUT, 0,
                        who_ + " has a synchronous handle and did not answer its previous message in time");
        if (port_.closing || c_->gone)
            return fail(err, DEVHOST_E_REMOVED, 0, who_ + " went away");
        id_ = port_.next_message++;
        p_ = std::make_shared<Pending>();
        p_->client = client_;
        port_.pending[id_] = p_;
        c_->outstanding.insert(id_);
        return DEVHOST_OK;
    }

    // Lock not held. Writes the MESSAGE frame, waiting for room until the
    // deadline and looking every 100 ms whether the client or the port went
    // away. Returns OK, E_TIMEOUT, E_REMOVED, or E_IO with `sent_errno`.
    devhost_status write(const void *message, size_t message_len, int &sent_errno)
    {
        lock_.unlock();
        std::vector<uint8_t> frame(DEVHOST_PORT_HEADER_SIZE + message_len);
        size_t n = devhost_port_frame_encode(frame.data(), frame.size(), DEVHOST_PORT_FRAME_MESSAGE, 0, 0, id_,
                                             message, static_cast<uint32_t>(message_len));
        devhost_status sent = write_frame(frame.data(), n, sent_errno);
        lock_.lock();
        return sent;
    }

    // Lock held. After the write: forgets a message that could not be sent,
    // or waits for its reply and copies it out.
    devhost_status collect(devhost_status sent, int sent_errno, void *reply, size_t reply_capacity,
                           size_t *reply_len, devhost_error *err)
    {
        if (sent != DEVHOST_OK && !p_->done) {
            forget(false);
            return fail(err, sent, sent_errno,
                        sent == DEVHOST_E_TIMEOUT ? who_ + " did not take the message in time"
                        : sent == DEVHOST_E_REMOVED ? who_ + " went away"
                                                    : "sending to " + who_ + ": " + errno_text(sent_errno));
        }
        if (!wait([&] { return p_->done; })) {
            forget(true);
            return fail(err, DEVHOST_E_TIMEOUT, 0, who_ + " did not reply in time");
        }
        if (p_->status != DEVHOST_OK)
            return fail(err, p_->status, 0, p_->message);
        if (reply_len)
            *reply_len = p_->reply.size();
        size_t copy = std::min(reply_capacity, p_->reply.size());
        if (copy)
            std::memcpy(reply, p_->reply.data(), copy);
        if (p_->reply.size() > reply_capacity)
            return fail(err, DEVHOST_E_INVALID, 0,
                        "reply of " + std::to_string(p_->reply.size()) + " bytes from " + who_ +
                            " exceeds the capacity of " + std::to_string(reply_capacity));
        return DEVHOST_OK;
    }

private:
    // Lock held: waits on the port's condition until `pred` holds or the
    // deadline passes (false).
    template <class Pred> bool wait(Pred pred)
    {
        if (forever_) {
            port_.cv.wait(lock_, pred);
            return true;
        }
        return port_.cv.wait_until(lock_, deadline_, pred);
    }

    // Lock not held: the send loop of write().
    devhost_status write_frame(const uint8_t *frame, size_t n, int &sent_errno)
    {
        for (;;) {
            ssize_t w = ::send(c_->fd.get(), frame, n, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w == static_cast<ssize_t>(n))
                return DEVHOST_OK;
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                int left = 100;
                if (!forever_) {
                    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
                    if (ms <= 0)
                        return DEVHOST_E_TIMEOUT;
                    left = static_cast<int>(std::min<long long>(ms, 100));
                }
                pollfd pf{c_->fd.get(), POLLOUT, 0};
                ::poll(&pf, 1, left);
                std::lock_guard check(port_.mu);
                if (port_.closing || c_->gone)
                    return DEVHOST_E_REMOVED;
                continue;
            }
            sent_errno = errno;
            return (errno == EPIPE || errno == ECONNRESET) ? DEVHOST_E_REMOVED : DEVHOST_E_IO;
        }
    }

    // Lock held: drops the message; `remember_late` keeps its id so that a
    // reply arriving after the sender gave up is not a protocol error.
    void forget(bool remember_late)
    {
        port_.pending.erase(id_);
        c_->outstanding.erase(id_);
        if (remember_late) {
            c_->expired.push_back(id_);
            if (c_->expired.size() > expired_ids_kept)
                c_->expired.pop_front();
        }
        port_.cv.notify_all();
    }

    devhost_port &port_;
    const uint64_t client_;
    const bool forever_;
    const Clock::time_point deadline_;
    const std::string who_;
    std::unique_lock<std::mutex> lock_;  // the port's mutex
    std::shared_ptr<Client> c_;
    std::shared_ptr<Pending> p_;
    uint64_t id_ = 0;
};

}  // namespace

extern "C" {

devhost_status devhost_port_create(const devhost_port_config *config, devhost_port **out, devhost_error *err)
{
    if (!out)
        return fail(err, DEVHOST_E_INVALID, 0, "devhost_port_create: port is NULL");
    *out = nullptr;
    sockaddr_un addr;
    devhost_status st = check_config(config, addr, err);
    if (st != DEVHOST_OK)
        return st;
    const std::string path = config->path;
    const mode_t mode = config->mode ? (config->mode & 07777) : 0600;
    try {
        auto port = std::make_unique<devhost_port>();
        configure(*port, *config);
        st = open_endpoints(*port, addr, mode, err);
        if (st != DEVHOST_OK)
            return st;
        start_service(port.get(), out);
        port.release();
        return DEVHOST_OK;
    } catch (const std::bad_alloc &) {
        return fail(err, DEVHOST_E_NO_MEMORY, ENOMEM, "port " + path + ": out of memory");
    } catch (const std::system_error &e) {
        return fail(err, DEVHOST_E_IO, e.code().value(), "port " + path + ": " + e.what());
    }
}

devhost_status devhost_port_send(devhost_port *port, uint64_t client, const void *message, size_t message_len,
                                 void *reply, size_t reply_capacity, size_t *reply_len, int32_t timeout_ms,
                                 devhost_error *err)
{
    if (reply_len)
        *reply_len = 0;
    devhost_status st = check_send(port, message, message_len, reply, reply_capacity, err);
    if (st != DEVHOST_OK)
        return st;
    try {
        Sender send(*port, client, timeout_ms);
        st = send.enqueue(err);
        if (st != DEVHOST_OK)
            return st;
        int sent_errno = 0;
        devhost_status sent = send.write(message, message_len, sent_errno);
        return send.collect(sent, sent_errno, reply, reply_capacity, reply_len, err);
    } catch (const std::bad_alloc &) {
        return fail(err, DEVHOST_E_NO_MEMORY, ENOMEM, "devhost_port_send: out of memory");
    } catch (const std::system_error &e) {
        return fail(err, DEVHOST_E_IO, e.code().value(), std::string("devhost_port_send: ") + e.what());
    }
}

devhost_status devhost_port_disconnect(devhost_port *port, uint64_t client)
{
    if (!port)
        return DEVHOST_E_INVALID;
    {
        std::lock_guard lock(port->mu);
        auto it = port->clients.find(client);
        if (it == port->clients.end() || !it->second->accepted)
            return DEVHOST_E_NOT_FOUND;
        port->to_disconnect.push_back(client);
    }
    port->wake();
    return DEVHOST_OK;
}

uint32_t devhost_port_clients(devhost_port *port, uint64_t *ids, uint32_t capacity)
{
    if (!port)
        return 0;
    std::lock_guard lock(port->mu);
    uint32_t n = 0;
    for (auto &[id, c] : port->clients) {
        if (!c->accepted)
            continue;
        if (ids && n < capacity)
            ids[n] = id;
        n++;
    }
    return n;
}

void devhost_port_close(devhost_port *port)
{
    if (!port)
        return;
    if (std::this_thread::get_id() == port->service_id) {
        port->log(DEVHOST_LOG_ERROR, "port %s: devhost_port_close called from a callback; ignored",
                  port->path.c_str());
        return;
    }
    {
        std::lock_guard lock(port->mu);
        port->closing = true;
    }
    port->cv.notify_all();
    port->wake();
    if (port->thread.joinable())
        port->thread.join();
    {
        std::unique_lock lock(port->mu);
        port->cv.wait(lock, [&] { return port->senders == 0; });
    }
    // Our socket only, in the directory checked at create: never a file
    // someone put at the path since.
    struct stat st;
    if (::fstatat(port->dir_fd.get(), port->name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == port->sock_dev &&
        st.st_ino == port->sock_ino)
        ::unlinkat(port->dir_fd.get(), port->name.c_str(), 0);
    delete port;  // closes its descriptors
}

}  // extern "C"
