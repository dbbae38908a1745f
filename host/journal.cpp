#include "journal.hpp"

#include "libsystemd.hpp"

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <spdlog/sinks/base_sink.h>
#include <string>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
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

// Where sd_journal_sendv writes (fixed in libsystemd); it drops a line
// silently when nothing is there, so the sink looks first.
constexpr const char *journal_socket = "/run/systemd/journal/socket";

bool journal_socket_present()
{
    struct stat st {};
    return ::stat(journal_socket, &st) == 0 && S_ISSOCK(st.st_mode);
}

// Each line to the journal as MESSAGE, PRIORITY (trace and debug LOG_DEBUG,
// info LOG_INFO, warn LOG_WARNING, err LOG_ERR, critical LOG_CRIT, as
// spdlog's own systemd sink maps them) and SYSLOG_IDENTIFIER=devhost,
// through libsystemd's sd_journal_sendv (loaded when the first line goes,
// libsystemd.hpp); a missing journal socket, no libsystemd or the journal's
// refusal turns the line into a prefixed stderr line instead of a lost line.
class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
protected:
    void sink_it_(const spdlog::details::log_msg &msg) override
    {
        std::string why;
        const LibSystemd *sd = present_ ? libsystemd(why) : nullptr;
        if (present_ && !sd && !said_) {  // once: why the journal's fields are missing
            said_ = true;
            const std::string line = "<4>devhost: warn: not logging to the journal: " + why + "\n";
            [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
        }
        if (!sd || !send(*sd, msg))
            to_stderr(msg);
    }
    void flush_() override {}

private:
    static int syslog_level(spdlog::level::level_enum l)
    {
        static constexpr std::array<int, 7> levels{LOG_DEBUG, LOG_DEBUG, LOG_INFO, LOG_WARNING,
                                                   LOG_ERR,   LOG_CRIT,  LOG_INFO};
        return levels.at(static_cast<size_t>(l));
    }

    static bool send(const LibSystemd &sd, const spdlog::details::log_msg &msg)
    {
        std::string message = "MESSAGE=";
        message.append(msg.payload.data(), msg.payload.size());
        const std::string priority = "PRIORITY=" + std::to_string(syslog_level(msg.level));
        static const std::string ident = "SYSLOG_IDENTIFIER=devhost";
        iovec fields[] = {{message.data(), message.size()},
                          {const_cast<char *>(priority.data()), priority.size()},
                          {const_cast<char *>(ident.data()), ident.size()}};
        return sd.sd_journal_sendv(fields, 3) >= 0;
    }

    void to_stderr(const spdlog::details::log_msg &msg)
    {
        const auto level = spdlog::level::to_string_view(msg.level);
        std::string line = "<" + std::to_string(syslog_level(msg.level)) + ">devhost: ";
        line.append(level.data(), level.size()).append(": ");
        line.append(msg.payload.data(), msg.payload.size()).push_back('\n');
        [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
    }

    const bool present_ = journal_socket_present();
    bool said_ = false;  // under the sink's mutex
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
