// Step records: one JSON object per line for every step of every pipeline,
// each written with one write(2) and complete before the next step starts, so
// a crash or kill of the host loses nothing already recorded.
//
// Fields: time (UTC, ISO 8601 with microseconds), device, seq (step number in
// its pipeline, from 1, each repetition of a repeat= step counted), step (as
// written), line, repetition (1..N, on a step with repeat=N > 1), status
// (DEVHOST_OK ...),
// code, duration_ms, bytes, hex, text, and when present message, errno,
// message_id, info {key: value}, generation and phase (devhost serve),
// unwind (true for steps the host added to
// release what a pipeline held), summarised (the fields cut short to keep the
// record under max_record_bytes, whatever the data: hex and text then show
// the first record_data_shown bytes, `bytes` is still the full count), and
// sha256 (of all the data: with `[host] record-data` head:N or none, see
// record_data.hpp, and on file transfers, whose bytes a record cannot hold).
#pragma once

#include "device.hpp"
#include "record_data.hpp"

#include <devhost/unique_fd.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <string>

namespace devhost {

struct Record {
    std::string device;
    int seq = 0;
    std::string step;
    int line = 0;
    uint32_t repetition = 0;  // of a step with repeat=N > 1: 1..N; 0 otherwise
    devhost_status status = DEVHOST_OK;
    std::string message;
    int os_errno = 0;
    double duration_ms = 0;
    size_t bytes = 0;
    const uint8_t *data = nullptr;  // the bytes moved (sent or received)
    size_t data_len = 0;
    // SHA-256 of all the bytes moved, when `data` holds only their start
    // (a file transfer): always shown. Otherwise the record hashes `data`
    // itself when its RecordData says so.
    std::string sha256;
    std::optional<uint64_t> message_id;
    const InfoList *info = nullptr;
    bool unwind = false;
    // devhost serve: the device's setup count (1 for the first setup, +1 at
    // each setup again) and the phase the step ran in (setup, body,
    // teardown); 0 and null in devhost run, and then not written.
    int generation = 0;
    const char *phase = nullptr;
};

// No record is longer than this, whatever a step moved or a plugin said.
inline constexpr size_t max_record_bytes = 1024 * 1024;
// How many of a step's bytes a record shows (as hex and as text) at most.
inline constexpr size_t record_data_shown = 64 * 1024;
static_assert(max_record_data_head == record_data_shown, "head:N shows at most what a record can");

// JSON string literal for arbitrary bytes (invalid UTF-8 becomes \u00XX).
std::string json_string(std::string_view s);

class RecordWriter {
public:
    // "-" is stdout; anything else a file opened for appending as
    // output_file.hpp says (created 0640 whatever the umask; a FIFO with no
    // reader refused). A file that does not end in a newline (a record an
    // earlier run could not finish) gets one first. Throws
    // std::runtime_error naming the file when it cannot be opened.
    // `data`: how much of each step's data a record carries.
    explicit RecordWriter(const std::string &target, RecordData data = {});
    // Over a descriptor open already (a worker's, handed by the supervisor:
    // the same open file), every write under `shared_lock` (the watch
    // table's records lock) besides this object's own.
    RecordWriter(UniqueFd fd, RecordData data, pthread_mutex_t *shared_lock);
    ~RecordWriter();
    RecordWriter(const RecordWriter &) = delete;
    RecordWriter &operator=(const RecordWriter &) = delete;

    // Thread-safe. Writes the record with one write(2); waits for a slow
    // reader (a pipe or FIFO) as long as it takes, until stop_waiting().
    // Returns false (and logs once) when the record could not be written in
    // full; from then on nothing more is written, so the records end with
    // whole lines.
    bool write(const Record &record);

    // The record's line, at most max_record_bytes long.
    static std::string format(const Record &record, const RecordData &data = {});

    // A write waiting for the reader gives up at `give_up_at`, and later
    // ones do not wait past it. Thread-safe; meant for a stop signal.
    void stop_waiting(std::chrono::steady_clock::time_point give_up_at);

    // The descriptor records go to (for a worker to write to as well).
    int fd() const { return fd_; }
    // From now on, every write also holds `lock` (watch_table.hpp); with a
    // `patience` the wait for it is bounded (the supervisor's).
    void share_lock(pthread_mutex_t *lock, int64_t patience_ms)
    {
        shared_lock_ = lock;
        shared_patience_ms_ = patience_ms;
    }

    // Whether a write failed: some records are missing.
    bool failed()
    {
        std::lock_guard lock(mutex_);
        return failed_;
    }

private:
    void open_file(const std::string &target);
    void use_stdout();
    void start_on_new_line(const std::string &target);
    // One line in full, or false with `why` set.
    bool write_line(const char *data, size_t len, std::string &why);
    // Waits until fd_ takes more bytes; false when stop_waiting's time passed.
    bool wait_writable();

    const RecordData data_;
    std::mutex mutex_;
    int fd_ = -1;         // where records go: stdout's or owned_fd_
    UniqueFd owned_fd_;   // the records file, or stdout's pipe opened anew
    bool failed_ = false;
    bool regular_ = false;  // a regular file: a short write is a failure
    bool socket_ = false;   // written with send(MSG_DONTWAIT | MSG_NOSIGNAL)
    UniqueFd wake_fd_;      // eventfd: stop_waiting() was called
    pthread_mutex_t *shared_lock_ = nullptr;  // the records lock of the watch table
    int64_t shared_patience_ms_ = -1;
    std::atomic<int64_t> give_up_ns_{INT64_MAX};  // steady clock
};

}  // namespace devhost
