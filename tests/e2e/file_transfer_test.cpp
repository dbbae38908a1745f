// Bulk data through files (README, "Steps"): `write from=FILE` and
// `read N to=FILE` / `read exactly=N to=FILE` through the devhost binary, on
// real parts: the raw plugin on an image file and on a loop block device,
// the serial plugin on a pty whose master this test drives. Each checks the
// bytes (the files compared), the record's sha256 against sha256sum's, and
// for the stream's limits: the host's peak memory reading 64 MiB, a
// deadline and a stop signal mid-stream (the record's status and partial
// count, the file keeping what was read), the to= file's mode and a link
// planted by another user.
#include "devhost_test.hpp"
#include "devices.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <random>
#include <sys/stat.h>
#include <thread>

using namespace devhost;
using namespace devhost::test;

namespace {

std::string random_bytes(size_t n, unsigned seed = 7)
{
    std::mt19937 gen(seed);
    std::string s(n, '\0');
    for (auto &c : s)
        c = static_cast<char>(gen());
    return s;
}

// Whether two byte strings are equal; a failure says their sizes and the
// first difference, not megabytes of binary.
bool same(const std::string &got, const std::string &want)
{
    const auto diff = std::mismatch(got.begin(), got.end(), want.begin(), want.end());
    INFO("got " << got.size() << " bytes, wanted " << want.size() << "; first difference at "
                << (diff.first - got.begin()));
    CHECK(got.size() == want.size());
    return got == want;
}

std::string sha256sum(const fs::path &file)
{
    auto r = run_process({"/usr/bin/sha256sum", file.string()});
    REQUIRE(r.exit_code == 0);
    return r.out.substr(0, 64);
}

// A field of a JSON record: a string's contents, or a number as written.
std::string field(const std::string &record, const std::string &name)
{
    const std::string key = "\"" + name + "\":";
    const auto at = record.find(key);
    if (at == std::string::npos)
        return "(absent)";
    size_t from = at + key.size();
    if (record[from] == '"')
        return record.substr(from + 1, record.find('"', from + 1) - from - 1);
    return record.substr(from, record.find_first_of(",}", from) - from);
}

// The record of the step on config line `line`.
std::string record_at(const std::string &records, int line)
{
    for (const auto &l : lines(records))
        if (field(l, "line") == std::to_string(line))
            return l;
    FAIL("no record for line " << line << " in:\n" << records);
    return "";
}

// A config of one device and its steps (`step =` lines from line 5 on).
std::string config(const std::string &cls, const std::string &path, const std::vector<std::string> &steps,
                   const std::string &options = "")
{
    std::string ini = "[device d]\nclass = " + cls + "\npath = " + path + "\n" + (options.empty() ? "#\n" : options);
    for (const auto &s : steps)
        ini += "step = " + s + "\n";
    return ini;
}

ProcessResult run_config(const TempDir &dir, const std::string &ini, const ProcessOptions &options = {})
{
    write_file(dir / "c.ini", ini);
    return run_devhost({"run", (dir / "c.ini").string()}, options);
}

}  // namespace

