#include "journal.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <spdlog/sinks/systemd_sink.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace devhost::logging {

namespace {

// One decimal number from `text` up to `end` (none: false).
bool parse_number(const char *text, char end, unsigned long long &value)
{
    if (*text < '0' || *text > '9')
        return false;
    char *stop = nullptr;
    errno = 0;
    value = std::strtoull(text, &stop, 10);
    return errno == 0 && *stop == end;
}

// Where sd_journal_send writes (fixed in libsystemd); it drops a line
// silently when nothing is there, so the sink looks first.
constexpr const char *journal_socket = "/run/systemd/journal/socket";

bool journal_socket_present()
{
    struct stat st {};
    return ::stat(journal_socket, &st) == 0 && S_ISSOCK(st.st_mode);
}

// spdlog's systemd sink (its table maps trace and debug to LOG_DEBUG, info to
// LOG_INFO, warn to LOG_WARNING, err to LOG_ERR, critical to LOG_CRIT), with
// a missing journal socket or the journal's refusal turned into a prefixed
// stderr line instead of a lost line or an exception.
class JournalSink final : public spdlog::sinks::systemd_sink<std::mutex> {
public:
    JournalSink() : systemd_sink("devhost") {}

protected:
    void sink_it_(const spdlog::details::log_msg &msg) override
    {
        if (!present_) {
            to_stderr(msg);
            return;
        }
        try {
            systemd_sink::sink_it_(msg);
        } catch (const spdlog::spdlog_ex &) {
            to_stderr(msg);
        }
    }

private:
    void to_stderr(const spdlog::details::log_msg &msg)
    {
        const auto level = spdlog::level::to_string_view(msg.level);
        std::string line = "<" + std::to_string(syslog_level(msg.level)) + ">devhost: ";
        line.append(level.data(), level.size()).append(": ");
        line.append(msg.payload.data(), msg.payload.size()).push_back('\n');
        [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
    }

    const bool present_ = journal_socket_present();
};

}  // namespace

bool stderr_is_journal()
{
    const char *stream = std::getenv("JOURNAL_STREAM");
    if (!stream)
        return false;
    const char *colon = std::strchr(stream, ':');
    unsigned long long dev = 0, ino = 0;
    if (!colon || !parse_number(stream, ':', dev) || !parse_number(colon + 1, '\0', ino))
        return false;
    struct stat st {};
    return ::fstat(STDERR_FILENO, &st) == 0 && static_cast<unsigned long long>(st.st_dev) == dev &&
           static_cast<unsigned long long>(st.st_ino) == ino;
}

spdlog::sink_ptr journal_sink() { return std::make_shared<JournalSink>(); }

const char *stderr_error_prefix() { return stderr_is_journal() ? "<3>" : ""; }

}  // namespace devhost::logging
