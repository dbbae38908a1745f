// A worker that dies costs only its own devices (issue 15, items 2-4 and 6),
// through the devhost binary against real processes and kernel objects:
//   - a plugin that crashes next to a serial device on a socat pty pair: the
//     serial device finishes and is closed, the crashed one is recorded
//     DEVHOST_E_HOST_FAILED naming the signal and the hook, and the port
//     opens at once afterwards;
//   - a serial device (exclusive) whose worker crashes after open: the
//     supervisor's copy of the tty is released with TIOCNXCL (an unwind
//     record), so user nobody may open it while socat still holds the pair;
//   - a hook that ignores cancel and its deadline: killed at the deadline
//     plus kill-grace, DEVHOST_E_TIMEOUT, the rest of its worker
//     DEVHOST_E_HOST_FAILED, other classes finish, the next run works;
//   - a worker that dies holding a virtual parallel port's claim: the host
//     closes the connection the plugin shared, and a client waiting for the
//     claim gets it;
//   - isolation = device: a crash costs only its own device;
//   - SIGTERM during a run: exit 4, every unwind recorded, no worker left.
#include "devhost_test.hpp"
#include "real_devices.hpp"
#include "vport_peer.hpp"

#include <devhost/unique_fd.hpp>

#include <catch2/catch.hpp>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <thread>
#include <unistd.h>

using namespace devhost;
using namespace devhost::test;
using json = nlohmann::json;

namespace {

// A socat pty pair (`pty,raw,echo=0` twice): socat holds both masters for
// as long as this lives; a and b are the two slaves (/dev/pts/N).
struct SocatPair {
    SocatPair()
    {
        child = std::make_unique<Child>(std::vector<std::string>{"/usr/bin/socat", "-d", "-d",
                                                                 "pty,raw,echo=0,link=" + (dir / "a").string(),
                                                                 "pty,raw,echo=0,link=" + (dir / "b").string()},
                                        dir.path());
        const bool ready = child->wait_for_output("starting data transfer loop", 10s);
        INFO(child->err());
        REQUIRE(ready);
        a = fs::read_symlink(dir / "a").string();
        b = fs::read_symlink(dir / "b").string();
    }
    TempDir dir;
    std::unique_ptr<Child> child;
    std::string a, b;
};

// Reads from `fd` until `n` bytes came or `ms` passed.
std::string read_some(int fd, size_t n, int ms = 5000)
{
    std::string got;
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (got.size() < n && std::chrono::steady_clock::now() < until) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0)
            continue;
        char buf[256];
        const ssize_t k = ::read(fd, buf, sizeof buf);
        if (k > 0)
            got.append(buf, static_cast<size_t>(k));
    }
    return got;
}

// Opens `tty` read-write as user nobody (setpriv); the shell's error on
// stderr when it could not ("Device or resource busy" for a tty left
// exclusive).
ProcessResult open_as_nobody(const std::string &tty)
{
    return run_process({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sh", "-c",
                        "exec 3<>\"$0\"", tty},
                       {.timeout = 10s});
}

// Each line of `text` as a JSON record.
std::vector<json> records_of(const std::string &text)
{
    std::vector<json> all;
    for (const auto &line : lines(text)) {
        INFO(line);
        json r;
        REQUIRE_NOTHROW(r = json::parse(line));
        all.push_back(std::move(r));
    }
    return all;
}

std::vector<json> of_device(const std::vector<json> &all, const std::string &device)
{
    std::vector<json> mine;
    for (const auto &r : all)
        if (r.value("device", "") == device)
            mine.push_back(r);
    return mine;
}

std::string step_of(const json &r) { return r.value("step", ""); }
std::string status_of(const json &r) { return r.value("status", ""); }
std::string message_of(const json &r) { return r.value("message", ""); }
bool contains(const std::string &text, const std::string &piece) { return text.find(piece) != std::string::npos; }

int count_lines(const std::string &text, const std::string &piece)
{
    int n = 0;
    for (const auto &line : lines(text))
        n += contains(line, piece);
    return n;
}

