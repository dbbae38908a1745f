#include "log_file.hpp"

#include "common/output_file.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <spdlog/common.h>
#include <sys/stat.h>
#include <unistd.h>

namespace devhost::logging {

namespace {

// How long one line may wait for a slow reader.
constexpr int max_wait_ms = 1000;

}  // namespace

LogFileSink::LogFileSink(const std::filesystem::path &file, std::size_t max_size, std::size_t max_files)
    : shown_(file.string()), max_size_(max_size), max_files_(max_files)
{
    std::string error;
    dir_fd_.reset(output::open_directory_of(file, name_, error));
    if (!dir_fd_)
        throw spdlog::spdlog_ex("log file " + shown_ + ": " + error);
    open_file();
}

LogFileSink::~LogFileSink() = default;

void LogFileSink::open_file()
{
    std::string error;
    auto file = output::open_append_at(dir_fd_.get(), name_, 0640, error);
    if (!file)
        throw spdlog::spdlog_ex("log file " + shown_ + ": " + error);
    fd_.reset(file->fd);
    struct stat st {};
    ::fstat(fd_.get(), &st);
    regular_ = S_ISREG(st.st_mode);
    size_ = regular_ ? static_cast<std::size_t>(st.st_size) : 0;
}

std::string LogFileSink::rotated_name(std::size_t i) const
{
    if (i == 0)
        return name_;
    const auto dot = name_.rfind('.');
    if (dot == std::string::npos || dot == 0 || dot == name_.size() - 1)
        return name_ + "." + std::to_string(i);
    return name_.substr(0, dot) + "." + std::to_string(i) + name_.substr(dot);
}

void LogFileSink::rotate()
{
    fd_.reset();
    for (std::size_t i = max_files_; i > 0; i--) {
        const std::string from = rotated_name(i - 1), to = rotated_name(i);
        if (::renameat(dir_fd_.get(), from.c_str(), dir_fd_.get(), to.c_str()) != 0 && errno != ENOENT)
            report(said_error_, "cannot rotate " + from + " to " + to + ": " + std::strerror(errno));
    }
    try {
        open_file();
    } catch (const spdlog::spdlog_ex &e) {
        report(said_error_, std::string(e.what()) + "; log lines go to stderr only");
    }
}

void LogFileSink::report(bool &said, const std::string &what)
{
    if (std::exchange(said, true))
        return;
    const std::string line = "devhost: warning: " + what + "\n";
    [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
}

std::size_t LogFileSink::write_all(const char *data, std::size_t len)
{
    std::size_t done = 0;
    while (done < len) {
        const ssize_t n = ::write(fd_.get(), data + done, len - done);
        if (n > 0) {
            done += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!may_wait_)
                return done;
            pollfd p{fd_.get(), POLLOUT, 0};
            int ready;
            while ((ready = ::poll(&p, 1, max_wait_ms)) < 0 && errno == EINTR) {
            }
            if (ready > 0)
                continue;
            may_wait_ = false;
            report(said_slow_,
                   "log file " + shown_ + ": its reader takes nothing; log lines are dropped until it does");
            return done;
        }
        report(said_error_, "cannot write log file " + shown_ + ": " + std::strerror(n < 0 ? errno : EIO));
        return done;
    }
    may_wait_ = true;
    return done;
}

void LogFileSink::sink_it_(const spdlog::details::log_msg &msg)
{
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    if (regular_ && fd_ && size_ > 0 && size_ + line.size() > max_size_) {
        rotate();
        size_ = 0;
    }
    if (!fd_)
        return;
    if (cut_) {
        if (write_all("\n", 1) != 1)
            return;
        cut_ = false;
    }
    const std::size_t done = write_all(line.data(), line.size());
    cut_ = done > 0 && done < line.size();
    size_ += done;
}

}  // namespace devhost::logging
