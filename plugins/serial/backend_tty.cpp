// Linux tty backend of the serial class: exclusive open (flock + TIOCEXCL),
// termios2 settings with read-back, deadline-driven I/O through poll, and
// control codes. See serial_private.hpp.
#include "serial_private.hpp"

#include <devhost/plugin_util.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

// termios2 (arbitrary baud rates) comes from the kernel headers; they clash
// with glibc's <termios.h>, so only ioctls are used here.
#include <asm/termbits.h>
#include <sys/ioctl.h>

static_assert(sizeof(struct termios2) <= 64, "saved_ buffer too small for termios2");

namespace devhost::serial {

namespace {

// The most one read takes (a tty's line buffer is 4 KiB).
constexpr size_t read_chunk = 4096;

// How long before close's deadline queued output stops being waited for and
// is discarded: room for the flush, the settings' restore and the final
// close (whose own wait for the UART's transmitter then has no queued bytes
// behind it, and is cut at the deadline: close_by_deadline).
constexpr uint64_t close_reserve_ns = 25 * 1000000ull;

const char *on_off(bool on) { return on ? "on" : "off"; }

// Status for an errno met while opening.
devhost_status open_status(int e)
{
    switch (e) {
    case ENOENT:
    case ENODEV:
    case ENXIO: return DEVHOST_E_NOT_FOUND;
    case EACCES:
    case EPERM:
    case EROFS: return DEVHOST_E_ACCESS;
    case EBUSY: return DEVHOST_E_BUSY;
    case EISDIR:
    case ENOTDIR:
    case ENOTTY: return DEVHOST_E_INVALID;
    default: return DEVHOST_E_IO;
    }
}

// The Bnnn code of a standard rate, or 0 (then BOTHER carries the rate).
tcflag_t standard_rate(uint32_t baud)
{
    static const struct { uint32_t baud; tcflag_t code; } rates[] = {
        {50, B50}, {75, B75}, {110, B110}, {134, B134}, {150, B150}, {200, B200}, {300, B300},
        {600, B600}, {1200, B1200}, {1800, B1800}, {2400, B2400}, {4800, B4800}, {9600, B9600},
        {19200, B19200}, {38400, B38400}, {57600, B57600}, {115200, B115200}, {230400, B230400},
        {460800, B460800}, {500000, B500000}, {576000, B576000}, {921600, B921600},
        {1000000, B1000000}, {1152000, B1152000}, {1500000, B1500000}, {2000000, B2000000},
        {2500000, B2500000}, {3000000, B3000000}, {3500000, B3500000}, {4000000, B4000000},
    };
    for (const auto &r : rates)
        if (r.baud == baud)
            return r.code;
    return 0;
}

// Unix98 pty slaves are majors 136..143.
bool is_pty_major(unsigned major) { return major >= 136 && major <= 143; }

Parity parity_of(const struct termios2 &t)
{
    if (!(t.c_cflag & PARENB))
        return Parity::none;
    bool odd = t.c_cflag & PARODD;
    if (t.c_cflag & CMSPAR)
        return odd ? Parity::mark : Parity::space;
    return odd ? Parity::odd : Parity::even;
}

int data_bits_of(const struct termios2 &t)
{
    switch (t.c_cflag & CSIZE) {
    case CS5: return 5;
    case CS6: return 6;
    case CS7: return 7;
    default: return 8;
    }
}

Flow flow_of(const struct termios2 &t)
{
    if (t.c_cflag & CRTSCTS)
        return Flow::rtscts;
    if (t.c_iflag & (IXON | IXOFF))
        return Flow::xonxoff;
    return Flow::none;
}

}  // namespace

Port::Port(int cancel_fd, const devhost_host_services *services, const devhost_host_device *host_device)
    : cancel_fd_(cancel_fd), services_(services), host_device_(host_device)
{
}

Port::~Port()
{
    if (fd_) {
        devhost_error ignored;
        devhost_util_error_init(&ignored);
        close(&ignored);
    }
}

uint64_t Port::hook_deadline() const { return devhost_hook_deadline(services_, host_device_); }

// The deadline for a transfer: the earlier of the hook's and its own
// timeout, shortened for reads by read-total-timeout.
uint64_t Port::deadline(int32_t timeout_ms, bool reading) const
{
    uint64_t d = devhost_util_deadline_min(hook_deadline(), devhost_util_deadline_ms(timeout_ms));
    if (reading && settings_.read_total_ms > 0)
        d = devhost_util_deadline_min(d, devhost_util_deadline_ms(settings_.read_total_ms));
    return d;
}

devhost_status Port::open(const std::string &name, const std::string &path, const Settings &settings,
                          devhost_error *err)
{
    name_ = name;
    path_ = path;
    who_ = "serial: " + path;
    settings_ = settings;

    // Look before opening: a missing path must stay missing, and anything
    // but a character device is not a tty (a FIFO would even block).
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
        int e = errno;
        return devhost_fail(err, open_status(e), e, "serial: cannot open %s: %s", path.c_str(), strerror(e));
    }
    if (!S_ISCHR(st.st_mode))
        return devhost_fail(err, DEVHOST_E_INVALID, ENOTTY, "serial: %s is not a tty (not a character device)",
                            path.c_str());
    is_pty_ = is_pty_major(major(st.st_rdev));

