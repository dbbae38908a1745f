// The filterport backend: a port client over Unix SOCK_SEQPACKET. See
// filterport_private.hpp and devhost/port_wire.h.
#include "filterport_private.hpp"

#include <devhost/plugin_util.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace filterport {

namespace {

// How many MESSAGEs a client queues while waiting for a RESPONSE, and how many
// answered/abandoned ids it remembers.
constexpr size_t max_inbox = 1024;
constexpr size_t ids_kept = 1024;

devhost_status fail(devhost_error *err, devhost_status status, int os_errno, const std::string &text)
{
    devhost_error_set(err, os_errno, "%s", text.c_str());
    return status;
}

// The text of a payload, non-printable bytes shown as '.'. A failure's
// payload stops at its NUL (the errno after it: failure_errno).
std::string payload_text(const std::vector<uint8_t> &p)
{
    size_t len = p.size();
    devhost_port_failure_decode(p.data(), p.size(), &len);
    std::string s(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(len));
    for (char &ch : s)
        if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) > 0x7e)
            ch = '.';
    return s;
}

int failure_errno(const std::vector<uint8_t> &p) { return devhost_port_failure_decode(p.data(), p.size(), nullptr); }

void remember(std::deque<uint64_t> &ids, uint64_t id)
{
    ids.push_back(id);
    if (ids.size() > ids_kept)
        ids.pop_front();
}

