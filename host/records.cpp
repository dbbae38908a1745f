#include "records.hpp"

#include "text.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <stdexcept>
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

std::string now_iso8601()
{
    auto now = std::chrono::system_clock::now();
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(us / 1000000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(us % 1000000));
    return buf;
}

}  // namespace

std::string RecordWriter::format(const Record &r)
{
    char duration[32];
    std::snprintf(duration, sizeof duration, "%.3f", r.duration_ms);
    std::string s = "{\"time\":" + json_string(now_iso8601()) + ",\"device\":" + json_string(r.device) +
                    ",\"seq\":" + std::to_string(r.seq) + ",\"step\":" + json_string(r.step);
    if (r.line > 0)
        s += ",\"line\":" + std::to_string(r.line);
    s += ",\"status\":" + json_string(devhost_status_name(r.status)) + ",\"code\":" + std::to_string(r.status) +
         ",\"duration_ms\":" + duration + ",\"bytes\":" + std::to_string(r.bytes) +
         ",\"hex\":" + json_string(text::to_hex(r.data, r.data_len)) +
         ",\"text\":" + json_string(text::to_printable(r.data, r.data_len));
    if (r.message_id)
        s += ",\"message_id\":" + std::to_string(*r.message_id);
    if (r.info) {
        s += ",\"info\":{";
        for (size_t i = 0; i < r.info->size(); i++) {
            if (i)
                s += ',';
            s += json_string((*r.info)[i].first);
            s += ':';
            s += json_string((*r.info)[i].second);
        }
        s += "}";
    }
    if (!r.message.empty())
        s += ",\"message\":" + json_string(r.message);
    if (r.os_errno)
        s += ",\"errno\":" + std::to_string(r.os_errno);
    if (r.unwind)
        s += ",\"unwind\":true";
    s += "}\n";
    return s;
}

RecordWriter::RecordWriter(const std::string &target)
{
    if (target == "-") {
        fd_ = STDOUT_FILENO;
        return;
    }
    fd_ = ::open(target.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0)
        throw std::runtime_error("cannot open record output '" + target + "': " + std::strerror(errno));
    owns_fd_ = true;
}

RecordWriter::~RecordWriter()
{
    if (owns_fd_)
        ::close(fd_);
}

bool RecordWriter::write(const Record &record)
{
    const std::string line = format(record);
    std::lock_guard lock(mutex_);
    size_t done = 0;
    while (done < line.size()) {
        ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (!failed_)
                spdlog::error("cannot write step records: {}", std::strerror(errno));
            failed_ = true;
            return false;
        }
        done += static_cast<size_t>(n);
    }
    return true;
}

}  // namespace devhost