    // O_NONBLOCK for the open itself, so that a modem port without carrier
    // does not block, and kept (see below). Never O_CREAT.
    int flags = O_RDWR | O_NOCTTY | O_NONBLOCK | (settings.inherit ? 0 : O_CLOEXEC);
    fd_.reset(::open(path.c_str(), flags));
    if (!fd_) {
        int e = errno;
        if (e == EBUSY)
            return devhost_fail(err, DEVHOST_E_BUSY, e,
                                "serial: %s is busy: another program holds it exclusively (TIOCEXCL)",
                                path.c_str());
        return devhost_fail(err, open_status(e), e, "serial: cannot open %s: %s", path.c_str(), strerror(e));
    }
    struct termios2 t;
    if (ioctl(fd_.get(), TCGETS2, &t) != 0) {
        int e = errno;
        return devhost_fail(err, e == ENOTTY || e == EINVAL ? DEVHOST_E_INVALID : DEVHOST_E_IO, e,
                            "serial: %s is not a tty: %s", path.c_str(), strerror(e));
    }
    if (settings.exclusive) {
        devhost_status s = take_locks(err);
        if (s != DEVHOST_OK)
            return s;
    }
    std::memcpy(saved_, &t, sizeof t);
    saved_valid_ = true;

    // Transfers try read and write first and wait with poll (fd and cancel
    // handle, under the deadline) only on EAGAIN, so the descriptor stays
    // non-blocking while open in both modes and no transfer changes its flags.
    // Only a synchronous handle that a child inherits is made blocking, for
    // that child's sake; each write then makes it non-blocking for the call.
    nonblocking_ = settings.overlapped || !settings.inherit;
    if (!nonblocking_) {
        int fl = fcntl(fd_.get(), F_GETFL);
        if (fl < 0 || fcntl(fd_.get(), F_SETFL, fl & ~O_NONBLOCK) != 0) {
            int e = errno;
            return devhost_fail(err, DEVHOST_E_IO, e, "serial: %s: cannot make the handle synchronous: %s",
                                path.c_str(), strerror(e));
        }
        blocking_fl_ = fl & ~O_NONBLOCK;
    }
    devhost_status s = apply_settings(err);
    // Opened, exclusive and set up: the host holds the tty too, so that if
    // this process dies the tty is released (TIOCNXCL) and not left
    // exclusive, nor taken by another program in the gap. Without
    // exclusive there is nothing to hold, and a release would undo the
    // exclusive mode of whoever set it.
    if (s == DEVHOST_OK && excl_set_)
        shared_ = devhost_util_share_fd_or_warn(services_, host_device_, fd_.get(), "tty", who_.c_str());
    return s;
}

// flock and TIOCEXCL do not see each other, so take both, and also refuse a
// tty that someone else put in exclusive mode (root passes TIOCEXCL's check
// at open, so ask the tty with TIOCGEXCL).
devhost_status Port::take_locks(devhost_error *err)
{
    int excl = 0;
    if (ioctl(fd_.get(), TIOCGEXCL, &excl) == 0 && excl) {
        std::string who = format_holders(tty_holders(fd_.get(), fd_.get()));
        return devhost_fail(err, DEVHOST_E_BUSY, EBUSY,
                            "serial: %s is busy: another program holds it exclusively (TIOCEXCL)%s",
                            path_.c_str(), who.c_str());
    }
    if (flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK) {
            std::string who = format_holders(tty_holders(fd_.get(), fd_.get()));
            return devhost_fail(err, DEVHOST_E_BUSY, e, "serial: %s is busy: another program has it locked (flock)%s",
                                path_.c_str(), who.c_str());
        }
        return devhost_fail(err, DEVHOST_E_IO, e, "serial: %s: flock: %s", path_.c_str(), strerror(e));
    }
    if (ioctl(fd_.get(), TIOCEXCL) != 0) {
        int e = errno;
        return devhost_fail(err, DEVHOST_E_IO, e, "serial: %s: TIOCEXCL: %s", path_.c_str(), strerror(e));
    }
    excl_set_ = true;
    return DEVHOST_OK;
}

