// devhost-filefilter: the reference filter-port server. A file-access filter
// on fanotify permission events: every open of a file directly inside a
// watched directory is held, sent to each connected port client as a
// message, and allowed or denied by their replies.
//
//   devhost-filefilter --watch=DIR [--watch=DIR ...] [--port=PATH |
//       --port-dir=DIR --name=NAME] [--timeout=5000] [--default=allow|deny]
//       [--mode=0600] [--max-connections=8] [--allow-uid=N ...]
//       [--allow-gid=N ...]
//
// Message to clients (text): "open pid=PID access=open path=PATH"
// Client reply: "allow" or "deny" (anything else counts as no answer).
// Verdict: deny if any client denies, allow if one allows and none denies,
// else the --default verdict (also when no client is connected, or none
// answers within --timeout milliseconds).
// Requests clients may send (text): "add DIR", "remove DIR", "list", "stats".
//
// Safety: only the configured directories are marked (FAN_MARK_ADD on the
// directory inode with FAN_EVENT_ON_CHILD: its direct children), never a
// mount, a filesystem or /. Every permission event is answered: by the
// clients' verdict, the default on timeout or error, and on shutdown the
// port closes first (pending waits end) and queued events get the default
// before the fanotify descriptor closes (the kernel allows whatever is left
// if the process dies).
//
// Prints "READY <socket path>" on stdout once it serves; diagnostics go to
// stderr. Stops on SIGTERM or SIGINT. Exit codes: 0 stopped, 1 runtime
// failure, 2 bad usage.
#include <devhost/port.h>
#include <devhost/unique_fd.hpp>

#include "port_server.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/fanotify.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

using devhost::UniqueFd;

struct Usage : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void diag(const std::string &line) { std::fprintf(stderr, "devhost-filefilter: %s\n", line.c_str()); }

struct Filter {
    UniqueFd fan_fd;
    devhost_port *port = nullptr;  // owned by run()
    int timeout_ms = 5000;
    bool default_allow = true;
    std::mutex mu;
    std::vector<std::string> watches;
    std::atomic<uint64_t> events{0}, allowed{0}, denied{0}, defaulted{0};
    std::atomic<bool> stopping{false};  // no client is asked any more

    // Marks one directory. Returns an empty string or the reason it failed.
    std::string add_watch(const std::string &dir)
    {
        char real[PATH_MAX];
        if (!::realpath(dir.c_str(), real))
            return "cannot watch " + dir + ": " + std::strerror(errno);
        std::string r = real;
        if (r == "/")
            return "refusing to watch / (an unanswered filter on / would stall the machine)";
        struct stat st;
        if (::stat(real, &st) != 0 || !S_ISDIR(st.st_mode))
            return "cannot watch " + dir + ": not a directory";
        std::lock_guard lock(mu);
        if (std::find(watches.begin(), watches.end(), r) != watches.end())
            return {};
        if (::fanotify_mark(fan_fd.get(), FAN_MARK_ADD | FAN_MARK_ONLYDIR, FAN_OPEN_PERM | FAN_EVENT_ON_CHILD, AT_FDCWD,
                            real) != 0)
            return "cannot watch " + r + ": fanotify_mark: " + std::strerror(errno);
        watches.push_back(r);
        return {};
    }

    std::string remove_watch(const std::string &dir)
    {
        char real[PATH_MAX];
        std::string r = ::realpath(dir.c_str(), real) ? std::string(real) : dir;
        std::lock_guard lock(mu);
        auto it = std::find(watches.begin(), watches.end(), r);
        if (it == watches.end())
            return r + " is not watched";
        if (::fanotify_mark(fan_fd.get(), FAN_MARK_REMOVE | FAN_MARK_ONLYDIR, FAN_OPEN_PERM | FAN_EVENT_ON_CHILD,
                            AT_FDCWD, r.c_str()) != 0 &&
            errno != ENOENT)
            return "cannot stop watching " + r + ": " + std::strerror(errno);
        watches.erase(it);
        return {};
    }

