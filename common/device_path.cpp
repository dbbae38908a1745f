#include "common/device_path.hpp"

#include "common/output_file.hpp"

#include <devhost/unique_fd.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

namespace devhost::output {

namespace {

// The refusal of `st` (an entry of `dir_fd`), which lies in a
// directory others can write, or nullopt.
std::optional<std::string> untrusted_entry(int dir_fd, const struct stat &st)
{
    if (S_ISLNK(st.st_mode))
        return "a symbolic link in a directory others can write; not followed";
    if (auto refusal = planted(st))
        return refusal;
    struct stat dir {};
    if (::fstat(dir_fd, &dir) != 0 || !(dir.st_mode & S_ISVTX))
        return std::string("its directory can be written by others and is not sticky; not used");
    return std::nullopt;
}

}  // namespace

std::optional<std::string> device_path_refusal(const std::string &path)
{
    if (path.empty() || path.front() != '/')
        return std::nullopt;  // a scheme's name, not a file's
    std::vector<std::string> rest;
    push_components(rest, path);
    UniqueFd cur(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!cur)
        return std::string("/: ") + std::strerror(errno);
    std::string shown;  // the walked path, as the messages name it
    int links = 0;
    while (!rest.empty()) {
        const std::string name = rest.back();
        rest.pop_back();
        UniqueFd next(::openat(cur.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
        struct stat st {};
        if (!next || ::fstat(next.get(), &st) != 0)
            return std::nullopt;  // not there (yet), or no way on: the plugin's open reports it
        shown += "/" + name;
        if (others_can_write(cur.get()))
            if (auto refusal = untrusted_entry(cur.get(), st))
                return shown == path ? *refusal : shown + ": " + *refusal;
        if (S_ISLNK(st.st_mode)) {
            char target[4096];
            const ssize_t n = ::readlinkat(next.get(), "", target, sizeof target - 1);
            if (n <= 0)
                return std::nullopt;  // gone since: the plugin's open reports it
            if (++links > 40)
                return shown + ": " + std::strerror(ELOOP);
            target[n] = '\0';
            shown.erase(shown.rfind('/'));  // the target is named from the link's directory
            if (target[0] == '/') {  // from "/" again
                shown.clear();
                cur.reset(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
                if (!cur)
                    return std::string("/: ") + std::strerror(errno);
            }
            push_components(rest, target);
            continue;
        }
        if (!S_ISDIR(st.st_mode) && !rest.empty())
            return std::nullopt;  // ENOTDIR: the plugin's open reports it
        cur = std::move(next);
    }
    return std::nullopt;
}

}  // namespace devhost::output