namespace {

// The termios2 for `s`, starting from `t` (the settings found at open):
// raw and binary-transparent, then the configured framing, flow, hupcl and
// rate.
struct termios2 termios_for(struct termios2 t, const Settings &s)
{
    // Raw, binary-transparent: no echo, no line editing, no translations.
    t.c_iflag &= ~tcflag_t(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON | IXOFF | IXANY);
    t.c_oflag &= ~tcflag_t(OPOST);
    t.c_lflag &= ~tcflag_t(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    t.c_cflag &= ~tcflag_t(CSIZE | PARENB | PARODD | CMSPAR | CSTOPB | CRTSCTS | CBAUD | (CBAUD << IBSHIFT));
    t.c_cflag |= CREAD | CLOCAL;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    switch (s.data_bits) {
    case 5: t.c_cflag |= CS5; break;
    case 6: t.c_cflag |= CS6; break;
    case 7: t.c_cflag |= CS7; break;
    default: t.c_cflag |= CS8; break;
    }
    switch (s.parity) {
    case Parity::none: break;
    case Parity::odd: t.c_cflag |= PARENB | PARODD; break;
    case Parity::even: t.c_cflag |= PARENB; break;
    case Parity::mark: t.c_cflag |= PARENB | CMSPAR | PARODD; break;
    case Parity::space: t.c_cflag |= PARENB | CMSPAR; break;
    }
    if (s.parity != Parity::none)
        t.c_iflag |= INPCK;
    else
        t.c_iflag &= ~tcflag_t(INPCK);
    if (s.stop_bits == 2)
        t.c_cflag |= CSTOPB;
    if (s.flow == Flow::rtscts)
        t.c_cflag |= CRTSCTS;
    else if (s.flow == Flow::xonxoff)
        t.c_iflag |= IXON | IXOFF;
    if (s.hupcl == Line::on)
        t.c_cflag |= HUPCL;
    else if (s.hupcl == Line::off)
        t.c_cflag &= ~tcflag_t(HUPCL);
    // A standard rate by its code (what other programs read back with
    // cfgetospeed); any other rate through BOTHER.
    tcflag_t code = standard_rate(s.baud);
    if (!code)
        code = BOTHER;
    t.c_cflag |= code | (code << IBSHIFT);
    t.c_ispeed = s.baud;
    t.c_ospeed = s.baud;
    return t;
}

// The read-back check: a setting the device did not take (`got` is what it
// reports) is an error naming it.
devhost_status check_taken(const struct termios2 &got, const Settings &s, const std::string &path, bool is_pty,
                           devhost_error *err)
{
    const char *pty_note = is_pty ? " (a Linux pty forces 8 data bits and no parity)" : "";
    // Drivers round rates to what their clock can make; allow 2%.
    uint32_t b = got.c_ospeed;
    if (b == 0 || (b > s.baud ? b - s.baud : s.baud - b) * 50 > s.baud)
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "serial: %s did not take baud=%u (it reports %u)",
                            path.c_str(), s.baud, b);
    if (data_bits_of(got) != s.data_bits)
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "serial: %s did not take data-bits=%d (it reports %d)%s",
                            path.c_str(), s.data_bits, data_bits_of(got), pty_note);
    if (parity_of(got) != s.parity)
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "serial: %s did not take parity=%s (it reports %s)%s",
                            path.c_str(), parity_name(s.parity), parity_name(parity_of(got)), pty_note);
    int stop = (got.c_cflag & CSTOPB) ? 2 : 1;
    if (stop != s.stop_bits)
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "serial: %s did not take stop-bits=%d (it reports %d)",
                            path.c_str(), s.stop_bits, stop);
    if (flow_of(got) != s.flow)
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "serial: %s did not take flow=%s (it reports %s)",
                            path.c_str(), flow_name(s.flow), flow_name(flow_of(got)));
    if (s.hupcl != Line::unchanged && bool(got.c_cflag & HUPCL) != (s.hupcl == Line::on))
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "serial: %s did not take hupcl=%s", path.c_str(),
                            on_off(s.hupcl == Line::on));
    if ((got.c_lflag & (ICANON | ECHO)) || (got.c_oflag & OPOST))
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "serial: %s did not take raw mode", path.c_str());
    return DEVHOST_OK;
}

}  // namespace

// Sets the termios built from the settings, reads it back (a setting the
// device did not take is an error naming it), then sets the modem lines
// asked for.
devhost_status Port::apply_settings(devhost_error *err)
{
    struct termios2 saved;
    std::memcpy(&saved, saved_, sizeof saved);
    const Settings &s = settings_;
    const struct termios2 t = termios_for(saved, s);
    if (ioctl(fd_.get(), TCSETS2, &t) != 0) {
        int e = errno;
        return devhost_fail(err, e == EINVAL ? DEVHOST_E_INVALID : DEVHOST_E_IO, e,
                            "serial: %s refused the settings (baud=%u): %s", path_.c_str(), s.baud, strerror(e));
    }
    struct termios2 got;
    if (ioctl(fd_.get(), TCGETS2, &got) != 0) {
        int e = errno;
        return devhost_fail(err, DEVHOST_E_IO, e, "serial: %s: cannot read the settings back: %s", path_.c_str(),
                            strerror(e));
    }
    devhost_status st = check_taken(got, s, path_, is_pty_, err);
    if (st != DEVHOST_OK)
        return st;
    if (s.dtr != Line::unchanged) {
        st = set_lines(TIOCM_DTR, s.dtr == Line::on, "dtr", err);
        if (st != DEVHOST_OK)
            return st;
    }
    if (s.rts != Line::unchanged) {
        st = set_lines(TIOCM_RTS, s.rts == Line::on, "rts", err);
        if (st != DEVHOST_OK)
            return st;
    }
    return DEVHOST_OK;
}

devhost_status Port::set_lines(int bits, bool on, const char *what, devhost_error *err)
{
    if (ioctl(fd_.get(), on ? TIOCMBIS : TIOCMBIC, &bits) != 0) {
        int e = errno;
        if (e == ENOTTY || e == EINVAL)
            return devhost_fail(err, DEVHOST_E_UNSUPPORTED, e, "serial: %s has no modem lines: cannot set %s=%s%s",
                                path_.c_str(), what, on_off(on), is_pty_ ? " (a Linux pty has none)" : "");
        if (e == EIO || e == ENXIO)
            return removed(e, what, err);
        return devhost_fail(err, DEVHOST_E_IO, e, "serial: %s: setting %s=%s: %s", path_.c_str(), what, on_off(on),
                            strerror(e));
    }
    int now_bits = 0;
    if (ioctl(fd_.get(), TIOCMGET, &now_bits) == 0 && bool(now_bits & bits) != on)
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "serial: %s did not take %s=%s", path_.c_str(), what,
                            on_off(on));
    return DEVHOST_OK;
}

