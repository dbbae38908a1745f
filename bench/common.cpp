// Statistics, the report (table and JSON), pty pairs, the serial peer and
// child processes measured with wait4.
#include "bench.hpp"

#include "devices.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <termios.h>
#include <csignal>
#include <unistd.h>

extern char **environ;

namespace bench {

double seconds_since(Clock::time_point start)
{
    return std::chrono::duration<double>(Clock::now() - start).count();
}

bool Params::wants(const std::string &group) const
{
    return only.empty() || std::find(only.begin(), only.end(), group) != only.end();
}

double Series::median() const
{
    if (samples.empty())
        return 0;
    std::vector<double> s = samples;
    std::sort(s.begin(), s.end());
    size_t n = s.size();
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

double Series::min() const { return samples.empty() ? 0 : *std::min_element(samples.begin(), samples.end()); }
double Series::max() const { return samples.empty() ? 0 : *std::max_element(samples.begin(), samples.end()); }

void fail(const std::string &what) { throw std::runtime_error(what); }

namespace {

std::string fmt_num(double v)
{
    char buf[64];
    if (v >= 1000)
        std::snprintf(buf, sizeof buf, "%.0f", v);
    else if (v >= 10)
        std::snprintf(buf, sizeof buf, "%.1f", v);
    else
        std::snprintf(buf, sizeof buf, "%.3f", v);
    return buf;
}

std::string json_str(const std::string &s)
{
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\')
            out += '\\';
        if (static_cast<unsigned char>(c) < 0x20) {
            out += ' ';
            continue;
        }
        out += c;
    }
    return out + "\"";
}

std::string json_series(const Series &s)
{
    std::ostringstream o;
    o.precision(9);
    o << "{\"median\":" << s.median() << ",\"min\":" << s.min() << ",\"max\":" << s.max() << ",\"samples\":[";
    for (size_t i = 0; i < s.samples.size(); i++)
        o << (i ? "," : "") << s.samples[i];
    o << "]}";
    return o.str();
}

double ratio(const Result &r)
{
    if (r.baseline.samples.empty() || r.baseline.median() == 0)
        return 0;
    return r.devhost.median() / r.baseline.median();
}

// The ratio of each side's least disturbed sample (highest rate, lowest
// time): on a shared machine the noise only ever slows a sample down.
double best_ratio(const Result &r)
{
    if (r.baseline.samples.empty())
        return 0;
    double d = r.higher_is_better ? r.devhost.max() : r.devhost.min();
    double b = r.higher_is_better ? r.baseline.max() : r.baseline.min();
    return b == 0 ? 0 : d / b;
}

std::string cpu_model()
{
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("model name", 0) == 0) {
            auto colon = line.find(':');
            return colon == std::string::npos ? line : line.substr(colon + 2);
        }
    return "unknown";
}

}  // namespace

void Report::print(const Result &r)
{
    std::printf("%-8s %-44s devhost %10s [%s..%s]", r.group.c_str(), r.name.c_str(), fmt_num(r.devhost.median()).c_str(),
                fmt_num(r.devhost.min()).c_str(), fmt_num(r.devhost.max()).c_str());
    if (!r.baseline.samples.empty())
        std::printf("  baseline %10s [%s..%s]  ratio %.3f (best %.3f)", fmt_num(r.baseline.median()).c_str(),
                    fmt_num(r.baseline.min()).c_str(), fmt_num(r.baseline.max()).c_str(), ratio(r), best_ratio(r));
    std::printf("  %s\n", r.unit.c_str());
    std::fflush(stdout);
}

void Report::add(Result r)
{
    print(r);
    results_.push_back(std::move(r));
}

void Report::write_json(const fs::path &file, const Params &params) const
{
    std::ostringstream o;
    o << "{\n  \"machine\": {\"cpu\": " << json_str(cpu_model()) << ", \"cores\": " << std::thread::hardware_concurrency()
      << "},\n  \"smoke\": " << (params.smoke ? "true" : "false") << ",\n  \"reps\": " << params.reps
      << ",\n  \"results\": [";
    for (size_t i = 0; i < results_.size(); i++) {
        const Result &r = results_[i];
        o << (i ? "," : "") << "\n    {\"group\": " << json_str(r.group) << ", \"name\": " << json_str(r.name)
          << ", \"unit\": " << json_str(r.unit) << ", \"higher_is_better\": " << (r.higher_is_better ? "true" : "false")
          << ",\n     \"devhost\": " << json_series(r.devhost);
        if (!r.baseline.samples.empty()) {
            o << ",\n     \"baseline_name\": " << json_str(r.baseline_name)
              << ", \"baseline\": " << json_series(r.baseline) << ", \"ratio\": " << ratio(r) << ", \"ratio_best\": " << best_ratio(r);
        }
        if (!r.note.empty())
            o << ",\n     \"note\": " << json_str(r.note);
        o << "}";
    }
    o << "\n  ]\n}\n";
    write_file(file, o.str());
}

