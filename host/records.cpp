#include "records.hpp"
#include "watch_table.hpp"

#include "sha256.hpp"
#include "common/output_file.hpp"
#include "common/text.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <new>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <stdexcept>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace devhost {

namespace {

// Whether a byte goes into a JSON string as it is: printable ASCII but the
// quote and the backslash. The same set passes text::to_printable unchanged.
constexpr std::array<bool, 256> plain_bytes = [] {
    std::array<bool, 256> t{};
    for (int c = 0x20; c < 0x7f; c++)
        t[static_cast<size_t>(c)] = c != '"' && c != '\\';
    return t;
}();

// The first byte at or after `i` (of `n`) that is not plain: eight bytes a
// step while none of them is below 0x20, above 0x7e, a quote or a backslash
// (each test exact for "any byte of the word"), then byte by byte.
inline size_t plain_until(const unsigned char *p, size_t i, size_t n)
{
    constexpr uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    const auto has_zero = [](uint64_t v) { return (v - ones) & ~v & highs; };
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        std::memcpy(&x, p + i, 8);
        const uint64_t below_space = (x - ones * 0x20) & ~x & highs;
        if (below_space | (x & highs) | has_zero(x ^ (ones * 0x7f)) | has_zero(x ^ (ones * '"')) |
            has_zero(x ^ (ones * '\\')))
            break;
    }
    while (i < n && plain_bytes[p[i]])
        i++;
    return i;
}

// Each byte's two lower-case hex digits.
constexpr std::array<std::array<char, 2>, 256> hex_pairs = [] {
    std::array<std::array<char, 2>, 256> t{};
    for (size_t c = 0; c < 256; c++)
        t[c] = {"0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]};
    return t;
}();

// A record's line, built in one string: each value is escaped as it is
// appended, with no temporaries (the engine formats one record per step, so
// this is on every step's path).
class JsonLine {
public:
    explicit JsonLine(size_t reserve) { s_.reserve(reserve); }

    JsonLine &raw(std::string_view v)
    {
        s_.append(v);
        return *this;
    }
    template <typename Int>
    JsonLine &num(Int v)
    {
        char buf[24];
        const auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
        s_.append(buf, static_cast<size_t>(end - buf));
        return *this;
    }
    // A milliseconds figure as printf's "%.3f" writes it.
    JsonLine &millis(double v)
    {
        char buf[64];
        const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, 3);
        if (r.ec == std::errc()) {
            s_.append(buf, static_cast<size_t>(r.ptr - buf));
        } else {  // beyond 60 digits: what the record wrote before, cut at 31
            std::snprintf(buf, 32, "%.3f", v);
            s_.append(buf);
        }
        return *this;
    }
    // `v` as a JSON string: runs of characters that need no escape are
    // appended whole (records carry kilobytes of hex and text per step).
    JsonLine &str(std::string_view v)
    {
        const auto *p = reinterpret_cast<const unsigned char *>(v.data());
        s_.push_back('"');
        size_t plain = 0;  // first character not yet appended
        for (size_t i = 0; (i = plain_until(p, i, v.size())) < v.size(); plain = ++i) {
            s_.append(v.data() + plain, i - plain);
            escape(p[i]);
        }
        s_.append(v.data() + plain, v.size() - plain);
        s_.push_back('"');
        return *this;
    }
    // `data` as a JSON string of lower-case hex (text::to_hex), a byte's two
    // digits at a time, through a buffer on the stack (resizing the line
    // first would fill it with zeros to overwrite).
    JsonLine &hex(const uint8_t *data, size_t len)
    {
        s_.push_back('"');
        char buf[1024];
        while (len > 0) {
            const size_t n = std::min(len, sizeof buf / 2);
            for (size_t i = 0; i < n; i++)
                std::memcpy(buf + 2 * i, hex_pairs[data[i]].data(), 2);
            s_.append(buf, 2 * n);
            data += n;
            len -= n;
        }
        s_.push_back('"');
        return *this;
    }
    // `data` as text::to_printable writes it (\r, \n, \t, \0, \\, \xHH),
    // that as a JSON string: the same as str(to_printable(data, len)).
    JsonLine &printable(const uint8_t *data, size_t len)
    {
        s_.push_back('"');
        size_t plain = 0;  // first byte not yet appended
        for (size_t i = 0; (i = plain_until(data, i, len)) < len; plain = ++i) {
            s_.append(reinterpret_cast<const char *>(data) + plain, i - plain);
            const uint8_t c = data[i];
            switch (c) {
            case '\r': s_.append("\\\\r", 3); break;
            case '\n': s_.append("\\\\n", 3); break;
            case '\t': s_.append("\\\\t", 3); break;
            case '\0': s_.append("\\\\0", 3); break;
            case '\\': s_.append("\\\\\\\\", 4); break;
            case '"': s_.append("\\\"", 2); break;
            default: {
                const char esc[5] = {'\\', '\\', 'x', digits[c >> 4], digits[c & 15]};
                s_.append(esc, 5);
            }
            }
        }
        s_.append(reinterpret_cast<const char *>(data) + plain, len - plain);
        s_.push_back('"');
        return *this;
    }

    size_t size() const { return s_.size(); }
    std::string take() { return std::move(s_); }

private:
    static constexpr char digits[] = "0123456789abcdef";

    void escape(unsigned char c)
    {
        switch (c) {
        case '"': s_.append("\\\"", 2); break;
        case '\\': s_.append("\\\\", 2); break;
        case '\n': s_.append("\\n", 2); break;
        case '\r': s_.append("\\r", 2); break;
        case '\t': s_.append("\\t", 2); break;
        default: {
            const char esc[6] = {'\\', 'u', '0', '0', digits[c >> 4], digits[c & 15]};
            s_.append(esc, 6);
        }
        }
    }

    std::string s_;
};

}  // namespace