// A crash as the supervisor names it: SIGSEGV, or SIGABRT when a
// sanitizer's handler caught the SIGSEGV first (abort_on_error=1, below).
bool names_crash(const std::string &text)
{
    return contains(text, "was killed by signal 11 (Segmentation fault)") ||
           contains(text, "was killed by signal 6 (Aborted)");
}

// Options for a run whose worker crashes: under a sanitizer the crash still
// ends the process by a signal.
ProcessOptions crash_options()
{
    ProcessOptions options{.timeout = 20s};
    for (const char *var : {"ASAN_OPTIONS", "TSAN_OPTIONS"}) {
        const char *old = std::getenv(var);
        options.env[var] = std::string(old && *old ? old + std::string(":") : "") + "abort_on_error=1";
    }
    return options;
}

// How many threads of `pid` are asleep in poll or ppoll.
int threads_in_poll(pid_t pid)
{
    int n = 0;
    std::error_code ec;
    for (const auto &task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
        std::ifstream in(task.path() / "syscall");
        long nr = -1;
        if (in >> nr && (nr == SYS_ppoll || nr == SYS_poll))
            n++;
    }
    return n;
}

// Waits up to `ms` for `pred`; false if it never held.
template <class Pred>
bool await(Pred pred, int ms = 10000)
{
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
        if (pred())
            return true;
        std::this_thread::sleep_for(2ms);
    }
    return pred();
}

std::string serial_device(const std::string &name, const std::string &tty, const std::string &extra = "")
{
    return "[device " + name + "]\nclass = serial\npath = " + tty + "\nexclusive = true\n" + extra +
           "step = open\nstep = write \"hello\"\nstep = close\n";
}

}  // namespace

TEST_CASE("a plugin crashing next to a serial device on a socat pty: the serial device finishes, the crash is "
          "recorded, the port opens at once afterwards",
          "[isolation][e2e]")
{
    if (::geteuid() != 0)
        DEVHOST_SKIP("opening the tty as another user (setpriv) needs root");
    SocatPair pair;
    const UniqueFd peer(::open(pair.b.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC));
    REQUIRE(peer);
    TempDir dir;
    const auto config = dir / "c.ini";
    const auto out = dir / "r.jsonl";
    write_file(config, "[device crash]\nclass = crashing\npath = crash:one\ncrash-at = 1\nstep = open\n"
                       "step = write \"boom\"\nstep = close\n" +
                           serial_device("tty", pair.a));
    auto r = run_devhost({"run", "--plugin-path", DEVHOST_RELIABILITY_PLUGIN_DIR, "-o", out.string(), config.string()},
                         crash_options());
    INFO("stderr:\n" << r.err << "\nrecords:\n" << read_file(out));
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.term_signal == 0);
    CHECK(r.exit_code == 1);
    const auto all = records_of(read_file(out));
    CHECK(all.size() == 5);
    const auto crash = of_device(all, "crash");
    REQUIRE(crash.size() == 2);
    CHECK(status_of(crash[0]) == "DEVHOST_OK");
    CHECK(step_of(crash[1]) == "write \"boom\"");
    CHECK(status_of(crash[1]) == "DEVHOST_E_HOST_FAILED");
    CHECK(contains(message_of(crash[1]), "the worker running plugin 'crashing' (class crashing, pid "));
    CHECK(names_crash(message_of(crash[1])));
    CHECK(contains(message_of(crash[1]), " while its transfer hook ran"));
    const auto tty = of_device(all, "tty");
    REQUIRE(tty.size() == 3);
    for (size_t i = 0; i < 3; i++) {
        CHECK(step_of(tty[i]) == std::vector<std::string>{"open", "write \"hello\"", "close"}[i]);
        CHECK(status_of(tty[i]) == "DEVHOST_OK");
        CHECK_FALSE(tty[i].contains("unwind"));
    }
    CHECK(read_some(peer.get(), 5) == "hello");

    // Afterwards: user nobody opens the tty at once (no TIOCEXCL left), and
    // so does the next run.
    REQUIRE(::chmod(pair.a.c_str(), 0666) == 0);
    auto open = open_as_nobody(pair.a);
    INFO(open.err);
    CHECK(open.exit_code == 0);
    write_file(config, serial_device("tty", pair.a));
    r = run_devhost({"run", "-o", "-", config.string()}, {.timeout = 20s});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(count_lines(r.out, R"("status":"DEVHOST_OK")") == 3);
    CHECK(lines(r.out).size() == 3);
    CHECK(read_some(peer.get(), 5) == "hello");
}

