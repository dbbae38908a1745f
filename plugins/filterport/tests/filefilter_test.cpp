// devhost-filefilter end to end, on real fanotify permission events: the
// server watches a temporary directory and serves a port in a temporary port
// directory; deciding clients are a `devhost run` pipeline (get-message, then
// reply allow/deny) and filterport devices driven through devhost::Device;
// child processes open files in the watched directory and see the verdict
// (0 or EPERM). Also: the default verdict when nobody answers, the commands
// (add, remove, list, stats), shutdown during a decision, and that only the
// configured directory inodes are ever marked (checked in the kernel's own
// fdinfo of the server's fanotify descriptor), never a mount or /.
//
// Every wait is bounded; nothing asserts how long something took.
#include "port_test_util.hpp"

#include <catch2/catch.hpp>

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>

using namespace porttest;
using devhost::test::Child;
using devhost::test::TempDir;

namespace {

// Empty when this process can use fanotify permission events, else why not.
std::string fanotify_unavailable()
{
    int fd = ::fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, O_RDONLY);
    if (fd < 0)
        return std::string("fanotify_init(FAN_CLASS_CONTENT): ") + std::strerror(errno);
    ::close(fd);
    return {};
}

#define REQUIRE_FANOTIFY()                                                                                            \
    do {                                                                                                              \
        std::string why_ = fanotify_unavailable();                                                                    \
        if (!why_.empty()) {                                                                                          \
            DEVHOST_SKIP("fanotify permission events are unavailable here: " + why_);                                \
        }                                                                                                             \
    } while (0)

// A test area: watched/ (the filter's directory, holding a and b), other/ (a
// sibling on the same mount), ports/ (the port directory) and logs/ (the
// children's output). Nothing in here opens a watched file itself: only
// Opener children do, so the test never waits on its own filter.
struct Area {
    TempDir tmp;
    fs::path watched, other, ports, logs;
    Area()
    {
        fs::path root = fs::canonical(tmp.path());
        watched = root / "watched";
        other = root / "other";
        ports = root / "ports";
        logs = root / "logs";
        for (const auto &d : {watched, other, ports, logs, watched / "sub"})
            fs::create_directories(d);
        devhost::test::write_file(watched / "a", "file a\n");
        devhost::test::write_file(watched / "b", "file b\n");
        devhost::test::write_file(watched / "sub" / "c", "file c\n");
        devhost::test::write_file(other / "d", "file d\n");
        devhost::test::write_file(root / "e", "file e\n");
    }
    fs::path port() const { return ports / "FileFilter"; }
};