TEST_CASE("read to= and write from= on a raw image move identical bytes and record sha256sum's digest",
          "[file-transfer][e2e]")
{
    TempDir dir;
    const std::string data = random_bytes(5 * 1024 * 1024 + 12345);  // not a whole number of chunks
    write_file(dir / "image", data);
    write_file(dir / "copy", std::string(data.size() + 8192, 'x'));
    write_file(dir / "stale", std::string(10u << 20, 's'));  // longer than what is read into it
    const std::string image = (dir / "image").string(), copy = (dir / "copy").string();
    auto r = run_config(dir, config("raw", image,
                                    {"open", "read 999999999 to=" + (dir / "all").string(),
                                     "read exactly=1000 to=" + (dir / "stale").string() + " offset=4096", "close"}));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const std::string all = record_at(r.out, 6);
    CHECK(field(all, "status") == "DEVHOST_OK");
    CHECK(field(all, "bytes") == std::to_string(data.size()));  // up to N: the image's end ends it
    CHECK(same(read_file(dir / "all"), data));
    CHECK(field(all, "sha256") == sha256sum(dir / "image"));
    CHECK(field(all, "hex").size() == 2 * 65536);  // record-data full: the first 64 KiB
    CHECK(same(read_file(dir / "stale"), data.substr(4096, 1000)));  // emptied first
    CHECK(field(record_at(r.out, 7), "sha256") == sha256sum(dir / "stale"));
    for (const auto &line : lines(r.out))
        CHECK(line.size() < 1024 * 1024);  // no record over 1 MiB, whatever moved

    auto w = run_config(dir, config("raw", copy, {"open", "write from=image offset=8192", "close"},
                                    "allow-write = true\n"));
    INFO(w.err);
    REQUIRE(w.exit_code == 0);
    CHECK(field(record_at(w.out, 6), "bytes") == std::to_string(data.size()));
    CHECK(field(record_at(w.out, 6), "sha256") == sha256sum(dir / "image"));
    CHECK(same(read_file(dir / "copy"), std::string(8192, 'x') + data));  // a relative from= is the config's
}

TEST_CASE("with record-data = none or head:N a file transfer's record shows that much, and sha256 always",
          "[file-transfer][e2e]")
{
    TempDir dir;
    write_file(dir / "image", random_bytes(300000));
    for (const std::string setting : {"none", "head:8"}) {
        INFO(setting);
        auto r = run_config(dir, "[host]\nrecord-data = " + setting + "\n" +
                                     config("raw", (dir / "image").string(),
                                            {"open", "read 300000 to=" + (dir / "out").string(), "close"}));
        REQUIRE(r.exit_code == 0);
        const std::string rec = record_at(r.out, 8);
        CHECK(field(rec, "bytes") == "300000");
        CHECK(field(rec, "hex").size() == (setting == "none" ? 0u : 16u));
        CHECK(field(rec, "sha256") == sha256sum(dir / "image"));
        CHECK(rec.find("summarised") == std::string::npos);
    }
}

TEST_CASE("read N to= stops at a device's end that falls on a chunk boundary, read exactly=N fails there",
          "[file-transfer][e2e]")
{
    TempDir dir;
    const std::string data = random_bytes(2u << 20);  // two whole chunks
    write_file(dir / "image", data);
    auto r = run_config(dir, config("raw", (dir / "image").string(),
                                    {"open", "read 3145728 to=" + (dir / "a").string(), "close"}));
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(field(record_at(r.out, 6), "bytes") == "2097152");
    CHECK(same(read_file(dir / "a"), data));

    auto e = run_config(dir, config("raw", (dir / "image").string(),
                                    {"open", "read exactly=3145728 to=" + (dir / "b").string(), "close"}));
    CHECK(e.exit_code == 1);
    const std::string rec = record_at(e.out, 6);
    CHECK(field(rec, "status") == "DEVHOST_E_INVALID");  // as a plain read exactly= past the end
    CHECK(field(rec, "bytes") == "2097152");
    CHECK(field(rec, "message").find("(after 2097152 bytes)") != std::string::npos);
    CHECK(same(read_file(dir / "b"), data));
}

TEST_CASE("read exactly= to= and write from= through a loop block device", "[file-transfer][e2e]")
{
    TempDir dir;
    const std::string data = random_bytes(3u << 20);
    write_file(dir / "data", data);
    write_file(dir / "backing", std::string(4u << 20, '\0'));
    LoopDevice loop(dir / "backing");
    if (!loop.available())
        DEVHOST_SKIP(loop.reason());
    auto r = run_config(dir, config("raw", loop.path(),
                                    {"open", "write from=data offset=0",
                                     "read exactly=3145728 to=" + (dir / "back").string() + " offset=0", "close"},
                                    "allow-write = true\n"));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(same(read_file(dir / "back"), data));
    CHECK(field(record_at(r.out, 6), "sha256") == sha256sum(dir / "data"));
    CHECK(field(record_at(r.out, 7), "sha256") == sha256sum(dir / "data"));
}

