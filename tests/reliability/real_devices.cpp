#include "real_devices.hpp"

#include "device.hpp"
#include "loader.hpp"

#include <cerrno>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <pty.h>
#include <stdexcept>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

namespace reliability {

size_t open_fds()
{
    size_t n = 0;
    for ([[maybe_unused]] const auto &e : fs::directory_iterator("/proc/self/fd"))
        n++;
    return n;
}

size_t rss_bytes()
{
    std::ifstream statm("/proc/self/statm");
    size_t pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

void make_image(const fs::path &file, size_t size)
{
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << std::string(size, '\0');
    if (!out)
        throw std::runtime_error("cannot write " + file.string());
}

bool exclusive_lock_free(const fs::path &path)
{
    int fd = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool free = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (free)
        ::flock(fd, LOCK_UN);
    int excl = 0;
    if (free && ::isatty(fd) && ::ioctl(fd, TIOCGEXCL, &excl) == 0 && excl != 0)
        free = false;
    ::close(fd);
    return free;
}

Pty::Pty()
{
    char name[128];
    if (openpty(&master, &slave, name, nullptr, nullptr) != 0)
        throw std::runtime_error("openpty failed");
    fcntl(master, F_SETFD, FD_CLOEXEC);
    fcntl(slave, F_SETFD, FD_CLOEXEC);
    termios t{};
    tcgetattr(slave, &t);
    cfmakeraw(&t);
    tcsetattr(slave, TCSANOW, &t);
    path = name;
}

Pty::~Pty()
{
    ::close(master);
    ::close(slave);
}

PtyEcho::PtyEcho(size_t count)
{
    for (size_t i = 0; i < count; i++)
        ptys_.push_back(std::make_unique<Pty>());
    stop_fd_ = eventfd(0, EFD_CLOEXEC);
    if (stop_fd_ < 0)
        throw std::runtime_error("eventfd failed");
    thread_ = std::thread([this] { run(); });
}

PtyEcho::~PtyEcho()
{
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_fd_, &one, sizeof one);
    thread_.join();
    ::close(stop_fd_);
}

void PtyEcho::run()
{
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
            for (ssize_t done = 0; n > 0 && done < n;) {
                ssize_t w = ::write(fds[i].fd, buf + done, size_t(n - done));
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0)
                    break;
                done += w;
            }
        }
    }
}

std::string loop_stats(const devhost::PluginRegistry &registry)
{
    devhost::Device probe(registry.find("loop"), "probe");
    if (!probe.open({.path = "loop:probe"}).ok())
        throw std::runtime_error("cannot open a loop probe device");
    uint8_t buf[256];
    devhost_transfer x{};
    x.op = DEVHOST_OP_CONTROL;
    x.control_code = 1;  // stats
    x.in = buf;
    x.in_capacity = sizeof buf;
    if (!probe.transfer(x).ok())
        throw std::runtime_error("the loop plugin's stats control failed");
    return std::string(reinterpret_cast<char *>(buf), x.in_len);
}

}  // namespace reliability