bool contains(const std::deque<uint64_t> &ids, uint64_t id)
{
    return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

uint64_t PortClient::deadline(int32_t timeout_ms) const
{
    const uint64_t hook = devhost_hook_deadline(services, host_device);
    return devhost_util_deadline_min(hook, devhost_util_deadline_ms(timeout_ms));
}

void PortClient::log(int32_t level, const std::string &line) const
{
    devhost_logf(services, host_device, level, "%s", line.c_str());
}

devhost_status PortClient::check_usable(devhost_error *err) const
{
    if (broken_ != DEVHOST_OK)
        return fail(err, broken_, 0, broken_why_);
    if (!fd_)
        return fail(err, DEVHOST_E_STATE, 0, "port " + path + " is not connected");
    return DEVHOST_OK;
}

void PortClient::close_socket()
{
    if (shared_)
        devhost_util_unshare_fd(services, host_device, "socket", ("port " + path).c_str());
    shared_ = false;
    fd_.reset();
}

devhost_status PortClient::break_connection(devhost_status status, int os_errno, const std::string &why,
                                            devhost_error *err)
{
    close_socket();
    if (broken_ == DEVHOST_OK) {
        broken_ = status;
        broken_why_ = why;
        log(status == DEVHOST_E_REMOVED ? DEVHOST_LOG_WARN : DEVHOST_LOG_ERROR, why);
    }
    inbox_.clear();
    unanswered_.clear();
    return fail(err, status, os_errno, why);
}

devhost_status PortClient::wait_fd(short events, uint64_t deadline_ns, devhost_error *err)
{
    // Past the deadline it still looks once without waiting, so that what
    // is already there is taken (a caller may poll before its first recv).
    // Callers word the timeout and cancel messages themselves.
    return devhost_util_wait(fd_.get(), events, cancel_fd, deadline_ns, nullptr, err, path.c_str(), nullptr);
}

template <class Failed>
devhost_status PortClient::send_whole(const std::vector<uint8_t> &buf, size_t n, uint32_t type, uint64_t deadline_ns,
                                      devhost_error *err, Failed failed)
{
    for (;;) {
        ssize_t w = ::send(fd_.get(), buf.data(), n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w == static_cast<ssize_t>(n))
            return DEVHOST_OK;
        if (w >= 0)
            return failed(0);
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return failed(errno);
        devhost_status st = wait_fd(POLLOUT, deadline_ns, err);
        if (st == DEVHOST_E_TIMEOUT)
            return fail(err, st, 0, "port " + path + ": the server did not take the " +
                                        devhost_port_frame_type_name(type) + " in time");
        if (st == DEVHOST_E_CANCELLED)
            return fail(err, st, 0, "port " + path + ": cancelled");
        if (st != DEVHOST_OK)
            return st;
    }
}

devhost_status PortClient::send_frame(uint32_t type, uint32_t flags, uint64_t id, const void *payload, size_t len,
                                      uint64_t deadline_ns, devhost_error *err)
{
    if (type == DEVHOST_PORT_FRAME_ERROR)
        len = std::min<size_t>(len, DEVHOST_PORT_MAX_TEXT);
    std::vector<uint8_t> buf(DEVHOST_PORT_HEADER_SIZE + len);
    size_t n = devhost_port_frame_encode(buf.data(), buf.size(), type, flags, 0, id, payload,
                                         static_cast<uint32_t>(len));
    if (n == 0)
        return fail(err, DEVHOST_E_INVALID, 0, "cannot encode a frame of " + std::to_string(len) + " bytes");
    return send_whole(buf, n, type, deadline_ns, err, [&](int e) -> devhost_status {
        if (e == 0)
            return break_connection(DEVHOST_E_IO, 0, "port " + path + ": short send", err);
        if (e == EPIPE || e == ECONNRESET || e == ENOTCONN)
            return break_connection(DEVHOST_E_REMOVED, e, "port " + path + ": the server went away", err);
        if (e == EMSGSIZE)
            return fail(err, DEVHOST_E_INVALID, e,
                        "port " + path + ": a frame of " + std::to_string(n) + " bytes is too large for the socket");
        return break_connection(DEVHOST_E_IO, e, "port " + path + ": send: " + std::strerror(e), err);
    });
}

devhost_status PortClient::recv_frame(Frame &frame, uint64_t deadline_ns, devhost_error *err, bool wait_first)
{
    rx_.resize(DEVHOST_PORT_HEADER_SIZE + static_cast<size_t>(std::max(max_payload, DEVHOST_PORT_MAX_TEXT)));
    if (wait_first) {
        devhost_status st = wait_fd(POLLIN, deadline_ns, err);
        if (st != DEVHOST_OK)
            return st;
    }
    bool reset = false;
    for (;;) {
        ssize_t n = ::recv(fd_.get(), rx_.data(), rx_.size(), MSG_TRUNC | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == ECONNRESET && !reset) {
            // The server closed with our frames unread: the kernel reports
            // the reset first, then still hands out what the server sent.
            reset = true;
            continue;
        }
        if (reset && n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            n = 0;  // nothing was left after the reset
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            devhost_status st = wait_fd(POLLIN, deadline_ns, err);
            if (st != DEVHOST_OK)
                return st;
            continue;
        }
        if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == ENOTCONN)))
            return break_connection(DEVHOST_E_REMOVED, n < 0 ? errno : 0,
                                    "port " + path + ": the server went away", err);
        if (n < 0)
            return break_connection(DEVHOST_E_IO, errno, "port " + path + ": recv: " + std::strerror(errno), err);
        if (static_cast<size_t>(n) > rx_.size()) {
            std::string why = "oversized frame from the server: " + std::to_string(n) + " bytes, the bound is " +
                              std::to_string(rx_.size());
            send_frame(DEVHOST_PORT_FRAME_ERROR, 0, 0, why.data(), why.size(), devhost_util_now_ns(), nullptr);
            return break_connection(DEVHOST_E_PROTOCOL, 0, "port " + path + ": " + why, err);
        }
        devhost_port_frame f;
        char why[256];
        if (devhost_port_frame_decode(rx_.data(), static_cast<size_t>(n), max_payload, &f, why, sizeof why) !=
            DEVHOST_OK) {
            send_frame(DEVHOST_PORT_FRAME_ERROR, 0, 0, why, std::strlen(why), devhost_util_now_ns(), nullptr);
            return break_connection(DEVHOST_E_PROTOCOL, 0, "port " + path + ": malformed frame from the server: " + why,
                                    err);
        }
        frame.type = f.type;
        frame.status = f.status;
        frame.id = f.id;
        frame.payload.assign(f.payload, f.payload + f.length);
        if (f.type == DEVHOST_PORT_FRAME_ERROR && f.status == DEVHOST_E_TIMEOUT)
            return break_connection(DEVHOST_E_TIMEOUT, 0,
                                    "port " + path + ": the server closed the connection: " +
                                        payload_text(frame.payload),
                                    err);
        if (f.type == DEVHOST_PORT_FRAME_ERROR)
            return break_connection(DEVHOST_E_PROTOCOL, 0,
                                    "port " + path + ": the server refused our frame: " + payload_text(frame.payload),
                                    err);
        if (f.type == DEVHOST_PORT_FRAME_HELLO || f.type == DEVHOST_PORT_FRAME_REQUEST ||
            f.type == DEVHOST_PORT_FRAME_REPLY) {
            std::string why2 = std::string("a server may not send ") + devhost_port_frame_type_name(f.type);
            send_frame(DEVHOST_PORT_FRAME_ERROR, 0, 0, why2.data(), why2.size(), devhost_util_now_ns(), nullptr);
            return break_connection(DEVHOST_E_PROTOCOL, 0, "port " + path + ": " + why2, err);
        }
        return DEVHOST_OK;
    }
}

