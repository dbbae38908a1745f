// Fuzz target: the serial-script peer's script parser (vdev/script). It must
// accept or refuse with std::invalid_argument (one line naming the file),
// never crash, hang or throw anything else; what it accepts must be playable.
#include "serial_script_parse.hpp"

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    using devhost::vdev::ScriptStep;
    const std::string text(reinterpret_cast<const char *>(data), size);
    const std::string file = "fuzz.txt";
    std::vector<ScriptStep> steps;
    try {
        steps = devhost::vdev::parse_serial_script(text, file);
    } catch (const std::invalid_argument &e) {
        const std::string message = e.what();
        // One line that names the script.
        if (message.find('\n') != std::string::npos)
            std::abort();
        if (message.rfind(file + ":", 0) != 0 && message.rfind("--script=" + file + ": ", 0) != 0)
            std::abort();
        return 0;
    }
    if (steps.empty())
        std::abort();
    for (const ScriptStep &s : steps) {
        switch (s.kind) {
        case ScriptStep::expect:
            if (s.data.empty())
                std::abort();
            [[fallthrough]];
        case ScriptStep::send:
            if (s.ms != 0 || s.data.size() > size)
                std::abort();
            break;
        case ScriptStep::sleep:
            if (s.ms < 0 || s.ms > devhost::vdev::max_script_sleep_ms || !s.data.empty())
                std::abort();
            break;
        default:
            std::abort();
        }
    }
    return 0;
}