    std::string stats()
    {
        std::lock_guard lock(mu);
        return "events=" + std::to_string(events.load()) + " allowed=" + std::to_string(allowed.load()) +
               " denied=" + std::to_string(denied.load()) + " defaulted=" + std::to_string(defaulted.load()) +
               " clients=" + std::to_string(devhost_port_clients(port, nullptr, 0)) +
               " watches=" + std::to_string(watches.size());
    }

    // Asks every connected client; returns the verdict (FAN_ALLOW/FAN_DENY).
    uint32_t decide(const std::string &message)
    {
        uint64_t ids[64];
        uint32_t n = std::min<uint32_t>(devhost_port_clients(port, ids, 64), 64);
        if (n == 0 || stopping) {
            defaulted++;
            return default_allow ? FAN_ALLOW : FAN_DENY;
        }
        std::vector<int> answers(n, 0);  // 1 allow, -1 deny, 0 none
        std::vector<std::thread> askers;
        for (uint32_t i = 0; i < n; i++) {
            askers.emplace_back([&, i] {
                char reply[64];
                size_t len = 0;
                devhost_error err{};
                err.struct_size = sizeof err;
                devhost_status st = devhost_port_send(port, ids[i], message.data(), message.size(), reply,
                                                      sizeof reply, &len, timeout_ms, &err);
                if (st != DEVHOST_OK) {
                    diag("no verdict from client " + std::to_string(ids[i]) + ": " + err.message);
                    return;
                }
                std::string r(reply, std::min(len, sizeof reply));
                while (!r.empty() && (r.back() == '\n' || r.back() == '\r' || r.back() == ' '))
                    r.pop_back();
                if (r == "allow")
                    answers[i] = 1;
                else if (r == "deny")
                    answers[i] = -1;
                else
                    diag("client " + std::to_string(ids[i]) + " replied '" + r + "' (expected allow or deny)");
            });
        }
        for (auto &t : askers)
            t.join();
        if (std::count(answers.begin(), answers.end(), -1)) {
            denied++;
            return FAN_DENY;
        }
        if (std::count(answers.begin(), answers.end(), 1)) {
            allowed++;
            return FAN_ALLOW;
        }
        defaulted++;
        return default_allow ? FAN_ALLOW : FAN_DENY;
    }

    void respond(int fd, uint32_t verdict)
    {
        fanotify_response r{fd, verdict};
        if (::write(fan_fd.get(), &r, sizeof r) != static_cast<ssize_t>(sizeof r))
            diag(std::string("cannot answer a permission event: ") + std::strerror(errno));
    }

    // Handles one event; always answers a permission event, always closes fd.
    void handle(const fanotify_event_metadata &m, bool ask)
    {
        const UniqueFd event_fd(m.fd);
        events++;
        uint32_t verdict = default_allow ? FAN_ALLOW : FAN_DENY;
        if (m.mask & (FAN_OPEN_PERM | FAN_ACCESS_PERM | FAN_OPEN_EXEC_PERM)) {
            if (m.pid == ::getpid()) {
                verdict = FAN_ALLOW;
            } else if (ask) {
                std::string path = "?";
                char link[64], target[PATH_MAX];
                std::snprintf(link, sizeof link, "/proc/self/fd/%d", m.fd);
                ssize_t len = ::readlink(link, target, sizeof target - 1);
                if (len > 0)
                    path.assign(target, static_cast<size_t>(len));
                const char *access = (m.mask & FAN_OPEN_EXEC_PERM) ? "exec" : (m.mask & FAN_ACCESS_PERM) ? "read"
                                                                                                          : "open";
                try {
                    verdict = decide("open pid=" + std::to_string(m.pid) + " access=" + access + " path=" + path);
                } catch (const std::exception &e) {
                    diag(std::string("deciding failed: ") + e.what() + "; applying the default");
                    defaulted++;
                }
            } else {
                defaulted++;
            }
            respond(m.fd, verdict);
        }
    }