std::string json_string(std::string_view s)
{
    return JsonLine(s.size() + 2).str(s).take();
}

namespace {

using Clock = std::chrono::steady_clock;

// The bounds that keep a record under max_record_bytes. json_string turns a
// byte into at most 6 characters (\u00XX), to_printable into at most 4 that
// json_string then escapes into at most 5: with these, a record is at most
// 2 * 64 Ki (hex) + 5 * 64 Ki (text) + 6 * (1 Ki + 1 Ki + 4 Ki) + 256 Ki
// (info) + the fixed fields, about 740 KiB.
constexpr size_t max_name_bytes = 1024;     // device, step
constexpr size_t max_message_bytes = 4096;
constexpr size_t max_info_json = 256 * 1024;
constexpr size_t max_info_key = 256, max_info_value = 4096;
static_assert(2 * record_data_shown + 5 * record_data_shown + 6 * (2 * max_name_bytes + max_message_bytes) +
                      max_info_json + 1024 <
                  max_record_bytes,
              "the record bounds must add up to less than max_record_bytes");

// UTC, ISO 8601 with microseconds, into `buf` (no allocation); returns its
// length (27). gmtime_r and the formatting of the date and time happen once
// a second per thread, the microseconds every time: records come thousands
// a second.
size_t format_time(char (&buf)[64])
{
    thread_local std::time_t cached_secs = -1;
    thread_local char cached[32];  // "YYYY-MM-DDTHH:MM:SS."
    thread_local size_t cached_len = 0;
    const auto now = std::chrono::system_clock::now();
    const long long us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
    const auto secs = static_cast<std::time_t>(us / 1000000);
    if (secs != cached_secs) {
        std::tm tm{};
        gmtime_r(&secs, &tm);
        const int n = std::snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_len = n > 0 ? std::min(static_cast<size_t>(n), sizeof cached - 1) : 0;
        cached_secs = secs;
    }
    std::memcpy(buf, cached, cached_len);
    long long frac = us % 1000000;
    for (size_t i = cached_len + 6; i > cached_len; i--, frac /= 10)
        buf[i - 1] = static_cast<char>('0' + frac % 10);
    buf[cached_len + 6] = 'Z';
    buf[cached_len + 7] = '\0';
    return cached_len + 7;
}

// `s` as a JSON string, its first `max` bytes and a note of the full length
// when it is longer (then `field` joins the record's summarised list).
void bounded(JsonLine &out, std::string_view s, size_t max, const char *field,
             std::vector<const char *> &summarised)
{
    if (s.size() <= max) {
        out.str(s);
        return;
    }
    summarised.push_back(field);
    out.str(std::string(s.substr(0, max)) + "... (" + std::to_string(s.size()) + " bytes)");
}

void info_json(JsonLine &out, const InfoList &info, std::vector<const char *> &summarised)
{
    out.raw("{");
    size_t used = 1;
    std::vector<const char *> cut;  // keys or values cut count once, as "info"
    for (size_t i = 0; i < info.size(); i++) {
        JsonLine entry(info[i].first.size() + info[i].second.size() + 8);
        bounded(entry, info[i].first, max_info_key, "info", cut);
        entry.raw(":");
        bounded(entry, info[i].second, max_info_value, "info", cut);
        if (used + entry.size() + 2 > max_info_json) {
            cut.push_back("info");
            break;
        }
        if (i) {
            out.raw(",");
            used++;
        }
        used += entry.size();
        out.raw(entry.take());
    }
    if (!cut.empty())
        summarised.push_back("info");
    out.raw("}");
}

// Appends `s` JSON-escaped (without quotes) at `p`: at most 6 characters a
// byte. No allocation: for the out-of-memory record.
char *append_escaped(char *p, std::string_view s)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            *p++ = static_cast<char>(c);
        } else {
            std::memcpy(p, "\\u00", 4);
            p[4] = digits[c >> 4];
            p[5] = digits[c & 15];
            p += 6;
        }
    }
    return p;
}

