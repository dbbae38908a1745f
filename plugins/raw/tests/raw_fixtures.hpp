// Fixtures for the raw plugin's tests: image files, loop block devices that
// are detached on every exit path, mounts that are undone, and a device
// opened through the host's Device API.
#pragma once

#include "device.hpp"
#include "devhost_test.hpp"
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

// The first of `names` found in the usual sbin/bin directories, or empty.
fs::path find_tool(const std::string &name);

// Byte i of the test pattern (not periodic in 256, so an offset mistake
// shows).
uint8_t pattern_byte(uint64_t i);
std::vector<uint8_t> pattern(uint64_t offset, size_t len);

// Writes an image of `size` bytes holding the pattern.
void make_image(const fs::path &file, uint64_t size);
std::vector<uint8_t> read_bytes(const fs::path &file, uint64_t offset, size_t len);

// A loop block device on `image`, detached in the destructor (also when the
// test failed). available() is false with reason() when it could not be set
// up; tests then report skipped with that reason.
class LoopDevice {
public:
    explicit LoopDevice(const fs::path &image, bool read_only = false, bool partscan = false);
    ~LoopDevice();
    LoopDevice(const LoopDevice &) = delete;
    LoopDevice &operator=(const LoopDevice &) = delete;
    bool available() const { return !path_.empty(); }
    const std::string &reason() const { return reason_; }
    const std::string &path() const { return path_; }
    // Runs losetup with the arguments; returns its exit code.
    int losetup(const std::vector<std::string> &args) const;
    // Detaches the device now (losetup -d; Linux defers it while the device
    // is open) and forgets it, so the destructor never detaches its number
    // again: by then the kernel may have given it to another test's image.
    // Returns losetup's exit code.
    int detach();

private:
    std::string path_;
    std::string reason_;
};

// Filesystems to mount: an image of fs_size bytes holds a small ext4, or
// (make_partitioned_image) an MBR with one Linux partition from LBA 2048 to
// the end, which ensure_partition makes appear on a partition-scanned loop
// device over it (from the MBR if the kernel parsed it, else through BLKPG:
// addpart). mkfs_unavailable says why ext4 cannot be made here, or is
// empty; mkfs_ext4 makes one on `target` (an image file or a block device).
inline constexpr uint64_t fs_size = 8 * 1024 * 1024;
// Writes sector 0 of `image`: an MBR with one Linux (0x83) partition of
// `sectors` sectors from `first_lba`.
void write_mbr(const fs::path &image, uint32_t first_lba, uint32_t sectors);
void make_partitioned_image(const fs::path &image);
std::string ensure_partition(const LoopDevice &loop);  // why not, or empty
std::string mkfs_unavailable();
bool mkfs_ext4(const std::string &target);

// A mount of `device` on `dir`, unmounted in the destructor.
class Mount {
public:
    Mount(const std::string &device, const fs::path &dir, const std::string &fstype);
    ~Mount();
    Mount(const Mount &) = delete;
    Mount &operator=(const Mount &) = delete;
    bool mounted() const { return mounted_; }
    const std::string &reason() const { return reason_; }

private:
    fs::path dir_;
    bool mounted_ = false;
    std::string reason_;
};

// The raw plugin, loaded once per test.
std::shared_ptr<const devhost::Plugin> raw_plugin();

// A raw device opened with `options`; outcome() says how the open went.
struct Opened {
    std::unique_ptr<devhost::Device> device;
    devhost::Outcome outcome;
};
Opened open_raw(const std::string &path, const std::map<std::string, std::string> &options = {},
                bool inherit = false);

// Transfers through the Device API.
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
std::string info_value(const devhost::InfoList &info, const std::string &key);
bool has_info(const devhost::InfoList &info, const std::string &key);

}  // namespace raw_test

// Reports a test as skipped, with its reason, and leaves it (DEVHOST_SKIP:
// CTest shows it as skipped).
#define RAW_SKIP(reason) DEVHOST_SKIP(reason)
