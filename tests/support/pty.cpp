// Ptys for the tests and the bench (devices.hpp): made one way, closed on
// every path, relayed by a thread that stops on an eventfd.
#include "devices.hpp"

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <stdexcept>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

namespace devhost::test {

namespace {

[[noreturn]] void fail(const std::string &what)
{
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

}  // namespace

bool write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = ::write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            pollfd p{fd, POLLOUT, 0};
            ::poll(&p, 1, 5000);
            continue;
        }
        if (n <= 0)
            return false;
        data += n;
        len -= size_t(n);
    }
    return true;
}

int open_pty_master(std::string &slave_path)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0)
        fail("posix_openpt");
    char name[128];
    if (grantpt(master) != 0 || unlockpt(master) != 0 || ptsname_r(master, name, sizeof name) != 0) {
        int e = errno;
        ::close(master);
        errno = e;
        fail("setting up a pty");
    }
    slave_path = name;
    return master;
}

Pty::Pty(PtyMode mode)
{
    master = open_pty_master(path);
    slave = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) {
        close_master();
        fail("opening " + path);
    }
    if (mode == PtyMode::raw) {
        termios t{};
        tcgetattr(slave, &t);
        cfmakeraw(&t);
        tcsetattr(slave, TCSANOW, &t);
    }
}

Pty::~Pty()
{
    close_master();
    close_slave();
}

void Pty::close_master()
{
    if (master >= 0)
        ::close(master);
    master = -1;
}

void Pty::close_slave()
{
    if (slave >= 0)
        ::close(slave);
    slave = -1;
}

void Pty::send(const std::string &bytes) const
{
    if (!write_all(master, bytes.data(), bytes.size()))
        fail("writing to the pty master of " + path);
}

std::string Pty::receive(size_t n, int ms) const
{
    std::string got;
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (got.size() < n) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            break;
        pollfd p = {master, POLLIN, 0};
        if (::poll(&p, 1, int(left.count())) <= 0)
            break;
        char buf[4096];
        ssize_t r = ::read(master, buf, sizeof buf);
        if (r <= 0)
            break;
        got.append(buf, size_t(r));
    }
    return got;
}

int Pty::queued() const
{
    int n = -1;
    if (slave < 0 || ioctl(slave, FIONREAD, &n) != 0)
        return -1;
    return n;
}

bool Pty::wait_queued(int n, int ms) const
{
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (queued() != n) {
        if (std::chrono::steady_clock::now() > until)
            return false;
        ::usleep(1000);
    }
    return true;
}

PtyRelay::PtyRelay(size_t count, Wiring wiring) : wiring_(wiring)
{
    if (wiring == Wiring::null_modem && count != 2)
        throw std::invalid_argument("a null-modem relay joins exactly two ptys");
    for (size_t i = 0; i < count; i++)
        ptys_.push_back(std::make_unique<Pty>(PtyMode::raw));
    stop_fd_ = eventfd(0, EFD_CLOEXEC);
    if (stop_fd_ < 0)
        fail("eventfd");
    thread_ = std::thread([this] { run(); });
    while (tid_.load() == 0)  // its id is known once the constructor returns
        std::this_thread::yield();
}

PtyRelay::~PtyRelay()
{
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_fd_, &one, sizeof one);
    thread_.join();
    ::close(stop_fd_);
}

size_t PtyRelay::target(size_t from) const
{
    return wiring_ == Wiring::echo ? from : 1 - from;
}

void PtyRelay::run()
{
    tid_ = static_cast<pid_t>(::gettid());
    std::vector<pollfd> fds;
    for (const auto &p : ptys_)
        fds.push_back({p->master, POLLIN, 0});
    fds.push_back({stop_fd_, POLLIN, 0});
    for (;;) {
        if (::poll(fds.data(), fds.size(), -1) < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        if (fds.back().revents)
            return;
        for (size_t i = 0; i + 1 < fds.size(); i++) {
            if (!(fds[i].revents & POLLIN))
                continue;
            char buf[4096];
            ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
            if (n > 0)
                write_all(ptys_[target(i)]->master, buf, size_t(n));
        }
    }
}

}  // namespace devhost::test