// A record of only the step's identity and outcome, built without
// allocating, for when the full one cannot be formatted for want of memory.
// Device and step are cut to 128 bytes (768 escaped), so it fits in 2 KiB.
constexpr size_t minimal_record_size = 2048;
size_t format_minimal(const Record &r, char (&buf)[minimal_record_size])
{
    char time[64];
    format_time(time);
    char *p = buf;
    p += std::sprintf(p, "{\"time\":\"%s\",\"device\":\"", time);
    p = append_escaped(p, std::string_view(r.device).substr(0, 128));
    p += std::sprintf(p, "\",\"seq\":%d,\"step\":\"", r.seq);
    p = append_escaped(p, std::string_view(r.step).substr(0, 128));
    p += std::sprintf(p, "\",\"line\":%d", r.line);
    if (r.repetition > 0)
        p += std::sprintf(p, ",\"repetition\":%u", r.repetition);
    p += std::sprintf(p,
                      ",\"status\":\"%.24s\",\"code\":%d,\"bytes\":%zu,\"hex\":\"\",\"text\":\"\"%s"
                      ",\"summarised\":[\"out of memory\"]}\n",
                      devhost_status_name(r.status), static_cast<int>(r.status), r.bytes,
                      r.unwind ? ",\"unwind\":true" : "");
    return static_cast<size_t>(p - buf);
}

}  // namespace

std::optional<RecordData> parse_record_data(const std::string &value)
{
    if (value == "full")
        return RecordData{};
    if (value == "none")
        return RecordData{RecordData::Mode::None, 0};
    if (value.rfind("head:", 0) != 0)
        return std::nullopt;
    auto n = text::parse_int(value.substr(5));
    if (!n || *n < 1 || static_cast<uint64_t>(*n) > max_record_data_head)
        return std::nullopt;
    return RecordData{RecordData::Mode::Head, static_cast<size_t>(*n)};
}

namespace {

// The data fields: hex and text of what `data` shows, and sha256 when the
// record has one or its setting hashes the data.
void data_fields(JsonLine &out, const Record &r, const RecordData &data, std::vector<const char *> &summarised)
{
    // A file transfer's `data` is only the start of its `bytes`.
    const size_t wanted = data.shown(r.sha256.empty() ? r.data_len : std::max(r.data_len, r.bytes));
    const size_t shown = std::min({wanted, record_data_shown, r.data_len});
    if (shown < wanted) {
        summarised.push_back("hex");
        summarised.push_back("text");
    }
    out.raw(",\"hex\":").hex(r.data, shown).raw(",\"text\":").printable(r.data, shown);
    if (!r.sha256.empty())
        out.raw(",\"sha256\":\"").raw(r.sha256).raw("\"");
    else if (data.hashed())
        out.raw(",\"sha256\":\"").raw(Sha256::of(r.data, r.data_len)).raw("\"");
}

}  // namespace

