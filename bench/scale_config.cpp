#include "scale_config.hpp"

#include <algorithm>
#include <cerrno>

#include <sys/stat.h>

namespace bench {

namespace fs = std::filesystem;

int ScaleShape::steps_for(int devices) const
{
    // Enough steps that every device is still busy for a while after the
    // peer's gate lets them all go.
    return std::max(min_steps, total / std::max(devices, 1));
}

ScaleShape scale_shape(bool smoke)
{
    ScaleShape s;
    s.sizes = smoke ? std::vector<int>{1, 4} : std::vector<int>{1, 16, 128, 512, 2048};
    // At least 200 a device in the full run (20480 / 512 is 40).
    s.total = smoke ? 400 : 20480;
    s.min_steps = smoke ? 20 : 200;
    s.settle = smoke ? "10ms" : "100ms";
    return s;
}

std::string link_ptys(const fs::path &dir, const std::vector<std::string> &slaves)
{
    const fs::path abs = fs::absolute(dir);
    fs::remove_all(abs);
    fs::create_directories(abs);
    // devhost refuses a device path in a directory others may write: the
    // mode whatever the umask.
    if (::chmod(abs.c_str(), 0755) != 0)
        throw fs::filesystem_error("chmod", abs, std::error_code(errno, std::generic_category()));
    for (size_t d = 0; d < slaves.size(); d++)
        fs::create_symlink(slaves[d], abs / ("tty" + std::to_string(d)));
    return (abs / "tty{n}").string();
}

std::string scale_config(const std::string &paths, int devices, int steps, const std::string &records,
                         const std::string &settle)
{
    const std::string message(63, 'r');
    return "[host]\nlog-level = warn\noutput = " + records + "\n[device d{n}]\ninstances = " +
           std::to_string(devices) + "\nclass = serial\npath = " + paths + "\nstep = open\nstep = sleep " + settle +
           "\nstep = request \"" + message + "\\n\" until=\"\\n\" repeat=" + std::to_string(steps) +
           "\nstep = close\n";
}

}  // namespace bench
