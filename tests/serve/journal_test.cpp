// devhost logging to the journal (host/journal.hpp) when its stderr is the
// journal's stream, as under devhost.service. There is no journald here, so
// each case runs in a /run of its own (with_private_run) where the test
// binds the datagram socket sd_journal_send writes to,
// /run/systemd/journal/socket, and reads the entries devhost sends there in
// the journal's native protocol (FIELD=value lines; a value holding a
// newline as FIELD, newline, its 64-bit little-endian size, the bytes,
// newline). JOURNAL_STREAM is set to the DEVICE:INODE of the file devhost's
// stderr is, as systemd sets it to its stream socket's.
#include "devhost_test.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

using namespace devhost::test;
using json = nlohmann::json;

namespace {

// One journal entry's fields from a datagram of the native protocol.
json parse_entry(const std::string &d)
{
    json fields = json::object();
    size_t at = 0;
    while (at < d.size()) {
        const size_t nl = d.find('\n', at);
        const std::string line = d.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
        const size_t eq = line.find('=');
        if (eq != std::string::npos) {
            fields[line.substr(0, eq)] = line.substr(eq + 1);
            at = nl == std::string::npos ? d.size() : nl + 1;
        } else {  // binary: NAME\n, le64 size, data, \n
            uint64_t size = 0;
            if (nl == std::string::npos || nl + 9 > d.size())
                throw std::runtime_error("a truncated binary field in: " + d);
            for (int i = 7; i >= 0; i--)
                size = size << 8 | static_cast<unsigned char>(d[nl + 1 + static_cast<size_t>(i)]);
            fields[line] = d.substr(nl + 9, size);
            at = nl + 9 + size + 1;
        }
    }
    return fields;
}

// The journal's socket, bound by the test in its private /run.
struct JournalSocket {
    JournalSocket()
    {
        const fs::path path = "/run/systemd/journal/socket";
        fs::create_directories(path.parent_path());
        fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0)
            throw std::runtime_error("cannot bind " + path.string() + ": " + std::strerror(errno));
    }
    ~JournalSocket() { ::close(fd); }
    JournalSocket(const JournalSocket &) = delete;
    JournalSocket &operator=(const JournalSocket &) = delete;
    // Every entry received so far.
    const json &read()
    {
        static char buf[65536];
        ssize_t n;
        while ((n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
            entries.push_back(parse_entry(std::string(buf, static_cast<size_t>(n))));
        return entries;
    }
    int fd = -1;
    json entries = json::array();
};

// A file for devhost's stderr, and the JOURNAL_STREAM value naming it.
struct StreamFile {
    explicit StreamFile(const fs::path &file) : path(file)
    {
        fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        struct stat st {};
        if (fd < 0 || ::fstat(fd, &st) != 0)
            throw std::runtime_error("cannot open " + file.string());
        stream = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    }
    ~StreamFile() { ::close(fd); }
    StreamFile(const StreamFile &) = delete;
    StreamFile &operator=(const StreamFile &) = delete;
    // devhost with this file as its stderr and JOURNAL_STREAM = `journal_stream`.
    ProcessOptions options(const std::string &journal_stream) const
    {
        const int err = fd;
        return ProcessOptions{60s, "", {{"JOURNAL_STREAM", journal_stream}}, {}, [err] { ::dup2(err, 2); }};
    }
    fs::path path;
    int fd = -1;
    std::string stream;
};

bool wait_until(const std::function<bool()> &pred, std::chrono::milliseconds timeout = 20s)
{
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= until)
            return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

// A loop device whose first body blocks past its 300 ms deadline (a warning
// from the supervisor, a warning from the worker's fault injector, an error
// for the failed step) and whose teardown closes it still locked (the loop
// plugin's info line, relayed by the supervisor from the worker); debug
// lines from both processes at log-level debug.
const char *serve_ini = "[host]\nlog-level = debug\nallow-faults = true\n"
                        "[device jr]\nclass = loop\npath = loop:jr\nsetup = open\nsetup = lock\n"
                        "body = write \"ping\\n\" timeout=300ms\nfault = transfer@1:block\n"
                        "teardown = close\nrun = start\n";

// In a private /run: devhost serve on serve_ini with JOURNAL_STREAM naming
// its stderr (`matching`) or another file, with or without a journal socket;
// stopped once its step has failed. What the journal and stderr got.
json serve_with_stream(const fs::path &dir, bool with_socket, bool matching)
{
    std::optional<JournalSocket> journal;
    if (with_socket)
        journal.emplace();
    write_file(dir / "serve.ini", serve_ini);
    const StreamFile err(dir / "stderr");
    const StreamFile other(dir / "other");
    Child serve({devhost_exe().string(), "serve", "--output", (dir / "records.jsonl").string(), "--socket",
                 (dir / "control").string(), (dir / "serve.ini").string()},
                dir, err.options(matching ? err.stream : other.stream));
    const auto failed = [&] {
        if (read_file(err.path).find("failed: DEVHOST_E_TIMEOUT") != std::string::npos)
            return true;
        if (journal)
            for (const auto &e : journal->read())
                if (e.value("MESSAGE", "").find("failed: DEVHOST_E_TIMEOUT") != std::string::npos)
                    return true;
        return false;
    };
    const bool seen = wait_until(failed);
    serve.signal(SIGTERM);
    const ProcessResult r = serve.wait(20s);
    return {{"failed_seen", seen},
            {"exit", r.timed_out ? -100 : r.exit_code},
            {"journal", journal ? journal->read() : json::array()},
            {"stderr", read_file(err.path)}};
}

// with_private_run of serve_with_stream; null when skipped.
json in_private_run(bool with_socket, bool matching)
{
    TempDir dir;
    const std::string result =
        with_private_run([&] { return serve_with_stream(dir.path(), with_socket, matching).dump(); });
    if (skipped_by(result))
        return nullptr;
    INFO(result);
    REQUIRE(result.rfind("{", 0) == 0);
    return json::parse(result);
}

// The journal entries as "PRIORITY MESSAGE" lines; every one must carry
// SYSLOG_IDENTIFIER=devhost.
std::vector<std::string> priorities_and_messages(const json &entries)
{
    std::vector<std::string> out;
    for (const auto &e : entries) {
        CHECK(e.value("SYSLOG_IDENTIFIER", "") == "devhost");
        out.push_back(e.value("PRIORITY", "?") + " " + e.value("MESSAGE", ""));
    }
    return out;
}

bool has_line(const std::vector<std::string> &lines, const std::string &prefix)
{
    for (const auto &l : lines)
        if (l.rfind(prefix, 0) == 0)
            return true;
    return false;
}

}  // namespace

TEST_CASE("journal: serve logs to the journal socket with priorities when stderr is JOURNAL_STREAM")
{
    const json r = in_private_run(true, true);
    if (r.is_null())
        return;
    INFO(r.dump(1));
    CHECK(r["failed_seen"] == true);
    CHECK(r["exit"] == 0);
    CHECK(r["stderr"] == "");  // nothing left on the stream
    const auto lines = priorities_and_messages(r["journal"]);
    // The supervisor's own lines: an error, a warning, info, debug.
    CHECK(has_line(lines, "3 jr: step 'write \"ping\\n\" timeout=300ms' (line 9) failed: DEVHOST_E_TIMEOUT: write: "
                          "plugin overran its deadline"));
    CHECK(has_line(lines, "4 jr: its transfer hook passed its deadline; cancel fired"));
    CHECK(has_line(lines, "6 serving 1 device(s) from "));
    CHECK(has_line(lines, "7 described plugin loop (class loop"));
    // The worker's lines, relayed by the supervisor with their levels.
    CHECK(has_line(lines, "4 jr: injecting fault 'transfer@1:block'"));
    CHECK(has_line(lines, "6 jr: close: releasing the lock on loop:jr that was not unlocked"));
    CHECK(has_line(lines, "7 loaded plugin loop (class loop"));
    CHECK(has_line(lines, "6 serve stopped"));
}

TEST_CASE("journal: a JOURNAL_STREAM that names another file keeps the plain stderr lines")
{
    const json r = in_private_run(true, false);
    if (r.is_null())
        return;
    INFO(r.dump(1));
    CHECK(r["failed_seen"] == true);
    CHECK(r["exit"] == 0);
    CHECK(r["journal"].empty());
    const std::string err = r["stderr"];
    CHECK(err.find("\ndevhost: error: jr: step 'write") != std::string::npos);
    CHECK(err.find("\ndevhost: warning: jr: its transfer hook passed its deadline; cancel fired\n") != std::string::npos);
    CHECK(err.find("<3>") == std::string::npos);
}

TEST_CASE("journal: without a journal socket the lines go to the stream with sd-daemon priority prefixes")
{
    const json r = in_private_run(false, true);
    if (r.is_null())
        return;
    INFO(r.dump(1));
    CHECK(r["failed_seen"] == true);
    CHECK(r["exit"] == 0);
    const std::string err = r["stderr"];
    CHECK(err.find("\n<3>devhost: error: jr: step 'write") != std::string::npos);
    CHECK(err.find("\n<4>devhost: warning: jr: its transfer hook passed its deadline; cancel fired\n") != std::string::npos);
    CHECK(err.find("\n<6>devhost: info: jr: close: releasing the lock on loop:jr that was not unlocked\n") !=
          std::string::npos);
    CHECK(err.find("\n<7>devhost: debug: loaded plugin loop (class loop") != std::string::npos);
}

TEST_CASE("journal: an error printed before logging starts carries the <3> prefix on the journal stream")
{
    TempDir dir;
    const StreamFile err(dir / "stderr");
    const StreamFile other(dir / "other");
    const std::string missing = (dir / "missing.ini").string();
    ProcessResult r = run_devhost({"serve", missing}, err.options(err.stream));
    CHECK(r.exit_code == 2);
    const std::string on_journal = read_file(err.path);
    CHECK(on_journal.rfind("<3>devhost: error: ", 0) == 0);
    CHECK(on_journal.find(missing) != std::string::npos);
    // Not the journal's stream: the line as it always was.
    r = run_devhost({"serve", missing}, other.options(err.stream));
    CHECK(r.exit_code == 2);
    CHECK(read_file(other.path).rfind("devhost: error: ", 0) == 0);
}
