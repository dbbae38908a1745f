#include "file_transfer.hpp"

#include "logging.hpp"
#include "sha256.hpp"
#include "common/output_file.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <sys/stat.h>
#include <unistd.h>

namespace devhost {

namespace {

using Clock = std::chrono::steady_clock;

// A chunk's buffer, aligned for a device opened with O_DIRECT (the raw
// plugin then reads into it without a bounce copy).
struct FreeDeleter {
    void operator()(uint8_t *p) const { std::free(p); }
};
using ChunkBuffer = std::unique_ptr<uint8_t, FreeDeleter>;
constexpr size_t chunk_alignment = 4096;

// One stream between a file and the device: its deadline, its count, its
// hash, the first bytes for the record, the progress lines.
class Stream {
public:
    Stream(Device &device, const Step &step, int32_t timeout_ms, std::vector<uint8_t> &head)
        : device_(device), step_(step), head_(head), start_(Clock::now()), last_log_(start_)
    {
        if (timeout_ms >= 0)
            deadline_ = start_ + std::chrono::milliseconds(timeout_ms);
        head_.clear();
    }

    Outcome read_to_file();
    Outcome write_from_file();

    // Fills the record's counts, hash and first bytes; returns `o`.
    Outcome finish(Outcome o, Record &rec)
    {
        rec.bytes = done_;
        rec.data = head_.data();
        rec.data_len = head_.size();
        rec.sha256 = sha_.hex();
        if (!o.ok() && done_ > 0)
            o.message += " (after " + std::to_string(done_) + " bytes)";
        return o;
    }

private:
    // Before each chunk: cancelled, or the deadline passed, or the chunk's
    // timeout (what is left of the step's) in `timeout`.
    Outcome before_chunk(int32_t &timeout) const
    {
        if (device_.cancelled())
            return {DEVHOST_E_CANCELLED, "transfer cancelled", 0};
        timeout = -1;
        if (!deadline_)
            return {};
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline_ - Clock::now()).count();
        if (left <= 0)
            return {DEVHOST_E_TIMEOUT, "the step's deadline passed", 0};
        timeout = static_cast<int32_t>(std::min<int64_t>(left, INT32_MAX));
        return {};
    }

    // A transfer of one chunk, at the step's offset plus what has moved.
    devhost_transfer chunk(uint32_t op, int32_t timeout) const
    {
        devhost_transfer x{};
        x.op = op;
        x.timeout_ms = timeout;
        if (step_.offset) {
            x.flags |= DEVHOST_TRANSFER_HAS_OFFSET;
            x.offset = *step_.offset + done_;
        }
        return x;
    }

    // `n` bytes moved: counted, hashed, the first ones kept for the record.
    void moved(const uint8_t *p, size_t n)
    {
        sha_.update(p, n);
        const size_t keep = std::min(n, record_data_shown - std::min(head_.size(), record_data_shown));
        head_.insert(head_.end(), p, p + keep);
        done_ += n;
        if (Clock::now() - last_log_ >= std::chrono::seconds(1)) {
            last_log_ = Clock::now();
            const double s = std::chrono::duration<double>(last_log_ - start_).count();
            spdlog::info("{}: step '{}' (line {}): {} bytes in {:.1f} s ({:.1f} MiB/s)", device_.name(), step_.text,
                         step_.line, done_, s, static_cast<double>(done_) / (1024.0 * 1024.0) / s);
        }
    }

    Outcome allocate(ChunkBuffer &buffer) const
    {
        buffer.reset(static_cast<uint8_t *>(std::aligned_alloc(chunk_alignment, file_chunk_bytes)));
        if (!buffer)
            return {DEVHOST_E_NO_MEMORY,
                    "the host cannot allocate this step's " + std::to_string(file_chunk_bytes) + "-byte buffer",
                    ENOMEM};
        return {};
    }

