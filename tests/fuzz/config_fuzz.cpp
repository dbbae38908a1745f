// Fuzz target: the INI config parser (the host's line scan, its one parse).
#include "config.hpp"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    std::vector<devhost::Diagnostic> diags;
    devhost::parse_config(std::string(reinterpret_cast<const char *>(data), size), "fuzz.ini", diags);
    for (const auto &d : diags)
        (void)d.str();
    return 0;
}
