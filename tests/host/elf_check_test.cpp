// The loader's ELF layout check on synthetic headers: every refusal with its
// message, and the files it leaves to the dynamic loader.
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
