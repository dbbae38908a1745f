// The serial plugin on real kernel ptys, driven through the host's Device
// API: open rules (exclusive, not found, not a tty, inheritance), settings
// and their read-back, transfers, timeouts, removal, cancel and controls.
#include "devhost_test.hpp"
#include "serial_helpers.hpp"

#include "devices.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <thread>
#include <unistd.h>

using namespace devhost;
using namespace devhost::test;
using namespace serial_test;

namespace {


// A forked child that opens `path` and holds it with flock or TIOCEXCL
// until killed. The constructor returns once the hold is in place.
struct Holder {
    pid_t pid = -1;
    Holder(const std::string &path, bool use_flock)
    {
        int ready[2];
        REQUIRE(pipe(ready) == 0);
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            int fd = ::open(path.c_str(), O_RDWR | O_NOCTTY);
            int ok = fd >= 0 && (use_flock ? flock(fd, LOCK_EX) == 0 : ioctl(fd, TIOCEXCL) == 0);
            char c = ok ? '1' : '0';
            (void)!::write(ready[1], &c, 1);
            for (;;)
                pause();
        }
        ::close(ready[1]);
        char c = 0;
        REQUIRE(::read(ready[0], &c, 1) == 1);
        ::close(ready[0]);
        REQUIRE(c == '1');
    }
    ~Holder()
    {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
    }
};

}  // namespace

TEST_CASE("opens a pty exclusively and restores the settings it found on close")
{
    Pty pty;
    struct termios before;
    REQUIRE(tcgetattr(pty.slave, &before) == 0);
    REQUIRE((before.c_lflag & ICANON));
    {
        Device dev(serial_plugin(), "port");
        Outcome o = devhost::test::open_device(dev, pty.path, {{"baud", "115200"}});
        INFO(o.message);
        REQUIRE(o.ok());
        CHECK(info_value(dev, "baud") == "115200");
        CHECK(info_value(dev, "exclusive") == "true");
        struct termios during;
        REQUIRE(tcgetattr(pty.slave, &during) == 0);
        CHECK_FALSE((during.c_lflag & ICANON));
        CHECK(cfgetospeed(&during) == B115200);
        int excl = 0;
        REQUIRE(ioctl(pty.slave, TIOCGEXCL, &excl) == 0);
        CHECK(excl == 1);
        CHECK(dev.close().ok());
    }
    struct termios after;
    REQUIRE(tcgetattr(pty.slave, &after) == 0);
    CHECK((after.c_lflag & ICANON));
    CHECK(cfgetospeed(&after) == cfgetospeed(&before));
    int excl = 1;
    REQUIRE(ioctl(pty.slave, TIOCGEXCL, &excl) == 0);
    CHECK(excl == 0);  // TIOCEXCL undone, the tty is usable by others again
}

TEST_CASE("settings a pty can hold round-trip through the read-back")
{
    Pty pty;
    struct Case {
        std::map<std::string, std::string> options;
        const char *key;
        const char *expected;
    };
    std::vector<Case> cases = {
        {{{"baud", "50"}}, "baud", "50"},
        {{{"baud", "9600"}}, "baud", "9600"},
        {{{"baud", "115200"}}, "baud", "115200"},
        {{{"baud", "250000"}}, "baud", "250000"},   // not a standard rate: BOTHER
        {{{"baud", "1234567"}}, "baud", "1234567"},
        {{{"baud", "4000000"}}, "baud", "4000000"},
        {{{"data-bits", "8"}}, "data-bits", "8"},
        {{{"parity", "none"}}, "parity", "none"},
        {{{"stop-bits", "1"}}, "stop-bits", "1"},
        {{{"stop-bits", "2"}}, "stop-bits", "2"},
        {{{"flow", "none"}}, "flow", "none"},
        {{{"flow", "rtscts"}}, "flow", "rtscts"},
        {{{"flow", "xonxoff"}}, "flow", "xonxoff"},
        {{{"hupcl", "on"}}, "hupcl", "on"},
        {{{"hupcl", "off"}}, "hupcl", "off"},
        {{{"read-total-timeout", "1500ms"}}, "read-total-timeout", "1500ms"},
        {{{"read-interval-timeout", "20ms"}}, "read-interval-timeout", "20ms"},
        {{{"overlapped", "true"}}, "mode", "overlapped (non-blocking)"},
        {{{"overlapped", "false"}}, "mode", "synchronous (blocking)"},
        {{{"exclusive", "false"}}, "exclusive", "false"},
    };
    for (const auto &c : cases) {
        INFO(c.key << " expecting " << c.expected);
        Device dev(serial_plugin(), "port");
        Outcome o = devhost::test::open_device(dev, pty.path, c.options);
        INFO(o.message);
        REQUIRE(o.ok());
        CHECK(info_value(dev, c.key) == c.expected);
        CHECK(dev.close().ok());
    }
    // And the kernel agrees, independently of the plugin's info.
    Device dev(serial_plugin(), "port");
    REQUIRE(devhost::test::open_device(dev, pty.path, {{"stop-bits", "2"}, {"flow", "rtscts"}, {"baud", "19200"}}).ok());
    struct termios t;
    REQUIRE(tcgetattr(pty.slave, &t) == 0);
    CHECK((t.c_cflag & CSTOPB));
    CHECK((t.c_cflag & CRTSCTS));
    CHECK(cfgetospeed(&t) == B19200);
}