// devhost-filefilter running on the area, stopped (SIGKILL) on scope exit if
// still running.
struct FilterServer {
    std::unique_ptr<Child> child;
    explicit FilterServer(const Area &area, std::vector<std::string> extra = {})
    {
        std::vector<std::string> argv = {(devhost::test::bin_dir() / "devhost-filefilter").string(),
                                         "--watch=" + area.watched.string(), "--port-dir=" + area.ports.string(),
                                         "--name=FileFilter"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        child = std::make_unique<Child>(argv, area.logs);
        if (!child->wait_for_output("READY " + area.port().string(), 20s))
            FAIL("devhost-filefilter did not come up: " << child->err());
    }
    // True once `text` shows on its stderr (it logs connects/disconnects).
    bool logged(const std::string &text) { return child->wait_for_output(text, 20s); }
    devhost::test::ProcessResult stop()
    {
        child->signal(SIGTERM);
        return child->wait(30s);
    }
};

// A child process that opens one file (O_RDONLY) and exits with 0 or the
// errno of the open; killed and reaped on scope exit if still running.
class Opener {
public:
    explicit Opener(const fs::path &file)
    {
        pid_ = ::fork();
        if (pid_ < 0)
            throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
            ::_exit(fd >= 0 ? 0 : (errno & 0xff));
        }
    }
    ~Opener()
    {
        if (pid_ > 0 && !reaped_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    Opener(const Opener &) = delete;
    Opener &operator=(const Opener &) = delete;
    pid_t pid() const { return pid_; }
    // The open's result: 0 or its errno; -1 if the child did not end within
    // `timeout` (a deadline against hangs only).
    int result(std::chrono::milliseconds timeout = 60s)
    {
        if (reaped_)
            throw std::logic_error("Opener::result called twice");
        auto end = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < end) {
            int status = 0;
            pid_t r = ::waitpid(pid_, &status, WNOHANG);
            if (r == pid_) {
                reaped_ = true;
                return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
            }
            ::usleep(2000);
        }
        return -1;
    }

private:
    pid_t pid_ = -1;
    bool reaped_ = false;
};

int open_in_child(const fs::path &file)
{
    Opener o(file);
    return o.result();
}

// One counter of the server's "stats" answer ("events=1 allowed=0 ...").
long stat_of(const std::string &stats, const std::string &key)
{
    std::istringstream in(stats);
    std::string word;
    while (in >> word)
        if (word.rfind(key + "=", 0) == 0)
            return std::stol(word.substr(key.size() + 1));
    return -1;
}

// The marks of `pid`'s fanotify descriptor(s), one line each, as the kernel
// lists them in /proc/PID/fdinfo: "fanotify ino:HEX sdev:..." for an inode,
// "fanotify mnt_id:..." for a mount, "fanotify sdev:..." for a filesystem.
std::vector<std::string> fanotify_marks(pid_t pid)
{
    std::vector<std::string> marks;
    fs::path fds = "/proc/" + std::to_string(pid) + "/fd";
    for (const auto &e : fs::directory_iterator(fds)) {
        std::error_code ec;
        if (fs::read_symlink(e.path(), ec).string() != "anon_inode:[fanotify]")
            continue;
        std::ifstream info("/proc/" + std::to_string(pid) + "/fdinfo/" + e.path().filename().string());
        std::string line;
        while (std::getline(info, line))
            if (line.rfind("fanotify ", 0) == 0 && line.rfind("fanotify flags:", 0) != 0)
                marks.push_back(line);
    }
    return marks;
}

std::string inode_hex(const fs::path &p)
{
    struct stat st{};
    if (::stat(p.c_str(), &st) != 0)
        return "?";
    std::ostringstream o;
    o << std::hex << st.st_ino;
    return o.str();
}

// A filterport device connected to the area's port.
std::unique_ptr<Port> client(const Area &area, const std::string &name = "decider")
{
    auto p = std::make_unique<Port>(name);
    REQUIRE(p->open(area.port()).status == DEVHOST_OK);
    auto c = p->connect();
    INFO(c.message);
    REQUIRE(c.status == DEVHOST_OK);
    return p;
}

std::string stats(Port &p)
{
    auto o = p.request("stats");
    INFO(o.message);
    REQUIRE(o.status == DEVHOST_OK);
    return p.text();
}

}  // namespace

TEST_CASE("a devhost pipeline decides: its allow lets the open through, its deny fails it with EPERM",
          "[filefilter][e2e]")
{
    REQUIRE_FANOTIFY();
    Area area;
    FilterServer server(area, {"--timeout=30000", "--default=allow"});
    fs::path cfg = area.logs / "decider.ini";
    devhost::test::write_file(cfg, "[host]\n"
                                   "port-dir = " + area.ports.string() + "\n"
                                   "timeout = 20s\n"
                                   "[device decider]\n"
                                   "class = filterport\n"
                                   "path = \\FileFilter\n"
                                   "step = open\n"
                                   "step = connect\n"
                                   "step = get-message expect=\"access=open\"\n"
                                   "step = reply \"allow\"\n"
                                   "step = get-message expect=\"access=open\"\n"
                                   "step = reply \"deny\"\n"
                                   "step = request \"stats\" expect=\"events=2 allowed=1\"\n"
                                   "step = disconnect\n"
                                   "step = close\n");
    Child pipeline({devhost::test::devhost_exe().string(), "--plugin-path=" + devhost::test::plugin_dir().string(),
                    "run", cfg.string()},
                   area.logs);
    REQUIRE(server.logged("client 1 connected"));

    Opener first(area.watched / "a");
    CHECK(first.result() == 0);
    Opener second(area.watched / "b");
    CHECK(second.result() == EPERM);

    auto r = pipeline.wait(60s);
    INFO(r.out << r.err);
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 0);
    auto records = devhost::test::lines(r.out);
    std::vector<std::string> messages;
    for (const auto &line : records)
        if (line.find("\"step\":\"get-message") != std::string::npos)
            messages.push_back(line);
    REQUIRE(messages.size() == 2);
    CHECK(messages[0].find("DEVHOST_OK") != std::string::npos);
    CHECK(messages[0].find("pid=" + std::to_string(first.pid()) + " access=open path=" +
                           (area.watched / "a").string()) != std::string::npos);
    CHECK(messages[1].find("path=" + (area.watched / "b").string()) != std::string::npos);
    CHECK(messages[0].find("\"message_id\":") != std::string::npos);

    auto s = server.stop();
    CHECK(s.exit_code == 0);
    CHECK(server.child->err().find("stopped: events=2 allowed=1 denied=1 defaulted=0") != std::string::npos);
}

