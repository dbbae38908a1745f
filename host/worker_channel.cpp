#include "worker_channel.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace devhost {

namespace {

// A message this long or more goes through a memfd.
constexpr size_t inline_limit = 32 * 1024;

UniqueFd body_in_memfd(const std::string &text)
{
    UniqueFd fd(memfd_create("devhost-message", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd)
        return fd;
    size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return UniqueFd();
        done += static_cast<size_t>(n);
    }
    // Sealed: the reader sees exactly what was written, whatever the writer does next.
    if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0)
        return UniqueFd();
    return fd;
}

bool send_raw(int socket, const std::string &text, const std::vector<int> &fds)
{
    iovec iov{const_cast<char *>(text.data()), text.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<char> control;
    if (!fds.empty()) {
        control.assign(CMSG_SPACE(sizeof(int) * fds.size()), 0);
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    for (;;) {
        ssize_t n = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
        if (n >= 0)
            return static_cast<size_t>(n) == text.size();
        if (errno != EINTR)
            return false;
    }
}

// The text of a message sent through a memfd.
bool read_memfd(int fd, std::string &text, std::string &error)
{
    struct stat st {};
    const int seals = ::fcntl(fd, F_GET_SEALS);
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || seals < 0 || !(seals & F_SEAL_WRITE)) {
        error = "a message's memfd is not a sealed memfd";
        return false;
    }
    if (static_cast<uint64_t>(st.st_size) > max_message_bytes) {
        error = "a message of " + std::to_string(st.st_size) + " bytes, more than the limit";
        return false;
    }
    text.resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::pread(fd, text.data() + done, text.size() - done, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            error = "cannot read a message's memfd";
            return false;
        }
        done += static_cast<size_t>(n);
    }
    return true;
}

}  // namespace

bool send_message(int socket, const nlohmann::json &body, const std::vector<int> &fds)
{
    if (fds.size() + 1 > max_message_fds) {
        errno = E2BIG;
        return false;
    }
    const std::string text = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (text.size() < inline_limit)
        return send_raw(socket, text, fds);
    UniqueFd memfd = body_in_memfd(text);
    if (!memfd)
        return false;
    std::vector<int> with = fds;
    with.push_back(memfd.get());
    return send_raw(socket, "{\"memfd\":true}", with);
}

Received receive_message(int socket, Message &out, int timeout_ms, std::string &error)
{
    pollfd p{socket, POLLIN, 0};
    int ready;
    do
        ready = ::poll(&p, 1, timeout_ms);
    while (ready < 0 && errno == EINTR);
    if (ready == 0)
        return Received::Timeout;
    std::string text(inline_limit, '\0');
    iovec iov{text.data(), text.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_message_fds)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do
        n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return Received::Timeout;
    if (n <= 0)
        return Received::Closed;
    out = Message{};
    for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
                int fd;
                std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                out.fds.emplace_back(fd);
            }
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        error = "a message longer than a datagram may be, or with too many descriptors";
        return Received::Bad;
    }
    text.resize(static_cast<size_t>(n));
    out.body = nlohmann::json::parse(text, nullptr, false);
    if (out.body.is_object() && out.body.contains("memfd")) {
        if (out.fds.empty()) {
            error = "a memfd message without its memfd";
            return Received::Bad;
        }
        UniqueFd memfd = std::move(out.fds.back());
        out.fds.pop_back();
        if (!read_memfd(memfd.get(), text, error))
            return Received::Bad;
        out.body = nlohmann::json::parse(text, nullptr, false);
    }
    if (!out.body.is_object()) {
        error = "a message that is not a JSON object";
        return Received::Bad;
    }
    return Received::Message;
}

void make_channel(UniqueFd &supervisor_end, UniqueFd &worker_end)
{
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0)
        throw std::system_error(errno, std::generic_category(), "socketpair");
    supervisor_end.reset(fds[0]);
    worker_end.reset(fds[1]);
}

}  // namespace devhost