TEST_CASE("a serial device whose worker crashes after an exclusive open is released with TIOCNXCL: nobody opens "
          "the tty while socat holds it",
          "[isolation][e2e]")
{
    if (::geteuid() != 0)
        DEVHOST_SKIP("opening the tty as another user (setpriv) needs root");
    SocatPair pair;
    REQUIRE(::chmod(pair.a.c_str(), 0666) == 0);
    {
        // The probe tells: a tty left exclusive refuses nobody with EBUSY,
        // even once the last descriptor of it is closed (socat holds the pair).
        UniqueFd fd(::open(pair.a.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC));
        REQUIRE(fd);
        REQUIRE(::ioctl(fd.get(), TIOCEXCL) == 0);
        fd.reset();
        auto busy = open_as_nobody(pair.a);
        CHECK(busy.exit_code != 0);
        CHECK(contains(busy.err, "Device or resource busy"));
        UniqueFd again(::open(pair.a.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC));  // root may
        REQUIRE(again);
        REQUIRE(::ioctl(again.get(), TIOCNXCL) == 0);
        again.reset();
        REQUIRE(open_as_nobody(pair.a).exit_code == 0);
    }
    TempDir dir;
    const auto config = dir / "c.ini";
    const auto out = dir / "r.jsonl";
    write_file(config, "[host]\nallow-faults = true\n" + serial_device("tty", pair.a, "fault = transfer:crash\n"));
    auto r = run_devhost({"run", "-o", out.string(), config.string()}, crash_options());
    INFO("stderr:\n" << r.err << "\nrecords:\n" << read_file(out));
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.term_signal == 0);
    CHECK(r.exit_code == 1);
    const auto all = records_of(read_file(out));
    REQUIRE(all.size() == 3);
    CHECK(step_of(all[0]) == "open");
    CHECK(status_of(all[0]) == "DEVHOST_OK");
    CHECK(step_of(all[1]) == "write \"hello\"");
    CHECK(status_of(all[1]) == "DEVHOST_E_HOST_FAILED");
    CHECK(names_crash(message_of(all[1])));
    CHECK(contains(message_of(all[1]), "the worker running plugin 'serial' (class serial, pid "));
    CHECK(contains(message_of(all[1]), " while its transfer hook ran"));
    CHECK(step_of(all[2]) == "close");
    CHECK(all[2].value("seq", 0) == 3);
    CHECK(all[2].value("unwind", false));
    CHECK(status_of(all[2]) == "DEVHOST_OK");
    CHECK(message_of(all[2]) ==
          "released by the host after its worker died: TIOCNXCL and close of the tty the plugin shared");
    CHECK(count_lines(r.err, "released by the host after its worker died") == 1);

    auto open = open_as_nobody(pair.a);
    INFO(open.err);
    CHECK(open.exit_code == 0);
    CHECK(reliability::exclusive_lock_free(pair.a));
}

