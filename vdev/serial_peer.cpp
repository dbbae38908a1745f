// The pty side shared by the serial peers: see serial_peer.hpp.
#include "serial_peer.hpp"

#include "common/text.hpp"
#include "trusted_dir.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <poll.h>
#include <stdexcept>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

namespace devhost::vdev {

namespace fs = std::filesystem;

double monotonic_seconds()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

namespace {

std::runtime_error sys_error(const std::string &what)
{
    return std::runtime_error(what + ": " + std::strerror(errno));
}

}  // namespace

std::string unescape_serial(const std::string &s)
{
    // Read as the inside of a quoted string; an error names the text as
    // written, not the quoted form it was read as.
    std::string error;
    auto bytes = text::parse_data("\"" + s + "\"", error);
    if (!bytes)
        throw std::invalid_argument("'" + s + "': " + error);
    return std::string(bytes->begin(), bytes->end());
}

SerialPeer::SerialPeer(Context &ctx) : ctx_(ctx)
{
    link_ = ctx.get("link", ctx.dir() + "/" + ctx.name);
    delay_ = ctx.get_seconds("delay", 0);
    garbage_ = ctx.get_int("garbage", 0);
    hangup_after_ = ctx.get_int("hangup-after", 0);
    hold_ = ctx.get_bool("hold", false);
    if (link_.empty())
        throw std::invalid_argument("--link: empty path");
    if (garbage_ < 0 || garbage_ > 65536)
        throw std::invalid_argument("--garbage: expected 0 to 65536 bytes");
    if (hangup_after_ < 0)
        throw std::invalid_argument("--hangup-after: cannot be negative");
}

SerialPeer::~SerialPeer() { cleanup(); }

void SerialPeer::cleanup()
{
    if (linked_) {
        std::error_code ec;
        if (fs::read_symlink(link_, ec) == slave_path_)
            fs::remove(link_, ec);
        linked_ = false;
    }
    master_.reset();
    slave_.reset();
}

void SerialPeer::setup()
{
    master_.reset(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK));
    if (!master_)
        throw sys_error("posix_openpt");
    if (grantpt(master_.get()) != 0 || unlockpt(master_.get()) != 0)
        throw sys_error("unlocking the pty");
    char name[128];
    if (ptsname_r(master_.get(), name, sizeof name) != 0)
        throw sys_error("ptsname");
    slave_path_ = name;
    slave_.reset(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK));
    if (!slave_)
        throw sys_error(std::string("opening ") + name);
    // Raw on the slave, so that the line discipline neither echoes nor
    // translates what the device writes before it sets its own mode.
    struct termios t;
    if (tcgetattr(slave_.get(), &t) != 0)
        throw sys_error("tcgetattr");
    cfmakeraw(&t);
    t.c_cflag |= CLOCAL;
    if (tcsetattr(slave_.get(), TCSANOW, &t) != 0)
        throw sys_error("tcsetattr");
    if (hold_) {
        if (flock(slave_.get(), LOCK_EX | LOCK_NB) != 0)
            throw sys_error("flock on " + slave_path_);
        if (ioctl(slave_.get(), TIOCEXCL) != 0)
            throw sys_error("TIOCEXCL on " + slave_path_);
    }
}

void SerialPeer::publish()
{
    fs::path link(link_);
    std::error_code ec;
    // Its directory (/run/devhost/vdev by default): created 0755 whatever
    // the umask, and checked with every directory above it.
    trusted_dir::Error dir_err;
    if (link.has_parent_path() && !trusted_dir::open(fs::absolute(link.parent_path()).string(), 0755, dir_err))
        throw std::runtime_error("--link=" + link_ + ": " + dir_err.message);
    auto st = fs::symlink_status(link, ec);
    if (fs::exists(st)) {
        if (!fs::is_symlink(st))
            throw std::runtime_error("--link=" + link_ + ": exists and is not a symlink; not replacing it");
        fs::remove(link, ec);  // a stale link from an earlier run
    }
    fs::create_symlink(slave_path_, link, ec);
    if (ec)
        throw std::runtime_error("--link=" + link_ + ": " + ec.message());
    linked_ = true;
}

void SerialPeer::queue(Chunk c)
{
    if (!out_.empty())
        c.due = std::max(c.due, out_.back().due);
    out_.push_back(std::move(c));
}

void SerialPeer::reply(const std::string &bytes)
{
    std::string data;
    for (long long i = 0; i < garbage_; i++)
        data += char(0xF0 | (i & 0x0F));  // never CR, LF or text
    data += bytes;
    queue({monotonic_seconds() + delay_, data});
}

void SerialPeer::send_now(const std::string &bytes) { queue({monotonic_seconds(), bytes}); }

void SerialPeer::pause(double seconds) { queue({monotonic_seconds() + seconds, {}}); }

void SerialPeer::hang_up()
{
    ctx_.log("hanging up after " + std::to_string(received_) + " bytes received");
    cleanup();  // closes master (the device sees POLLHUP) and removes the link
    out_.clear();
}

int SerialPeer::run()
{
    ctx_.reject_unknown();
    setup();
    publish();
    ctx_.ready(link_);
    std::string buf(4096, '\0');
    for (;;) {
        double now = monotonic_seconds();
        // Run what is due: output chunks, then a hang-up.
        while (master_ && !out_.empty() && out_.front().due <= now) {
            Chunk &c = out_.front();
            if (c.hangup) {
                hang_up();
                break;
            }
            if (!c.bytes.empty()) {
                ssize_t n = ::write(master_.get(), c.bytes.data(), c.bytes.size());
                if (n < 0 && errno != EAGAIN && errno != EINTR)
                    throw sys_error("writing to the pty");
                if (n > 0)
                    c.bytes.erase(0, size_t(n));
                if (!c.bytes.empty())
                    break;  // the device is not reading: wait for POLLOUT
            }
            out_.pop_front();
        }
        int timeout = -1;
        short master_events = POLLIN;
        if (!out_.empty()) {
            double wait = out_.front().due - monotonic_seconds();
            if (wait <= 0)
                master_events |= POLLOUT;
            else
                timeout = int(wait * 1000) + 1;
        }
        struct pollfd p[2] = {{ctx_.stop_fd, POLLIN, 0}, {master_.get(), master_events, 0}};
        int n = poll(p, master_ ? 2 : 1, timeout);
        if (n < 0 && errno != EINTR)
            throw sys_error("poll");
        if (p[0].revents & POLLIN)
            break;
        if (!master_ || n <= 0)
            continue;
        if (p[1].revents & POLLIN) {
            ssize_t r = ::read(master_.get(), buf.data(), buf.size());
            if (r > 0) {
                std::string got(buf.data(), size_t(r));
                received_ += r;
                on_input(got);
                if (hangup_after_ > 0 && received_ >= hangup_after_ && !hangup_queued_) {
                    hangup_queued_ = true;
                    queue({monotonic_seconds() + delay_, {}, true});
                }
            } else if (r < 0 && errno != EAGAIN && errno != EINTR) {
                // EIO: nobody has the slave open; cannot happen while we keep
                // slave_, but do not spin if it does.
                usleep(20000);
            }
        } else if (p[1].revents & (POLLHUP | POLLERR)) {
            usleep(20000);
        }
    }
    cleanup();
    return 0;
}

}  // namespace devhost::vdev
