// The log file (--log-file, [host] log-file): an spdlog sink that opens the
// file as output_file.hpp says (created 0640 whatever the umask, a planted
// symbolic link refused, a FIFO with no reader refused instead of waited
// for), rotates it at a size (FILE, FILE.1, ... by renaming inside the
// directory it opened), and never lets a slow reader stop the host: a line
// the reader does not take within a second is dropped, and later lines are
// dropped at once until one goes through again. Problems with the file are
// said once on stderr (the sink cannot log about itself).
#pragma once

#include <devhost/unique_fd.hpp>
#include <spdlog/sinks/base_sink.h>

#include <cstddef>
#include <filesystem>
#include <mutex>
#include <string>

namespace devhost::logging {

class LogFileSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    // Throws spdlog::spdlog_ex naming the file when it cannot be opened.
    LogFileSink(const std::filesystem::path &file, std::size_t max_size, std::size_t max_files);
    ~LogFileSink() override;
    LogFileSink(const LogFileSink &) = delete;
    LogFileSink &operator=(const LogFileSink &) = delete;

protected:
    void sink_it_(const spdlog::details::log_msg &msg) override;
    void flush_() override {}  // every line is written when it is logged

private:
    // Opens (or creates) the file's name in the directory; throws on failure.
    void open_file();
    // FILE.N-1 to FILE.N, ..., FILE to FILE.1, then a new FILE.
    void rotate();
    // The rotated name of index `i` (0: the file itself), as spdlog names
    // them: devhost.log, devhost.1.log, devhost.2.log...
    std::string rotated_name(std::size_t i) const;
    // Writes all of it, waiting for a slow reader as described above;
    // returns how much was written.
    std::size_t write_all(const char *data, std::size_t len);
    // Says `what` on stderr once per kind of problem.
    void report(bool &said, const std::string &what);

    std::string shown_;  // the file as the user named it
    std::string name_;   // its name in dir_fd_
    UniqueFd dir_fd_;
    UniqueFd fd_;
    bool regular_ = false;
    std::size_t size_ = 0;
    std::size_t max_size_, max_files_;
    bool may_wait_ = true;  // false after a line was dropped, until one goes through
    bool cut_ = false;      // the last line was cut short: start the next on a new line
    bool said_slow_ = false, said_error_ = false;
};

}  // namespace devhost::logging