TEST_CASE("a hook that ignores cancel and its deadline is killed at the deadline plus kill-grace, its worker's "
          "other devices fail, other classes finish, the next run works",
          "[isolation][e2e]")
{
    TempDir dir;
    const auto config = dir / "h.ini";
    const auto out = dir / "r.jsonl";
    const auto image = dir / "disk.img";
    reliability::make_image(image, 4096);
    // h hangs in transfer past its 300 ms; g, in the same worker (class
    // loop), waits in its own transfer for a cancel that comes only at its
    // 20 s deadline; disk is class raw, in a worker of its own.
    write_file(config, "[host]\nallow-faults = true\nkill-grace = 500ms\n"
                       "[device h]\nclass = loop\npath = loop:h\nfault = transfer:hang\nstep = open\n"
                       "step = write \"abc\" timeout=300ms\nstep = close\n"
                       "[device g]\nclass = loop\npath = loop:g\nfault = transfer:block\nstep = open\n"
                       "step = write \"abc\" timeout=20s\nstep = close\n"
                       "[device disk]\nclass = raw\npath = " +
                           image.string() + "\nallow-write = true\nstep = open\nstep = write \"abc\"\nstep = close\n");
    const auto started = std::chrono::steady_clock::now();
    auto r = run_devhost({"run", "-o", out.string(), config.string()}, {.timeout = 20s});
    const auto took = elapsed_ms(started);
    INFO("stderr:\n" << r.err << "\nrecords:\n" << read_file(out));
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.term_signal == 0);
    CHECK(r.exit_code == 1);
    // Killed at 300 ms + 500 ms (and the 20 ms slack), well before g's 20 s.
    CHECK(took >= 800);
    CHECK(took < 5000);
    const auto all = records_of(read_file(out));
    CHECK(all.size() == 7);
    const auto h = of_device(all, "h");
    REQUIRE(h.size() == 2);
    CHECK(status_of(h[0]) == "DEVHOST_OK");
    CHECK(step_of(h[1]) == "write \"abc\" timeout=300ms");
    CHECK(status_of(h[1]) == "DEVHOST_E_TIMEOUT");
    CHECK(contains(message_of(h[1]), "the plugin's transfer hook did not return within 500 ms after its deadline and "
                                     "cancel: its worker (class loop, pid "));
    CHECK(contains(message_of(h[1]), ") was killed"));
    const auto g = of_device(all, "g");
    REQUIRE(g.size() == 2);
    CHECK(status_of(g[0]) == "DEVHOST_OK");
    CHECK(step_of(g[1]) == "write \"abc\" timeout=20s");
    CHECK(status_of(g[1]) == "DEVHOST_E_HOST_FAILED");
    CHECK(contains(message_of(g[1]), "the worker running plugin 'loop' (class loop, pid "));
    CHECK(contains(message_of(g[1]), "was killed: the transfer hook of device 'h' did not return within 500 ms "
                                     "after its deadline while its transfer hook ran"));
    const auto disk = of_device(all, "disk");
    REQUIRE(disk.size() == 3);
    for (const auto &rec : disk)
        CHECK(status_of(rec) == "DEVHOST_OK");
    CHECK(read_file(image).substr(0, 3) == "abc");

    // The next run works.
    write_file(config, "[device h]\nclass = loop\npath = loop:h\nstep = open\nstep = write \"abc\" timeout=300ms\n"
                       "step = read exactly=3 expect=\"abc\"\nstep = close\n");
    r = run_devhost({"run", "-o", "-", config.string()}, {.timeout = 20s});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(count_lines(r.out, R"("status":"DEVHOST_OK")") == 4);
    CHECK(lines(r.out).size() == 4);
}

