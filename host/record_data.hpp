// How much of a step's data its record carries: `[host] record-data`.
//
//   full     the data as hex and text, at most its first record_data_shown
//            (64 KiB) bytes (records.hpp), as before the key existed
//   head:N   the first N bytes (1 to 65536) as hex and text
//   none     no bytes
//
// With head:N and none a record also holds `sha256`, of all of the data,
// so a reader can still tell what moved. `bytes` is always the full count.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace devhost {

struct RecordData {
    enum class Mode { Full, Head, None };
    Mode mode = Mode::Full;
    size_t head = 0;  // Head: bytes shown

    // How many of `len` bytes a record shows under this setting, before the
    // record's own bound.
    size_t shown(size_t len) const
    {
        return mode == Mode::None ? 0 : mode == Mode::Head && head < len ? head : len;
    }
    bool hashed() const { return mode != Mode::Full; }
};

// The largest N of head:N (records show at most this much: records.hpp).
inline constexpr size_t max_record_data_head = 64 * 1024;

// Parses a `record-data` value; nullopt when it is none of the forms above.
std::optional<RecordData> parse_record_data(const std::string &value);

}  // namespace devhost
