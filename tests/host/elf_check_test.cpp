// The loader's ELF check on synthetic headers: every refusal with its
// message (a foreign machine, a broken layout), and the files it leaves to
// the dynamic loader.
#include "elf_check.hpp"

#include <catch2/catch.hpp>
#include <elf.h>
#include <link.h>

#include <cstring>
#include <vector>

using namespace devhost;

namespace {

struct Image {
    std::vector<uint8_t> bytes;
    ElfW(Ehdr) &header() { return *reinterpret_cast<ElfW(Ehdr) *>(bytes.data()); }
    ElfW(Phdr) &segment(size_t i)
    {
        return *reinterpret_cast<ElfW(Phdr) *>(bytes.data() + sizeof(ElfW(Ehdr)) + i * sizeof(ElfW(Phdr)));
    }
};

// A native shared object header with two segments that fit in 4096 bytes.
Image good_image()
{
    Image im;
    im.bytes.resize(sizeof(ElfW(Ehdr)) + 2 * sizeof(ElfW(Phdr)));
    auto &h = im.header();
    std::memcpy(h.e_ident, ELFMAG, SELFMAG);
    h.e_ident[EI_CLASS] = sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32;
    h.e_ident[EI_DATA] = ELFDATA2LSB;
    h.e_type = ET_DYN;
    h.e_machine = host_elf_machine();
    h.e_phoff = sizeof(ElfW(Ehdr));
    h.e_phentsize = sizeof(ElfW(Phdr));
    h.e_phnum = 2;
    im.segment(0).p_type = PT_LOAD;
    im.segment(0).p_filesz = 4096;
    im.segment(1).p_type = PT_DYNAMIC;
    im.segment(1).p_offset = 2048;
    im.segment(1).p_filesz = 256;
    return im;
}

std::string defect(Image &im, uint64_t file_size)
{
    return elf_defect(im.bytes.data(), im.bytes.size(), file_size).value_or("(sound)");
}

}  // namespace

TEST_CASE("ELF check: a sound layout passes and each defect is named", "[elf]")
{
    Image im = good_image();
    CHECK(defect(im, 4096) == "(sound)");
    CHECK(elf_bytes_needed(im.bytes.data(), 16) == sizeof(ElfW(Ehdr)));
    CHECK(elf_bytes_needed(im.bytes.data(), im.bytes.size()) == 0);

    CHECK(defect(im, 4000) == "truncated: loadable segment 0 ends at byte 4096 of a 4000-byte file");
    im.segment(0).p_filesz = 100;
    CHECK(defect(im, 2200) == "truncated: dynamic section 1 ends at byte 2304 of a 2200-byte file");
    im.segment(1).p_offset = ~uint64_t(0) - 10;
    CHECK(defect(im, 4096) == "dynamic section 1 has an impossible offset " + std::to_string(~uint64_t(0) - 10));

    im = good_image();
    CHECK(defect(im, 100) == "truncated: the program headers end at byte " +
                                 std::to_string(im.bytes.size()) + " of a 100-byte file");
    im.header().e_type = ET_EXEC;
    CHECK(defect(im, 4096) == "not a shared library (ELF type 2)");
    im = good_image();
    im.header().e_phnum = 0;
    CHECK(defect(im, 4096) == "no program headers");
    im = good_image();
    im.header().e_phentsize = 12;
    CHECK(defect(im, 4096) == "program header size 12, expected " + std::to_string(sizeof(ElfW(Phdr))));
}

TEST_CASE("ELF check: what is not native ELF is left to the dynamic loader", "[elf]")
{
    const char text[] = "This is a text file named like a devhost plugin, and long enough for a header.";
    CHECK_FALSE(elf_defect(reinterpret_cast<const uint8_t *>(text), sizeof text, sizeof text));
    CHECK_FALSE(elf_defect(nullptr, 0, 0));
    Image im = good_image();
    im.header().e_ident[EI_CLASS] = ELFCLASSNONE;
    CHECK_FALSE(elf_defect(im.bytes.data(), im.bytes.size(), 4096));
    CHECK(elf_bytes_needed(im.bytes.data(), im.bytes.size()) == 0);
}

TEST_CASE("ELF check: a library built for another machine is refused, naming both machines", "[elf]")
{
#if defined(__x86_64__)
    CHECK(host_elf_machine() == EM_X86_64);
    const std::string host = "x86-64 (e_machine 62)";
#elif defined(__aarch64__)
    CHECK(host_elf_machine() == EM_AARCH64);
    const std::string host = "AArch64 (e_machine 183)";
#else
    const std::string host = elf_machine_name(host_elf_machine());
#endif
    REQUIRE(host_elf_machine() != 0);
    const uint16_t foreign = host_elf_machine() == EM_ARM ? EM_X86_64 : EM_ARM;
    Image im = good_image();
    im.header().e_machine = foreign;
    CHECK(defect(im, 4096) == "built for " + elf_machine_name(foreign) + ", this host is " + host);
    CHECK(elf_machine_name(EM_ARM) == "ARM (e_machine 40)");
    CHECK(elf_machine_name(EM_RISCV) == "RISC-V (e_machine 243)");
    CHECK(elf_machine_name(0x1234) == "e_machine 4660");

    // The machine is read in the file's own byte order and class: a 32-bit
    // or big-endian library for another machine is named too, not left to
    // the dynamic loader's "wrong ELF class".
    im = good_image();
    im.header().e_ident[EI_CLASS] = ELFCLASS32;
    im.header().e_machine = foreign;
    CHECK(defect(im, 4096) == "built for " + elf_machine_name(foreign) + ", this host is " + host);
    im = good_image();
    im.header().e_ident[EI_DATA] = ELFDATA2MSB;
    im.bytes[18] = 0;
    im.bytes[19] = EM_PPC64;
    CHECK(defect(im, 4096) == "built for PowerPC64 (e_machine 21), this host is " + host);
    im = good_image();
    im.header().e_machine = EM_NONE;
    CHECK(defect(im, 4096) == "built for e_machine 0, this host is " + host);
    // Too short to hold e_machine: left to the dynamic loader.
    CHECK_FALSE(elf_defect(im.bytes.data(), 19, 19));
}