devhost_status Port::get_lines(int &bits, devhost_error *err)
{
    if (ioctl(fd_.get(), TIOCMGET, &bits) != 0) {
        int e = errno;
        if (e == ENOTTY || e == EINVAL)
            return devhost_fail(err, DEVHOST_E_UNSUPPORTED, e, "serial: %s has no modem lines%s", path_.c_str(),
                                is_pty_ ? " (a Linux pty has none)" : "");
        if (e == EIO || e == ENXIO)
            return removed(e, "reading the modem lines", err);
        return devhost_fail(err, DEVHOST_E_IO, e, "serial: %s: reading the modem lines: %s", path_.c_str(),
                            strerror(e));
    }
    return DEVHOST_OK;
}

devhost_status Port::removed(int os_errno, const char *doing, devhost_error *err)
{
    gone_ = true;
    return devhost_fail(err, DEVHOST_E_REMOVED, os_errno, "serial: %s went away while %s (hang-up)", path_.c_str(),
                        doing);
}

devhost_status Port::close(devhost_error *err)
{
    if (!fd_)
        return DEVHOST_OK;
    devhost_status status = DEVHOST_OK;
    const uint64_t deadline_ns = hook_deadline();
    if (!gone_) {
        // First, while the configured settings still hold (the bytes go
        // out as they were written), what is queued gets until shortly
        // before the deadline.
        settle_output(deadline_ns);
        if (saved_valid_ && ioctl(fd_.get(), TCSETS2, saved_) != 0) {
            int e = errno;
            if (e != EIO && e != ENXIO)
                status = devhost_fail(err, DEVHOST_E_IO, e, "serial: %s: cannot restore the original settings: %s",
                                      path_.c_str(), strerror(e));
        }
        // TIOCEXCL lives on the tty, not the fd: undo it, or the tty stays
        // exclusive for as long as anyone else keeps it open.
        if (excl_set_)
            ioctl(fd_.get(), TIOCNXCL);
    }
    // The final close (it also drops the flock) still waits in the kernel
    // for the UART's transmitter to empty; it is cut at the deadline.
    const Tx tx = deadline_ns != DEVHOST_DEADLINE_NONE && !gone_ ? transmitter() : Tx::empty;
    // The host's copy goes first, so that this close stays the last one.
    if (shared_)
        devhost_util_unshare_fd(services_, host_device_, "tty", who_.c_str());
    shared_ = false;
    const TtyClose closed = close_by_deadline(fd_.release(), deadline_ns);
    if (!closed.unarmed.empty())
        devhost_logf(services_, host_device_, DEVHOST_LOG_WARN,
                     "serial: %s: close could not be cut at its deadline (%s): the kernel's closing wait applied",
                     path_.c_str(), closed.unarmed.c_str());
    // Cut: it ended at the deadline with the transmitter busy (the signal
    // cut the wait, at once if it was already due); where the driver cannot
    // tell, when it began before the deadline and ran into it.
    if (closed.late && (tx == Tx::busy || (tx == Tx::unknown && !closed.began_late)))
        devhost_logf(services_, host_device_, DEVHOST_LOG_WARN,
                     "serial: %s: the kernel was still sending the last bytes (the transmitter's FIFO) when close's "
                     "deadline came; close was cut there and they may be lost",
                     path_.c_str());
    return status;
}

Port::Tx Port::transmitter() const
{
    if (is_pty_)
        return Tx::empty;  // a pty has none, and its close never waits
    unsigned lsr = 0;
    if (ioctl(fd_.get(), TIOCSERGETLSR, &lsr) != 0)
        return Tx::unknown;
    return (lsr & TIOCSER_TEMT) ? Tx::empty : Tx::busy;
}

void Port::settle_output(uint64_t deadline_ns)
{
    int queued = 0;
    if (deadline_ns == DEVHOST_DEADLINE_NONE || ioctl(fd_.get(), TIOCOUTQ, &queued) != 0 || queued <= 0)
        return;
    const uint64_t now = devhost_util_now_ns();
    const uint64_t stop = deadline_ns > now + close_reserve_ns ? deadline_ns - close_reserve_ns : now;
    // Look every 10 ms; a hang-up or the cancel handle ends the wait too.
    while (queued > 0 && devhost_util_now_ns() < stop) {
        short revents = 0;
        uint64_t tick = devhost_util_deadline_min(stop, devhost_util_deadline_ms(10));
        devhost_status s = devhost_util_wait(fd_.get(), 0, cancel_fd_, tick, &revents, nullptr, nullptr, nullptr);
        if (s == DEVHOST_E_CANCELLED || (s == DEVHOST_OK && (revents & (POLLHUP | POLLERR))))
            break;
        if (ioctl(fd_.get(), TIOCOUTQ, &queued) != 0)
            return;
    }
    if (queued <= 0)
        return;
    // Not closing_wait (TIOCSSERIAL): it belongs to the port and outlives
    // this close, changing every later user's close.
    if (ioctl(fd_.get(), TCFLSH, TCOFLUSH) == 0)
        devhost_logf(services_, host_device_, DEVHOST_LOG_WARN,
                     "serial: %s: close discarded %d bytes of output that could not be sent by its deadline",
                     path_.c_str(), queued);
}

