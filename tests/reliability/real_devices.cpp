#include "real_devices.hpp"

#include "device.hpp"
#include "devices.hpp"
#include "loader.hpp"

#include <cerrno>
#include <fcntl.h>
#include <fstream>
#include <stdexcept>
#include <sys/file.h>
#include <sys/ioctl.h>
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

std::string loop_stats(const devhost::PluginRegistry &registry)
{
    return devhost::test::loop_stats(registry.find("loop"));
}

}  // namespace reliability