devhost_status PortClient::stray_frame(Frame &frame, devhost_error *err)
{
    if (frame.type == DEVHOST_PORT_FRAME_MESSAGE) {
        if (inbox_.size() >= max_inbox) {
            std::string why = "the server sent more than " + std::to_string(max_inbox) + " messages nobody got";
            send_frame(DEVHOST_PORT_FRAME_ERROR, 0, 0, why.data(), why.size(), devhost_util_now_ns(), nullptr);
            return break_connection(DEVHOST_E_PROTOCOL, 0, "port " + path + ": " + why, err);
        }
        inbox_.push_back({frame.id, std::move(frame.payload)});
        return DEVHOST_OK;
    }
    if (frame.type == DEVHOST_PORT_FRAME_RESPONSE && contains(abandoned_, frame.id)) {
        log(DEVHOST_LOG_DEBUG, "port " + path + ": dropped the late response to request " + std::to_string(frame.id));
        return DEVHOST_OK;
    }
    std::string why = frame.type == DEVHOST_PORT_FRAME_RESPONSE
                          ? "RESPONSE to unknown request id " + std::to_string(frame.id)
                          : std::string("unexpected ") + devhost_port_frame_type_name(frame.type) + " frame";
    send_frame(DEVHOST_PORT_FRAME_ERROR, 0, 0, why.data(), why.size(), devhost_util_now_ns(), nullptr);
    return break_connection(DEVHOST_E_PROTOCOL, 0, "port " + path + ": " + why, err);
}

namespace {

// The status and message of a connect(2) that failed with `e` (not EINTR or
// EAGAIN, which connect retries).
devhost_status connect_failure(int e, const std::string &path, devhost_error *err)
{
    if (e == ENOENT)
        return fail(err, DEVHOST_E_NOT_FOUND, e, "no port at " + path + " (is its server running?)");
    if (e == ECONNREFUSED)
        return fail(err, DEVHOST_E_NOT_FOUND, e, "port " + path + " has no server (stale socket)");
    if (e == EACCES || e == EPERM)
        return fail(err, DEVHOST_E_ACCESS, e, "port " + path + ": permission denied by the socket file's mode");
    if (e == EPROTOTYPE)
        return fail(err, DEVHOST_E_INVALID, e, path + " is not a filter port (not a SOCK_SEQPACKET socket)");
    return fail(err, DEVHOST_E_IO, e, "connect to port " + path + ": " + std::strerror(e));
}

}  // namespace

