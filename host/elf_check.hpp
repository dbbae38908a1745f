// Checks a plugin file's ELF layout before the dynamic loader maps it.
//
// ld.so maps each loadable segment of a shared library straight from the
// file; a segment that reaches past the end of a truncated file maps pages
// with nothing behind them, and the loader's first touch of one kills the
// process with SIGBUS. So the host reads the ELF header and program headers
// itself first and refuses a file whose segments do not fit in it. It also
// refuses ELF built for another machine, which the dynamic loader would
// pass over with only "No such file or directory". Files that are not ELF
// at all, or ELF of the host's machine in another class or byte order, are
// left to the dynamic loader, whose own messages ("invalid ELF header",
// "wrong ELF class") say why.
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

// The host's ELF machine (e_machine: EM_X86_64, EM_AARCH64, ...), or 0 on
// an architecture this file does not know (then no machine is refused).
uint16_t host_elf_machine();

// A machine for messages: "ARM (e_machine 40)", or "e_machine N" for one
// without a name here.
std::string elf_machine_name(uint16_t machine);

// What is wrong with the file (its machine, or its layout), in one line,
// or nullopt when it is sound or, its machine aside, not native ELF (the
// dynamic loader speaks for those). `head` holds the file's first head_size
// bytes (at least elf_bytes_needed of them, or the whole file), and
// file_size is the file's size. A pure function.
std::optional<std::string> elf_defect(const uint8_t *head, size_t head_size, uint64_t file_size);

}  // namespace devhost