std::string RecordWriter::format(const Record &r, const RecordData &data)
{
    std::vector<const char *> summarised;
    char time[64];
    const size_t time_len = format_time(time);
    const size_t shown = std::min(data.shown(r.data_len), record_data_shown);
    // Room for the usual record at once: 7 characters a byte shown is
    // enough for hex and text but for control bytes, the rest is the
    // fields' names and numbers.
    JsonLine s(320 + 2 * (std::min(r.device.size(), max_name_bytes) + std::min(r.step.size(), max_name_bytes) +
                          std::min(r.message.size(), max_message_bytes)) +
               7 * shown);
    s.raw("{\"time\":\"").raw(std::string_view(time, time_len)).raw("\",\"device\":");
    bounded(s, r.device, max_name_bytes, "device", summarised);
    s.raw(",\"seq\":").num(r.seq).raw(",\"step\":");
    bounded(s, r.step, max_name_bytes, "step", summarised);
    if (r.line > 0)
        s.raw(",\"line\":").num(r.line);
    if (r.repetition > 0)
        s.raw(",\"repetition\":").num(r.repetition);
    s.raw(",\"status\":").str(devhost_status_name(r.status)).raw(",\"code\":").num(static_cast<int>(r.status));
    s.raw(",\"duration_ms\":").millis(r.duration_ms).raw(",\"bytes\":").num(r.bytes);
    data_fields(s, r, data, summarised);
    if (r.message_id)
        s.raw(",\"message_id\":").num(*r.message_id);
    if (r.info) {
        s.raw(",\"info\":");
        info_json(s, *r.info, summarised);
    }
    if (!r.message.empty()) {
        s.raw(",\"message\":");
        bounded(s, r.message, max_message_bytes, "message", summarised);
    }
    if (r.os_errno)
        s.raw(",\"errno\":").num(r.os_errno);
    if (r.unwind)
        s.raw(",\"unwind\":true");
    if (r.generation > 0)
        s.raw(",\"generation\":").num(r.generation);
    if (r.phase)
        s.raw(",\"phase\":").str(r.phase);
    if (!summarised.empty()) {
        s.raw(",\"summarised\":[");
        for (size_t i = 0; i < summarised.size(); i++)
            s.raw(i ? ",\"" : "\"").raw(summarised[i]).raw("\"");
        s.raw("]");
    }
    s.raw("}\n");
    return s.take();
}

RecordWriter::RecordWriter(const std::string &target, RecordData data) : data_(data)
{
    wake_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake_fd_)
        throw std::runtime_error("cannot open record output '" + target + "': eventfd: " + std::strerror(errno));
    if (target == "-")
        use_stdout();
    else
        open_file(target);
    start_on_new_line(target);
}

RecordWriter::RecordWriter(UniqueFd fd, RecordData data, pthread_mutex_t *shared_lock)
    : data_(data), owned_fd_(std::move(fd)), shared_lock_(shared_lock)
{
    wake_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    struct stat st {};
    if (!wake_fd_ || ::fstat(owned_fd_.get(), &st) != 0)
        throw std::runtime_error(std::string("cannot write records: ") + std::strerror(errno));
    fd_ = owned_fd_.get();
    regular_ = S_ISREG(st.st_mode);
    socket_ = S_ISSOCK(st.st_mode);
}

RecordWriter::~RecordWriter() = default;

void RecordWriter::open_file(const std::string &target)
{
    std::string error;
    auto file = output::open_append(target, 0640, error);
    if (!file)
        throw std::runtime_error("cannot open record output '" + target + "': " + error);
    owned_fd_.reset(file->fd);
    fd_ = owned_fd_.get();
    struct stat st {};
    ::fstat(fd_, &st);
    regular_ = S_ISREG(st.st_mode);
    socket_ = S_ISSOCK(st.st_mode);
}

void RecordWriter::use_stdout()
{
    fd_ = STDOUT_FILENO;
    struct stat st {};
    if (::fstat(fd_, &st) != 0)
        throw std::runtime_error(std::string("cannot write records to stdout: ") + std::strerror(errno));
    regular_ = S_ISREG(st.st_mode);
    socket_ = S_ISSOCK(st.st_mode);
    if (S_ISFIFO(st.st_mode)) {
        // A pipe: a description of our own, non-blocking, so a slow reader
        // can be waited for and given up on. Making stdout's shared one
        // non-blocking would change it for whoever else writes to it.
        owned_fd_.reset(::open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_CLOEXEC));
        if (owned_fd_)
            fd_ = owned_fd_.get();
    }
}