TEST_CASE("settings a pty cannot hold fail with an error naming the setting")
{
    // Linux ptys force 8 data bits and no parity, and have no modem lines:
    // each such setting must be refused by the read-back, never dropped.
    Pty pty;
    struct Case {
        std::map<std::string, std::string> options;
        devhost_status status;
        std::string message;
    };
    std::vector<Case> cases = {
        {{{"data-bits", "5"}}, DEVHOST_E_UNSUPPORTED, "did not take data-bits=5 (it reports 8)"},
        {{{"data-bits", "6"}}, DEVHOST_E_UNSUPPORTED, "did not take data-bits=6 (it reports 8)"},
        {{{"data-bits", "7"}}, DEVHOST_E_UNSUPPORTED, "did not take data-bits=7 (it reports 8)"},
        {{{"parity", "odd"}}, DEVHOST_E_UNSUPPORTED, "did not take parity=odd (it reports none)"},
        {{{"parity", "even"}}, DEVHOST_E_UNSUPPORTED, "did not take parity=even (it reports none)"},
        {{{"parity", "mark"}}, DEVHOST_E_UNSUPPORTED, "did not take parity=mark (it reports none)"},
        {{{"parity", "space"}}, DEVHOST_E_UNSUPPORTED, "did not take parity=space (it reports none)"},
        {{{"dtr", "on"}}, DEVHOST_E_UNSUPPORTED, "has no modem lines: cannot set dtr=on"},
        {{{"dtr", "off"}}, DEVHOST_E_UNSUPPORTED, "has no modem lines: cannot set dtr=off"},
        {{{"rts", "on"}}, DEVHOST_E_UNSUPPORTED, "has no modem lines: cannot set rts=on"},
        {{{"rts", "off"}}, DEVHOST_E_UNSUPPORTED, "has no modem lines: cannot set rts=off"},
    };
    struct termios before;
    REQUIRE(tcgetattr(pty.slave, &before) == 0);
    for (const auto &c : cases) {
        Device dev(serial_plugin(), "port");
        Outcome o = devhost::test::open_device(dev, pty.path, c.options);
        INFO(o.message);
        CHECK(o.status == c.status);
        CHECK_THAT(o.message, Catch::Contains(c.message) && Catch::Contains(pty.path) &&
                                  Catch::Contains("pty"));
        // The failed open put back what it found.
        struct termios after;
        REQUIRE(tcgetattr(pty.slave, &after) == 0);
        CHECK(after.c_cflag == before.c_cflag);
        CHECK(after.c_lflag == before.c_lflag);
    }
    // The same settings on real UART hardware are not tested here: this
    // machine's only UART (ttyS0) is its console and must never be opened.
    WARN("not tested here: data-bits 5-7, parity and DTR/RTS round-trips need a real UART; "
         "this machine has none usable (ttyS0 is the console); serial_hil (label hil) runs them on QEMU's 8250");
}

TEST_CASE("option values out of the schema are refused before anything is opened")
{
    Pty pty;
    for (auto [k, v] : std::vector<std::pair<std::string, std::string>>{
             {"baud", "49"}, {"baud", "fast"}, {"data-bits", "9"}, {"parity", "sometimes"}, {"stop-bits", "3"},
             {"flow", "dsrdtr"}, {"dtr", "maybe"}, {"exclusive", "perhaps"}, {"no-such-option", "1"}}) {
        Device dev(serial_plugin(), "port");
        Outcome o = devhost::test::open_device(dev, pty.path, {{k, v}});
        INFO(k << "=" << v << ": " << o.message);
        CHECK(o.status == DEVHOST_E_INVALID);
        CHECK_THAT(o.message, Catch::Contains(k));
    }
}

TEST_CASE("a missing path is NOT_FOUND and nothing is created")
{
    TempDir dir;
    std::string path = (dir / "ttyUSB99").string();
    Device dev(serial_plugin(), "port");
    Outcome o = devhost::test::open_device(dev, path);
    CHECK(o.status == DEVHOST_E_NOT_FOUND);
    CHECK_THAT(o.message, Catch::Contains(path));
    CHECK_FALSE(fs::exists(fs::symlink_status(path)));
    CHECK(fs::is_empty(dir.path()));
    // A dangling /dev/serial/by-id style link: its target is not created.
    fs::create_symlink(dir / "ttyUSB98", dir / "usb-Vendor_Cable-if00");
    Device linked(serial_plugin(), "port");
    Outcome l = devhost::test::open_device(linked, (dir / "usb-Vendor_Cable-if00").string());
    CHECK(l.status == DEVHOST_E_NOT_FOUND);
    CHECK_FALSE(fs::exists(fs::symlink_status(dir / "ttyUSB98")));
}