TEST_CASE("Device API clients decide, and a deny from any client wins", "[filefilter][e2e]")
{
    REQUIRE_FANOTIFY();
    Area area;
    FilterServer server(area, {"--timeout=30000", "--default=allow"});
    auto one = client(area, "one");
    auto two = client(area, "two");

    SECTION("both allow")
    {
        Opener o(area.watched / "a");
        REQUIRE(one->get_message(20000).status == DEVHOST_OK);
        CHECK(one->text() == "open pid=" + std::to_string(o.pid()) + " access=open path=" +
                                 (area.watched / "a").string());
        REQUIRE(two->get_message(20000).status == DEVHOST_OK);
        CHECK(two->text() == one->text());
        CHECK(one->reply(one->message_id, "allow").status == DEVHOST_OK);
        CHECK(two->reply(two->message_id, "allow\n").status == DEVHOST_OK);
        CHECK(o.result() == 0);
        auto st = stats(*one);
        CHECK(stat_of(st, "allowed") == 1);
        CHECK(stat_of(st, "clients") == 2);
    }
    SECTION("one allows, one denies")
    {
        Opener o(area.watched / "b");
        REQUIRE(one->get_message(20000).status == DEVHOST_OK);
        REQUIRE(two->get_message(20000).status == DEVHOST_OK);
        CHECK(one->reply(one->message_id, "allow").status == DEVHOST_OK);
        CHECK(two->reply(two->message_id, "deny").status == DEVHOST_OK);
        CHECK(o.result() == EPERM);
        CHECK(stat_of(stats(*one), "denied") == 1);
    }
    SECTION("a reply that is neither allow nor deny counts as no answer: the default applies")
    {
        Opener o(area.watched / "a");
        REQUIRE(one->get_message(20000).status == DEVHOST_OK);
        REQUIRE(two->get_message(20000).status == DEVHOST_OK);
        CHECK(one->reply(one->message_id, "maybe").status == DEVHOST_OK);
        CHECK(two->reply(two->message_id, "perhaps").status == DEVHOST_OK);
        CHECK(o.result() == 0);
        CHECK(stat_of(stats(*one), "defaulted") == 1);
        CHECK(server.logged("replied 'maybe' (expected allow or deny)"));
    }
}