    // Reads what is queued; returns false when the descriptor is unusable.
    bool drain(bool ask)
    {
        alignas(fanotify_event_metadata) char buf[8192];
        for (;;) {
            ssize_t n = ::read(fan_fd.get(), buf, sizeof buf);
            if (n < 0)
                return errno == EAGAIN || errno == EINTR;
            if (n == 0)
                return true;
            auto *m = reinterpret_cast<fanotify_event_metadata *>(buf);
            for (; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
                if (m->vers != FANOTIFY_METADATA_VERSION) {
                    diag("fanotify metadata version mismatch");
                    return false;
                }
                if (m->mask & FAN_Q_OVERFLOW)
                    diag("fanotify queue overflowed: some events were lost");
                if (m->fd >= 0)
                    handle(*m, ask);
            }
        }
    }
};

// Watches the stop signal from its own thread while the main loop may be
// blocked in Filter::decide: on SIGTERM/SIGINT it sets `stopping` (no client
// is asked any more) and disconnects every client, so that waits in progress
// end at once with E_REMOVED instead of running to their timeout. finish()
// (also run by the destructor, so no exit path leaves the thread joinable)
// ends the thread when the main loop stops for another reason.
class StopWatcher {
public:
    StopWatcher(Filter &f, int stop_fd) : f_(f), stop_fd_(stop_fd)
    {
        done_fd_.reset(::eventfd(0, EFD_CLOEXEC));
        if (!done_fd_)
            throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
        thread_ = std::thread([this] { watch(); });  // done_fd_ closes if this throws
    }
    ~StopWatcher() { finish(); }
    StopWatcher(const StopWatcher &) = delete;
    StopWatcher &operator=(const StopWatcher &) = delete;

    void finish()
    {
        if (!thread_.joinable())
            return;
        uint64_t one = 1;
        while (::write(done_fd_.get(), &one, sizeof one) < 0 && errno == EINTR) {
        }
        thread_.join();
        done_fd_.reset();
    }

private:
    void watch()
    {
        pollfd w[2] = {{stop_fd_, POLLIN, 0}, {done_fd_.get(), POLLIN, 0}};
        while (::poll(w, 2, -1) < 0 && errno == EINTR) {
        }
        if (!(w[0].revents & POLLIN))
            return;
        f_.stopping = true;
        uint64_t ids[64];
        uint32_t n = std::min<uint32_t>(devhost_port_clients(f_.port, ids, 64), 64);
        for (uint32_t i = 0; i < n; i++)
            devhost_port_disconnect(f_.port, ids[i]);
    }

    Filter &f_;
    int stop_fd_;
    UniqueFd done_fd_;
    std::thread thread_;
};

devhost_status on_connect(void *, uint64_t client, const devhost_port_peer *peer, const void *, uint32_t,
                          devhost_error *)
{
    diag("client " + std::to_string(client) + " connected (pid " + std::to_string(peer->pid) + ", uid " +
         std::to_string(peer->uid) + ")");
    return DEVHOST_OK;
}

void on_disconnect(void *, uint64_t client) { diag("client " + std::to_string(client) + " disconnected"); }