TEST_CASE("close puts back every termios field it found, also after an arbitrary (BOTHER) rate")
{
    // The whole termios2, not only the speed and ICANON: flags, control
    // characters and both speeds, for a synchronous and an overlapped handle.
    for (const char *overlapped : {"false", "true"}) {
        INFO("overlapped=" << overlapped);
        Pty pty;
        struct termios before;
        REQUIRE(tcgetattr(pty.slave, &before) == 0);
        {
            Device dev(serial_plugin(), "port");
            Outcome o = devhost::test::open_device(dev, pty.path, {{"baud", "250000"}, {"stop-bits", "2"}, {"flow", "rtscts"},
                                                  {"hupcl", "off"}, {"overlapped", overlapped}});
            INFO(o.message);
            REQUIRE(o.ok());
            REQUIRE(info_value(dev, "baud") == "250000");
            REQUIRE(write(dev, "x").outcome.ok());
            CHECK(dev.close().ok());
        }
        struct termios after;
        REQUIRE(tcgetattr(pty.slave, &after) == 0);
        CHECK(after.c_iflag == before.c_iflag);
        CHECK(after.c_oflag == before.c_oflag);
        CHECK(after.c_cflag == before.c_cflag);
        CHECK(after.c_lflag == before.c_lflag);
        CHECK(std::equal(std::begin(after.c_cc), std::end(after.c_cc), std::begin(before.c_cc)));
        CHECK(cfgetispeed(&after) == cfgetispeed(&before));
        CHECK(cfgetospeed(&after) == cfgetospeed(&before));
    }
}

TEST_CASE("a path that is not a tty is INVALID")
{
    TempDir dir;
    write_file(dir / "file", "data");
    for (std::string path : {(dir / "file").string(), dir.path().string(), std::string("/dev/null")}) {
        Device dev(serial_plugin(), "port");
        Outcome o = devhost::test::open_device(dev, path);
        INFO(path << ": " << o.message);
        CHECK(o.status == DEVHOST_E_INVALID);
        CHECK_THAT(o.message, Catch::Contains("not a tty") && Catch::Contains(path));
    }
    CHECK(read_file(dir / "file") == "data");
}

TEST_CASE("a second open in this process is BUSY naming the device and the holder")
{
    Pty pty;
    Device first(serial_plugin(), "first");
    REQUIRE(devhost::test::open_device(first, pty.path).ok());
    Device second(serial_plugin(), "second");
    Outcome o = devhost::test::open_device(second, pty.path);
    CHECK(o.status == DEVHOST_E_BUSY);
    CHECK_THAT(o.message, Catch::Contains(pty.path) && Catch::Contains("busy") &&
                              Catch::Contains("pid " + std::to_string(getpid())));
    // The refused open changed nothing for the holder.
    CHECK(write(first, "still mine").outcome.ok());
    CHECK(pty.receive(10) == "still mine");
    CHECK(first.close().ok());
    Device third(serial_plugin(), "third");
    CHECK(devhost::test::open_device(third, pty.path).ok());
}

TEST_CASE("an open is BUSY while another program holds only a flock")
{
    Pty pty;
    Holder holder(pty.path, true);
    Device dev(serial_plugin(), "port");
    Outcome o = devhost::test::open_device(dev, pty.path);
    CHECK(o.status == DEVHOST_E_BUSY);
    CHECK_THAT(o.message, Catch::Contains(pty.path) && Catch::Contains("flock") &&
                              Catch::Contains("pid " + std::to_string(holder.pid)));
}

TEST_CASE("an open is BUSY while another program holds only TIOCEXCL (even as root)")
{
    Pty pty;
    Holder holder(pty.path, false);
    Device dev(serial_plugin(), "port");
    Outcome o = devhost::test::open_device(dev, pty.path);
    CHECK(o.status == DEVHOST_E_BUSY);
    CHECK_THAT(o.message, Catch::Contains(pty.path) && Catch::Contains("TIOCEXCL") &&
                              Catch::Contains(std::to_string(holder.pid)));
}