TEST_CASE("the default verdict applies when no client answers in time, or none is connected", "[filefilter][e2e]")
{
    REQUIRE_FANOTIFY();
    Area area;
    SECTION("deny by default: a silent client")
    {
        FilterServer server(area, {"--timeout=300", "--default=deny"});
        auto silent = client(area);
        CHECK(open_in_child(area.watched / "a") == EPERM);
        // The message did reach the client; its late reply is dropped.
        REQUIRE(silent->get_message(5000).status == DEVHOST_OK);
        CHECK(silent->text().find("path=" + (area.watched / "a").string()) != std::string::npos);
        CHECK(silent->reply(silent->message_id, "allow").status == DEVHOST_OK);
        auto st = stats(*silent);
        CHECK(stat_of(st, "events") == 1);
        CHECK(stat_of(st, "defaulted") == 1);
        CHECK(stat_of(st, "allowed") == 0);
        CHECK(server.logged("no verdict from client"));
    }
    SECTION("allow by default: a silent client")
    {
        FilterServer server(area, {"--timeout=300", "--default=allow"});
        auto silent = client(area);
        CHECK(open_in_child(area.watched / "a") == 0);
        CHECK(stat_of(stats(*silent), "defaulted") == 1);
    }
    SECTION("no client connected: deny by default without waiting for anyone")
    {
        FilterServer server(area, {"--timeout=30000", "--default=deny"});
        CHECK(open_in_child(area.watched / "a") == EPERM);
        CHECK(open_in_child(area.watched / "b") == EPERM);
        auto s = server.stop();
        CHECK(s.exit_code == 0);
        CHECK(server.child->err().find("events=2 allowed=0 denied=0 defaulted=2") != std::string::npos);
    }
}

TEST_CASE("commands: add and remove a watched directory, list, stats, and bad commands are refused",
          "[filefilter][commands]")
{
    REQUIRE_FANOTIFY();
    Area area;
    FilterServer server(area, {"--timeout=30000", "--default=allow"});
    auto c = client(area);

    auto st = stats(*c);
    CHECK(stat_of(st, "events") == 0);
    CHECK(stat_of(st, "clients") == 1);
    CHECK(stat_of(st, "watches") == 1);
    REQUIRE(c->request("list").status == DEVHOST_OK);
    CHECK(c->text() == area.watched.string() + "\n");

    // Not watched yet: the open goes through without an event.
    CHECK(open_in_child(area.other / "d") == 0);
    CHECK(stat_of(stats(*c), "events") == 0);

    auto add = c->request("add " + area.other.string());
    INFO(add.message);
    REQUIRE(add.status == DEVHOST_OK);
    CHECK(c->text() == "ok watching " + area.other.string());
    REQUIRE(c->request("list").status == DEVHOST_OK);
    CHECK(c->text() == area.watched.string() + "\n" + area.other.string() + "\n");
    {
        Opener o(area.other / "d");
        REQUIRE(c->get_message(20000).status == DEVHOST_OK);
        CHECK(c->text().find("path=" + (area.other / "d").string()) != std::string::npos);
        REQUIRE(c->reply(c->message_id, "deny").status == DEVHOST_OK);
        CHECK(o.result() == EPERM);
    }
    st = stats(*c);
    CHECK(stat_of(st, "events") == 1);
    CHECK(stat_of(st, "denied") == 1);
    CHECK(stat_of(st, "watches") == 2);

    auto rm = c->request("remove " + area.other.string());
    INFO(rm.message);
    REQUIRE(rm.status == DEVHOST_OK);
    CHECK(c->text() == "ok stopped watching " + area.other.string());
    CHECK(open_in_child(area.other / "d") == 0);
    st = stats(*c);
    CHECK(stat_of(st, "events") == 1);
    CHECK(stat_of(st, "watches") == 1);

    SECTION("refusals name what was wrong")
    {
        auto o = c->request("remove " + area.other.string());
        CHECK(o.status == DEVHOST_E_NOT_FOUND);
        CHECK(o.message.find("is not watched") != std::string::npos);
        o = c->request("add " + (area.watched / "missing").string());
        CHECK(o.status == DEVHOST_E_INVALID);
        CHECK(o.message.find("cannot watch " + (area.watched / "missing").string()) != std::string::npos);
        o = c->request("add " + (area.watched / "a").string());
        CHECK(o.status == DEVHOST_E_INVALID);
        CHECK(o.message.find("not a directory") != std::string::npos);
        o = c->request("add /");
        CHECK(o.status == DEVHOST_E_INVALID);
        CHECK(o.message.find("refusing to watch /") != std::string::npos);
        o = c->request("frobnicate");
        CHECK(o.status == DEVHOST_E_INVALID);
        CHECK(o.message.find("unknown command 'frobnicate'") != std::string::npos);
        // The connection survives refused commands.
        CHECK(stat_of(stats(*c), "watches") == 1);
    }
}

