#include "scale_config.hpp"

#include <algorithm>

namespace bench {

int ScaleShape::steps_for(int devices) const
{
    // Enough steps that every device is still busy for a while after the
    // peer's gate lets them all go.
    return std::max(min_steps, total / std::max(devices, 1));
}

ScaleShape scale_shape(bool smoke)
{
    ScaleShape s;
    s.sizes = smoke ? std::vector<int>{1, 4} : std::vector<int>{1, 16, 128, 512};
    // At least 200 a device in the full run (20480 / 512 is 40).
    s.total = smoke ? 400 : 20480;
    s.min_steps = smoke ? 20 : 200;
    s.settle = smoke ? "10ms" : "100ms";
    return s;
}

std::string scale_config(const std::vector<std::string> &slaves, int steps, const std::string &records,
                         const std::string &settle)
{
    const std::string message(63, 'r');
    const std::string body =
        "step = request \"" + message + "\\n\" until=\"\\n\" repeat=" + std::to_string(steps) + "\n";
    std::string text = "[host]\nlog-level = warn\noutput = " + records + "\n";
    for (size_t d = 0; d < slaves.size(); d++)
        text += "[device d" + std::to_string(d) + "]\nclass = serial\npath = " + slaves[d] +
                "\nstep = open\nstep = sleep " + settle + "\n" + body + "step = close\n";
    return text;
}

}  // namespace bench