TEST_CASE("a worker that dies holding a virtual parallel port's claim: the host closes what the plugin shared and "
          "a waiting client gets the port",
          "[isolation][e2e]")
{
    VPort port("worker-death");
    TempDir dir;
    const auto holder_ini = dir / "holder.ini", waiter_ini = dir / "waiter.ini";
    // The holder claims the port, then waits in its write for a cancel that
    // never comes in time (20 s): the test kills its worker there.
    write_file(holder_ini, "[host]\nallow-faults = true\n[device holder]\nclass = parallel\npath = " + port.path() +
                               "\nfault = transfer:block\nstep = open\nstep = connect mode=compat\n"
                               "step = lock timeout=2s\nstep = write \"held\" timeout=20s\nstep = close\n");
    write_file(waiter_ini, "[device waiter]\nclass = parallel\npath = " + port.path() +
                               "\nstep = open\nstep = lock timeout=10s\nstep = connect mode=compat\n"
                               "step = write \"mine\"\nstep = disconnect\nstep = unlock\nstep = close\n");
    Child holder({devhost_exe().string(), "run", "-o", "-", holder_ini.string()}, dir.path());
    REQUIRE(holder.wait_for_output("holder: injecting fault 'transfer:block'", 10s));
    const auto workers = workers_of(holder.pid());
    REQUIRE(workers.size() == 1);

    // The waiter asks for the claim and waits for it: its worker has a
    // second thread asleep in poll (the first listens to the supervisor).
    Child waiter({devhost_exe().string(), "run", "-o", "-", waiter_ini.string()}, dir.path());
    REQUIRE(waiter.wait_for_output(R"("device":"waiter","seq":1,"step":"open")", 10s));
    const bool one_worker = await([&] { return workers_of(waiter.pid()).size() == 1; });
    INFO("waiter's children: " << workers_of(waiter.pid()).size() << "\nstderr:\n" << waiter.err() << "\nrecords:\n"
                               << waiter.out());
    REQUIRE(one_worker);
    const pid_t waiting = workers_of(waiter.pid())[0];
    REQUIRE(await([&] { return threads_in_poll(waiting) >= 2; }));
    CHECK(waiter.wait(0ms).timed_out);

    // The holder's worker crashes while it holds the claim.
    REQUIRE(::kill(workers[0], SIGSEGV) == 0);
    auto held = holder.wait(10s);
    INFO("holder stderr:\n" << held.err << "\nrecords:\n" << held.out);
    REQUIRE_FALSE(held.timed_out);
    CHECK(held.exit_code == 1);
    const auto h = records_of(held.out);
    REQUIRE(h.size() == 5);
    for (size_t i = 0; i < 3; i++)
        CHECK(status_of(h[i]) == "DEVHOST_OK");
    CHECK(step_of(h[3]) == "write \"held\" timeout=20s");
    CHECK(status_of(h[3]) == "DEVHOST_E_HOST_FAILED");
    CHECK(names_crash(message_of(h[3])));
    CHECK(contains(message_of(h[3]), " while its transfer hook ran"));
    CHECK(step_of(h[4]) == "close");
    CHECK(h[4].value("unwind", false));
    CHECK(message_of(h[4]) ==
          "released by the host after its worker died: close of the vport descriptor the plugin shared");

    auto got = waiter.wait(10s);
    INFO("waiter stderr:\n" << got.err << "\nrecords:\n" << got.out);
    REQUIRE_FALSE(got.timed_out);
    CHECK(got.exit_code == 0);
    const auto w = records_of(got.out);
    REQUIRE(w.size() == 7);
    for (const auto &rec : w)
        CHECK(status_of(rec) == "DEVHOST_OK");
    CHECK(step_of(w[1]) == "lock timeout=10s");
    CHECK(contains(port.printed(), "mine"));
    CHECK_FALSE(contains(port.printed(), "held"));
}

TEST_CASE("isolation = device: a crash costs only its own device, the other device of the class finishes",
          "[isolation][e2e]")
{
    TempDir dir;
    const auto config = dir / "d.ini";
    const auto out = dir / "r.jsonl";
    const std::string pipeline = "step = open\nstep = write \"abc\"\nstep = read exactly=3 expect=\"abc\"\n"
                                 "step = close\n";
    write_file(config, "[host]\nallow-faults = true\nisolation = device\n"
                       "[device a]\nclass = loop\npath = loop:a\nfault = transfer:crash\n" +
                           pipeline + "[device b]\nclass = loop\npath = loop:b\n" + pipeline);
    auto r = run_devhost({"run", "-o", out.string(), config.string()}, crash_options());
    INFO("stderr:\n" << r.err << "\nrecords:\n" << read_file(out));
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.term_signal == 0);
    CHECK(r.exit_code == 1);
    const auto all = records_of(read_file(out));
    const auto a = of_device(all, "a"), b = of_device(all, "b");
    REQUIRE(a.size() == 2);
    CHECK(status_of(a[0]) == "DEVHOST_OK");
    CHECK(status_of(a[1]) == "DEVHOST_E_HOST_FAILED");
    CHECK(contains(message_of(a[1]), "the worker running plugin 'loop' (device a, pid "));
    CHECK(names_crash(message_of(a[1])));
    CHECK(contains(message_of(a[1]), " while its transfer hook ran"));
    REQUIRE(b.size() == 4);
    for (const auto &rec : b)
        CHECK(status_of(rec) == "DEVHOST_OK");
    CHECK(step_of(b[3]) == "close");
    CHECK(all.size() == 6);
}