TEST_CASE("only the configured directories are marked: never a mount, a filesystem or /", "[filefilter][marks]")
{
    REQUIRE_FANOTIFY();
    Area area;
    // A client that never answers and a deny default: any open the filter
    // saw outside the watched directory would fail (after the long timeout).
    FilterServer server(area, {"--timeout=30000", "--default=deny"});
    auto silent = client(area);

    auto marks = fanotify_marks(server.child->pid());
    INFO([&] {
        std::string all;
        for (const auto &m : marks)
            all += m + "\n";
        return all;
    }());
    REQUIRE(marks.size() == 1);
    CHECK(marks[0].find("ino:" + inode_hex(area.watched) + " ") != std::string::npos);
    for (const auto &m : marks) {
        CHECK(m.find("mnt_id:") == std::string::npos);
        CHECK(m.find("ino:") != std::string::npos);
    }

    // Same mount, outside the directory, and one level below it: no event.
    CHECK(open_in_child(area.other / "d") == 0);
    CHECK(open_in_child(area.watched.parent_path() / "e") == 0);
    CHECK(open_in_child(area.watched / "sub" / "c") == 0);
    CHECK(stat_of(stats(*silent), "events") == 0);

    REQUIRE(silent->request("add " + area.other.string()).status == DEVHOST_OK);
    marks = fanotify_marks(server.child->pid());
    REQUIRE(marks.size() == 2);
    for (const auto &m : marks)
        CHECK(m.find("ino:") != std::string::npos);
    REQUIRE(silent->request("remove " + area.other.string()).status == DEVHOST_OK);
    CHECK(fanotify_marks(server.child->pid()).size() == 1);
}

TEST_CASE("bad usage: / is refused, a missing directory is named, no port is left behind", "[filefilter][usage]")
{
    REQUIRE_FANOTIFY();
    Area area;
    auto run = [&](std::vector<std::string> args) {
        args.insert(args.begin(), (devhost::test::bin_dir() / "devhost-filefilter").string());
        return devhost::test::run_process(args, {.timeout = 30s});
    };
    auto r = run({"--watch=/", "--port-dir=" + area.ports.string()});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("refusing to watch /") != std::string::npos);
    r = run({"--watch=" + (area.watched / "missing").string(), "--port-dir=" + area.ports.string()});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("cannot watch " + (area.watched / "missing").string()) != std::string::npos);
    r = run({"--port-dir=" + area.ports.string()});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("give at least one --watch=DIR") != std::string::npos);
    r = run({"--watch=" + area.watched.string(), "--default=maybe"});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--default=maybe: expected allow or deny") != std::string::npos);
    r = run({"--watch=" + area.watched.string(), "--timeout=soon"});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--timeout=soon") != std::string::npos);
    CHECK(fs::is_empty(area.ports));
}

TEST_CASE("SIGTERM during a decision: the open gets the default at once, the server stops, the port goes",
          "[filefilter][stop]")
{
    REQUIRE_FANOTIFY();
    Area area;
    // The decision timeout is far beyond the test's deadlines: only the stop
    // path can end this decision before the waits below give up.
    FilterServer server(area, {"--timeout=3600000", "--default=deny"});
    auto silent = client(area);
    Opener o(area.watched / "a");
    REQUIRE(silent->get_message(20000).status == DEVHOST_OK);  // the decision is in progress
    auto r = server.stop();
    INFO(server.child->err());
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 0);
    CHECK(o.result() == EPERM);
    CHECK_FALSE(fs::exists(area.port()));
    CHECK(server.child->err().find("stopped: events=1 allowed=0 denied=0 defaulted=1") != std::string::npos);
    // The client sees the server gone.
    CHECK(silent->reply(silent->message_id, "allow").status == DEVHOST_E_REMOVED);
}
