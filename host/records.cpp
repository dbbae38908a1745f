#include "records.hpp"
#include "watch_table.hpp"

#include "sha256.hpp"
#include "common/output_file.hpp"
#include "common/text.hpp"

#include <cerrno>
#include <chrono>
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

std::string json_string(std::string_view s)
{
    // Runs of characters that need no escape are appended whole: records
    // carry kilobytes of hex and text per step.
    std::string out;
    out.reserve(s.size() + 2);
    out.push_back('"');
    size_t plain = 0;  // first character not yet appended
    for (size_t i = 0; i < s.size(); i++) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            continue;
        out.append(s.data() + plain, i - plain);
        plain = i + 1;
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default: {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        }
        }
    }
    out.append(s.data() + plain, s.size() - plain);
    out.push_back('"');
    return out;
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

// UTC, ISO 8601 with microseconds, into `buf` (no allocation).
void format_time(char (&buf)[64])
{
    auto now = std::chrono::system_clock::now();
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(us / 1000000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(us % 1000000));
}

// `s` as a JSON string, its first `max` bytes and a note of the full length
// when it is longer (then `field` joins the record's summarised list).
std::string bounded(std::string_view s, size_t max, const char *field, std::vector<const char *> &summarised)
{
    if (s.size() <= max)
        return json_string(s);
    summarised.push_back(field);
    return json_string(std::string(s.substr(0, max)) + "... (" + std::to_string(s.size()) + " bytes)");
}

std::string info_json(const InfoList &info, std::vector<const char *> &summarised)
{
    std::string s = "{";
    std::vector<const char *> cut;  // keys or values cut count once, as "info"
    for (size_t i = 0; i < info.size(); i++) {
        std::string entry = bounded(info[i].first, max_info_key, "info", cut) + ':' +
                            bounded(info[i].second, max_info_value, "info", cut);
        if (s.size() + entry.size() + 2 > max_info_json) {
            cut.push_back("info");
            break;
        }
        if (i)
            s += ',';
        s += entry;
    }
    if (!cut.empty())
        summarised.push_back("info");
    return s + "}";
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
std::string data_fields(const Record &r, const RecordData &data, std::vector<const char *> &summarised)
{
    // A file transfer's `data` is only the start of its `bytes`.
    const size_t wanted = data.shown(r.sha256.empty() ? r.data_len : std::max(r.data_len, r.bytes));
    const size_t shown = std::min({wanted, record_data_shown, r.data_len});
    if (shown < wanted) {
        summarised.push_back("hex");
        summarised.push_back("text");
    }
    std::string s = ",\"hex\":" + json_string(text::to_hex(r.data, shown)) +
                    ",\"text\":" + json_string(text::to_printable(r.data, shown));
    if (!r.sha256.empty())
        s += ",\"sha256\":\"" + r.sha256 + "\"";
    else if (data.hashed())
        s += ",\"sha256\":\"" + Sha256::of(r.data, r.data_len) + "\"";
    return s;
}

}  // namespace

std::string RecordWriter::format(const Record &r, const RecordData &data)
{
    std::vector<const char *> summarised;
    char time[64], duration[32];
    format_time(time);
    std::snprintf(duration, sizeof duration, "%.3f", r.duration_ms);
    const std::string device = bounded(r.device, max_name_bytes, "device", summarised);
    const std::string step = bounded(r.step, max_name_bytes, "step", summarised);
    std::string s = "{\"time\":\"" + std::string(time) + "\",\"device\":" + device +
                    ",\"seq\":" + std::to_string(r.seq) + ",\"step\":" + step;
    if (r.line > 0)
        s += ",\"line\":" + std::to_string(r.line);
    if (r.repetition > 0)
        s += ",\"repetition\":" + std::to_string(r.repetition);
    s += ",\"status\":" + json_string(devhost_status_name(r.status)) + ",\"code\":" + std::to_string(r.status) +
         ",\"duration_ms\":" + duration + ",\"bytes\":" + std::to_string(r.bytes) +
         data_fields(r, data, summarised);
    if (r.message_id)
        s += ",\"message_id\":" + std::to_string(*r.message_id);
    if (r.info)
        s += ",\"info\":" + info_json(*r.info, summarised);
    if (!r.message.empty())
        s += ",\"message\":" + bounded(r.message, max_message_bytes, "message", summarised);
    if (r.os_errno)
        s += ",\"errno\":" + std::to_string(r.os_errno);
    if (r.unwind)
        s += ",\"unwind\":true";
    if (r.generation > 0)
        s += ",\"generation\":" + std::to_string(r.generation);
    if (r.phase)
        s += ",\"phase\":" + json_string(r.phase);
    if (!summarised.empty()) {
        s += ",\"summarised\":[";
        for (size_t i = 0; i < summarised.size(); i++)
            s += std::string(i ? "," : "") + '"' + summarised[i] + '"';
        s += "]";
    }
    s += "}\n";
    return s;
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