devhost_status on_message(void *user, uint64_t, const void *request, size_t request_len, void *reply,
                          size_t reply_capacity, size_t *reply_len, devhost_error *err)
{
    auto *f = static_cast<Filter *>(user);
    std::string cmd(static_cast<const char *>(request), request ? request_len : 0);
    while (!cmd.empty() && (cmd.back() == '\n' || cmd.back() == '\r'))
        cmd.pop_back();
    std::string answer;
    auto arg = [&](const char *verb) -> std::string {
        size_t n = std::strlen(verb);
        return cmd.size() > n + 1 && cmd.compare(0, n, verb) == 0 && cmd[n] == ' ' ? cmd.substr(n + 1) : std::string();
    };
    try {
        if (cmd == "stats") {
            answer = f->stats();
        } else if (cmd == "list") {
            std::lock_guard lock(f->mu);
            for (const auto &w : f->watches)
                answer += w + "\n";
        } else if (!arg("add").empty()) {
            std::string why = f->add_watch(arg("add"));
            if (!why.empty())
                return devhost_fail(err, DEVHOST_E_INVALID, 0, "%s", why.c_str());
            answer = "ok watching " + arg("add");
        } else if (!arg("remove").empty()) {
            std::string why = f->remove_watch(arg("remove"));
            if (!why.empty())
                return devhost_fail(err, DEVHOST_E_NOT_FOUND, 0, "%s", why.c_str());
            answer = "ok stopped watching " + arg("remove");
        } else {
            return devhost_fail(err, DEVHOST_E_INVALID, 0,
                                "unknown command '%.80s' (expected add DIR, remove DIR, list or stats)", cmd.c_str());
        }
    } catch (const std::exception &e) {
        return devhost_fail(err, DEVHOST_E_NO_MEMORY, 0, "%s", e.what());
    }
    *reply_len = std::min(answer.size(), reply_capacity);
    std::memcpy(reply, answer.data(), *reply_len);
    return DEVHOST_OK;
}

void on_log(void *, int32_t level, const char *line)
{
    if (level >= DEVHOST_LOG_INFO)
        diag(line);
}

uint32_t parse_uint(const std::string &key, const std::string &v, uint32_t max, int base = 10)
{
    char *end = nullptr;
    errno = 0;
    unsigned long n = std::strtoul(v.c_str(), &end, base);
    if (v.empty() || *end || errno || n > max || v[0] == '-')
        throw Usage("--" + key + "=" + v + ": expected a number up to " + std::to_string(max));
    return static_cast<uint32_t>(n);
}

// The command line, as run() uses it.
struct Options {
    bool help = false;
    std::vector<std::string> watch_dirs;
    std::string port_path, port_dir = DEVHOST_PORT_DEFAULT_DIR, name = "FileFilter";
    uint32_t mode = 0600, max_conn = 8;
    std::vector<uint32_t> uids, gids;
};

// Reads the --key=value arguments; --timeout and --default go straight into
// the filter. Throws Usage for anything it does not take.
Options parse_args(int argc, char **argv, Filter &f)
{
    Options o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            o.help = true;
            return o;
        }
        auto eq = a.find('=');
        if (a.rfind("--", 0) != 0 || eq == std::string::npos)
            throw Usage("argument '" + a + "': expected --key=value (see --help)");
        std::string k = a.substr(2, eq - 2), v = a.substr(eq + 1);
        if (k == "watch")
            o.watch_dirs.push_back(v);
        else if (k == "port")
            o.port_path = v;
        else if (k == "port-dir")
            o.port_dir = v;
        else if (k == "name")
            o.name = v;
        else if (k == "timeout")
            f.timeout_ms = static_cast<int>(parse_uint(k, v, 3600000));
        else if (k == "default") {
            if (v != "allow" && v != "deny")
                throw Usage("--default=" + v + ": expected allow or deny");
            f.default_allow = v == "allow";
        } else if (k == "mode")
            o.mode = parse_uint(k, v, 0777, 8);
        else if (k == "max-connections")
            o.max_conn = std::max<uint32_t>(1, parse_uint(k, v, 1024));
        else if (k == "allow-uid")
            o.uids.push_back(parse_uint(k, v, UINT32_MAX - 1));
        else if (k == "allow-gid")
            o.gids.push_back(parse_uint(k, v, UINT32_MAX - 1));
        else
            throw Usage("unknown option --" + k + " (see --help)");
    }
    if (o.watch_dirs.empty())
        throw Usage("give at least one --watch=DIR");
    return o;
}

