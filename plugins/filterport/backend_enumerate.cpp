// The filterport class's enumerate: the ports (sockets) of the port
// directory, found by listing it, without connecting to any. See
// filterport_private.hpp (enumerate_ports) and README.md.
#include "filterport_private.hpp"

#include <devhost/plugin_util.h>
#include <devhost/port.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

namespace filterport {

std::string enumerate_dir()
{
    const char *env = std::getenv("DEVHOST_PORT_DIR");
    return env && env[0] == '/' ? std::string(env) : std::string(DEVHOST_PORT_DEFAULT_DIR);
}

namespace {

// "filter port \Name (served as uid U, mode 0600)": what the socket file
// tells without a connection (its owner is the uid that created it).
std::string describe(const std::string &name, const struct stat &st)
{
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return "filter port \\" + name + " (socket of uid " + std::to_string(st.st_uid) + ", mode " + mode + ")";
}

}  // namespace

devhost_status enumerate_ports(const std::string &dir, uint64_t deadline_ns, std::vector<FoundPort> &found,
                               devhost_error *err)
{
    devhost::UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) {
        int e = errno;
        if (e == ENOENT)
            return DEVHOST_OK;  // no directory: no port is served
        return devhost_fail(err, e == EACCES ? DEVHOST_E_ACCESS : DEVHOST_E_IO, e,
                            "filterport: enumerate: cannot read the port directory %s: %s", dir.c_str(),
                            std::strerror(e));
    }
    std::vector<std::string> names;
    if (DIR *d = fdopendir(::dup(fd.get()))) {  // the dup is closedir's
        while (struct dirent *e = readdir(d))
            if (e->d_name[0] != '.')
                names.emplace_back(e->d_name);
        closedir(d);
    }
    std::sort(names.begin(), names.end());
    for (const auto &name : names) {
        if (devhost_util_deadline_passed(deadline_ns))
            return devhost_fail(err, DEVHOST_E_TIMEOUT, ETIMEDOUT,
                                "filterport: enumerate: the deadline passed (%zu ports found by then)", found.size());
        struct stat st;
        if (::fstatat(fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISSOCK(st.st_mode))
            continue;
        found.push_back({dir + (dir.back() == '/' ? "" : "/") + name, describe(name, st)});
    }
    return DEVHOST_OK;
}

}  // namespace filterport
