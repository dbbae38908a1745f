// The config is read once: one open and one read to its end, whatever the
// command (load_config in-process, `devhost check`, `devhost run`), counted
// by an inotify watch on the file. The text read is then parsed once, by the
// host's own line scan (config.hpp); Program_options serves the command line
// only.
#include "config.hpp"
#include "devhost_test.hpp"

#include <catch2/catch.hpp>
#include <cerrno>
#include <sys/inotify.h>
#include <unistd.h>

using namespace devhost;
using namespace devhost::test;

namespace {

// How often a file was opened and closed while a watch was on it.
struct Opens {
    int opened = 0;
    int closed = 0;
};

class OpenWatch {
public:
    explicit OpenWatch(const fs::path &file) : fd_(inotify_init1(IN_NONBLOCK | IN_CLOEXEC))
    {
        REQUIRE(fd_ >= 0);
        REQUIRE(inotify_add_watch(fd_, file.c_str(), IN_OPEN | IN_CLOSE) >= 0);
    }
    ~OpenWatch() { ::close(fd_); }
    OpenWatch(const OpenWatch &) = delete;
    OpenWatch &operator=(const OpenWatch &) = delete;

    // The events so far (the kernel queues them as they happen: by the time
    // the reader has exited or returned, all of its are there).
    Opens count()
    {
        alignas(inotify_event) char buf[4096];
        for (;;) {
            const ssize_t n = ::read(fd_, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return opens_;
            for (ssize_t at = 0; at < n;) {
                const auto *e = reinterpret_cast<const inotify_event *>(buf + at);
                opens_.opened += (e->mask & IN_OPEN) != 0;
                opens_.closed += (e->mask & IN_CLOSE) != 0;
                at += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
            }
        }
    }

private:
    int fd_;
    Opens opens_;
};

const char *const good_config = "[device a]\nclass = loop\npath = loop:a\nstep = open\nstep = write \"x#y\"\n"
                                "step = close\n";

}  // namespace

TEST_CASE("load_config opens the config file once and parses what it read", "[config]")
{
    TempDir dir;
    const fs::path file = dir / "one.ini";
    write_file(file, good_config);
    OpenWatch watch(file);
    std::vector<Diagnostic> diags;
    Config config = load_config(file, diags);
    CHECK(diags.empty());
    REQUIRE(config.devices.size() == 1);
    REQUIRE(config.devices[0].steps.size() == 3);
    CHECK(config.devices[0].steps[1].text == "write \"x#y\"");  // the '#' inside quotes is data
    const Opens opens = watch.count();
    CHECK(opens.opened == 1);
    CHECK(opens.closed == 1);
}

TEST_CASE("devhost check and devhost run open the config file once", "[config]")
{
    TempDir dir;
    const fs::path file = dir / "one.ini";
    write_file(file, good_config);
    for (const std::string command : {"check", "run"}) {
        OpenWatch watch(file);
        ProcessResult r = run_devhost({command, file.string()}, {.timeout = std::chrono::seconds(30)});
        INFO(command << ": " << r.err);
        CHECK(r.exit_code == 0);
        const Opens opens = watch.count();
        CHECK(opens.opened == 1);
        CHECK(opens.closed == 1);
    }
}
