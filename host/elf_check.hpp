// Checks a plugin file's ELF layout before the dynamic loader maps it.
//
// ld.so maps each loadable segment of a shared library straight from the
// file; a segment that reaches past the end of a truncated file maps pages
// with nothing behind them, and the loader's first touch of one kills the
// process with SIGBUS. So the host reads the ELF header and program headers
// itself first and refuses a file whose segments do not fit in it. Files
// that are not native ELF at all are left to the dynamic loader, whose own
// messages ("invalid ELF header", "wrong ELF class") say why.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace devhost {

// How many leading bytes of a file elf_defect needs to see: the ELF header
// and, once that is read, its program header table. Returns 0 when `head`
// (the first head_size bytes) is not a native ELF header, or when it already
// holds enough.
size_t elf_bytes_needed(const uint8_t *head, size_t head_size);

// What is wrong with the layout, in one line, or nullopt when it is sound
// or not native ELF (the dynamic loader speaks for those). `head` holds the
// file's first head_size bytes (at least elf_bytes_needed of them, or the
// whole file), and file_size is the file's size. A pure function.
std::optional<std::string> elf_defect(const uint8_t *head, size_t head_size, uint64_t file_size);

}  // namespace devhost
