// Fuzz target: the plugin loader's ELF layout check (host/elf_check.hpp),
// which reads a plugin file's header before the dynamic loader maps it. The
// input is a whole file; the check must never read past what it was given.
#include "elf_check.hpp"

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    using namespace devhost;
    size_t need = elf_bytes_needed(data, size);
    // Given only the bytes it asked for (or all there are), as the loader does.
    size_t have = need && need < size ? need : size;
    auto defect = elf_defect(data, have, size);
    // A file claimed to be longer than the bytes seen must not read more.
    elf_defect(data, have, uint64_t(size) * 2 + 4096);
    if (defect && defect->empty())
        std::abort();
    return 0;
}
