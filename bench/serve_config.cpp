#include "serve_config.hpp"

namespace bench {

ServeShape serve_shape(bool smoke)
{
    ServeShape s;
    s.devices = smoke ? 4 : 128;
    s.seconds = smoke ? 1 : 10;
    s.period = "10ms";
    s.period_seconds = 0.010;
    return s;
}

std::string serve_config(const std::vector<std::string> &slaves, const std::string &period,
                         const std::string &records)
{
    const std::string body = "body = request \"" + std::string(63, 's') + "\\n\" until=\"\\n\"\n";
    std::string text = "[host]\nlog-level = warn\noutput = " + records + "\n";
    for (size_t d = 0; d < slaves.size(); d++)
        text += "[device d" + std::to_string(d) + "]\nclass = serial\npath = " + slaves[d] + "\nsetup = open\n" +
                body + "teardown = close\nrun = every " + period + "\n";
    return text;
}

}  // namespace bench
