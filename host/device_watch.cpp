#include "device_watch.hpp"

#include "libsystemd.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <linux/netlink.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace devhost {

namespace {

constexpr uint32_t dir_events =
    IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

void add_to(int epoll, int fd)
{
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    ::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &ev);
}

// The kernel's uevent multicast group (1); udev's own (2) is sd-device's.
UniqueFd kernel_uevents()
{
    UniqueFd fd(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT));
    if (!fd)
        return fd;
    const int size = 1 << 20;  // a burst of events (a hub re-plugged) fits
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
        ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    sockaddr_nl addr{};
    addr.nl_family = AF_NETLINK;
    addr.nl_groups = 1;
    if (::bind(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0)
        fd.reset();
    return fd;
}

int on_udev_event(sd_device_monitor *, sd_device *, void *userdata)
{
    *static_cast<bool *>(userdata) = true;
    return 0;
}

}  // namespace

DeviceWatch::DeviceWatch() : epoll_(::epoll_create1(EPOLL_CLOEXEC))
{
    std::string events;
    std::string why;
    if (::access("/run/udev/control", F_OK) == 0 && !(sd_ = libsystemd(why)))
        spdlog::warn("udevd runs, but {}: watching the kernel's uevents instead", why);
    if (sd_ && sd_->sd_event_new(&event_) >= 0 && sd_->sd_device_monitor_new(&monitor_) >= 0 &&
        sd_->sd_device_monitor_attach_event(monitor_, event_) >= 0 &&
        sd_->sd_device_monitor_start(monitor_, on_udev_event, &udev_hint_) >= 0) {
        add_to(epoll_.get(), sd_->sd_event_get_fd(event_));
        events = "udev events";
    } else {
        if (sd_) {
            monitor_ = sd_->sd_device_monitor_unref(monitor_);
            event_ = sd_->sd_event_unref(event_);
        }
        uevent_ = kernel_uevents();
        if (uevent_) {
            add_to(epoll_.get(), uevent_.get());
            events = "kernel uevents";
        } else {
            events = std::string("no device events (") + std::strerror(errno) + ")";
        }
    }
    inotify_.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (inotify_)
        add_to(epoll_.get(), inotify_.get());
    source_ = events + (inotify_ ? " and inotify" : ", no inotify");
}

DeviceWatch::~DeviceWatch()
{
    if (sd_) {
        sd_->sd_device_monitor_unref(monitor_);
        sd_->sd_event_unref(event_);
    }
}

void DeviceWatch::watch(const std::string &path)
{
    if (!inotify_ || path.empty() || path.front() != '/')
        return;
    std::filesystem::path dir = std::filesystem::path(path).parent_path();
    struct stat st {};
    while (dir.has_relative_path() && (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)))
        dir = dir.parent_path();
    if (dirs_.count(dir.string()))
        return;
    const int wd = ::inotify_add_watch(inotify_.get(), dir.c_str(), dir_events);
    if (wd < 0) {
        spdlog::warn("cannot watch {} for devices coming and going: {}", dir.string(), std::strerror(errno));
        return;
    }
    dirs_[dir.string()] = wd;
}

bool DeviceWatch::drain()
{
    const bool uevents = drain_uevents();
    return drain_inotify() || uevents;
}

bool DeviceWatch::drain_uevents()
{
    bool any = false;
    if (event_) {
        udev_hint_ = false;
        for (int i = 0; i < 256 && sd_->sd_event_run(event_, 0) > 0; i++) {
        }
        return udev_hint_;
    }
    if (!uevent_)
        return false;
    char buf[8192];
    for (;;) {
        sockaddr_nl from{};
        iovec iov{buf, sizeof buf};
        msghdr msg{};
        msg.msg_name = &from;
        msg.msg_namelen = sizeof from;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        const ssize_t n = ::recvmsg(uevent_.get(), &msg, MSG_DONTWAIT);
        if (n < 0 && errno == ENOBUFS) {
            spdlog::warn("device events were lost (the socket's buffer overflowed); looking at every device again");
            any = true;
            continue;
        }
        if (n < 0)
            return any;
        if (from.nl_pid == 0)  // the kernel's; nobody else's counts
            any = true;
    }
}

bool DeviceWatch::drain_inotify()
{
    if (!inotify_)
        return false;
    bool any = false;
    alignas(inotify_event) char buf[8192];
    for (;;) {
        const ssize_t n = ::read(inotify_.get(), buf, sizeof buf);
        if (n <= 0)
            return any;
        for (ssize_t at = 0; at < n;) {
            const auto *e = reinterpret_cast<const inotify_event *>(buf + at);
            at += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
            any = true;
            if (e->mask & IN_Q_OVERFLOW)
                spdlog::warn("file events were lost (inotify's queue overflowed); looking at every device again");
            if (e->mask & IN_IGNORED)  // its directory went: watch(), called again, takes the one above
                for (auto it = dirs_.begin(); it != dirs_.end(); ++it)
                    if (it->second == e->wd) {
                        dirs_.erase(it);
                        break;
                    }
        }
    }
}

}  // namespace devhost