// Blocks SIGTERM and SIGINT (before any thread starts, so every thread
// inherits the mask) and returns a signalfd that reads them. SIGPIPE is
// ignored: a client that went away is an error return, not a death.
UniqueFd block_stop_signals()
{
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    UniqueFd stop_fd(::signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!stop_fd)
        throw std::runtime_error(std::string("signalfd: ") + std::strerror(errno));
    return stop_fd;
}

// Opens the fanotify descriptor and marks every watched directory.
void start_watching(Filter &f, const std::vector<std::string> &watch_dirs)
{
    f.fan_fd.reset(::fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE | O_CLOEXEC));
    if (!f.fan_fd)
        throw std::runtime_error(std::string("fanotify_init: ") + std::strerror(errno) +
                                 (errno == EPERM ? " (needs CAP_SYS_ADMIN)" : ""));
    for (const auto &d : watch_dirs) {
        std::string why = f.add_watch(d);
        if (!why.empty())
            throw Usage(why);
    }
}

// Serves until the stop signal (0) or a failure of the fanotify descriptor
// or of poll (1): every event queued is answered as it comes.
int serve(Filter &f, int stop_fd)
{
    for (;;) {
        pollfd fds[2] = {{f.fan_fd.get(), POLLIN, 0}, {stop_fd, POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            diag(std::string("poll: ") + std::strerror(errno));
            return 1;
        }
        if (fds[1].revents)
            return 0;
        if (fds[0].revents && !f.drain(true))
            return 1;
    }
}

int run(int argc, char **argv)
{
    Filter f;  // declared first, so its fanotify descriptor closes last
    const Options o = parse_args(argc, argv, f);
    if (o.help) {
        std::printf("usage: devhost-filefilter --watch=DIR [--watch=DIR ...] [--port=PATH | --port-dir=DIR "
                    "--name=NAME]\n  [--timeout=MS] [--default=allow|deny] [--mode=0600] "
                    "[--max-connections=N] [--allow-uid=N ...] [--allow-gid=N ...]\n");
        return 0;
    }
    std::string port_path = o.port_path;
    if (port_path.empty()) {
        if (o.name.empty() || o.name.find('/') != std::string::npos)
            throw Usage("--name=" + o.name + ": expected a port name without /");
        port_path = devhost::port_server::path_in(o.port_dir, o.name);
    }
    const UniqueFd stop_fd = block_stop_signals();
    start_watching(f, o.watch_dirs);
    devhost::port_server::Port port = devhost::port_server::create(
        {.path = port_path, .max_connections = o.max_conn, .mode = o.mode, .allowed_uids = o.uids,
         .allowed_gids = o.gids, .user = &f, .connect = on_connect, .disconnect = on_disconnect,
         .message = on_message, .log = on_log},
        f.port);  // set before the port's thread starts: on_message reads it
    // On SIGTERM/SIGINT a decision in progress must not hold shutdown up for
    // its timeout: the watcher disconnects every client, which ends the
    // waits with E_REMOVED (the event then gets the default verdict). On an
    // exception it is finished first, then the port closes, then the rest.
    StopWatcher watcher(f, stop_fd.get());
    std::printf("READY %s\n", port_path.c_str());
    std::fflush(stdout);

    const int rc = serve(f, stop_fd.get());
    // Shutdown: no client is asked any more; what is queued gets the default
    // before the fanotify descriptor closes.
    f.stopping = true;
    watcher.finish();
    port.reset();
    f.port = nullptr;
    f.drain(false);
    f.fan_fd.reset();
    diag("stopped: " + f.stats());
    return rc;
}

}  // namespace

int main(int argc, char **argv)
{
    try {
        return run(argc, argv);
    } catch (const Usage &e) {
        diag(e.what());
        return 2;
    } catch (const std::exception &e) {
        diag(e.what());
        return 1;
    }
}