devhost_status PortClient::connect(const void *context, uint32_t context_size, bool sync_handle, int32_t timeout_ms,
                                   devhost_error *err)
{
    disconnect();
    const uint64_t dl = deadline(timeout_ms);
    devhost_status st = open_socket(dl, err);
    if (st != DEVHOST_OK)
        return st;
    broken_ = DEVHOST_OK;
    broken_why_.clear();
    st = check_server(err);
    if (st == DEVHOST_OK)
        st = handshake(context, context_size, sync_handle, dl, err);
    if (st != DEVHOST_OK) {
        // A failed connect leaves no descriptor and no broken state behind.
        fd_.reset();
        broken_ = DEVHOST_OK;
        broken_why_.clear();
        return st;
    }
    sync_handle_ = sync_handle;
    if (sync_handle) {
        // A synchronous handle is a blocking descriptor; waits still poll
        // with a deadline and the cancel handle, and I/O uses MSG_DONTWAIT.
        int fl = ::fcntl(fd_.get(), F_GETFL);
        if (fl >= 0)
            ::fcntl(fd_.get(), F_SETFL, fl & ~O_NONBLOCK);
    }
    log(DEVHOST_LOG_DEBUG, "connected to port " + path + (sync_handle ? " (synchronous handle)" : ""));
    // The connection is this client's session with the server (its
    // messages, its place among the port's connections): the host gets a
    // copy, so that if this process dies the host ends the session itself
    // and records it, as for every device it holds.
    shared_ = devhost_util_share_fd_or_warn(services, host_device, fd_.get(), "socket", ("port " + path).c_str());
    return DEVHOST_OK;
}

devhost_status PortClient::open_socket(uint64_t deadline_ns, devhost_error *err)
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path)
        return fail(err, DEVHOST_E_INVALID, 0, "port path " + path + " is too long for a Unix socket");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    const int flags = SOCK_SEQPACKET | SOCK_NONBLOCK | (inherit ? 0 : SOCK_CLOEXEC);
    devhost::UniqueFd fd(::socket(AF_UNIX, flags, 0));
    if (!fd)
        return fail(err, DEVHOST_E_IO, errno, std::string("socket: ") + std::strerror(errno));
    for (;;) {
        if (::connect(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0)
            break;
        int e = errno;
        if (e == EINTR)
            continue;
        if (e != EAGAIN)
            return connect_failure(e, path, err);
        // The server's backlog is full: retry until the deadline.
        if (devhost_util_deadline_passed(deadline_ns))
            return fail(err, DEVHOST_E_TIMEOUT, e, "port " + path + ": the server's backlog stayed full");
        if (devhost_util_wait(-1, 0, cancel_fd, devhost_util_deadline_ms(10), nullptr, nullptr, nullptr, nullptr) ==
            DEVHOST_E_CANCELLED)
            return fail(err, DEVHOST_E_CANCELLED, 0, "port " + path + ": connect cancelled");
    }
    fd_ = std::move(fd);
    return DEVHOST_OK;
}

devhost_status PortClient::handshake(const void *context, uint32_t context_size, bool sync_handle,
                                     uint64_t deadline_ns, devhost_error *err)
{
    bool closed = false;
    devhost_status st = send_hello(context, context_size, sync_handle, deadline_ns, closed, err);
    Frame welcome;
    if (st == DEVHOST_OK)
        st = recv_frame(welcome, closed ? devhost_util_now_ns() : deadline_ns, err);
    if (st == DEVHOST_E_TIMEOUT && closed)
        st = fail(err, DEVHOST_E_REMOVED, EPIPE, "port " + path + ": the server went away");
    if (st == DEVHOST_OK && welcome.type != DEVHOST_PORT_FRAME_WELCOME) {
        std::string why = std::string("expected WELCOME, got ") + devhost_port_frame_type_name(welcome.type);
        send_frame(DEVHOST_PORT_FRAME_ERROR, 0, 0, why.data(), why.size(), devhost_util_now_ns(), nullptr);
        st = fail(err, DEVHOST_E_PROTOCOL, 0, "port " + path + ": " + why);
    }
    if (st == DEVHOST_OK && welcome.status != DEVHOST_OK) {
        std::string why = payload_text(welcome.payload);
        st = fail(err, welcome.status, failure_errno(welcome.payload),
                  "port " + path + " refused the connection: " +
                      (why.empty() ? std::string(devhost_status_name(welcome.status)) : why));
    }
    if (st == DEVHOST_E_TIMEOUT && welcome.type != DEVHOST_PORT_FRAME_ERROR)
        devhost_error_set(err, 0, "port %s: no WELCOME from the server in time", path.c_str());
    else if (st == DEVHOST_E_CANCELLED)
        devhost_error_set(err, 0, "port %s: connect cancelled", path.c_str());
    return st;
}