void RecordWriter::start_on_new_line(const std::string &target)
{
    if (!regular_)
        return;
    // Appending (O_APPEND) or at the descriptor's offset (stdout).
    const bool append = ::fcntl(fd_, F_GETFL) & O_APPEND;
    struct stat st {};
    const off_t at = append ? (::fstat(fd_, &st) == 0 ? st.st_size : 0) : ::lseek(fd_, 0, SEEK_CUR);
    if (at <= 0)
        return;
    // The descriptor is write-only: the last byte is read through another.
    const UniqueFd reader(::open(("/proc/self/fd/" + std::to_string(fd_)).c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    char last = '\n';
    const bool read = reader && ::pread(reader.get(), &last, 1, at - 1) == 1;
    if (!read || last == '\n')
        return;
    spdlog::warn("{} does not end in a newline (a record an earlier run could not finish); starting on a new "
                 "line",
                 target == "-" ? "stdout" : target);
    std::string why;
    if (!write_line("\n", 1, why))
        throw std::runtime_error("cannot write to record output '" + target + "': " + why);
}

void RecordWriter::stop_waiting(std::chrono::steady_clock::time_point give_up_at)
{
    give_up_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(give_up_at.time_since_epoch()).count();
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_.get(), &one, sizeof one);
}

bool RecordWriter::wait_writable()
{
    for (;;) {
        const int64_t give_up = give_up_ns_.load();
        int timeout = -1;
        if (give_up != INT64_MAX) {
            const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                    Clock::now().time_since_epoch())
                                    .count();
            if (now >= give_up)
                return false;
            timeout = static_cast<int>((give_up - now) / 1000000 + 1);
        }
        // Until stop_waiting() sets a time, its eventfd wakes us; after, the
        // timeout does (the eventfd stays readable).
        pollfd fds[2] = {{fd_, POLLOUT, 0}, {wake_fd_.get(), POLLIN, 0}};
        const int n = ::poll(fds, give_up == INT64_MAX ? 2 : 1, timeout);
        if (n < 0 && errno != EINTR)
            return false;
        if (n > 0 && fds[0].revents)
            return true;  // writable, or an error the next write reports
    }
}

bool RecordWriter::write_line(const char *data, size_t len, std::string &why)
{
    size_t done = 0;
    bool retried = false;
    while (done < len) {
        const ssize_t n = socket_ ? ::send(fd_, data + done, len - done, MSG_DONTWAIT | MSG_NOSIGNAL)
                                  : ::write(fd_, data + done, len - done);
        if (n > 0) {
            done += static_cast<size_t>(n);
            // On a regular file a short write left a part of the line. One
            // more write, to finish it or to learn why not (ENOSPC...).
            if (done < len && regular_ && std::exchange(retried, true)) {
                why = "a record was cut short after " + std::to_string(done) + " of " + std::to_string(len) +
                      " bytes";
                return false;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_writable())
                continue;
            why = "the reader took nothing for too long after the stop (" + std::to_string(done) + " of " +
                  std::to_string(len) + " bytes of a record written)";
            return false;
        }
        why = n < 0 ? std::strerror(errno) : "the write took nothing";
        if (done > 0)
            why += " (a record was cut short after " + std::to_string(done) + " of " + std::to_string(len) +
                   " bytes)";
        return false;
    }
    return true;
}

bool RecordWriter::write(const Record &record)
{
    std::string line;
    char minimal[minimal_record_size];
    const char *data = nullptr;
    size_t len = 0;
    try {
        line = format(record, data_);
        data = line.data();
        len = line.size();
    } catch (const std::bad_alloc &) {
        len = format_minimal(record, minimal);
        data = minimal;
    }
    std::lock_guard lock(mutex_);
    if (failed_)
        return false;
    std::string why;
    SharedLock across(shared_lock_, shared_patience_ms_);  // other processes' writers
    if (write_line(data, len, why))
        return true;
    failed_ = true;
    spdlog::error("cannot write step records: {}", why);
    return false;
}

}  // namespace devhost