devhost_status Port::wait(short events, uint64_t deadline_ns, devhost_error *err, const char *doing)
{
    short revents = 0;
    devhost_status s = devhost_util_wait(fd_.get(), events, cancel_fd_, deadline_ns, &revents, err, who_.c_str(), doing);
    if (s != DEVHOST_OK)
        return s;
    if (revents & POLLNVAL)
        return devhost_fail(err, DEVHOST_E_IO, EBADF, "serial: %s: handle is not valid", path_.c_str());
    // Readable data is handed out before a hang-up is reported: the read
    // that follows tells which (data, end of file, EIO, or EAGAIN with
    // hup_seen_ set).
    hup_seen_ = false;
    if ((events & POLLIN) && (revents & POLLIN)) {
        hup_seen_ = (revents & (POLLHUP | POLLERR)) != 0;
        return DEVHOST_OK;
    }
    if (revents & (POLLHUP | POLLERR))
        return removed(0, doing, err);
    return DEVHOST_OK;
}

devhost_status Port::read_some(size_t max, devhost_error *err)
{
    // A tty hands out at most its 4 KiB line buffer per read; reading into a
    // stack buffer spares zero-filling pending_ for bytes that never come.
    uint8_t buf[read_chunk];
    size_t want = std::min(max, sizeof buf);
    ssize_t n;
    do
        n = ::read(fd_.get(), buf, want);
    while (n < 0 && errno == EINTR);
    int e = errno;
    if (n > 0) {
        pending_.insert(pending_.end(), buf, buf + n);
        return DEVHOST_OK;
    }
    if (n == 0)
        return removed(0, "reading", err);  // a hung-up tty reads as end of file
    if (e == EAGAIN)
        return hup_seen_ ? removed(0, "reading", err) : DEVHOST_OK;
    if (e == EIO || e == ENXIO || e == ENODEV)
        return removed(e, "reading", err);
    return devhost_fail(err, DEVHOST_E_IO, e, "serial: %s: read: %s", path_.c_str(), strerror(e));
}

devhost_status Port::write_all(devhost_transfer *xfer, uint64_t deadline_ns, bool poll_first, devhost_error *err)
{
    xfer->out_done = 0;
    // Wait for room before a write when asked to, and after a write the tty
    // took only part of (or none of: EAGAIN); otherwise write at once. The
    // descriptor is non-blocking, so no write blocks past the deadline.
    bool wait_first = poll_first;
    while (xfer->out_done < xfer->out_len) {
        if (wait_first) {
            devhost_status s = wait(POLLOUT, deadline_ns, err, "writing");
            if (s != DEVHOST_OK)
                return s;
        }
        // A blocking tty write would wait until every byte is queued, however
        // long: an inherited synchronous handle is made non-blocking for this
        // one call.
        if (!nonblocking_)
            fcntl(fd_.get(), F_SETFL, blocking_fl_ | O_NONBLOCK);
        ssize_t n = ::write(fd_.get(), xfer->out + xfer->out_done, xfer->out_len - xfer->out_done);
        int write_errno = errno;
        if (!nonblocking_)
            fcntl(fd_.get(), F_SETFL, blocking_fl_);
        errno = write_errno;
        if (n > 0) {
            xfer->out_done += size_t(n);
            wait_first = true;  // anything left did not fit
            continue;
        }
        int e = errno;
        if (n < 0 && e == EINTR) {
            wait_first = false;
            continue;
        }
        if (n < 0 && e == EAGAIN) {
            wait_first = true;
            continue;
        }
        if (e == EIO || e == ENXIO || e == ENODEV || e == EPIPE)
            return removed(e, "writing", err);
        return devhost_fail(err, DEVHOST_E_IO, e, "serial: %s: write: %s", path_.c_str(), strerror(e));
    }
    return DEVHOST_OK;
}

static size_t find_delimiter(const std::vector<uint8_t> &buf, const uint8_t *delim, size_t len, size_t from)
{
    if (len == 0 || buf.size() < len)
        return SIZE_MAX;
    auto it = std::search(buf.begin() + std::min(from, buf.size()), buf.end(), delim, delim + len);
    return it == buf.end() ? SIZE_MAX : size_t(it - buf.begin());
}

// One read_op in progress: the kind of read, the caller's buffer, what is
// handed out of pending_, and where the delimiter search got to.
struct Port::Read {
    Port &port;
    devhost_transfer *xfer;
    devhost_error *err;
    const bool until;  // up to a delimiter (READ_UNTIL, or a REQUEST with one)
    const bool exact;  // READ_EXACT: the whole buffer
    const size_t cap;
    const uint64_t interval_ns;  // read-interval-timeout, 0: none
    size_t searched = 0;         // pending_ before this has no delimiter
    // Whether to read before waiting: yes at first (the bytes may be there
    // already) unless the caller knows they cannot be (a reply right after
    // its request), and again after a read that filled its chunk. A blocking
    // (inherited synchronous) handle always waits first.
    bool try_read;

    Read(Port &p, devhost_transfer *x, bool poll_first, devhost_error *e)
        : port(p), xfer(x), err(e),
          until(x->op == DEVHOST_OP_READ_UNTIL || (x->op == DEVHOST_OP_REQUEST && x->delimiter_len > 0)),
          exact(x->op == DEVHOST_OP_READ_EXACT), cap(x->in_capacity),
          interval_ns(uint64_t(p.settings_.read_interval_ms) * 1000000u), try_read(p.nonblocking_ && !poll_first)
    {
    }

