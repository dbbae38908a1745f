// The close signal: a tty's final close(2) cut at the hook's deadline.
//
// The kernel's close of a tty waits for the transmitter to empty:
// serial-core's uart_wait_until_sent up to twice the FIFO's time (6.4 s for
// a 16-byte FIFO at 50 baud), USB serial's generic wait (ftdi_sio, pl2303,
// cp210x...) up to the port's closing_wait (30 s by default), e.g. while
// CTS holds the transmitter. No ioctl bounds that wait for one close only
// (closing_wait belongs to the port and outlives us), but both waits end
// when a signal is pending for the closing thread. So close(2) runs with a
// POSIX timer that sends SIGRTMAX-4 to this thread at the deadline (and
// every 5 ms after it, in case the first one lands just before the kernel
// starts waiting), the signal unblocked in this thread only for the call.
// Its handler is empty, installed once while the process has none (as
// parallel does for SIGRTMAX-3, a signal of its own so that neither
// plugin's unload takes the other's handler away), and given back by the
// plugin's unload hook.
#include "serial_private.hpp"

#include <devhost/plugin_util.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <mutex>
#include <pthread.h>
#include <unistd.h>

// glibc before 2.35 names the thread id of SIGEV_THREAD_ID only this way.
#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

namespace devhost::serial {

namespace {

// After the first expiry at the deadline, again this often.
constexpr long repeat_ns = 5 * 1000000L;

// Whether install() ran since load (or the last unload), whether our handler
// is installed, and the disposition it replaced, under one lock: devices on
// several threads close at once.
std::mutex g_lock;
bool g_installed = false;
bool g_ours = false;
struct sigaction g_previous;

void on_close_signal(int) {}

bool is_ours(const struct sigaction &sa)
{
    return !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == on_close_signal;
}

// Whether `sa` runs a handler: SIG_DFL would end the process at the
// signal, SIG_IGN would not interrupt the kernel's wait.
bool runs_handler(const struct sigaction &sa)
{
    return (sa.sa_flags & SA_SIGINFO) || (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN);
}

// Installs the empty handler once, unless the process has a handler of its
// own (which interrupts the wait just as well).
void install()
{
    std::lock_guard<std::mutex> hold(g_lock);
    if (g_installed)
        return;
    g_installed = true;
    struct sigaction old;
    if (sigaction(close_signal(), nullptr, &old) != 0 || runs_handler(old))
        return;
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_close_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(close_signal(), &sa, nullptr) == 0) {
        g_previous = old;
        g_ours = true;
    }
}

timespec to_timespec(uint64_t ns)
{
    // 0 would disarm an absolute timer: a deadline that long gone is 1 ns.
    ns = ns ? ns : 1;
    return timespec{time_t(ns / 1000000000u), long(ns % 1000000000u)};
}

// A timer sending the signal to this thread at `deadline_ns`, then every
// repeat_ns; `why` says why there is none (false).
bool arm(timer_t &timer, uint64_t deadline_ns, std::string &why)
{
    struct sigevent ev;
    std::memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = close_signal();
    ev.sigev_notify_thread_id = gettid();
    if (timer_create(CLOCK_MONOTONIC, &ev, &timer) != 0) {
        why = std::string("timer_create: ") + strerror(errno);
        return false;
    }
    struct itimerspec when;
    when.it_value = to_timespec(deadline_ns);
    when.it_interval = timespec{0, repeat_ns};
    if (timer_settime(timer, TIMER_ABSTIME, &when, nullptr) != 0) {
        why = std::string("timer_settime: ") + strerror(errno);
        timer_delete(timer);
        return false;
    }
    return true;
}

}  // namespace

int close_signal() { return SIGRTMAX - 4; }

TtyClose close_by_deadline(int fd, uint64_t deadline_ns)
{
    TtyClose result;
    if (deadline_ns == DEVHOST_DEADLINE_NONE) {
        ::close(fd);
        return result;
    }
    install();
    struct sigaction now;
    if (sigaction(close_signal(), nullptr, &now) != 0 || !runs_handler(now)) {
        result.unarmed = "SIGRTMAX-4 has no handler (the program set it to default or ignored)";
        ::close(fd);
        return result;
    }
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, close_signal());
    pthread_sigmask(SIG_UNBLOCK, &set, &old);
    timer_t timer;
    if (!arm(timer, deadline_ns, result.unarmed)) {
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
        ::close(fd);
        return result;
    }
    const uint64_t began = devhost_util_now_ns();
    // Linux releases the descriptor even when the close is interrupted
    // (EINTR): never retried.
    ::close(fd);
    const uint64_t ended = devhost_util_now_ns();
    // Nothing of ours may stay pending, for this thread after the mask is
    // restored or for after unload: block it, stop the timer, take what
    // came meanwhile (a timer's signal is queued once, but look a few times).
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    timer_delete(timer);
    const timespec zero{0, 0};
    for (int i = 0; i < 8; i++)
        if (sigtimedwait(&set, nullptr, &zero) < 0 && errno != EINTR)
            break;
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    result.late = ended >= deadline_ns;
    result.began_late = began >= deadline_ns;
    return result;
}

void give_back_close_signal()
{
    std::lock_guard<std::mutex> hold(g_lock);
    // Every device is closed, so no timer is left. A handler the program
    // set since ours is its own: left as it is.
    struct sigaction now;
    if (g_ours && sigaction(close_signal(), nullptr, &now) == 0 && is_ours(now))
        sigaction(close_signal(), &g_previous, nullptr);
    g_ours = false;
    g_installed = false;
}

}  // namespace devhost::serial