devhost_status PortClient::check_server(devhost_error *err)
{
    if (server_uid < 0)
        return DEVHOST_OK;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd_.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return fail(err, DEVHOST_E_IO, errno, "port " + path + ": SO_PEERCRED: " + std::strerror(errno));
    if (static_cast<int64_t>(cred.uid) != server_uid)
        return fail(err, DEVHOST_E_ACCESS, 0,
                    "port " + path + " is served by uid " + std::to_string(cred.uid) + " (pid " +
                        std::to_string(cred.pid) + "), not by uid " + std::to_string(server_uid) +
                        " as server-uid requires");
    return DEVHOST_OK;
}

devhost_status PortClient::send_hello(const void *context, uint32_t context_size, bool sync_handle,
                                      uint64_t deadline_ns, bool &closed, devhost_error *err)
{
    closed = false;
    std::vector<uint8_t> buf(DEVHOST_PORT_HEADER_SIZE + context_size);
    size_t n = devhost_port_frame_encode(buf.data(), buf.size(), DEVHOST_PORT_FRAME_HELLO,
                                         sync_handle ? DEVHOST_PORT_HELLO_SYNC : 0, 0, 0, context, context_size);
    if (n == 0)
        return fail(err, DEVHOST_E_INVALID, 0, "cannot encode a HELLO of " + std::to_string(context_size) + " bytes");
    return send_whole(buf, n, DEVHOST_PORT_FRAME_HELLO, deadline_ns, err, [&](int e) -> devhost_status {
        if (e == 0)
            return fail(err, DEVHOST_E_IO, 0, "port " + path + ": short send");
        if (e == EPIPE || e == ECONNRESET || e == ENOTCONN) {
            closed = true;  // refused at accept: its WELCOME is still to be read
            return DEVHOST_OK;
        }
        return fail(err, DEVHOST_E_IO, e, "port " + path + ": send: " + std::strerror(e));
    });
}

void PortClient::disconnect()
{
    close_socket();
    broken_ = DEVHOST_OK;
    broken_why_.clear();
    inbox_.clear();
    unanswered_.clear();
    answered_.clear();
    abandoned_.clear();
    sync_handle_ = false;
}

bool PortClient::server_credentials(int &pid, unsigned &uid, unsigned &gid) const
{
    if (!fd_)
        return false;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd_.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return false;
    pid = cred.pid;
    uid = cred.uid;
    gid = cred.gid;
    return true;
}

devhost_status PortClient::request(const uint8_t *out, size_t out_len, uint8_t *in, size_t in_capacity,
                                   size_t &in_len, size_t &out_done, int32_t timeout_ms, devhost_error *err)
{
    in_len = 0;
    out_done = 0;
    devhost_status st = check_usable(err);
    if (st != DEVHOST_OK)
        return st;
    if (out_len > max_payload)
        return fail(err, DEVHOST_E_INVALID, 0,
                    "request of " + std::to_string(out_len) + " bytes exceeds the bound of " +
                        std::to_string(max_payload));
    const uint64_t dl = deadline(timeout_ms);
    const uint64_t id = next_request_++;
    st = send_frame(DEVHOST_PORT_FRAME_REQUEST, 0, id, out, out_len, dl, err);
    if (st != DEVHOST_OK) {
        if (st == DEVHOST_E_TIMEOUT || st == DEVHOST_E_CANCELLED)
            remember(abandoned_, id);
        return st;
    }
    out_done = out_len;
    // The response cannot be there right after the request: wait before the
    // first recv (a recv first would only fail with EAGAIN). Frames queued
    // behind a stray one are taken without waiting.
    bool wait_first = true;
    for (;;) {
        Frame f;
        st = recv_frame(f, dl, err, wait_first);
        wait_first = false;
        if (st == DEVHOST_E_TIMEOUT || st == DEVHOST_E_CANCELLED) {
            remember(abandoned_, id);
            return fail(err, st, 0,
                        "port " + path + ": " +
                            (st == DEVHOST_E_TIMEOUT ? "no response to request " + std::to_string(id) + " in time"
                                                     : "request " + std::to_string(id) + " cancelled"));
        }
        if (st != DEVHOST_OK)
            return st;
        if (f.type == DEVHOST_PORT_FRAME_RESPONSE && f.id == id) {
            if (f.status != DEVHOST_OK)
                return fail(err, f.status, failure_errno(f.payload), "port " + path + ": the server failed the request: " +
                                                  (f.payload.empty() ? std::string(devhost_status_name(f.status))
                                                                     : payload_text(f.payload)));
            in_len = std::min(in_capacity, f.payload.size());
            if (in_len)
                std::memcpy(in, f.payload.data(), in_len);
            if (f.payload.size() > in_capacity)
                return fail(err, DEVHOST_E_INVALID, 0,
                            "port " + path + ": response of " + std::to_string(f.payload.size()) +
                                " bytes does not fit the buffer of " + std::to_string(in_capacity));
            return DEVHOST_OK;
        }
        st = stray_frame(f, err);
        if (st != DEVHOST_OK)
            return st;
    }
}

