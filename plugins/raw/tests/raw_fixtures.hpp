// Fixtures for the raw plugin's tests: pattern image files and a device
// opened through the host's Device API. Loop block devices, mounts and
// transfers are the shared test library's (tests/support/devices.hpp).
#pragma once

#include "device.hpp"
#include "devhost_test.hpp"
#include "devices.hpp"
#include "loader.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace raw_test {

namespace fs = std::filesystem;
using devhost::test::TempDir;

using devhost::test::find_tool;
using devhost::test::info_value;
using devhost::test::LoopDevice;
using devhost::test::Mount;
using devhost::test::MountedExt4;

// Byte i of the test pattern (not periodic in 256, so an offset mistake
// shows).
uint8_t pattern_byte(uint64_t i);
std::vector<uint8_t> pattern(uint64_t offset, size_t len);

// Writes an image of `size` bytes holding the pattern.
void make_image(const fs::path &file, uint64_t size);
// Writes an MBR at the start of `image` holding one Linux partition (type
// 0x83) of `sectors` 512-byte sectors from `first_lba`.
void write_mbr(const fs::path &image, uint32_t first_lba, uint32_t sectors);

// A disk to put a filesystem on: fs_size bytes, enough for a small ext4.
// make_partitioned_image writes one with an MBR holding one Linux partition
// from LBA 2048 to the end; ensure_partition makes that partition appear on
// a partition-scanned loop device over it (from the MBR if the kernel parsed
// it, else through BLKPG: addpart) and returns why not, or empty.
inline constexpr uint64_t fs_size = 8 * 1024 * 1024;
void make_partitioned_image(const fs::path &image);
std::string ensure_partition(const LoopDevice &loop);
std::vector<uint8_t> read_bytes(const fs::path &file, uint64_t offset, size_t len);

// The raw plugin, loaded once per test.
std::shared_ptr<const devhost::Plugin> raw_plugin();

// A raw device opened with `options`; outcome() says how the open went.
struct Opened {
    std::unique_ptr<devhost::Device> device;
    devhost::Outcome outcome;
};
Opened open_raw(const std::string &path, const std::map<std::string, std::string> &options = {},
                bool inherit = false);

// Transfers through the Device API (devhost::test::transfer), the bytes as
// a vector to compare with pattern().
struct Result {
    devhost::Outcome outcome;
    std::vector<uint8_t> data;  // bytes read, or control output
    size_t done = 0;            // bytes written (write) or read
};
Result read_at(devhost::Device &dev, std::optional<uint64_t> offset, size_t len, bool exact = true);
Result write_at(devhost::Device &dev, std::optional<uint64_t> offset, const std::vector<uint8_t> &data);
Result control(devhost::Device &dev, const std::string &name, size_t capacity = 64,
               const std::vector<uint8_t> &input = {});
Result control_code(devhost::Device &dev, uint32_t code, size_t capacity = 64);

std::string text(const std::vector<uint8_t> &bytes);
bool has_info(const devhost::InfoList &info, const std::string &key);

}  // namespace raw_test

// Reports a test as skipped, with its reason, and leaves it (DEVHOST_SKIP:
// CTest shows it as skipped).
#define RAW_SKIP(reason) DEVHOST_SKIP(reason)
