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

// The host's machine, from the compiler's target macros.
constexpr uint16_t compiled_machine =
#if defined(__x86_64__)
    EM_X86_64;
#elif defined(__i386__)
    EM_386;
#elif defined(__aarch64__)
    EM_AARCH64;
#elif defined(__arm__)
    EM_ARM;
#elif defined(__riscv)
    EM_RISCV;
#elif defined(__powerpc64__)
    EM_PPC64;
#elif defined(__powerpc__)
    EM_PPC;
#elif defined(__s390__)
    EM_S390;
#elif defined(__mips__)
    EM_MIPS;
#elif defined(__loongarch__)
    258;  // EM_LOONGARCH, newer than some elf.h
#else
    0;  // unknown: no machine is refused
#endif

// e_machine sits at byte 18 in both ELF classes, in the file's byte order.
// Nothing when `head` is not ELF or too short to say.
std::optional<uint16_t> file_machine(const uint8_t *head, size_t head_size)
{
    if (!head || head_size < 20 || std::memcmp(head, ELFMAG, SELFMAG) != 0)
        return std::nullopt;
    if (head[EI_DATA] == ELFDATA2LSB)
        return static_cast<uint16_t>(head[18] | head[19] << 8);
    if (head[EI_DATA] == ELFDATA2MSB)
        return static_cast<uint16_t>(head[18] << 8 | head[19]);
    return std::nullopt;
}

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

uint16_t host_elf_machine() { return compiled_machine; }

std::string elf_machine_name(uint16_t machine)
{
    static const struct {
        uint16_t machine;
        const char *name;
    } names[] = {
        {EM_386, "x86"},         {EM_68K, "m68k"},        {EM_MIPS, "MIPS"},      {EM_PPC, "PowerPC"},
        {EM_PPC64, "PowerPC64"}, {EM_S390, "S/390"},      {EM_ARM, "ARM"},        {EM_SPARCV9, "SPARC V9"},
        {EM_IA_64, "IA-64"},     {EM_X86_64, "x86-64"},   {EM_AARCH64, "AArch64"}, {EM_RISCV, "RISC-V"},
        {258, "LoongArch"},
    };
    const std::string number = "e_machine " + std::to_string(machine);
    for (const auto &n : names)
        if (n.machine == machine)
            return std::string(n.name) + " (" + number + ")";
    return number;
}

std::optional<std::string> elf_defect(const uint8_t *head, size_t head_size, uint64_t file_size)
{
    const auto machine = file_machine(head, head_size);
    if (machine && compiled_machine && *machine != compiled_machine)
        return "built for " + elf_machine_name(*machine) + ", this host is " + elf_machine_name(compiled_machine);
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