    // Hands out n bytes of pending_ into the caller's buffer.
    void hand_out(size_t n)
    {
        // n may be 0 with pending_ empty (its data() then null): memcpy's
        // pointers must be valid even for 0 bytes.
        if (n > 0)
            std::memcpy(xfer->in, port.pending_.data(), n);
        xfer->in_len = n;
        port.pending_.erase(port.pending_.begin(), port.pending_.begin() + long(n));
    }

    // Hands out what there is, up to the buffer's size.
    void hand_out_all() { hand_out(std::min(cap, port.pending_.size())); }

    // How much the next read may take: what the buffer has room for (and
    // for a delimiter straddling its end).
    size_t room() const
    {
        const size_t pending = port.pending_.size();
        size_t r = until ? cap - std::min(cap, pending) + xfer->delimiter_len : cap - std::min(cap, pending);
        return std::max<size_t>(r, 1);
    }

    // One read_some; try_read says whether it filled its chunk. A failure
    // hands out what arrived.
    devhost_status read_more()
    {
        size_t want = std::min(room(), read_chunk);
        size_t before = port.pending_.size();
        devhost_status rs = port.read_some(want, err);
        try_read = port.nonblocking_ && port.pending_.size() - before == want;
        if (rs != DEVHOST_OK)
            hand_out_all();
        return rs;
    }

    // Whether pending_ already ends the read (then true, with its status):
    // the delimiter, a full buffer, or for a plain read any byte (every
    // byte up to the buffer's size when read-interval-timeout is set).
    bool complete(devhost_status &status)
    {
        std::vector<uint8_t> &pending = port.pending_;
        status = DEVHOST_OK;
        if (until) {
            size_t at = find_delimiter(pending, xfer->delimiter, xfer->delimiter_len, searched);
            if (at != SIZE_MAX && at + xfer->delimiter_len <= cap) {
                hand_out(at + xfer->delimiter_len);
                return true;
            }
            if (pending.size() >= cap) {
                hand_out(cap);
                status = devhost_fail(err, DEVHOST_E_PROTOCOL, 0,
                                      "serial: %s: no delimiter within %zu bytes (the read buffer is full)",
                                      port.path_.c_str(), cap);
                return true;
            }
            searched = pending.size() >= xfer->delimiter_len ? pending.size() - xfer->delimiter_len + 1 : 0;
            return false;
        }
        if (exact) {
            if (pending.size() < cap)
                return false;
            hand_out(cap);
            return true;
        }
        if (!pending.empty() && (interval_ns == 0 || pending.size() >= cap)) {
            hand_out_all();
            return true;
        }
        return false;
    }

    // A wait for more bytes ended with `s` (not OK). After the first byte
    // the wait was cut to read-interval-timeout (`interval_wait`): the line
    // going quiet that long ends a plain read with what came, and fails the
    // others. Otherwise what arrived is handed out (in_len tells how far
    // the read got) and the wait's status returned.
    devhost_status wait_failed(devhost_status s, bool interval_wait, uint64_t deadline_ns)
    {
        if (s == DEVHOST_E_TIMEOUT && interval_wait && !devhost_util_deadline_passed(deadline_ns)) {
            if (!until && !exact) {
                hand_out_all();
                return DEVHOST_OK;
            }
            size_t got = port.pending_.size();
            hand_out(std::min(cap, got));
            return devhost_fail(err, DEVHOST_E_TIMEOUT, ETIMEDOUT,
                                "serial: %s: read-interval-timeout (%lld ms) passed after %zu bytes",
                                port.path_.c_str(), (long long)port.settings_.read_interval_ms, got);
        }
        if (s == DEVHOST_E_TIMEOUT || s == DEVHOST_E_REMOVED || s == DEVHOST_E_CANCELLED)
            hand_out_all();
        if (s == DEVHOST_E_TIMEOUT)
            return devhost_fail(err, DEVHOST_E_TIMEOUT, ETIMEDOUT,
                                "serial: %s: timed out reading (%zu bytes received%s)", port.path_.c_str(),
                                xfer->in_len, until ? ", no delimiter" : exact ? ", fewer than asked" : "");
        return s;
    }
};

devhost_status Port::read_op(devhost_transfer *xfer, uint64_t deadline_ns, bool poll_first, devhost_error *err)
{
    xfer->in_len = 0;
    Read r(*this, xfer, poll_first, err);
    if (r.cap == 0 || !xfer->in)
        return devhost_fail(err, DEVHOST_E_INVALID, EINVAL, "serial: %s: read with no buffer (capacity 0)",
                            path_.c_str());
    if (r.until && (!xfer->delimiter || xfer->delimiter_len == 0))
        return devhost_fail(err, DEVHOST_E_INVALID, EINVAL, "serial: %s: read until needs a delimiter", path_.c_str());
    hup_seen_ = false;
    for (;;) {
        devhost_status done;
        if (r.complete(done))
            return done;
        if (r.try_read) {
            size_t before = pending_.size();
            devhost_status rs = r.read_more();
            if (rs != DEVHOST_OK)
                return rs;
            if (pending_.size() > before)
                continue;
        }
        // Wait for more: after the first byte, at most read-interval-timeout.
        uint64_t d = deadline_ns;
        bool interval_wait = r.interval_ns && !pending_.empty();
        if (interval_wait)
            d = devhost_util_deadline_min(d, devhost_util_now_ns() + r.interval_ns);
        devhost_status s = wait(POLLIN, d, err, "reading");
        if (s != DEVHOST_OK)
            return r.wait_failed(s, interval_wait, deadline_ns);
        s = r.read_more();
        if (s != DEVHOST_OK)
            return s;
    }
}