namespace {

// Runs devhost on `ini` in the background; the caller talks to the pty.
struct Background {
    TempDir &dir;
    std::unique_ptr<Child> child;
    Background(TempDir &d, const std::string &ini) : dir(d)
    {
        write_file(dir / "c.ini", ini);
        child = std::make_unique<Child>(std::vector<std::string>{devhost_exe().string(), "run",
                                                                 (dir / "c.ini").string()},
                                        dir.path());
    }
    // Waits until the device is open (its record is out): what is sent to
    // the pty from then on is the pipeline's to read.
    void opened() const { REQUIRE(child->wait_for_output("\"step\":\"open\"", std::chrono::seconds(20))); }
};

// What process `pid` has read through read(2) and the like so far (rchar
// in /proc/PID/io), -1 if it is gone.
// Bytes read by process `pid` and its children (devhost's worker does
// the reading), as the kernel counts read(2) calls.
long long bytes_read_by(pid_t pid)
{
    long long total = 0;
    std::ifstream in("/proc/" + std::to_string(pid) + "/io");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("rchar:", 0) == 0)
            total += std::stoll(line.substr(6));
    std::ifstream children("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
    for (pid_t child; children >> child;)
        total += std::max(0LL, bytes_read_by(child));
    return total;
}

}  // namespace

TEST_CASE("write from= and read exactly= to= on a serial port (a pty) move identical bytes",
          "[file-transfer][e2e]")
{
    TempDir dir;
    Pty pty(PtyMode::raw);
    const std::string data = random_bytes(1u << 20);
    write_file(dir / "data", data);
    Background bg(dir, config("serial", pty.path,
                              {"open", "write from=data timeout=20s",
                               "read exactly=1048576 to=" + (dir / "back").string() + " timeout=20s", "close"}));
    bg.opened();
    const std::string got = pty.receive(data.size(), 20000);  // what the device wrote
    CHECK(same(got, data));
    pty.send(data);  // and back: what it reads to the file
    auto r = bg.child->wait(std::chrono::seconds(30));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(same(read_file(dir / "back"), data));
    CHECK(field(record_at(r.out, 6), "sha256") == sha256sum(dir / "data"));
    CHECK(field(record_at(r.out, 7), "sha256") == sha256sum(dir / "data"));
}

TEST_CASE("a stream past its deadline, or stopped by SIGTERM, records the bytes moved and the file keeps them",
          "[file-transfer][e2e]")
{
    TempDir dir;
    Pty pty(PtyMode::raw);
    const std::string part = random_bytes(10000);
    write_file(dir / "part", part);
    SECTION("the deadline")
    {
        Background bg(dir, config("serial", pty.path,
                                  {"open", "read exactly=1048576 to=" + (dir / "got").string() + " timeout=1s",
                                   "close"}));
        bg.opened();
        pty.send(part);
        auto r = bg.child->wait(std::chrono::seconds(20));
        CHECK(r.exit_code == 1);
        const std::string rec = record_at(r.out, 6);
        CHECK(field(rec, "status") == "DEVHOST_E_TIMEOUT");
        CHECK(field(rec, "bytes") == "10000");
        CHECK(field(rec, "sha256") == sha256sum(dir / "part"));
    }
    SECTION("a stop signal")
    {
        Background bg(dir, config("serial", pty.path,
                                  {"open", "read exactly=1048576 to=" + (dir / "got").string() + " timeout=60s",
                                   "close"}));
        bg.opened();
        const long long before = bytes_read_by(bg.child->pid());
        pty.send(part);
        // A barrier, not a sleep: the stop comes once the device has read
        // the bytes (read(2) calls counted by the kernel) and waits for more.
        for (int i = 0; i < 2000 && bytes_read_by(bg.child->pid()) < before + 10000; i++)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        REQUIRE(bytes_read_by(bg.child->pid()) >= before + 10000);
        bg.child->signal(SIGTERM);
        auto r = bg.child->wait(std::chrono::seconds(20));
        CHECK(r.exit_code == 4);
        const std::string rec = record_at(r.out, 6);
        CHECK(field(rec, "status") == "DEVHOST_E_CANCELLED");
        CHECK(field(rec, "bytes") == "10000");
        CHECK(field(rec, "sha256") == sha256sum(dir / "part"));
    }
    CHECK(same(read_file(dir / "got"), part));
}

