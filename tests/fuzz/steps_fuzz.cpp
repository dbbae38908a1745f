// Fuzz target: the step language and the data/duration parsers under it.
#include "steps.hpp"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    std::string error;
    std::string line(reinterpret_cast<const char *>(data), size);
    auto step = devhost::parse_step(line, error);
    if (step)
        (void)devhost::text::to_printable(step->data.data(), step->data.size());
    return 0;
}