Result compare(const Params &p, Result r, const std::function<double()> &devhost_side,
               const std::function<double()> &baseline_side)
{
    for (int i = 0; i < p.reps; i++) {
        if (i % 2) {
            r.devhost.samples.push_back(devhost_side());
            r.baseline.samples.push_back(baseline_side());
        } else {
            r.baseline.samples.push_back(baseline_side());
            r.devhost.samples.push_back(devhost_side());
        }
    }
    return r;
}

std::shared_ptr<const devhost::Plugin> load_plugin(const Params &p, const std::string &device_class)
{
    static devhost::PluginRegistry registry;  // plugins stay loaded for the whole run
    if (auto found = registry.find(device_class))
        return found;
    auto plugin = registry.load_file(p.plugin_dir / (device_class + ".so"));
    if (!plugin)
        fail("cannot load plugin " + (p.plugin_dir / (device_class + ".so")).string() + ": " +
             (registry.refusals().empty() ? "refused" : registry.refusals().back().reason));
    return plugin;
}

Pty open_pty()
{
    Pty pty;
    try {
        pty.master = devhost::test::open_pty_master(pty.slave);  // the tests' one way to make a pty
    } catch (const std::exception &e) {
        fail(e.what());
    }
    return pty;
}

int open_raw_slave(const std::string &path)
{
    int fd = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        fail("open " + path + ": " + std::strerror(errno));
    termios t{};
    tcgetattr(fd, &t);
    cfmakeraw(&t);
    tcsetattr(fd, TCSANOW, &t);
    return fd;
}

void read_exactly(int fd, char *buf, size_t want)
{
    size_t got = 0;
    while (got < want) {
        pollfd p{fd, POLLIN, 0};
        int r = ::poll(&p, 1, 5000);
        if (r == 0)
            fail("baseline: no reply within 5 s");
        if (r < 0 && errno == EINTR)
            continue;
        ssize_t n = ::read(fd, buf + got, want - got);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            fail(std::string("read: ") + std::strerror(errno));
        got += size_t(n);
    }
}

double record_time(const std::string &line)
{
    auto at = line.find("\"time\":\"");
    if (at == std::string::npos || line.size() < at + 8 + 27)
        return -1;
    const std::string t = line.substr(at + 8 + 11, 15);  // HH:MM:SS.ffffff
    return std::stoi(t.substr(0, 2)) * 3600.0 + std::stoi(t.substr(3, 2)) * 60.0 + std::stod(t.substr(6));
}

std::string record_field(const std::string &line, const char *key)
{
    const std::string k = std::string("\"") + key + "\":\"";
    auto at = line.find(k);
    if (at == std::string::npos)
        return "";
    at += k.size();
    return line.substr(at, line.find('"', at) - at);
}

bool write_all(int fd, const char *data, size_t len)
{
    return devhost::test::write_all(fd, data, len);
}