namespace {

// The peak resident memory (VmHWM, KiB) of process `pid`, -1 if gone.
long vm_hwm_kib(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("VmHWM:", 0) == 0)
            return std::stol(line.substr(6));
    return -1;
}

// devhost reading `bytes` of `image` to a file, then sleeping: its peak
// memory, read while it sleeps (after the read's record is out).
long peak_reading(TempDir &dir, const fs::path &image, size_t bytes)
{
    Background bg(dir, config("raw", image.string(),
                              {"open", "read " + std::to_string(bytes) + " to=" + (dir / "out").string(),
                               "sleep 2s", "close"}));
    REQUIRE(bg.child->wait_for_output("\"step\":\"read", std::chrono::seconds(60)));
    const long kib = vm_hwm_kib(bg.child->pid());
    auto r = bg.child->wait(std::chrono::seconds(30));
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(fs::file_size(dir / "out") == bytes);
    return kib;
}

}  // namespace

TEST_CASE("reading 64 MiB to a file takes less than 4 MiB more memory than reading 1 MiB", "[file-transfer][e2e]")
{
    TempDir dir;
    {
        std::ofstream image(dir / "image", std::ios::binary);
        const std::string block = random_bytes(1u << 20);
        for (int i = 0; i < 64; i++)
            image << block;
    }
    const long small = peak_reading(dir, dir / "image", 1u << 20);
    const long large = peak_reading(dir, dir / "image", 64u << 20);
    INFO("VmHWM reading 1 MiB: " << small << " KiB, 64 MiB: " << large << " KiB");
    REQUIRE(small > 0);
    REQUIRE(large > 0);
    CHECK(large < small + 4 * 1024);
}

namespace {

ProcessResult as_nobody(std::vector<std::string> argv)
{
    argv.insert(argv.begin(), {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
    return run_process(argv);
}

}  // namespace

TEST_CASE("to= is created 0600 whatever the umask, and a link another user planted is not followed",
          "[file-transfer][e2e]")
{
    if (geteuid() != 0)
        DEVHOST_SKIP("needs root to act as another user (setpriv)");
    TempDir top;
    fs::permissions(top.path(), fs::perms(0755));
    write_file(top / "image", "0123456789");
    const fs::path pub = top / "public", victim = top / "victim";
    fs::create_directory(pub);
    REQUIRE(chmod(pub.c_str(), 01777) == 0);
    write_file(victim, "root's file\n");
    REQUIRE(as_nobody({"/bin/ln", "-s", victim.string(), (pub / "planted").string()}).exit_code == 0);

    ProcessOptions umask_all;
    umask_all.before_exec = [] { umask(0777); };
    auto r = run_config(top, config("raw", (top / "image").string(),
                                    {"open", "read 10 to=" + (pub / "fresh").string(),
                                     "read 10 to=" + (pub / "planted").string() + " offset=0", "close"}),
                        umask_all);
    CHECK(r.exit_code == 1);
    struct stat st {};
    REQUIRE(lstat((pub / "fresh").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    CHECK(read_file(pub / "fresh") == "0123456789");
    const std::string rec = record_at(r.out, 7);
    CHECK(field(rec, "status") == "DEVHOST_E_IO");
    CHECK(field(rec, "message") == "to=" + (pub / "planted").string() +
                                       ": a symbolic link in a directory others can write; not followed");
    CHECK(read_file(victim) == "root's file\n");
}
