// Fuzz target: device-name mapping (\\.\ names, \Port names, [names]).
#include "names.hpp"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    std::string input(reinterpret_cast<const char *>(data), size);
    // The first line is a [names] override "KEY=VALUE", the rest the name.
    devhost::NameTable table;
    table.sys_block = "/nonexistent";
    auto nl = input.find('\n');
    if (nl != std::string::npos) {
        std::string first = input.substr(0, nl);
        auto eq = first.find('=');
        if (eq != std::string::npos)
            table.overrides.emplace_back(first.substr(0, eq), first.substr(eq + 1));
        input = input.substr(nl + 1);
    }
    std::string error;
    (void)devhost::resolve_device_name(input, table, error);
    return 0;
}