TEST_CASE("an open is BUSY while the flock program holds the port, naming its pid")
{
    // Another program, not a forked copy of this one: util-linux flock(1),
    // which takes only a flock, as terminal programs do.
    // The shell opens the port on fd 9, flock(1) locks that descriptor and
    // exits, and the shell becomes sleep: one process holding the lock.
    if (!fs::exists("/usr/bin/flock")) {
        DEVHOST_SKIP("flock(1) (util-linux) is not installed");
    }
    Pty pty;
    TempDir dir;
    Child holder({"/bin/sh", "-c", "exec 9<>" + pty.path + " && /usr/bin/flock --exclusive 9 && echo held && exec sleep 60"},
                 dir.path());
    REQUIRE(holder.wait_for_output("held", 10s));
    Device dev(serial_plugin(), "port");
    Outcome o = devhost::test::open_device(dev, pty.path);
    INFO(o.message);
    CHECK(o.status == DEVHOST_E_BUSY);
    CHECK_THAT(o.message, Catch::Contains(pty.path) && Catch::Contains("flock") &&
                              Catch::Contains(std::to_string(holder.pid())));
    // The refused open left the holder's lock and the tty's mode alone.
    int excl = 1;
    REQUIRE(ioctl(pty.slave, TIOCGEXCL, &excl) == 0);
    CHECK(excl == 0);
    holder.signal(SIGKILL);
    holder.wait(10s);
    Device again(serial_plugin(), "port");
    CHECK(devhost::test::open_device(again, pty.path).ok());
}

TEST_CASE("the port never becomes the controlling terminal (O_NOCTTY)")
{
    // A session leader without a controlling terminal that opens a tty
    // without O_NOCTTY acquires it; the plugin's open must not. Each case
    // runs in a forked child that made itself a session leader; it exits 0
    // when /dev/tty opens (it has a controlling terminal), 1 when it has
    // none, 2 when the open itself failed.
    Pty pty;
    auto in_new_session = [&](bool through_plugin) {
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            if (setsid() < 0)
                _exit(2);
            std::unique_ptr<Device> dev;
            if (through_plugin) {
                dev = std::make_unique<Device>(serial_plugin(), "port");
                if (!devhost::test::open_device(*dev, pty.path, {{"exclusive", "false"}}).ok())
                    _exit(2);
            } else if (::open(pty.path.c_str(), O_RDWR) < 0) {
                _exit(2);
            }
            int tty = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
            _exit(tty >= 0 ? 0 : 1);
        }
        int status = 0;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        REQUIRE(WIFEXITED(status));
        return WEXITSTATUS(status);
    };
    CHECK(in_new_session(true) == 1);   // the plugin: no controlling terminal
    CHECK(in_new_session(false) == 0);  // the control: a plain open takes it
}

TEST_CASE("as an unprivileged user, a TIOCEXCL holder makes the open itself BUSY")
{
    // Root passes TIOCEXCL's check at open (the case above); everyone else
    // gets EBUSY from open(2), which must still be BUSY naming the device.
    // Run in a forked child that drops to nobody; it reports through its
    // exit code and a pipe carrying the message.
    Pty pty;
    if (geteuid() != 0) {
        DEVHOST_SKIP("needs root to drop to another user (the root case is tested above)");
    }
    REQUIRE(fchmod(pty.slave, 0666) == 0);
    Holder holder(pty.path, false);
    int msg[2];
    REQUIRE(pipe(msg) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(msg[0]);
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(3);
        Device dev(serial_plugin(), "port");
        Outcome o = devhost::test::open_device(dev, pty.path);
        (void)!::write(msg[1], o.message.data(), o.message.size());
        _exit(o.status == DEVHOST_E_BUSY ? 0 : o.ok() ? 1 : 2);
    }
    ::close(msg[1]);
    std::string message;
    char buf[512];
    for (ssize_t n; (n = ::read(msg[0], buf, sizeof buf)) > 0;)
        message.append(buf, size_t(n));
    ::close(msg[0]);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    INFO(message);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK_THAT(message, Catch::Contains(pty.path) && Catch::Contains("busy") && Catch::Contains("TIOCEXCL"));
}