devhost_status PortClient::get_message(uint8_t *in, size_t in_capacity, size_t &in_len, uint64_t &id,
                                       int32_t timeout_ms, devhost_error *err)
{
    in_len = 0;
    devhost_status st = check_usable(err);
    if (st != DEVHOST_OK)
        return st;
    if (sync_handle_ && !unanswered_.empty())
        return fail(err, DEVHOST_E_STATE, 0,
                    "port " + path + ": synchronous handle: reply to message " +
                        std::to_string(*unanswered_.begin()) + " before getting another");
    const uint64_t dl = deadline(timeout_ms);
    while (inbox_.empty()) {
        Frame f;
        st = recv_frame(f, dl, err);
        if (st == DEVHOST_E_TIMEOUT)
            return fail(err, st, 0, "port " + path + ": no message from the server in time");
        if (st == DEVHOST_E_CANCELLED)
            return fail(err, st, 0, "port " + path + ": get-message cancelled");
        if (st != DEVHOST_OK)
            return st;
        st = stray_frame(f, err);
        if (st != DEVHOST_OK)
            return st;
    }
    Message &m = inbox_.front();
    if (m.data.size() > in_capacity)
        return fail(err, DEVHOST_E_INVALID, 0,
                    "port " + path + ": message " + std::to_string(m.id) + " of " + std::to_string(m.data.size()) +
                        " bytes does not fit the buffer of " + std::to_string(in_capacity) + " (it stays queued)");
    in_len = m.data.size();
    if (in_len)
        std::memcpy(in, m.data.data(), in_len);
    id = m.id;
    unanswered_.insert(m.id);
    inbox_.pop_front();
    return DEVHOST_OK;
}

devhost_status PortClient::reply(uint64_t id, const uint8_t *out, size_t out_len, size_t &out_done,
                                 int32_t timeout_ms, devhost_error *err)
{
    out_done = 0;
    devhost_status st = check_usable(err);
    if (st != DEVHOST_OK)
        return st;
    if (!unanswered_.count(id)) {
        if (contains(answered_, id))
            return fail(err, DEVHOST_E_INVALID, 0, "port " + path + ": message " + std::to_string(id) +
                                                       " was already answered");
        return fail(err, DEVHOST_E_INVALID, 0, "port " + path + ": no message with id " + std::to_string(id) +
                                                   " was received (get-message first)");
    }
    if (out_len > max_payload)
        return fail(err, DEVHOST_E_INVALID, 0,
                    "reply of " + std::to_string(out_len) + " bytes exceeds the bound of " +
                        std::to_string(max_payload));
    st = send_frame(DEVHOST_PORT_FRAME_REPLY, 0, id, out, out_len, deadline(timeout_ms), err);
    if (st != DEVHOST_OK)
        return st;
    out_done = out_len;
    unanswered_.erase(id);
    remember(answered_, id);
    return DEVHOST_OK;
}

}  // namespace filterport