    Device &device_;
    const Step &step_;
    std::vector<uint8_t> &head_;
    Clock::time_point start_, last_log_;
    std::optional<Clock::time_point> deadline_;
    Sha256 sha_;
    uint64_t done_ = 0;
};

// Writes all of `len` bytes to the regular file `fd`.
bool save(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        const ssize_t n = ::write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= static_cast<size_t>(n);
    }
    return true;
}

// The to=FILE of `step`, opened as output_file.hpp says, a regular file,
// emptied; -1 with the outcome set when refused.
int open_to_file(const std::string &path, Outcome &o)
{
    std::string why;
    auto file = output::open_append(path, to_file_mode, why);
    int e = file ? 0 : errno;
    UniqueFd fd(file ? file->fd : -1);
    struct stat st {};
    if (fd) {
        if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
            why = "not a regular file";
        else if (::ftruncate(fd.get(), 0) != 0)
            why = std::strerror(e = errno);
        else
            return fd.release();
    }
    o = {DEVHOST_E_IO, "to=" + text::excerpt(path) + ": " + why, e};
    return -1;
}

Outcome Stream::read_to_file()
{
    Outcome o;
    const UniqueFd file(open_to_file(*step_.to_file, o));
    ChunkBuffer buffer;
    if (!file || !(o = allocate(buffer)).ok())
        return o;
    const bool exactly = step_.read_mode == ReadMode::Exactly;
    bool full_before = false;  // the last chunk came back full
    while (done_ < step_.count) {
        int32_t timeout = -1;
        if (!(o = before_chunk(timeout)).ok())
            return o;
        const size_t want = static_cast<size_t>(std::min<uint64_t>(file_chunk_bytes, step_.count - done_));
        devhost_transfer x = chunk(exactly ? DEVHOST_OP_READ_EXACT : DEVHOST_OP_READ, timeout);
        x.in = buffer.get();
        x.in_capacity = want;
        o = device_.transfer(x);
        const size_t got = std::min(x.in_len, want);  // never more than the buffer
        if (!save(file.get(), buffer.get(), got))
            return {DEVHOST_E_IO, "to=" + text::excerpt(*step_.to_file) + ": " + std::strerror(errno), errno};
        moved(buffer.get(), got);
        if (!o.ok() && !exactly && full_before && got == 0 && o.status == DEVHOST_E_INVALID)
            return {};  // the end of the device, on a chunk boundary
        if (!o.ok() || got < want)
            return o;  // a failure, or a short read: the device had no more
        full_before = true;
    }
    return o;
}

Outcome Stream::write_from_file()
{
    std::string why;
    const UniqueFd file(output::open_read(*step_.from_file, why));
    if (!file)
        return {DEVHOST_E_IO, "from=" + text::excerpt(*step_.from_file) + ": " + why, errno};
    ChunkBuffer buffer;
    Outcome o = allocate(buffer);
    for (int32_t timeout = -1; o.ok() && (o = before_chunk(timeout)).ok();) {
        const ssize_t n = ::read(file.get(), buffer.get(), file_chunk_bytes);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return {DEVHOST_E_IO, "from=" + text::excerpt(*step_.from_file) + ": " + std::strerror(errno), errno};
        if (n == 0)
            break;  // the end of the file
        devhost_transfer x = chunk(DEVHOST_OP_WRITE, timeout);
        x.out = buffer.get();
        x.out_len = static_cast<size_t>(n);
        o = device_.transfer(x);
        moved(buffer.get(), std::min(x.out_done, x.out_len));
        if (o.ok() && x.out_done < x.out_len)
            o = {DEVHOST_E_IO, "the device took " + std::to_string(x.out_done) + " of " + std::to_string(n) +
                                   " bytes of a chunk",
                 0};
    }
    return o;
}

}  // namespace

Outcome file_transfer(Device &device, const Step &step, int32_t timeout_ms, std::vector<uint8_t> &head, Record &rec)
{
    Stream stream(device, step, timeout_ms, head);
    return stream.finish(step.from_file ? stream.write_from_file() : stream.read_to_file(), rec);
}

}  // namespace devhost