TEST_CASE("exclusive=false takes no locks")
{
    Pty pty;
    Device a(serial_plugin(), "a");
    REQUIRE(devhost::test::open_device(a, pty.path, {{"exclusive", "false"}}).ok());
    // Another program can still take the port.
    int fd = ::open(pty.path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    CHECK(flock(fd, LOCK_EX | LOCK_NB) == 0);
    ::close(fd);
}

namespace {

// Lists the fds a child process (sh) inherited that point at `path`.
std::string child_fds_on(const std::string &path)
{
    auto r = run_process({"/bin/sh", "-c", "for f in /proc/self/fd/*; do readlink \"$f\"; done"});
    std::string hits;
    for (const auto &l : lines(r.out))
        if (l == path)
            hits += l + "\n";
    return hits;
}

}  // namespace

TEST_CASE("a child process sees the port only with inherit")
{
    Pty pty;
    REQUIRE(child_fds_on(pty.path).empty());  // the test's own fds are close-on-exec
    {
        Device dev(serial_plugin(), "port");
        REQUIRE(devhost::test::open_device(dev, pty.path).ok());
        CHECK(info_value(dev, "inherit") == "false");
        CHECK(child_fds_on(pty.path).empty());
    }
    {
        Device dev(serial_plugin(), "port");
        REQUIRE(devhost::test::open_device(dev, pty.path, {}, true).ok());
        CHECK(info_value(dev, "inherit") == "true");
        CHECK(child_fds_on(pty.path) == pty.path + "\n");
    }
}

TEST_CASE("write sends every byte and read N / exactly N hand them out in order")
{
    for (const char *overlapped : {"false", "true"}) {
        INFO("overlapped=" << overlapped);
        Pty pty;
        Device dev(serial_plugin(), "port");
        REQUIRE(devhost::test::open_device(dev, pty.path, {{"overlapped", overlapped}}).ok());
        Result w = write(dev, "hello");
        CHECK(w.outcome.ok());
        CHECK(w.out_done == 5);
        CHECK(pty.receive(5) == "hello");

        pty.send("abcdef");
        Result r = read(dev, DEVHOST_OP_READ_EXACT, 4);
        CHECK(r.outcome.ok());
        CHECK(r.data == "abcd");
        r = read(dev, DEVHOST_OP_READ, 100);
        CHECK(r.outcome.ok());
        CHECK(r.data == "ef");

        // Exactly N across several arrivals: "345" comes once the device
        // took "12" and waits for more.
        pty.send("12");
        REQUIRE(pty.wait_queued(2));
        auto reading = start_waiting([&] { return read(dev, DEVHOST_OP_READ_EXACT, 5, 5000); },
                                     [&] { return pty.queued() == 0; });
        pty.send("345");
        r = reading.get();
        CHECK(r.outcome.ok());
        CHECK(r.data == "12345");
    }
}

TEST_CASE("a large write gets through partial writes and EAGAIN")
{
    for (const char *overlapped : {"false", "true"}) {
        INFO("overlapped=" << overlapped);
        Pty pty;
        Device dev(serial_plugin(), "port");
        REQUIRE(devhost::test::open_device(dev, pty.path, {{"overlapped", overlapped}}).ok());
        std::string big(256 * 1024, '\0');
        for (size_t i = 0; i < big.size(); i++)
            big[i] = char('a' + i % 26);
        std::string got;
        std::thread reader([&] { got = pty.receive(big.size(), 20000); });
        Result w = write(dev, big, 20000);
        reader.join();
        CHECK(w.outcome.ok());
        CHECK(w.out_done == big.size());
        CHECK(got == big);
    }
}

TEST_CASE("a write nobody drains times out and says how far it got")
{
    Pty pty;
    Device dev(serial_plugin(), "port");
    REQUIRE(devhost::test::open_device(dev, pty.path).ok());
    std::string big(1024 * 1024, 'x');
    Result w = write(dev, big, 200);
    CHECK(w.outcome.status == DEVHOST_E_TIMEOUT);
    CHECK(w.out_done > 0);
    CHECK(w.out_done < big.size());
    CHECK_THAT(w.outcome.message, Catch::Contains("timed out writing"));
}

namespace {

// O_NONBLOCK of the descriptor this process holds on `path` other than `own`
// (the plugin's), or -1 when there is none.
int nonblocking_flag_of(const std::string &path, int own)
{
    for (const auto &entry : std::filesystem::directory_iterator("/proc/self/fd")) {
        int fd = std::atoi(entry.path().filename().c_str());
        std::error_code ec;
        if (fd == own || std::filesystem::read_symlink(entry.path(), ec).string() != path)
            continue;
        int fl = fcntl(fd, F_GETFL);
        return fl < 0 ? -1 : (fl & O_NONBLOCK) != 0;
    }
    return -1;
}

}  // namespace

TEST_CASE("an inherited synchronous handle stays blocking and still honours deadlines")
{
    // Transfers keep the descriptor non-blocking, except a synchronous one a
    // child may inherit: that stays blocking between transfers, and each
    // write is made non-blocking only for the call.
    Pty pty;
    {
        Device dev(serial_plugin(), "port");
        REQUIRE(devhost::test::open_device(dev, pty.path, {{"overlapped", "false"}}, true).ok());
        CHECK(info_value(dev, "mode") == "synchronous (blocking)");
        CHECK(nonblocking_flag_of(pty.path, pty.slave) == 0);
        std::thread echo([&] { pty.send(pty.receive(4)); });
        Result r = request(dev, "ab\r\n", "\r\n");
        echo.join();
        CHECK(r.outcome.ok());
        CHECK(r.data == "ab\r\n");
        std::string big(1024 * 1024, 'x');
        Result w = write(dev, big, 200);
        CHECK(w.outcome.status == DEVHOST_E_TIMEOUT);
        CHECK(w.out_done > 0);
        CHECK(w.out_done < big.size());
        CHECK(nonblocking_flag_of(pty.path, pty.slave) == 0);
    }
    {
        Device dev(serial_plugin(), "port");
        REQUIRE(devhost::test::open_device(dev, pty.path, {{"overlapped", "false"}}).ok());
        CHECK(info_value(dev, "mode") == "synchronous (blocking)");
        CHECK(nonblocking_flag_of(pty.path, pty.slave) == 1);
    }
}

TEST_CASE("read until a delimiter joins split data and keeps the surplus")
{
    Pty pty;
    Device dev(serial_plugin(), "port");
    REQUIRE(devhost::test::open_device(dev, pty.path).ok());

    // The delimiter itself arrives split over two writes: the second once
    // the device took the first and waits for more.
    pty.send("OK\r");
    REQUIRE(pty.wait_queued(3));
    auto reading = start_waiting([&] { return read(dev, DEVHOST_OP_READ_UNTIL, 64, 5000, "\r\n"); },
                                 [&] { return pty.queued() == 0; });
    pty.send("\nREST");
    Result r = reading.get();
    CHECK(r.outcome.ok());
    CHECK(r.data == "OK\r\n");
    r = read(dev, DEVHOST_OP_READ, 64);
    CHECK(r.outcome.ok());
    CHECK(r.data == "REST");

    // Two lines in one arrival: the second is served from the surplus.
    pty.send("one\r\ntwo\r\nthr");
    r = read(dev, DEVHOST_OP_READ_UNTIL, 64, 2000, "\r\n");
    CHECK(r.data == "one\r\n");
    CHECK(info_value(dev, "buffered") == "8");
    r = read(dev, DEVHOST_OP_READ_UNTIL, 64, 2000, "\r\n");
    CHECK(r.data == "two\r\n");
    r = read(dev, DEVHOST_OP_READ_EXACT, 3);
    CHECK(r.data == "thr");

    // No delimiter within the buffer: PROTOCOL, with the bytes handed out.
    pty.send("0123456789");
    r = read(dev, DEVHOST_OP_READ_UNTIL, 4, 2000, "\n");
    CHECK(r.outcome.status == DEVHOST_E_PROTOCOL);
    CHECK(r.data == "0123");
    CHECK_THAT(r.outcome.message, Catch::Contains("no delimiter within 4 bytes"));
    r = read(dev, DEVHOST_OP_READ_EXACT, 6);
    CHECK(r.data == "456789");
}

TEST_CASE("request writes and reads the reply until the delimiter")
{
    Pty pty;
    Device dev(serial_plugin(), "port");
    REQUIRE(devhost::test::open_device(dev, pty.path).ok());
    std::thread peer([&] {
        if (pty.receive(3) == "AT\r")
            pty.send("AT\r\r\nOK\r\n");
    });
    Result r = request(dev, "AT\r", "OK\r\n", 5000);
    peer.join();
    CHECK(r.outcome.ok());
    CHECK(r.out_done == 3);
    CHECK(r.data == "AT\r\r\nOK\r\n");
}

TEST_CASE("reads time out with TIMEOUT and keep what arrived")
{
    Pty pty;
    SECTION("the transfer's own timeout")
    {
        Device dev(serial_plugin(), "port");
        REQUIRE(devhost::test::open_device(dev, pty.path).ok());
        Result r = read(dev, DEVHOST_OP_READ, 16, 100);
        CHECK(r.outcome.status == DEVHOST_E_TIMEOUT);
        CHECK(r.data.empty());
        pty.send("part");
        r = read(dev, DEVHOST_OP_READ_UNTIL, 16, 100, "\n");
        CHECK(r.outcome.status == DEVHOST_E_TIMEOUT);
        CHECK(r.data == "part");
        CHECK_THAT(r.outcome.message, Catch::Contains("no delimiter"));
    }
    SECTION("read-total-timeout bounds a read that has no timeout of its own")
    {
        Device dev(serial_plugin(), "port");
        REQUIRE(devhost::test::open_device(dev, pty.path, {{"read-total-timeout", "100ms"}}).ok());
        Result r = read(dev, DEVHOST_OP_READ_EXACT, 16, -1);
        CHECK(r.outcome.status == DEVHOST_E_TIMEOUT);
    }
    SECTION("read-interval-timeout ends a read N when the line goes quiet")
    {
        Device dev(serial_plugin(), "port");
        REQUIRE(devhost::test::open_device(dev, pty.path, {{"read-interval-timeout", "50ms"}}).ok());
        pty.send("abc");
        Result r = read(dev, DEVHOST_OP_READ, 16, 5000);
        CHECK(r.outcome.ok());
        CHECK(r.data == "abc");
        pty.send("de");
        r = read(dev, DEVHOST_OP_READ_EXACT, 16, 5000);
        CHECK(r.outcome.status == DEVHOST_E_TIMEOUT);
        CHECK(r.data == "de");
        CHECK_THAT(r.outcome.message, Catch::Contains("read-interval-timeout"));
    }
}

TEST_CASE("the peer going away mid-read is REMOVED, and so is every later transfer")
{
    Pty pty;
    Device dev(serial_plugin(), "port");
    REQUIRE(devhost::test::open_device(dev, pty.path).ok());
    auto reading = start_waiting([&] { return read(dev, DEVHOST_OP_READ, 16, 10000); });
    pty.close_master();  // while the read waits
    Result r = reading.get();
    CHECK(r.outcome.status == DEVHOST_E_REMOVED);
    CHECK_THAT(r.outcome.message, Catch::Contains(pty.path) && Catch::Contains("went away"));
    CHECK(write(dev, "x").outcome.status == DEVHOST_E_REMOVED);
    CHECK(read(dev, DEVHOST_OP_READ, 16, 100).outcome.status == DEVHOST_E_REMOVED);
    CHECK(dev.close().ok());
}

TEST_CASE("overlapped=true: a non-blocking handle that still waits, times out, cancels and sees removal")
{
    Pty pty;
    Device dev(serial_plugin(), "port");
    REQUIRE(devhost::test::open_device(dev, pty.path, {{"overlapped", "true"}}).ok());
    CHECK(info_value(dev, "mode") == "overlapped (non-blocking)");
    // Nothing there: the read waits for readiness up to its timeout instead
    // of failing at once with EAGAIN.
    Result r = read(dev, DEVHOST_OP_READ, 16, 100);
    CHECK(r.outcome.status == DEVHOST_E_TIMEOUT);
    CHECK(r.data.empty());
    // Data arriving later (once the read waits) is waited for.
    auto reading = start_waiting([&] { return read(dev, DEVHOST_OP_READ_UNTIL, 16, 5000, "\n"); });
    pty.send("late\n");
    r = reading.get();
    CHECK(r.outcome.ok());
    CHECK(r.data == "late\n");
    auto blocked = start_waiting([&] { return read(dev, DEVHOST_OP_READ, 16, -1); });
    dev.cancel();  // while the read waits
    r = blocked.get();
    CHECK(r.outcome.status == DEVHOST_E_CANCELLED);
}

TEST_CASE("overlapped=true: the peer going away mid-read is REMOVED")
{
    Pty pty;
    Device dev(serial_plugin(), "port");
    REQUIRE(devhost::test::open_device(dev, pty.path, {{"overlapped", "true"}}).ok());
    auto reading = start_waiting([&] { return read(dev, DEVHOST_OP_READ, 16, 10000); });
    pty.close_master();  // while the read waits
    Result r = reading.get();
    CHECK(r.outcome.status == DEVHOST_E_REMOVED);
    CHECK_THAT(r.outcome.message, Catch::Contains(pty.path) && Catch::Contains("went away"));
    CHECK(write(dev, "x").outcome.status == DEVHOST_E_REMOVED);
}

TEST_CASE("data that arrived before a hang-up is still handed out first")
{
    // Linux empties a pty slave's input queue when its master closes (the
    // hang-up flushes the line discipline), so the bytes that can outlive a
    // hang-up are those the device took in already: "first\n" is asked for,
    // "last words\n" came in the same read and waits in the device.
    Pty pty;
    Device dev(serial_plugin(), "port");
    REQUIRE(devhost::test::open_device(dev, pty.path).ok());
    const std::string sent = "first\nlast words\n";
    pty.send(sent);
    REQUIRE(pty.wait_queued(int(sent.size())));  // all of it reached the tty
    Result first = read(dev, DEVHOST_OP_READ_UNTIL, 64, 2000, "\n");
    REQUIRE(first.data == "first\n");
    REQUIRE(pty.queued() == 0);
    REQUIRE(info_value(dev, "buffered") == "11");  // "last words\n" is in the device
    pty.close_master();
    Result r = read(dev, DEVHOST_OP_READ_UNTIL, 64, 2000, "\n");
    INFO(r.outcome.message);
    CHECK(r.outcome.ok());
    CHECK(r.data == "last words\n");
    Result after = read(dev, DEVHOST_OP_READ, 64, 100);
    CHECK(after.outcome.status == DEVHOST_E_REMOVED);
    CHECK(after.data.empty());
}

TEST_CASE("cancel ends a blocked read with CANCELLED")
{
    Pty pty;
    Device dev(serial_plugin(), "port");
    REQUIRE(devhost::test::open_device(dev, pty.path).ok());
    auto blocked = start_waiting([&] { return read(dev, DEVHOST_OP_READ, 16, -1); });
    dev.cancel();  // while the read waits
    Result r = blocked.get();
    CHECK(r.outcome.status == DEVHOST_E_CANCELLED);
}

TEST_CASE("info reports name, path, driver, settings and modem-line support")
{
    Pty pty;
    Device dev(serial_plugin(), "modem");
    REQUIRE(devhost::test::open_device(dev, pty.path, {{"baud", "57600"}}).ok());
    CHECK(info_value(dev, "name") == "modem");
    CHECK(info_value(dev, "path") == pty.path);
    CHECK(info_value(dev, "tty") == pty.path.substr(5));
    CHECK(info_value(dev, "driver") == "pty_slave");
    CHECK(info_value(dev, "baud") == "57600");
    CHECK(info_value(dev, "data-bits") == "8");
    CHECK(info_value(dev, "parity") == "none");
    CHECK(info_value(dev, "stop-bits") == "1");
    CHECK(info_value(dev, "flow") == "none");
    CHECK(info_value(dev, "modem-lines") == "unsupported (a Linux pty has none)");
    CHECK(info_value(dev, "usb-vendor") == "<missing usb-vendor>");  // a pty is no USB device
    WARN("not tested here: usb-vendor/usb-product/usb-serial need a USB serial adapter; this machine has none");
}

TEST_CASE("control codes: flushes and drain work, modem lines and break are refused on a pty")
{
    Pty pty;
    Device dev(serial_plugin(), "port");
    REQUIRE(devhost::test::open_device(dev, pty.path).ok());

    pty.send("junk\r\nmore");
    Result r = read(dev, DEVHOST_OP_READ_UNTIL, 64, 2000, "\r\n");
    REQUIRE(r.data == "junk\r\n");  // "more" is now buffered in the plugin
    CHECK(control(dev, "flush-input").outcome.ok());
    CHECK(read(dev, DEVHOST_OP_READ, 64, 100).outcome.status == DEVHOST_E_TIMEOUT);

    CHECK(control(dev, "flush-output").outcome.ok());
    REQUIRE(write(dev, "bytes").outcome.ok());
    std::thread reader([&] { pty.receive(5); });
    CHECK(control(dev, "drain").outcome.ok());
    reader.join();

    for (const char *name : {"set-dtr", "clear-dtr", "set-rts", "clear-rts", "get-modem-lines"}) {
        Result c = control(dev, name);
        INFO(name << ": " << c.outcome.message);
        CHECK(c.outcome.status == DEVHOST_E_UNSUPPORTED);
        CHECK_THAT(c.outcome.message, Catch::Contains("no modem lines") && Catch::Contains("pty"));
    }
    Result b = control(dev, "send-break");
    CHECK(b.outcome.status == DEVHOST_E_UNSUPPORTED);
    CHECK_THAT(b.outcome.message, Catch::Contains("break") && Catch::Contains("pty"));
    CHECK(control(dev, "send-break", "soon").outcome.status == DEVHOST_E_INVALID);
    WARN("not tested here: DTR/RTS, modem-line reads and breaks need a real UART; none usable here; "
         "serial_hil (label hil) runs them on QEMU's 8250");
}

TEST_CASE("drain on a pty returns at once: a pty queues nothing on its own side")
{
    Pty pty;
    Device dev(serial_plugin(), "port");
    REQUIRE(devhost::test::open_device(dev, pty.path).ok());
    REQUIRE(write(dev, "unread").outcome.ok());  // the master never reads it
    devhost_transfer x{};
    x.op = DEVHOST_OP_CONTROL;
    x.control_code = dev.plugin().find_control("drain")->code;
    x.timeout_ms = 2000;
    CHECK(dev.transfer(x).ok());
    CHECK(pty.receive(6) == "unread");
    WARN("not tested here: drain timing out on a stalled UART needs real hardware (a pty's output queue is always empty)");
}

TEST_CASE("the descriptor declares the options and controls the README documents")
{
    auto p = serial_plugin();
    CHECK(p->device_class() == "serial");
    for (const char *name : {"baud", "data-bits", "parity", "stop-bits", "flow", "read-total-timeout",
                             "read-interval-timeout", "dtr", "rts", "hupcl", "exclusive", "overlapped"})
        CHECK(p->find_option(name));
    for (const char *name : {"set-dtr", "clear-dtr", "set-rts", "clear-rts", "get-modem-lines", "send-break",
                             "flush-input", "flush-output", "drain"})
        CHECK(p->find_control(name));
    std::string readme = read_file(source_dir() / "plugins/serial/README.md");
    for (const auto &o : p->options())
        CHECK_THAT(readme, Catch::Contains("`" + o.name + "`"));
    for (const auto &c : p->controls())
        CHECK_THAT(readme, Catch::Contains("`" + c.name + "`"));
}
