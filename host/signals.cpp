#include "signals.hpp"

#include "cli.hpp"
#include "logging.hpp"
#include "pipeline.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <system_error>
#include <unistd.h>

namespace devhost {

namespace {

// SIGINT, SIGTERM or SIGHUP: the stop signals.
const char *signal_name(int sig)
{
    switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    default: return "a signal";
    }
}

}  // namespace

SignalWatcher::SignalWatcher()
{
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    signal_fd_.reset(signalfd(-1, &set_, SFD_CLOEXEC));
    wake_fd_.reset(eventfd(0, EFD_CLOEXEC));
    if (!signal_fd_ || !wake_fd_) {
        const int e = errno;
        pthread_sigmask(SIG_UNBLOCK, &set_, nullptr);
        throw std::runtime_error(std::string("signal watcher: ") + std::strerror(e));
    }
    try {
        thread_ = std::thread([this] { watch(); });
    } catch (const std::system_error &e) {
        pthread_sigmask(SIG_UNBLOCK, &set_, nullptr);
        throw std::runtime_error(std::string("signal watcher: cannot create its thread: ") +
                                 std::strerror(e.code().value()));
    }
}

SignalWatcher::~SignalWatcher()
{
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_.get(), &one, sizeof one);
    thread_.join();
    pthread_sigmask(SIG_UNBLOCK, &set_, nullptr);
}

SignalWatcher::Attachment SignalWatcher::attach(Stoppable &engine)
{
    std::lock_guard lock(mutex_);
    engine_ = &engine;
    logging_ready_ = true;
    if (interrupted_) {
        log_first(first_signal_);
        engine_->cancel_all();
    }
    return Attachment(*this);
}

SignalWatcher::Attachment::~Attachment()
{
    std::lock_guard lock(watcher_.mutex_);
    watcher_.engine_ = nullptr;
}

void SignalWatcher::log_first(int sig)
{
    spdlog::warn("{} received: cancelling pipelines and releasing devices{}", strsignal(sig),
                 sig == SIGHUP ? std::string()
                               : std::string(" (") + signal_name(sig) +
                                     " again after a second skips the rest of the unwind)");
}

void SignalWatcher::watch()
{
    for (;;) {
        pollfd fds[2] = {{signal_fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0)
            continue;
        if (fds[1].revents & POLLIN)
            return;
        signalfd_siginfo info{};
        if (::read(signal_fd_.get(), &info, sizeof info) != ssize_t(sizeof info))
            continue;
        on_signal(static_cast<int>(info.ssi_signo), Clock::now());
    }
}

void SignalWatcher::on_signal(int sig, Clock::time_point now)
{
    std::lock_guard lock(mutex_);
    std::optional<Clock::time_point> &seen = seen_[sig == SIGINT ? 0 : sig == SIGTERM ? 1 : 2];
    if (interrupted_) {
        // Only the same SIGINT or SIGTERM, a second or more after it first
        // came, is the operator repeating the request.
        if (seen && sig != SIGHUP && now - *seen >= repeat_after) {
            if (logging_ready_)
                spdlog::error("{} received again: exiting now without finishing the unwind", signal_name(sig));
            std::_Exit(exit_interrupted);
        }
        if (!seen)
            seen = now;
        if (logging_ready_)
            spdlog::warn("{} received: already stopping; the unwind goes on", signal_name(sig));
        return;
    }
    seen = now;
    interrupted_ = true;
    first_signal_ = sig;
    if (logging_ready_)
        log_first(sig);
    if (engine_)
        engine_->cancel_all();
}

}  // namespace devhost
