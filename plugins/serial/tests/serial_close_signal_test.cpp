// The serial plugin's close signal (close_signal.cpp), on real ptys with the
// hooks called directly (tests/support's DirectPlugin, loaded and unloaded
// by each test case): a close under a deadline still closes and releases
// the tty, installs the empty SIGRTMAX-4 handler only when the process has
// none, leaves no instance of the signal pending and the thread's mask as it
// was, and unload gives the disposition back; with no deadline nothing of
// it happens. A pty's close never waits, so what it cuts is shown on a real
// UART in the hil test (hil/close_probe.cpp, stall).
#include "devhost_test.hpp"
#include "devices.hpp"
#include "direct_plugin.hpp"

#include <catch2/catch.hpp>

#include <devhost/plugin_util.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

using namespace devhost;
using namespace devhost::test;
using Clock = std::chrono::steady_clock;

namespace {

// How far past its deadline a close may return here: what the host allows
// (about 20 ms) plus room for a loaded test machine.
constexpr auto margin = 60ms;

int close_sig() { return SIGRTMAX - 4; }

struct sigaction disposition()
{
    struct sigaction sa {};
    REQUIRE(sigaction(close_sig(), nullptr, &sa) == 0);
    return sa;
}

bool is_default(const struct sigaction &sa) { return !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL; }

bool pending_here()
{
    sigset_t set;
    sigemptyset(&set);
    REQUIRE(sigpending(&set) == 0);
    return sigismember(&set, close_sig()) == 1;
}

bool blocked_here()
{
    sigset_t set;
    REQUIRE(pthread_sigmask(SIG_SETMASK, nullptr, &set) == 0);
    return sigismember(&set, close_sig()) == 1;
}

void set_blocked(bool blocked)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, close_sig());
    REQUIRE(pthread_sigmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &set, nullptr) == 0);
}

// Sets the disposition for the test case and puts the old one back after.
class Disposition {
public:
    explicit Disposition(void (*handler)(int))
    {
        struct sigaction sa {};
        sa.sa_handler = handler;
        sigemptyset(&sa.sa_mask);
        REQUIRE(sigaction(close_sig(), &sa, &old_) == 0);
    }
    ~Disposition() { sigaction(close_sig(), &old_, nullptr); }

private:
    struct sigaction old_ {};
};

volatile sig_atomic_t g_program_handler_ran = 0;
void program_handler(int) { g_program_handler_ran = g_program_handler_ran + 1; }

size_t cut_warnings()
{
    auto lines = DirectPlugin::log_lines();
    return size_t(std::count_if(lines.begin(), lines.end(), [](const std::string &l) {
        return l.find("close was cut there") != std::string::npos;
    }));
}

// Opens the pty through the plugin and closes it with `deadline`; checks
// that the close was OK, within `bound`, and released the tty (an
// exclusive open of it succeeds again at once).
void close_under(const DirectPlugin &plugin, const Pty &pty, uint64_t deadline, std::chrono::milliseconds bound)
{
    {
        DirectDevice dev(plugin, pty.path);
        REQUIRE(dev.opened().ok());
        DirectPlugin::set_deadline(deadline);
        const auto t0 = Clock::now();
        CHECK(dev.close().ok());
        CHECK(Clock::now() - t0 < bound);
        DirectPlugin::set_deadline(DEVHOST_DEADLINE_NONE);
    }
    DirectDevice again(plugin, pty.path);
    CHECK(again.opened().ok());
    CHECK(again.close().ok());
}

}  // namespace

TEST_CASE("serial close signal: a close under a deadline installs the handler, leaves nothing pending, "
          "and unload gives it back")
{
    REQUIRE(is_default(disposition()));
    Pty pty;
    const bool blocked = GENERATE(false, true);  // the closing thread's mask before the close
    set_blocked(blocked);
    const size_t warned = cut_warnings();
    {
        DirectPlugin plugin(plugin_dir() / "serial.so");
        SECTION("a deadline ahead")
        {
            close_under(plugin, pty, devhost_util_now_ns() + 200 * 1000000ull, 200ms + margin);
        }
        SECTION("a deadline that has passed: the timer fires at once")
        {
            close_under(plugin, pty, devhost_util_now_ns() - 1, margin);
        }
        const struct sigaction loaded = disposition();
        CHECK_FALSE(is_default(loaded));
        CHECK(loaded.sa_handler != SIG_IGN);
        CHECK_FALSE(pending_here());
        CHECK(blocked_here() == blocked);
        // A pty's close never waits: nothing was cut, nothing to warn of.
        CHECK(cut_warnings() == warned);
    }
    CHECK(is_default(disposition()));
    CHECK_FALSE(pending_here());
    CHECK(blocked_here() == blocked);
    set_blocked(false);
}

TEST_CASE("serial close signal: unload gives back an ignored disposition it replaced")
{
    Disposition ignored(SIG_IGN);
    Pty pty;
    {
        DirectPlugin plugin(plugin_dir() / "serial.so");
        close_under(plugin, pty, devhost_util_now_ns() + 100 * 1000000ull, 100ms + margin);
        // SIG_IGN would not interrupt the kernel's wait: replaced.
        CHECK(disposition().sa_handler != SIG_IGN);
    }
    const struct sigaction after = disposition();
    CHECK(!(after.sa_flags & SA_SIGINFO));
    CHECK(after.sa_handler == SIG_IGN);
}

TEST_CASE("serial close signal: a handler of the program's own is used, kept, and left alone by unload")
{
    Disposition own(program_handler);
    Pty pty;
    g_program_handler_ran = 0;
    {
        DirectPlugin plugin(plugin_dir() / "serial.so");
        // A deadline gone already: the timer sends the signal to this
        // thread at once, and the program's handler takes it.
        close_under(plugin, pty, devhost_util_now_ns() - 1, margin);
        CHECK(g_program_handler_ran >= 1);
        CHECK(disposition().sa_handler == program_handler);
        CHECK_FALSE(pending_here());
    }
    CHECK(disposition().sa_handler == program_handler);
}

TEST_CASE("serial close signal: with no deadline nothing of it happens")
{
    REQUIRE(is_default(disposition()));
    Pty pty;
    {
        DirectPlugin plugin(plugin_dir() / "serial.so");
        close_under(plugin, pty, DEVHOST_DEADLINE_NONE, margin);
        CHECK(is_default(disposition()));
    }
    CHECK(is_default(disposition()));
}
