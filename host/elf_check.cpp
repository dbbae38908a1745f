#include "elf_check.hpp"

#include <cstring>
#include <elf.h>
#include <link.h>  // ElfW: the host's own ELF class

namespace devhost {

namespace {

using Ehdr = ElfW(Ehdr);
using Phdr = ElfW(Phdr);

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr unsigned char native_data = ELFDATA2LSB;
#else
constexpr unsigned char native_data = ELFDATA2MSB;
#endif
#if __SIZEOF_POINTER__ == 8
constexpr unsigned char native_class = ELFCLASS64;
#else
constexpr unsigned char native_class = ELFCLASS32;
#endif

// The header, if `head` starts with a native one.
bool native_header(const uint8_t *head, size_t head_size, Ehdr &h)
{
    if (!head || head_size < sizeof h)
        return false;
    std::memcpy(&h, head, sizeof h);
    return std::memcmp(h.e_ident, ELFMAG, SELFMAG) == 0 && h.e_ident[EI_CLASS] == native_class &&
           h.e_ident[EI_DATA] == native_data;
}

}  // namespace

size_t elf_bytes_needed(const uint8_t *head, size_t head_size)
{
    Ehdr h;
    if (!native_header(head, head_size, h))
        return head_size < sizeof(Ehdr) ? sizeof(Ehdr) : 0;
    const uint64_t end = uint64_t(h.e_phoff) + uint64_t(h.e_phnum) * h.e_phentsize;
    // A table past any sane size is for elf_defect to refuse, not to read.
    if (h.e_phoff > (1u << 24) || end > (1u << 24) || end <= head_size)
        return 0;
    return static_cast<size_t>(end);
}

std::optional<std::string> elf_defect(const uint8_t *head, size_t head_size, uint64_t file_size)
{
    Ehdr h;
    if (!native_header(head, head_size, h))
        return std::nullopt;
    if (h.e_type != ET_DYN)
        return "not a shared library (ELF type " + std::to_string(h.e_type) + ")";
    if (h.e_phnum == 0)
        return std::string("no program headers");
    if (h.e_phentsize != sizeof(Phdr))
        return "program header size " + std::to_string(h.e_phentsize) + ", expected " + std::to_string(sizeof(Phdr));
    const uint64_t table_end = uint64_t(h.e_phoff) + uint64_t(h.e_phnum) * sizeof(Phdr);
    if (h.e_phoff > file_size || table_end > file_size)
        return "truncated: the program headers end at byte " + std::to_string(table_end) + " of a " +
               std::to_string(file_size) + "-byte file";
    if (table_end > head_size)
        return std::string("program headers not read");  // the caller read too little
    for (unsigned i = 0; i < h.e_phnum; i++) {
        Phdr p;
        std::memcpy(&p, head + h.e_phoff + i * sizeof(Phdr), sizeof p);
        if (p.p_type != PT_LOAD && p.p_type != PT_DYNAMIC)
            continue;
        const std::string what =
            std::string(p.p_type == PT_LOAD ? "loadable segment " : "dynamic section ") + std::to_string(i);
        const uint64_t end = uint64_t(p.p_offset) + uint64_t(p.p_filesz);
        if (end < p.p_offset)
            return what + " has an impossible offset " + std::to_string(p.p_offset);
        if (end > file_size)
            return "truncated: " + what + " ends at byte " + std::to_string(end) + " of a " +
                   std::to_string(file_size) + "-byte file";
    }
    return std::nullopt;
}

}  // namespace devhost
