#include "common/text_file.hpp"

#include <devhost/unique_fd.hpp>

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace devhost::text {

std::optional<std::string> read_small_file(const std::filesystem::path &file, uint64_t max_bytes, FileRefusal &why)
{
    using Kind = FileRefusal::Kind;
    why = {};
    auto refuse = [&](Kind kind, int e = 0, uint64_t size = 0) -> std::optional<std::string> {
        why = {kind, e, size};
        return std::nullopt;
    };
    const UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd)
        return refuse(Kind::Open, errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return refuse(Kind::Read, errno);
    if (S_ISDIR(st.st_mode))
        return refuse(Kind::Directory);
    if (!S_ISREG(st.st_mode))
        return refuse(Kind::NotRegular);
    if (static_cast<uint64_t>(st.st_size) > max_bytes)
        return refuse(Kind::TooLarge, 0, static_cast<uint64_t>(st.st_size));
    std::string text;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return refuse(Kind::Read, errno);
        if (n == 0)
            return text;
        text.append(buf, static_cast<size_t>(n));
        if (text.size() > max_bytes)  // grew while being read
            return refuse(Kind::TooLarge);
    }
}

}  // namespace devhost::text