devhost_status Port::transfer(devhost_transfer *xfer, devhost_error *err)
{
    if (!fd_)
        return devhost_fail(err, DEVHOST_E_STATE, 0, "serial: %s is not open", path_.c_str());
    xfer->out_done = 0;
    xfer->in_len = 0;
    if (gone_)
        return devhost_fail(err, DEVHOST_E_REMOVED, ENXIO, "serial: %s went away earlier (hang-up)", path_.c_str());
    switch (xfer->op) {
    case DEVHOST_OP_WRITE:
        // Back-to-back writes (streaming) may find the tty's buffer full:
        // wait for room first. Measured: writing first there made 4 KiB
        // streaming slower (0.86 -> 0.71 of a plain blocking write), as the
        // writer raced the reader into small partial writes.
        return write_all(xfer, deadline(xfer->timeout_ms, false), true, err);
    case DEVHOST_OP_READ:
    case DEVHOST_OP_READ_EXACT:
    case DEVHOST_OP_READ_UNTIL:
        return read_op(xfer, deadline(xfer->timeout_ms, true), false, err);
    case DEVHOST_OP_REQUEST: {
        uint64_t d = deadline(xfer->timeout_ms, false);
        // A request follows its previous reply, so the line is idle: write
        // at once (write, poll, read: what a plain loop does).
        devhost_status s = write_all(xfer, d, false, err);
        if (s != DEVHOST_OK)
            return s;
        uint64_t rd = deadline(xfer->timeout_ms, true);
        // The reply cannot be there yet: wait before the first read.
        return read_op(xfer, devhost_util_deadline_min(d, rd), true, err);
    }
    case DEVHOST_OP_CONTROL:
        return control(xfer, deadline(xfer->timeout_ms, false), err);
    default:
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "serial: operation %u is not supported", xfer->op);
    }
}

namespace {

// The modem lines as control get-modem-lines and the modem-lines info key
// show them: "dtr=on rts=off cts=... dsr=... dcd=... ri=...".
std::string lines_text(int bits)
{
    return std::string("dtr=") + on_off(bits & TIOCM_DTR) + " rts=" + on_off(bits & TIOCM_RTS) +
           " cts=" + on_off(bits & TIOCM_CTS) + " dsr=" + on_off(bits & TIOCM_DSR) + " dcd=" + on_off(bits & TIOCM_CD) +
           " ri=" + on_off(bits & TIOCM_RI);
}

// A control's text output into the transfer's input buffer, whole or not
// at all.
devhost_status put_text(devhost_transfer *xfer, const std::string &text, const std::string &path, devhost_error *err)
{
    if (text.size() > xfer->in_capacity || (!xfer->in && !text.empty()))
        return devhost_fail(err, DEVHOST_E_INVALID, EINVAL,
                            "serial: %s: the control's output needs %zu bytes, the buffer has %zu", path.c_str(),
                            text.size(), xfer->in_capacity);
    if (!text.empty())
        std::memcpy(xfer->in, text.data(), text.size());
    xfer->in_len = text.size();
    return DEVHOST_OK;
}

}  // namespace

devhost_status Port::control_failed(const char *what, devhost_error *err)
{
    int e = errno;
    if (e == EIO || e == ENXIO || e == ENODEV)
        return removed(e, what, err);
    return devhost_fail(err, DEVHOST_E_IO, e, "serial: %s: %s: %s", path_.c_str(), what, strerror(e));
}

devhost_status Port::control(devhost_transfer *xfer, uint64_t deadline_ns, devhost_error *err)
{
    switch (xfer->control_code) {
    case control_set_dtr: return set_lines(TIOCM_DTR, true, "dtr", err);
    case control_clear_dtr: return set_lines(TIOCM_DTR, false, "dtr", err);
    case control_set_rts: return set_lines(TIOCM_RTS, true, "rts", err);
    case control_clear_rts: return set_lines(TIOCM_RTS, false, "rts", err);
    case control_get_modem_lines: {
        int bits = 0;
        devhost_status s = get_lines(bits, err);
        if (s != DEVHOST_OK)
            return s;
        return put_text(xfer, lines_text(bits), path_, err);
    }
    case control_send_break: return send_break(xfer, deadline_ns, err);
    case control_flush_input:
        pending_.clear();
        if (ioctl(fd_.get(), TCFLSH, TCIFLUSH) != 0)
            return control_failed("flush-input", err);
        return DEVHOST_OK;
    case control_flush_output:
        if (ioctl(fd_.get(), TCFLSH, TCOFLUSH) != 0)
            return control_failed("flush-output", err);
        return DEVHOST_OK;
    case control_drain: return drain(deadline_ns, err);
    default:
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0, "serial: control code %u is not supported",
                            xfer->control_code);
    }
}