namespace {

[[noreturn]] void peer_main(const std::vector<Pty> &ptys, SerialPeer::Mode mode, size_t sink_total, int control)
{
    std::vector<int> slaves;
    for (const Pty &pty : ptys) {
        int s = ::open(pty.slave.c_str(), O_RDWR | O_NOCTTY);
        if (s < 0)
            _exit(3);
        slaves.push_back(s);
    }
    int ep = epoll_create1(0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = ptys.size();
    epoll_ctl(ep, EPOLL_CTL_ADD, control, &ev);
    for (size_t i = 0; i < ptys.size(); i++) {
        ev.data.u64 = i;
        epoll_ctl(ep, EPOLL_CTL_ADD, ptys[i].master, &ev);
    }
    std::vector<size_t> counts(ptys.size(), 0);
    // Gate: hold every echo until each pty has sent something, so that all
    // clients start together.
    std::vector<std::string> held(ptys.size());
    size_t waiting = mode == SerialPeer::Mode::GatedEcho ? ptys.size() : 0;
    static char buf[1 << 16];
    epoll_event events[64];
    for (;;) {
        int n = epoll_wait(ep, events, 64, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            _exit(4);
        for (int e = 0; e < n; e++) {
            size_t i = events[e].data.u64;
            if (i == ptys.size())
                _exit(0);  // the parent closed the control pipe
            ssize_t got = ::read(ptys[i].master, buf, sizeof buf);
            if (got <= 0)
                continue;
            if (waiting > 0) {
                if (held[i].empty())
                    waiting--;
                held[i].append(buf, size_t(got));
                if (waiting == 0)
                    for (size_t h = 0; h < ptys.size(); h++)
                        write_all(ptys[h].master, held[h].data(), held[h].size());
            } else if (mode != SerialPeer::Mode::Sink) {
                write_all(ptys[i].master, buf, size_t(got));
            } else {
                counts[i] += size_t(got);
                while (sink_total && counts[i] >= sink_total) {
                    counts[i] -= sink_total;
                    write_all(ptys[i].master, "K", 1);
                }
            }
        }
    }
}

}  // namespace

SerialPeer::SerialPeer(std::vector<Pty> &ptys, Mode mode, size_t sink_total)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        fail(std::string("pipe2: ") + std::strerror(errno));
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0)
        fail(std::string("fork: ") + std::strerror(errno));
    if (pid_ == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(0);
        ::close(fds[1]);
        peer_main(ptys, mode, sink_total, fds[0]);
    }
    ::close(fds[0]);
    control_ = fds[1];
    for (Pty &pty : ptys) {
        ::close(pty.master);
        pty.master = -1;
    }
}

SerialPeer::~SerialPeer() { stop(); }

void SerialPeer::stop()
{
    if (pid_ <= 0)
        return;
    ::close(control_);
    control_ = -1;
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
}

ProcessRun run_process(const std::vector<std::string> &argv)
{
    // Started through devhost-bench-launch (launch.c says why): its stdout
    // comes back through a pipe as "EXIT WALL_MS MAX_RSS_KIB".
    const std::string launcher = (fs::path(DEVHOST_BENCH_BIN_DIR) / "devhost-bench-launch").string();
    std::vector<char *> args{const_cast<char *>(launcher.c_str())};
    for (const std::string &a : argv)
        args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0)
        fail(std::string("pipe2: ") + std::strerror(errno));
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    if (rc != 0) {
        ::close(out[0]);
        fail("posix_spawn " + launcher + ": " + std::strerror(rc));
    }
    std::string text;
    char buf[256];
    ssize_t n;
    while ((n = ::read(out[0], buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        text.append(buf, size_t(n));
    }
    ::close(out[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    ProcessRun run;
    if (std::sscanf(text.c_str(), "%d %lf %ld", &run.exit_code, &run.wall_ms, &run.max_rss_kib) != 3)
        fail("devhost-bench-launch " + argv[0] + ": no result");
    return run;
}

void write_file(const fs::path &file, const std::string &text)
{
    std::ofstream out(file, std::ios::trunc);
    out << text;
    if (!out.flush())
        fail("cannot write " + file.string());
}

EnginePipeline::EnginePipeline(const Params &p, const std::string &device_class, const std::string &path,
                               const std::string &body, int count, const std::string &tail)
{
    std::string text = "[host]\nlog-level = warn\n[device s]\nclass = " + device_class + "\npath = " + path +
                       "\nstep = open\n";
    for (int i = 0; i < count; i++)
        text += body;
    text += tail + "step = close\n";
    std::vector<devhost::Diagnostic> diagnostics;
    config_ = devhost::parse_config(text, "bench-" + device_class + ".ini", diagnostics);
    if (!registry_.load_file(p.plugin_dir / (device_class + ".so")))
        fail("cannot load " + device_class + ".so");
    plan_ = devhost::check_config(config_, registry_, diagnostics);
    if (!diagnostics.empty())
        fail("generated " + device_class + " config: " + diagnostics.front().str());
    const fs::path records_file = p.work_dir / (device_class + "-records.jsonl");
    fs::remove(records_file);
    records_ = std::make_unique<devhost::RecordWriter>(records_file.string());
    engine_ = std::make_unique<devhost::Engine>(*records_, 5000);
}

void EnginePipeline::run()
{
    devhost::PipelineResult r = engine_->run_device(plan_.devices.at(0));
    if (!r.ok)
        fail(std::string("engine: pipeline failed: ") + devhost_status_name(r.status));
}

}  // namespace bench