TEST_CASE("SIGTERM during a run with workers: exit 4, every unwind recorded, no worker left", "[isolation][e2e]")
{
    TempDir dir;
    const auto config = dir / "s.ini";
    const auto out = dir / "r.jsonl";
    const auto image = dir / "disk.img";
    reliability::make_image(image, 4096);
    // Two classes, two workers, each device waiting in its transfer.
    write_file(config, "[host]\nallow-faults = true\n"
                       "[device l]\nclass = loop\npath = loop:l\nfault = transfer:block\nstep = open\n"
                       "step = write \"abc\" timeout=20s\nstep = close\n"
                       "[device disk]\nclass = raw\npath = " +
                           image.string() +
                           "\nallow-write = true\nfault = transfer:block\nstep = open\n"
                           "step = write \"abc\" timeout=20s\nstep = close\n");
    Child run({devhost_exe().string(), "run", "-o", out.string(), config.string()}, dir.path());
    REQUIRE(run.wait_for_output("l: injecting fault 'transfer:block'", 10s));
    REQUIRE(run.wait_for_output("disk: injecting fault 'transfer:block'", 10s));
    const auto workers = workers_of(run.pid());
    REQUIRE(workers.size() == 2);
    for (pid_t w : workers)
        CHECK(read_file("/proc/" + std::to_string(w) + "/comm") == "devhost-worker\n");

    run.signal(SIGTERM);
    auto r = run.wait(10s);
    INFO("stderr:\n" << r.err << "\nrecords:\n" << read_file(out));
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 4);
    const auto all = records_of(read_file(out));
    CHECK(all.size() == 6);
    for (const std::string device : {"l", "disk"}) {
        const auto mine = of_device(all, device);
        INFO(device);
        REQUIRE(mine.size() == 3);
        CHECK(status_of(mine[0]) == "DEVHOST_OK");
        CHECK(status_of(mine[1]) == "DEVHOST_E_CANCELLED");
        CHECK(step_of(mine[2]) == "close");
        CHECK(mine[2].value("unwind", false));
        CHECK(status_of(mine[2]) == "DEVHOST_OK");
    }
    // Reaped before devhost ended: gone, not even zombies.
    for (pid_t w : workers) {
        errno = 0;
        CHECK(::kill(w, 0) == -1);
        CHECK(errno == ESRCH);
    }
}

TEST_CASE("a device that finished before its worker died keeps its records: nothing is recorded lost for it",
          "[isolation][e2e]")
{
    TempDir dir;
    const auto config = dir / "f.ini";
    // quick and late share a worker (class loop): quick is done (its close
    // recorded) while late waits in its transfer; then the worker dies.
    write_file(config, "[host]\nallow-faults = true\n"
                       "[device quick]\nclass = loop\npath = loop:q\nstep = open\nstep = close\n"
                       "[device late]\nclass = loop\npath = loop:l\nfault = transfer:block\nstep = open\n"
                       "step = write \"abc\" timeout=20s\nstep = close\n");
    Child run({devhost_exe().string(), "run", "-o", "-", config.string()}, dir.path());
    REQUIRE(run.wait_for_output("late: injecting fault 'transfer:block'", 10s));
    REQUIRE(run.wait_for_output(R"("device":"quick","seq":2,"step":"close")", 10s));
    const auto workers = workers_of(run.pid());
    REQUIRE(workers.size() == 1);
    REQUIRE(::kill(workers[0], SIGKILL) == 0);
    auto r = run.wait(10s);
    INFO("stderr:\n" << r.err << "\nrecords:\n" << r.out);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 1);
    const auto all = records_of(r.out);
    const auto quick = of_device(all, "quick"), late = of_device(all, "late");
    REQUIRE(quick.size() == 2);
    CHECK(status_of(quick[0]) == "DEVHOST_OK");
    CHECK(status_of(quick[1]) == "DEVHOST_OK");
    REQUIRE(late.size() == 2);
    CHECK(status_of(late[1]) == "DEVHOST_E_HOST_FAILED");
    CHECK(contains(message_of(late[1]), "was killed by signal 9 (Killed) while its transfer hook ran"));
    CHECK(all.size() == 4);
    // Its result never came: counted as failed, said once in the log.
    CHECK(count_lines(r.err, "quick: its pipeline had ended, but its worker died before reporting the result") == 1);
    CHECK(count_lines(r.err, "2 of 2 pipeline(s) failed") == 1);
}
