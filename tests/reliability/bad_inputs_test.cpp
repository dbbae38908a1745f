// Runs the catalogue in tests/bad-inputs/ (see its README): bad configs,
// step lines, command lines, plugin files and frames on a filter port's
// socket, each with the exact error it gives and the exit code (or, for a
// frame sent to a server, the ERROR frame) that goes with it.
#include "devhost_test.hpp"
#include "elf_check.hpp"
#include "steps.hpp"

#include <devhost/port_wire.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>
#include <elf.h>
#include <link.h>
#include <cstring>
#include <fstream>
#include <optional>
#include <poll.h>
#include <sstream>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

using namespace devhost;
namespace fs = std::filesystem;

namespace {

fs::path catalogue() { return test::source_dir() / "tests/bad-inputs"; }

// The rows of a tab-separated catalogue file; lines starting with '#' are
// comments.
std::vector<std::vector<std::string>> read_tsv(const std::string &name, size_t columns)
{
    std::ifstream in(catalogue() / name);
    REQUIRE(in);
    std::vector<std::vector<std::string>> rows;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#')
            continue;
        std::vector<std::string> row;
        size_t start = 0;
        for (size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1)
            row.push_back(line.substr(start, tab - start));
        row.push_back(line.substr(start));
        INFO(name << ": " << line);
        REQUIRE(row.size() == columns);
        rows.push_back(row);
    }
    return rows;
}

std::string replace_all(std::string s, const std::string &from, const std::string &to)
{
    for (size_t at = 0; (at = s.find(from, at)) != std::string::npos; at += to.size())
        s.replace(at, from.size(), to);
    return s;
}

std::vector<std::string> split_spaces(const std::string &s)
{
    std::istringstream in(s);
    std::vector<std::string> out;
    for (std::string w; in >> w;)
        out.push_back(w);
    return out;
}

// Every error devhost prints is one line, prefixed, never a dump.
void check_one_line_errors(const std::string &err)
{
    for (const auto &l : test::lines(err))
        CHECK(l.rfind("devhost", 0) == 0);
}

struct Expectation {
    std::string command = "check";
    int exit_code = -1;
    std::vector<std::string> texts;
};

Expectation read_header(const fs::path &file)
{
    Expectation e;
    std::ifstream in(file, std::ios::binary);
    std::string line;
    while (std::getline(in, line) && line.rfind("# ", 0) == 0) {
        if (line.rfind("# command: ", 0) == 0)
            e.command = line.substr(11);
        else if (line.rfind("# expect-exit: ", 0) == 0)
            e.exit_code = std::stoi(line.substr(15));
        else if (line.rfind("# expect: ", 0) == 0) {
            std::string t = line.substr(10);
            e.texts.push_back(t.front() == ':' ? file.string() + t : t);
        }
    }
    return e;
}

// ---- frames ----------------------------------------------------------------

void put_le(std::string &out, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string unhex(const std::string &hex)
{
    std::string out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2)
        out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    return out;
}

// The datagrams one FRAMES column describes (see frames.tsv).
std::vector<std::string> build_frames(const std::string &spec)
{
    std::vector<std::string> frames;
    size_t start = 0;
    for (;;) {
        size_t end = spec.find("; ", start);
        auto words = split_spaces(spec.substr(start, end == std::string::npos ? std::string::npos : end - start));
        REQUIRE_FALSE(words.empty());
        if (words[0].rfind("raw:", 0) == 0) {
            frames.push_back(unhex(words[0].substr(4)));
        } else {
            uint64_t type = 0;
            for (uint32_t t = 0; t <= 16; t++)
                if (words[0] == devhost_port_frame_type_name(t))
                    type = t;
            if (type == 0)
                type = std::stoull(words[0]);
            uint64_t version = DEVHOST_PORT_WIRE_VERSION, flags = 0, id = 0, repeat = 1;
            int64_t status = 0;
            std::string payload;
            std::optional<uint64_t> length;
            for (size_t i = 1; i < words.size(); i++) {
                auto eq = words[i].find('=');
                REQUIRE(eq != std::string::npos);
                std::string k = words[i].substr(0, eq), v = words[i].substr(eq + 1);
                if (k == "version") version = std::stoull(v);
                else if (k == "flags") flags = std::stoull(v);
                else if (k == "status") status = std::stoll(v);
                else if (k == "id") id = std::stoull(v);
                else if (k == "length") length = std::stoull(v);
                else if (k == "payload") payload = unhex(v);
                else if (k == "payload-size") payload.assign(std::stoull(v), 'x');
                else if (k == "repeat") repeat = std::stoull(v);
                else FAIL("frames.tsv: unknown field " << k);
            }
            std::string f;
            put_le(f, version, 1);
            put_le(f, type, 1);
            put_le(f, flags, 2);
            put_le(f, static_cast<uint32_t>(static_cast<int32_t>(status)), 4);
            put_le(f, id, 8);
            put_le(f, length.value_or(payload.size()), 4);
            f += payload;
            for (uint64_t i = 0; i < repeat; i++)
                frames.push_back(f);
        }
        if (end == std::string::npos)
            break;
        start = end + 2;
    }
    return frames;
}

