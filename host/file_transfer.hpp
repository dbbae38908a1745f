// Bulk data through files: the steps `write from=FILE [offset=N]` and
// `read N to=FILE` / `read exactly=N to=FILE` stream between a file and the
// device in chunks of file_chunk_bytes, so the host holds at most one chunk
// (and the record's first bytes) whatever the size.
//
// - The step's timeout= is the deadline of the whole stream: each chunk's
//   transfer gets what is left of it, and a stream whose deadline passes
//   between chunks ends DEVHOST_E_TIMEOUT. A cancel (a stop signal) ends it
//   DEVHOST_E_CANCELLED at the next chunk, or inside the plugin's.
// - Progress goes to the log at most once a second.
// - The record: `bytes` moved, `duration_ms`, the first bytes as hex and
//   text (as much as `[host] record-data` shows) and `sha256` of every byte
//   moved (read from the device and saved in the file, or taken by the
//   device from the file). A failed stream records what it moved before the
//   failure, and the file keeps what was read.
// - read N to= reads up to N bytes: a chunk that comes back short ends it
//   (the device had no more), like a plain `read N`; so does a chunk the
//   plugin refuses with DEVHOST_E_INVALID, having read nothing, right after
//   a full chunk (a raw device's "offset at or past the end": its end fell on
//   a chunk boundary). read exactly=N fails like a plain `read exactly=N`
//   when the device ends first, with the bytes read before.
// - to=FILE is opened as output_file.hpp says (the records file's rules:
//   created 0600 whatever the umask, no link followed or planted file taken
//   in a directory others can write), must be a regular file, and is
//   truncated: afterwards it holds exactly what was read. from=FILE is
//   opened by the same walk (output::open_read) and must be a regular file.
#pragma once

#include "device.hpp"
#include "records.hpp"
#include "steps.hpp"

#include <cstdint>
#include <vector>

namespace devhost {

// The most a file transfer moves in one call to the plugin.
inline constexpr size_t file_chunk_bytes = 1024 * 1024;

// The mode a to=FILE is created with: a device's data (a disk's blocks) is
// its owner's to share.
inline constexpr unsigned to_file_mode = 0600;

// Runs a step with from= or to= on `device`, its deadline `timeout_ms`
// from now (-1: none); fills rec.bytes, rec.sha256 and rec.data (pointing
// into `head`, which keeps the first bytes moved until the record is
// written).
Outcome file_transfer(Device &device, const Step &step, int32_t timeout_ms, std::vector<uint8_t> &head,
                      Record &rec);

}  // namespace devhost
