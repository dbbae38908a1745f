// Step records: one JSON object per line for every step of every pipeline,
// written with write(2) and complete before the next step starts, so a crash
// or kill of the host loses nothing already recorded.
//
// Fields: time (UTC, ISO 8601 with microseconds), device, seq (step number in
// its pipeline, from 1), step (as written), line, status (DEVHOST_OK ...),
// code, duration_ms, bytes, hex, text, and when present message, errno,
// message_id, info {key: value}, unwind (true for steps the host added to
// release what a pipeline held).
#pragma once

#include "device.hpp"

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

namespace devhost {

struct Record {
    std::string device;
    int seq = 0;
    std::string step;
    int line = 0;
    devhost_status status = DEVHOST_OK;
    std::string message;
    int os_errno = 0;
    double duration_ms = 0;
    size_t bytes = 0;
    const uint8_t *data = nullptr;  // the bytes moved (sent or received)
    size_t data_len = 0;
    std::optional<uint64_t> message_id;
    const InfoList *info = nullptr;
    bool unwind = false;
};

// JSON string literal for arbitrary bytes (invalid UTF-8 becomes \u00XX).
std::string json_string(std::string_view s);

class RecordWriter {
public:
    // "-" is stdout; anything else a file opened for appending (created 0644).
    // Throws std::runtime_error naming the file when it cannot be opened.
    explicit RecordWriter(const std::string &target);
    ~RecordWriter();
    RecordWriter(const RecordWriter &) = delete;
    RecordWriter &operator=(const RecordWriter &) = delete;

    // Thread-safe. Returns false (and logs once) when the write failed.
    bool write(const Record &record);

    static std::string format(const Record &record);

    // Whether a write failed: some records are missing.
    bool failed()
    {
        std::lock_guard lock(mutex_);
        return failed_;
    }

private:
    std::mutex mutex_;
    int fd_ = -1;
    bool owns_fd_ = false;
    bool failed_ = false;
};

}  // namespace devhost