// Receives one datagram, waiting up to `ms`; nullopt on end of stream or
// timeout.
std::optional<std::string> recv_frame(int fd, int ms)
{
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, ms) <= 0)
        return std::nullopt;
    std::string buf(DEVHOST_PORT_HEADER_SIZE + DEVHOST_PORT_MAX_PAYLOAD, '\0');
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0)
        return std::nullopt;
    buf.resize(static_cast<size_t>(n));
    return buf;
}

struct Decoded {
    uint32_t type = 0;
    int32_t status = 0;
    std::string payload;
};

Decoded decode(const std::string &datagram)
{
    devhost_port_frame f{};
    char why[256];
    INFO("decoding a frame the peer sent");
    REQUIRE(devhost_port_frame_decode(reinterpret_cast<const uint8_t *>(datagram.data()), datagram.size(),
                                      DEVHOST_PORT_MAX_PAYLOAD, &f, why, sizeof why) == DEVHOST_OK);
    return {f.type, f.status, f.payload ? std::string(reinterpret_cast<const char *>(f.payload), f.length) : ""};
}

int connect_seqpacket(const fs::path &path)
{
    int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
    return fd;
}

// A port server that breaks the protocol: accepts one client, waits for its
// HELLO, sends `frames`, then collects what the client sends until it
// closes.
class RogueServer {
public:
    RogueServer(const fs::path &path, std::vector<std::string> frames) : frames_(std::move(frames))
    {
        listen_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        REQUIRE(listen_ >= 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        REQUIRE(::bind(listen_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(listen_, 4) == 0);
        thread_ = std::thread([this] { serve(); });
    }
    ~RogueServer()
    {
        if (thread_.joinable())
            thread_.join();
        ::close(listen_);
    }
    // What the client sent after the rogue frames, once it has closed.
    std::vector<std::string> received()
    {
        thread_.join();
        return received_;
    }

private:
    void serve()
    {
        pollfd p{listen_, POLLIN, 0};
        if (::poll(&p, 1, 20000) <= 0)
            return;
        int fd = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (recv_frame(fd, 20000)) {  // the HELLO
            for (const auto &f : frames_)
                if (::send(fd, f.data(), f.size(), MSG_NOSIGNAL) < 0)
                    break;  // the client gave up on us, as it should
            while (auto f = recv_frame(fd, 20000))
                received_.push_back(*f);
        }
        ::close(fd);
    }

    int listen_ = -1;
    std::vector<std::string> frames_;
    std::vector<std::string> received_;
    std::thread thread_;
};

}  // namespace

TEST_CASE("every bad config in the catalogue gives its exact error and exit code", "[bad-inputs]")
{
    std::vector<fs::path> files;
    for (const auto &entry : fs::directory_iterator(catalogue() / "configs"))
        files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    REQUIRE(files.size() >= 20);
    for (const auto &file : files) {
        Expectation e = read_header(file);
        INFO(file.filename().string());
        REQUIRE(e.exit_code >= 0);
        REQUIRE_FALSE(e.texts.empty());
        auto r = test::run_devhost({e.command, file.string()}, {.timeout = std::chrono::seconds(30)});
        INFO("stderr: " << r.err);
        CHECK_FALSE(r.timed_out);
        CHECK(r.term_signal == 0);
        CHECK(r.exit_code == e.exit_code);
        for (const auto &t : e.texts)
            CHECK(r.err.find(t) != std::string::npos);
        check_one_line_errors(r.err);
    }
}

TEST_CASE("every bad step in the catalogue gives its exact message, and exit 2 in a config", "[bad-inputs]")
{
    test::TempDir dir;
    int count = 0;
    for (const auto &row : read_tsv("steps.tsv", 2)) {
        const std::string &step = row[0], &expected = row[1];
        INFO(step);
        std::string error;
        CHECK_FALSE(parse_step(step, error));
        CHECK(error == expected);

        auto file = dir / "step.ini";
        test::write_file(file, "[device d]\nclass = loop\npath = loop:x\nstep = " + step + "\n");
        auto r = test::run_devhost({"check", file.string()});
        INFO("stderr: " << r.err);
        CHECK(r.exit_code == 2);
        CHECK(r.err.find(file.string() + ":4: [device d] step: " + expected) != std::string::npos);
        check_one_line_errors(r.err);
        count++;
    }
    CHECK(count >= 20);
}

TEST_CASE("every bad peer script in the catalogue stops the run before any pipeline, with its FILE:LINE",
          "[bad-inputs][vdev]")
{
    test::TempDir dir;
    const auto script = dir / "script.txt";
    const auto config = dir / "config.ini";
    // A relative script is the config's, wherever devhost runs.
    test::write_file(config, "[virtual modem]\nkind = serial-script\nscript = script.txt\n"
                             "[device a]\nclass = loop\npath = loop:a\nstep = open\n");
    int count = 0;
    for (const auto &row : read_tsv("scripts.tsv", 2)) {
        INFO(row[0]);
        std::string content;
        if (row[0] == "@big")
            for (size_t i = 0; i < 2u << 20; i += 16)
                content += "# a comment ...\n";
        for (size_t i = 0; i < row[0].size() && row[0] != "@big"; i++) {
            char c = row[0][i];
            if (c == '\\' && i + 1 < row[0].size() && std::strchr("n0\\", row[0][i + 1])) {
                char e = row[0][++i];
                content.push_back(e == 'n' ? '\n' : e == '0' ? '\0' : '\\');
            } else {
                content.push_back(c);
            }
        }
        test::write_file(script, content);
        auto r = test::run_devhost({"run", config.string()}, {.timeout = std::chrono::seconds(30), .cwd = "/"});
        INFO("stderr: " << r.err);
        CHECK(r.exit_code == 2);
        CHECK(r.out.empty());  // no pipeline ran
        CHECK(r.err.find("devhost-vdev: serial-script: " + replace_all(row[1], "{script}", script.string()) + "\n") !=
              std::string::npos);
        CHECK(r.err.find(config.string() +
                         ":1: [virtual modem] (serial-script): devhost-vdev exited with code 2 before it was ready") !=
              std::string::npos);
        check_one_line_errors(r.err);
        count++;
    }
    CHECK(count >= 10);
}

TEST_CASE("every bad devhost-vdev command line in the catalogue is refused before a peer starts",
          "[bad-inputs][vdev]")
{
    test::TempDir dir;
    const auto answers = dir / "answers.txt";
    test::write_file(answers, "ATI:\"x\n");
    const auto big_answers = dir / "big-answers.txt";
    test::write_file(big_answers, std::string(2u << 20, '#'));
    int count = 0;
    for (const auto &row : read_tsv("vdev.tsv", 3)) {
        auto expand = [&](std::string s) {
            s = replace_all(replace_all(s, "{bad-answers}", answers.string()), "{big-answers}", big_answers.string());
            if (auto at = s.find("{x*"); at != std::string::npos) {
                auto end = s.find('}', at);
                s.replace(at, end - at + 1, std::string(std::stoul(s.substr(at + 3, end - at - 3)), 'x'));
            }
            return s;
        };
        INFO("devhost-vdev " << row[0]);
        auto args = split_spaces(expand(row[0]));
        args.insert(args.begin(), (test::bin_dir() / "devhost-vdev").string());
        auto r = test::run_process(args, {.timeout = std::chrono::seconds(10),
                                          .env = {{"DEVHOST_VDEV_DIR", dir.path().string()}}});
        INFO("stderr: " << r.err);
        CHECK_FALSE(r.timed_out);
        CHECK(r.exit_code == std::stoi(row[1]));
        CHECK(r.err.find(expand(row[2])) != std::string::npos);
        CHECK(r.out.find("READY") == std::string::npos);
        check_one_line_errors(r.err);
        count++;
    }
    CHECK(count >= 20);
}

TEST_CASE("every bad command line in the catalogue gives its exact error and exit code", "[bad-inputs]")
{
    test::TempDir dir;
    const auto good = dir / "good.ini";
    test::write_file(good, "[device d]\nclass = loop\npath = loop:x\nstep = open\n");
    const auto big = dir / "big.ini";
    test::write_file(big, "");
    fs::resize_file(big, 5u << 20);
    for (const auto &row : read_tsv("cli.tsv", 3)) {
        auto expand = [&](const std::string &s) {
            return replace_all(replace_all(replace_all(s, "{tmp}", dir.path().string()), "{good}", good.string()),
                               "{big}", big.string());
        };
        INFO("devhost " << row[0]);
        auto args = split_spaces(expand(row[0]));
        for (auto &a : args)
            if (a == "{empty}")
                a.clear();
        auto r = test::run_devhost(args, {.timeout = std::chrono::seconds(30)});
        INFO("stderr: " << r.err);
        CHECK_FALSE(r.timed_out);
        CHECK(r.exit_code == std::stoi(row[1]));
        CHECK(r.err.find(expand(row[2])) != std::string::npos);
        if (!row[0].empty())  // no command at all prints the usage text
            check_one_line_errors(r.err);
    }
}

namespace {

// Makes the SETUP of a device-paths.tsv row in `dir`; returns its {path},
// or nothing when the row cannot run here (marked skipped).
std::optional<fs::path> make_device_path(const std::string &what, const fs::path &base, const fs::path &dir)
{
    const fs::path secret = base / "secret";
    test::write_file(secret, "SECRET\n");
    REQUIRE(::chmod(secret.c_str(), 0600) == 0);
    fs::create_directory(dir);
    REQUIRE(::chmod(dir.c_str(), what == "@not-sticky" ? 0777 : 01777) == 0);
    const fs::path path = dir / "img";
    if (what == "@link-in-sticky") {
        fs::create_symlink(secret, path);
    } else if (what == "@link-on-the-way") {
        fs::create_symlink(base, dir / "sub");
        return dir / "sub" / "secret";
    } else if (what == "@foreign-file-in-sticky") {
        if (::geteuid() != 0) {
            devhost::test::mark_skipped(what + ": giving a file to another user needs root");
            return std::nullopt;
        }
        test::write_file(path, "");
        REQUIRE(::chown(path.c_str(), 4242, 4242) == 0);
    } else if (what == "@hard-link-in-sticky") {
        REQUIRE(::link(secret.c_str(), path.c_str()) == 0);
    } else if (what == "@not-sticky") {
        test::write_file(path, "");
    } else {
        FAIL("device-paths.tsv: unknown setup " << what);
    }
    return path;
}

}  // namespace

TEST_CASE("every device path the catalogue plants is refused by probe and check", "[bad-inputs]")
{
    for (const auto &row : read_tsv("device-paths.tsv", 4)) {
        INFO(row[0] << " devhost " << row[1]);
        test::TempDir base;
        ::chmod(base.path().c_str(), 0755);
        const fs::path dir = base / "public";
        const auto path = make_device_path(row[0], base.path(), dir);
        if (!path)
            continue;
        const fs::path config = base / "c.ini", config_raw = base / "raw.ini";
        const std::string rest = "path = " + path->string() + "\nallow-write = true\nstep = open\nstep = close\n";
        test::write_file(config, "[device d]\n" + rest);
        test::write_file(config_raw, "[device d]\nclass = raw\n" + rest);
        auto expand = [&](const std::string &s) {
            return replace_all(replace_all(replace_all(replace_all(s, "{config-raw}", config_raw.string()), "{config}",
                                                       config.string()),
                                           "{path}", path->string()),
                               "{dir}", dir.string());
        };
        auto r = test::run_devhost(split_spaces(expand(row[1])), {.timeout = std::chrono::seconds(30)});
        INFO("stderr: " << r.err);
        CHECK_FALSE(r.timed_out);
        CHECK(r.exit_code == std::stoi(row[2]));
        CHECK(r.err == expand(row[3]) + "\n");
        CHECK(test::read_file(base / "secret") == "SECRET\n");
    }
}

TEST_CASE("every bad plugin file in the catalogue is refused with its reason", "[bad-inputs][loader]")
{
    const fs::path built = test::binary_dir() / "tests/bad-plugins";
    const bool root = ::geteuid() == 0;
    for (const auto &row : read_tsv("plugins.tsv", 3)) {
        const std::string &what = row[0];
        INFO(what);
        test::TempDir base;
        const fs::path dir = base / "plugins";
        fs::create_directory(dir);
        ::chmod(dir.c_str(), 0755);
        const fs::path file = dir / "abitest.so";
        const fs::path good = built / "none.so";
        if (what == "@text") {
            test::write_file(file, "This is a text file named like a devhost plugin, long enough for a header.\n");
        } else if (what == "@empty") {
            test::write_file(file, "");
        } else if (what == "@truncated") {
            test::write_file(file, test::read_file(good).substr(0, 3000));
        } else if (what == "@truncated-headers") {
            test::write_file(file, test::read_file(good).substr(0, 100));
        } else if (what.rfind("@elf-", 0) == 0) {
            // The good plugin with one field of its ELF header changed.
            std::string image = test::read_file(good);
            auto &h = *reinterpret_cast<ElfW(Ehdr) *>(image.data());
            auto &first = *reinterpret_cast<ElfW(Phdr) *>(image.data() + h.e_phoff);
            if (what == "@elf-executable")
                h.e_type = ET_EXEC;
            else if (what == "@elf-no-program-headers")
                h.e_phnum = 0;
            else if (what == "@elf-program-header-size")
                h.e_phentsize = 12;
            else if (what == "@elf-impossible-offset")
                first.p_offset = ~decltype(first.p_offset)(0) - 10;
            else if (what == "@elf-machine")
                h.e_machine = EM_ARM;
            else
                FAIL("plugins.tsv: unknown special file " << what);
            REQUIRE(first.p_type == PT_LOAD);
            test::write_file(file, image);
        } else if (what == "@fifo") {
            REQUIRE(::mkfifo(file.c_str(), 0644) == 0);
        } else if (what == "@dangling-symlink") {
            fs::create_symlink(base / "nothing.so", file);
        } else if (what == "@directory") {
            fs::create_directory(file);
        } else if (what == "@symlink-loop") {
            fs::create_symlink("abitest.so", dir / "other");
            fs::create_symlink("other", file);
        } else if (what == "@long-symlink") {
            fs::create_symlink(std::string(300, 'x'), file);
        } else if (what == "@symlink-to-directory") {
            fs::create_symlink(".", file);
        } else if (what == "@symlink-through-file") {
            test::write_file(base / "plain", "");
            fs::create_symlink(base / "plain" / "abitest.so", file);
        } else if (what == "@foreign-symlink-in-sticky") {
            if (!root) {
                // One row cannot run; the others still do, and the run reports skipped.
                devhost::test::mark_skipped(what + ": giving a symlink to another user needs root");
                continue;
            }
            fs::copy_file(good, base / "real.so");
            fs::create_symlink(base / "real.so", file);
            REQUIRE(::lchown(file.c_str(), 4242, 4242) == 0);
            REQUIRE(::chmod(dir.c_str(), 01777) == 0);
        } else if (what == "@dup-class") {
            fs::copy_file(good, dir / "a.so");
            fs::copy_file(good, file);
        } else if (what[0] == '@') {
            fs::copy_file(good, file);
            if (what == "@group-writable") {
                ::chmod(file.c_str(), 0664);
            } else if (what == "@open-directory") {
                ::chmod(dir.c_str(), 0777);
            } else if (what == "@open-ancestor") {
                ::chmod(base.path().c_str(), 0777);
            } else if (what == "@foreign-owner" || what == "@foreign-directory" || what == "@foreign-ancestor") {
                if (!root) {
                    devhost::test::mark_skipped(what + ": giving a file to another user needs root");
                    continue;
                }
                const fs::path &owned = what == "@foreign-owner" ? file : what == "@foreign-directory" ? dir : base.path();
                REQUIRE(::chown(owned.c_str(), 4242, 4242) == 0);
            } else {
                FAIL("plugins.tsv: unknown special file " << what);
            }
        } else {
            REQUIRE(fs::exists(built / what));
            fs::copy_file(built / what, file);
        }
        const auto config = base / "abitest.ini";
        test::write_file(config, "[device d]\nclass = abitest\npath = x\nstep = open\n");
        auto r = test::run_devhost({"--plugin-path", dir.string(), "run", config.string()});
        INFO("stderr: " << r.err);
        CHECK(r.term_signal == 0);
        CHECK(r.exit_code == std::stoi(row[1]));
        const std::string reason =
            replace_all(replace_all(replace_all(row[2], "{dir}", dir.string()), "{base}", base.path().string()),
                        "{host-machine}", elf_machine_name(host_elf_machine()));
        if (reason.empty()) {
            CHECK(r.err.find("refused") == std::string::npos);
        } else {
            CHECK(r.err.find("plugin " + file.string() + " refused: " + reason) != std::string::npos);
        }
        if (r.exit_code == 3)
            CHECK(r.err.find("no usable plugin for class 'abitest'") != std::string::npos);
        check_one_line_errors(r.err);
    }
}

TEST_CASE("every bad frame in the catalogue is refused by the side that receives it", "[bad-inputs][port]")
{
    test::TempDir dir;
    // The real server, for the rows a client sends.
    test::Child echo({(test::bin_dir() / "devhost-vdev").string(), "filterport-echo", "--name=echo"}, dir.path(),
                     {.env = {{"DEVHOST_VDEV_DIR", dir.path().string()}}});
    REQUIRE(echo.wait_for_output("READY ", std::chrono::seconds(10)));
    const fs::path echo_port = dir / "echo";
    REQUIRE(fs::exists(echo_port));

    int row_no = 0;
    for (const auto &row : read_tsv("frames.tsv", 3)) {
        const std::string &to = row[0], &text = row[2];
        INFO("to " << to << ": " << row[1]);
        const auto frames = build_frames(row[1]);
        if (to == "server") {
            int fd = connect_seqpacket(echo_port);
            for (const auto &f : frames)
                ::send(fd, f.data(), f.size(), MSG_NOSIGNAL);
            std::optional<Decoded> last;
            while (auto f = recv_frame(fd, 10000))
                last = decode(*f);
            ::close(fd);
            REQUIRE(last);
            CHECK(last->type == DEVHOST_PORT_FRAME_ERROR);
            CHECK(last->status == DEVHOST_E_PROTOCOL);
            CHECK(last->payload == text);
        } else {
            REQUIRE(to == "client");
            const fs::path port = dir / ("rogue" + std::to_string(row_no++));
            RogueServer server(port, frames);
            const auto config = dir / "client.ini";
            test::write_file(config, "[device p]\nclass = filterport\npath = " + port.string() +
                                         "\nstep = open\nstep = connect timeout=5s\n"
                                         "step = request \"ping\" timeout=5s\nstep = disconnect\nstep = close\n");
            auto r = test::run_devhost({"run", config.string()}, {.timeout = std::chrono::seconds(30)});
            INFO("stdout: " << r.out << "\nstderr: " << r.err);
            CHECK(r.exit_code == 1);
            CHECK(r.out.find(text) != std::string::npos);
            CHECK(r.out.find(R"("status":"DEVHOST_E_PROTOCOL")") != std::string::npos);
            // The client told the server why before it hung up.
            auto sent = server.received();
            if (text.rfind("the server refused our frame", 0) != 0) {
                REQUIRE_FALSE(sent.empty());
                Decoded why = decode(sent.back());
                CHECK(why.type == DEVHOST_PORT_FRAME_ERROR);
                const std::string prefix = "malformed frame from the server: ";
                CHECK(why.payload == (text.rfind(prefix, 0) == 0 ? text.substr(prefix.size()) : text));
            }
        }
    }
    CHECK(row_no >= 10);
    // The server survived every row, and stops cleanly (which also writes
    // its coverage data for scripts/bad-input-coverage.sh).
    echo.signal(SIGTERM);
    auto done = echo.wait(std::chrono::seconds(10));
    CHECK_FALSE(done.timed_out);
    CHECK(done.exit_code == 0);
}
