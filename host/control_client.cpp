#include "control_client.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace devhost::control {

bool Client::fail(Failure f, const std::string &message)
{
    failure_ = f;
    error_ = message;
    return false;
}

bool Client::connect(const std::string &path)
{
    path_ = path;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        return fail(Failure::other, "--socket " + path + ": not a Unix socket path (1 to " +
                                        std::to_string(sizeof addr.sun_path - 1) + " bytes)");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd_)
        return fail(Failure::other, std::string("socket: ") + std::strerror(errno));
    if (::connect(fd_.get(), reinterpret_cast<const sockaddr *>(&addr), sizeof addr) == 0)
        return true;
    const int e = errno;
    fd_.reset();
    if (e == ENOENT || e == ENOTDIR)
        return fail(Failure::no_server, "devhost serve is not running (no socket at " + path + ")");
    if (e == ECONNREFUSED)
        return fail(Failure::no_server, "devhost serve is not running (nothing listens on " + path + ")");
    if (e == EACCES || e == EPERM)
        return fail(Failure::denied, "permission denied on " + path +
                                         ": only root and the members of its group ([host] control-group) may use it");
    return fail(Failure::other, "cannot connect to " + path + ": " + std::strerror(e));
}

bool Client::send(const std::string &method, const nlohmann::json &parameters)
{
    const std::string bytes = encode({{"method", method}, {"parameters", parameters}});
    size_t sent = 0;
    while (sent < bytes.size()) {
        const ssize_t n = ::send(fd_.get(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            // A server that refused us may have closed before we wrote: its
            // reply, if any, says why.
            if (auto reply = receive(1000); reply && failure_ == Failure::denied)
                return false;
            return fail(Failure::other, "devhost serve closed the connection on " + path_);
        }
        sent += static_cast<size_t>(n);
    }
    return true;
}

std::optional<nlohmann::json> Client::receive(int timeout_ms, const volatile std::sig_atomic_t *interrupted)
{
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        if (auto frame = reader_.next()) {
            std::string error;
            auto message = parse_message(*frame, error);
            if (!message) {
                fail(Failure::other, "devhost serve sent a bad reply: " + error);
                return std::nullopt;
            }
            if (message->value("error", "") == errors::permission_denied)
                fail(Failure::denied, "permission denied: " +
                                          message->value("parameters", nlohmann::json::object()).value("message", ""));
            return message;
        }
        if (reader_.too_long()) {
            fail(Failure::other, "devhost serve sent a reply longer than " + std::to_string(max_reply) + " bytes");
            return std::nullopt;
        }
        int wait = -1;
        if (timeout_ms >= 0) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
            if (left <= 0) {
                fail(Failure::other, "devhost serve did not answer within " + std::to_string(timeout_ms / 1000) + " s");
                return std::nullopt;
            }
            wait = static_cast<int>(left);
        }
        if (interrupted && *interrupted) {
            fail(Failure::interrupted, "interrupted");
            return std::nullopt;
        }
        pollfd p{fd_.get(), POLLIN, 0};
        const int rc = ::poll(&p, 1, wait);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0) {
            fail(Failure::other, std::string("poll: ") + std::strerror(errno));
            return std::nullopt;
        }
        if (rc == 0)
            continue;  // the deadline is checked above
        char buf[16384];
        const ssize_t n = ::read(fd_.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fail(Failure::other, "devhost serve closed the connection on " + path_);
            return std::nullopt;
        }
        reader_.feed(buf, static_cast<size_t>(n));
    }
}

}  // namespace devhost::control
