// What sysfs and /proc know about a tty: its kernel name and driver, the USB
// device behind it, and which processes hold it (for "busy" messages).
#include "serial_private.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <limits.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace devhost::serial {

std::string read_line(const std::string &file)
{
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);
    return line;
}

std::string real_path(const std::string &p)
{
    char buf[PATH_MAX];
    return realpath(p.c_str(), buf) ? std::string(buf) : std::string();
}

std::string base_name(const std::string &p)
{
    auto slash = p.find_last_of('/');
    return slash == std::string::npos ? p : p.substr(slash + 1);
}

namespace {

// The driver named for a character major in /proc/tty/drivers.
std::string proc_driver(unsigned maj, unsigned min)
{
    std::ifstream in("/proc/tty/drivers");
    std::string line;
    while (std::getline(in, line)) {
        char name[64], node[128], range[32];
        unsigned m = 0;
        if (std::sscanf(line.c_str(), "%63s %127s %u %31s", name, node, &m, range) != 4 || m != maj)
            continue;
        unsigned lo = 0, hi = 0;
        int k = std::sscanf(range, "%u-%u", &lo, &hi);
        if (k == 1)
            hi = lo;
        if (k >= 1 && min >= lo && min <= hi)
            return name;
    }
    return {};
}

}  // namespace

bool usb_facts(const std::string &sysfs_device, TtyFacts &f)
{
    // Walk up from the tty's device to the USB device (it has idVendor).
    std::string up = real_path(sysfs_device);
    while (!up.empty() && up != "/sys" && up != "/sys/devices") {
        if (access((up + "/idVendor").c_str(), R_OK) == 0) {
            f.usb_vendor = read_line(up + "/idVendor");
            f.usb_product = read_line(up + "/idProduct");
            f.usb_serial = read_line(up + "/serial");
            f.usb_manufacturer = read_line(up + "/manufacturer");
            f.usb_product_name = read_line(up + "/product");
            return true;
        }
        up = up.substr(0, up.find_last_of('/'));
    }
    return false;
}

TtyFacts tty_facts(int fd)
{
    TtyFacts f;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return f;
    unsigned maj = major(st.st_rdev), min = minor(st.st_rdev);
    std::string dev = "/sys/dev/char/" + std::to_string(maj) + ":" + std::to_string(min);
    std::string real = real_path(dev);
    if (!real.empty()) {
        f.tty = base_name(real);
        std::string drv = real_path(dev + "/device/driver");
        if (!drv.empty())
            f.driver = base_name(drv);
        usb_facts(dev + "/device", f);
    } else {
        char name[64];
        if (ttyname_r(fd, name, sizeof name) == 0)
            f.tty = std::string(name).rfind("/dev/", 0) == 0 ? std::string(name + 5) : std::string(name);
    }
    if (f.driver.empty())
        f.driver = proc_driver(maj, min);
    return f;
}

std::vector<long> tty_holders(int fd, int self_fd)
{
    std::vector<long> pids;
    struct stat me;
    if (fstat(fd, &me) != 0)
        return pids;
    auto add = [&](long pid) {
        for (long p : pids)
            if (p == pid)
                return;
        pids.push_back(pid);
    };
    // flock holders: "1: FLOCK  ADVISORY  WRITE 1234 00:05:3 0 EOF".
    {
        std::ifstream in("/proc/locks");
        std::string line;
        while (std::getline(in, line)) {
            char kind[16], adv[16], mode[16];
            long pid = 0;
            unsigned dmaj = 0, dmin = 0;
            unsigned long ino = 0;
            const char *p = line.c_str();
            const char *colon = std::strchr(p, ':');
            if (!colon)
                continue;
            if (std::sscanf(colon + 1, "%15s %15s %15s %ld %x:%x:%lu", kind, adv, mode, &pid, &dmaj, &dmin, &ino) == 7 &&
                ino == me.st_ino && makedev(dmaj, dmin) == me.st_dev && pid > 0)
                add(pid);
        }
    }
    // Every process with the tty open (a TIOCEXCL holder is among them).
    std::vector<long> open_by;
    long self = long(getpid());
    if (DIR *proc = opendir("/proc")) {
        while (struct dirent *e = readdir(proc)) {
            char *end = nullptr;
            long pid = std::strtol(e->d_name, &end, 10);
            if (*end || pid <= 0)
                continue;
            std::string fddir = std::string("/proc/") + e->d_name + "/fd";
            DIR *fds = opendir(fddir.c_str());
            if (!fds)
                continue;
            while (struct dirent *d = readdir(fds)) {
                char *dend = nullptr;
                long n = std::strtol(d->d_name, &dend, 10);
                if (*dend || d->d_name[0] == '.')
                    continue;
                if (pid == self && n == self_fd)
                    continue;
                struct stat st;
                if (stat((fddir + "/" + d->d_name).c_str(), &st) == 0 && S_ISCHR(st.st_mode) &&
                    st.st_rdev == me.st_rdev) {
                    open_by.push_back(pid);
                    break;
                }
            }
            closedir(fds);
        }
        closedir(proc);
    }
    // A flock holder is the one that makes us busy, but /proc/locks names
    // the process that took the lock, which may have exited and left it to
    // another that shares the descriptor (`exec 9<>tty; flock 9`): keep the
    // lockers that still have the tty open, else name everyone who has.
    std::vector<long> lockers;
    for (long pid : pids)
        if (std::find(open_by.begin(), open_by.end(), pid) != open_by.end())
            lockers.push_back(pid);
    return lockers.empty() ? open_by : lockers;
}

std::string format_holders(const std::vector<long> &pids)
{
    if (pids.empty())
        return {};
    std::string s = pids.size() == 1 ? " (held by pid " : " (held by pids ";
    for (size_t i = 0; i < pids.size(); i++) {
        if (i)
            s += ", ";
        s += std::to_string(pids[i]);
        if (pids[i] == long(getpid()))
            s += " (this process)";
    }
    return s + ")";
}

}  // namespace devhost::serial