devhost_status Port::send_break(devhost_transfer *xfer, uint64_t deadline_ns, devhost_error *err)
{
    // Optional input: the break's length in milliseconds, as text.
    long ms = 250;
    if (xfer->out_len) {
        std::string arg(reinterpret_cast<const char *>(xfer->out), xfer->out_len);
        char *end = nullptr;
        ms = std::strtol(arg.c_str(), &end, 10);
        if (arg.empty() || *end || ms < 1 || ms > 10000)
            return devhost_fail(err, DEVHOST_E_INVALID, EINVAL,
                                "serial: send-break: '%s' is not a duration in ms from 1 to 10000", arg.c_str());
    }
    if (is_pty_)
        return devhost_fail(err, DEVHOST_E_UNSUPPORTED, 0,
                            "serial: %s cannot send a break (a Linux pty has no break condition)", path_.c_str());
    // TIOCSBRK/TIOCCBRK rather than tcsendbreak: the latter first waits,
    // unbounded, for output to drain.
    if (ioctl(fd_.get(), TIOCSBRK) != 0)
        return control_failed("send-break", err);
    // Hold it for `ms` unless cancelled (a wait on nothing but the cancel
    // handle, until the break's end), and never past the deadline.
    const uint64_t end = devhost_util_deadline_ms(ms);
    bool cancelled = devhost_util_wait(-1, 0, cancel_fd_, devhost_util_deadline_min(end, deadline_ns), nullptr,
                                       nullptr, nullptr, nullptr) == DEVHOST_E_CANCELLED;
    if (ioctl(fd_.get(), TIOCCBRK) != 0)
        return control_failed("send-break", err);
    if (cancelled)
        return devhost_fail(err, DEVHOST_E_CANCELLED, ECANCELED, "serial: %s: cancelled during a break",
                            path_.c_str());
    if (deadline_ns < end)
        return devhost_fail(err, DEVHOST_E_TIMEOUT, ETIMEDOUT,
                            "serial: %s: the break was cut short at the deadline (%ld ms asked)", path_.c_str(), ms);
    return DEVHOST_OK;
}

devhost_status Port::drain(uint64_t deadline_ns, devhost_error *err)
{
    // tcdrain has no deadline: poll the output queue instead.
    for (;;) {
        int queued = 0;
        if (ioctl(fd_.get(), TIOCOUTQ, &queued) != 0)
            return control_failed("drain", err);
        if (queued <= 0)
            return DEVHOST_OK;
        if (devhost_util_deadline_passed(deadline_ns))
            return devhost_fail(err, DEVHOST_E_TIMEOUT, ETIMEDOUT,
                                "serial: %s: timed out draining (%d bytes still queued)", path_.c_str(), queued);
        // Look again in 10 ms, or at a hang-up or cancel.
        short revents = 0;
        uint64_t tick = devhost_util_deadline_min(deadline_ns, devhost_util_deadline_ms(10));
        devhost_status s = devhost_util_wait(fd_.get(), 0, cancel_fd_, tick, &revents, nullptr, nullptr, nullptr);
        if (s == DEVHOST_E_CANCELLED)
            return devhost_fail(err, DEVHOST_E_CANCELLED, ECANCELED, "serial: %s: cancelled while draining",
                                path_.c_str());
        if (s == DEVHOST_OK && (revents & (POLLHUP | POLLERR)))
            return removed(0, "draining", err);
    }
}

devhost_status Port::info(const devhost_info_sink *sink, devhost_error *err)
{
    auto put = [&](const char *k, const std::string &v) { sink->put(sink->context, k, v.c_str()); };
    put("name", name_);
    put("path", path_);
    if (!fd_)
        return devhost_fail(err, DEVHOST_E_STATE, 0, "serial: %s is not open", path_.c_str());
    TtyFacts f = tty_facts(fd_.get());
    if (!f.tty.empty())
        put("tty", f.tty);
    if (!f.driver.empty())
        put("driver", f.driver);
    int fdfl = fcntl(fd_.get(), F_GETFD);
    put("mode", settings_.overlapped ? "overlapped (non-blocking)" : "synchronous (blocking)");
    put("inherit", (fdfl >= 0 && (fdfl & FD_CLOEXEC)) ? "false" : "true");
    put("exclusive", settings_.exclusive ? "true" : "false");
    struct termios2 t;
    if (ioctl(fd_.get(), TCGETS2, &t) == 0) {
        put("baud", std::to_string(t.c_ospeed));
        put("data-bits", std::to_string(data_bits_of(t)));
        put("parity", parity_name(parity_of(t)));
        put("stop-bits", (t.c_cflag & CSTOPB) ? "2" : "1");
        put("flow", flow_name(flow_of(t)));
        put("hupcl", (t.c_cflag & HUPCL) ? "on" : "off");
    } else if (errno == EIO || errno == ENXIO) {
        put("state", "removed");
    }
    put("read-total-timeout", std::to_string(settings_.read_total_ms) + "ms");
    put("read-interval-timeout", std::to_string(settings_.read_interval_ms) + "ms");
    int bits = 0;
    if (ioctl(fd_.get(), TIOCMGET, &bits) == 0)
        put("modem-lines", lines_text(bits));
    else
        put("modem-lines", is_pty_ ? "unsupported (a Linux pty has none)" : "unsupported");
    put("buffered", std::to_string(pending_.size()));
    if (!f.usb_vendor.empty()) {
        put("usb-vendor", f.usb_vendor);
        put("usb-product", f.usb_product);
        if (!f.usb_serial.empty())
            put("usb-serial", f.usb_serial);
        if (!f.usb_manufacturer.empty())
            put("usb-manufacturer", f.usb_manufacturer);
        if (!f.usb_product_name.empty())
            put("usb-product-name", f.usb_product_name);
    }
    return DEVHOST_OK;
}

}  // namespace devhost::serial
