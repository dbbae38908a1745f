// The mqtt group (issue 16 item 6): step records per second one `devhost
// serve` publishes at QoS 1 to a local mosquitto (started here on a free
// loopback port; the broker is up from the start, so nothing is spooled),
// against a plain C loop publishing the same payloads at QoS 1 through
// libmosquitto (devhost-bench-mqtt-pub, mqtt_pub.c), in the same run.
//
// devhost side: a fresh `devhost serve` a sample, one loop device whose
// setup opens it and sleeps 1 s (the publisher connects meanwhile: no
// record is made before the broker has the births) and whose body, run
// every 1 ms, is one `request ... repeat=100` line: 100 step records, each
// published as a DDATA message; a sample takes the first N. Baseline: the DDATA payloads devhost
// published in a first (unmeasured) run, captured by the subscriber, sent
// again by the plain loop, N of them, on a topic of the same length.
// Both sides are timed the same way, by one subscriber in this process
// (libmosquitto, QoS 1): from the first of the N messages to arrive to
// the last, so the broker's delivery to the subscriber weighs on both.
// A third row gives the rate serve's bodies made the same records at,
// from their own times in the records file: publishing can be no faster.
#include "bench.hpp"

#include <mosquitto.h>

#include <arpa/inet.h>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <mutex>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace bench {
namespace {

const char *const mosquitto_bin = "/usr/sbin/mosquitto";
// In every body step, so in its records and their DDATA payloads: what the
// subscriber counts (setup's records, state changes and births have none).
const std::string marker = "devhost-bench-mqtt-0123456789abcdef";
const std::string serve_topic = "devhost/bench/DDATA/serve/d";
const std::string plain_topic = "devhost/bench/DDATA/plain/d";  // the same length
// A body's records: serve hands a phase's records to its publisher when the
// phase ends (host/serve_worker.cpp), at most 4 MiB of them; a body of 100
// is about 40 KB.
const int body_records = 100;

// A process started in the background, its output to `log`; it dies with
// the benchmark (PR_SET_PDEATHSIG) and is killed when this goes.
class Background {
public:
    Background(const std::vector<std::string> &argv, const fs::path &log)
    {
        std::vector<char *> args;
        for (const auto &a : argv)
            args.push_back(const_cast<char *>(a.c_str()));
        args.push_back(nullptr);
        const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (out < 0)
            fail("open " + log.string() + ": " + std::strerror(errno));
        pid_ = ::fork();
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            ::dup2(out, STDOUT_FILENO);
            ::dup2(out, STDERR_FILENO);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
        ::close(out);
        if (pid_ < 0)
            fail(std::string("fork: ") + std::strerror(errno));
    }
    ~Background() { stop(SIGKILL, 0); }
    Background(const Background &) = delete;
    Background &operator=(const Background &) = delete;

    // Sends `sig`, waits up to `wait_ms` for the end, then SIGKILL; the
    // exit status (-1 when it had to be killed).
    int stop(int sig, int wait_ms)
    {
        if (pid_ <= 0)
            return -1;
        ::kill(pid_, sig);
        int status = 0;
        for (int waited = 0; ::waitpid(pid_, &status, WNOHANG) == 0; waited += 10) {
            if (waited >= wait_ms) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                pid_ = -1;
                return -1;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }

private:
    pid_t pid_ = -1;
};

int free_port()
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) != 0)
        fail("no free port");
    ::close(fd);
    return ntohs(addr.sin_port);
}

bool accepts(int port)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0;
    if (fd >= 0)
        ::close(fd);
    return ok;
}

// mosquitto on 127.0.0.1:port, queueing without limit for its subscriber.
std::unique_ptr<Background> start_broker(const Params &p, int port)
{
    const fs::path conf = p.work_dir / "mqtt-broker.conf";
    write_file(conf, "listener " + std::to_string(port) + " 127.0.0.1\nallow_anonymous true\n"
                     "persistence false\nmax_queued_messages 0\nlog_dest stdout\n" +
                         std::string(::geteuid() == 0 ? "user root\n" : ""));
    auto broker = std::make_unique<Background>(std::vector<std::string>{mosquitto_bin, "-c", conf.string()},
                                               p.work_dir / "mqtt-broker.log");
    for (int i = 0; !accepts(port); i++) {
        if (i == 250)
            fail("mosquitto did not listen on port " + std::to_string(port) + " within 5 s (see " +
                 (p.work_dir / "mqtt-broker.log").string() + ")");
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return broker;
}

// The subscriber both sides are timed by: counts the messages on one topic
// whose payload has the marker, with the arrival of the first and of the
// last of `want`; keeps their payloads when asked.
class Counter {
public:
    explicit Counter(int port)
    {
        mosq_ = mosquitto_new("devhost-bench-watch", true, this);
        if (!mosq_)
            fail("mosquitto_new failed");
        mosquitto_message_callback_set(mosq_, &Counter::on_message);
        mosquitto_subscribe_callback_set(mosq_, [](mosquitto *, void *self, int, int, const int *) {
            auto *c = static_cast<Counter *>(self);
            std::lock_guard lock(c->mutex_);
            c->subscribed_ = true;
            c->changed_.notify_all();
        });
        int rc = mosquitto_connect(mosq_, "127.0.0.1", port, 60);
        if (rc == MOSQ_ERR_SUCCESS)
            rc = mosquitto_loop_start(mosq_);
        if (rc == MOSQ_ERR_SUCCESS)
            rc = mosquitto_subscribe(mosq_, nullptr, "devhost/bench/#", 1);
        if (rc != MOSQ_ERR_SUCCESS)
            fail(std::string("subscriber: ") + mosquitto_strerror(rc));
        std::unique_lock lock(mutex_);
        if (!changed_.wait_for(lock, std::chrono::seconds(5), [this] { return subscribed_; }))
            fail("subscriber: no SUBACK within 5 s");
    }
    ~Counter()
    {
        mosquitto_disconnect(mosq_);
        mosquitto_loop_stop(mosq_, false);
        mosquitto_destroy(mosq_);
    }
    Counter(const Counter &) = delete;
    Counter &operator=(const Counter &) = delete;

    void expect(const std::string &topic, size_t want, bool capture)
    {
        std::lock_guard lock(mutex_);
        topic_ = topic;
        want_ = want;
        capture_ = capture;
        count_ = 0;
        captured_.clear();
    }
    // Seconds from the first message to the last of `want`; fails when they
    // do not all come within `timeout`.
    double wait(std::chrono::seconds timeout, const std::string &side)
    {
        std::unique_lock lock(mutex_);
        if (!changed_.wait_for(lock, timeout, [this] { return count_ >= want_; }))
            fail("mqtt: " + side + ": " + std::to_string(count_) + " of " + std::to_string(want_) +
                 " messages arrived within " + std::to_string(timeout.count()) + " s");
        return std::chrono::duration<double>(last_ - first_).count();
    }
    std::vector<std::string> captured()
    {
        std::lock_guard lock(mutex_);
        return captured_;
    }

private:
    static void on_message(mosquitto *, void *self, const mosquitto_message *m)
    {
        auto *c = static_cast<Counter *>(self);
        const auto now = Clock::now();
        std::string payload(static_cast<const char *>(m->payload), static_cast<size_t>(m->payloadlen));
        std::lock_guard lock(c->mutex_);
        if (m->topic != c->topic_ || payload.find(marker) == std::string::npos || c->count_ >= c->want_)
            return;
        if (c->count_ == 0)
            c->first_ = now;
        if (++c->count_ == c->want_) {
            c->last_ = now;
            c->changed_.notify_all();
        }
        if (c->capture_)
            c->captured_.push_back(std::move(payload));
    }

    mosquitto *mosq_ = nullptr;
    std::mutex mutex_;
    std::condition_variable changed_;
    bool subscribed_ = false;
    std::string topic_;
    size_t want_ = 0, count_ = 0;
    bool capture_ = false;
    std::vector<std::string> captured_;
    Clock::time_point first_, last_;
};

struct Shape {
    int records;  // a sample's messages, each side
    std::chrono::seconds timeout;
};

Shape mqtt_shape(const Params &p) { return p.smoke ? Shape{300, std::chrono::seconds(60)} : Shape{20000, std::chrono::seconds(180)}; }

std::string serve_config(const Params &p, int port)
{
    const std::string w = p.work_dir.string();
    return "[host]\nlog-level = warn\nstate-dir = " + w + "/mqtt-state\ncache-dir = " + w + "/mqtt-cache\n"
           "[mqtt]\nbroker = mqtt://127.0.0.1:" + std::to_string(port) +
           "\ngroup = bench\nnode = serve\nclient-id = devhost-bench-serve\nqos = 1\n"
           "[device d]\nclass = loop\npath = loop:bench\nsetup = open\nsetup = sleep 1s\n"
           "body = request \"" + marker + "\" expect=\"" + marker + "\" repeat=" + std::to_string(body_records) +
           "\nteardown = close\nrun = every 1ms\n";
}

// Records per second serve's bodies made their first `count` records at,
// from the records' own times in the records file.
double engine_rate(const fs::path &records, long count)
{
    std::ifstream in(records);
    std::string line;
    double first = -1, last = -1;
    long n = 0;
    while (n < count && std::getline(in, line)) {
        if (line.find(marker) == std::string::npos)
            continue;
        const double t = record_time(line);
        if (first < 0)
            first = t;
        last = t;
        n++;
    }
    if (n < count || last <= first)
        fail("mqtt: the records file " + records.string() + " has " + std::to_string(n) + " body records");
    return double(n - 1) / (last - first);
}

// One devhost serve sample: the rate at the subscriber (and the engine's,
// added to `engine`); the published payloads when `capture`.
double serve_sample(const Params &p, Counter &counter, int port, bool capture, Series *engine)
{
    const Shape shape = mqtt_shape(p);
    const fs::path config = p.work_dir / "mqtt-serve.ini", records = p.work_dir / "mqtt-records.jsonl";
    write_file(config, serve_config(p, port));
    fs::remove(records);
    counter.expect(serve_topic, size_t(shape.records), capture);
    Background serve({(p.bin_dir / "devhost").string(), "serve", "--output", records.string(), "--socket",
                      (p.work_dir / "mqtt.control").string(), config.string()},
                     p.work_dir / "mqtt-serve.log");
    const double seconds = counter.wait(shape.timeout, "devhost serve (see " + (p.work_dir / "mqtt-serve.log").string() + ")");
    if (serve.stop(SIGTERM, 20000) != 0)
        fail("mqtt: devhost serve did not stop cleanly (see " + (p.work_dir / "mqtt-serve.log").string() + ")");
    if (engine)
        engine->samples.push_back(engine_rate(records, shape.records));
    return double(shape.records - 1) / seconds;
}

double plain_sample(const Params &p, Counter &counter, int port, const fs::path &payloads)
{
    const Shape shape = mqtt_shape(p);
    counter.expect(plain_topic, size_t(shape.records), false);
    const ProcessRun run = run_process({(p.bin_dir / "devhost-bench-mqtt-pub").string(), std::to_string(port),
                                        plain_topic, payloads.string(), std::to_string(shape.records)});
    if (run.exit_code != 0)
        fail("mqtt: devhost-bench-mqtt-pub exited with " + std::to_string(run.exit_code));
    return double(shape.records - 1) / counter.wait(shape.timeout, "the plain loop");
}

}  // namespace

void bench_mqtt(const Params &p, Report &report)
{
    if (::access(mosquitto_bin, X_OK) != 0) {
        std::printf("mqtt     skipped: needs %s (apt-get install mosquitto)\n", mosquitto_bin);
        return;
    }
    mosquitto_lib_init();
    for (const char *sub : {"mqtt-state", "mqtt-cache"}) {
        fs::create_directories(p.work_dir / sub);
        ::chmod((p.work_dir / sub).c_str(), 0700);
    }
    const int port = free_port();
    auto broker = start_broker(p, port);
    Counter counter(port);

    // A first run, not measured: what devhost publishes is what the plain
    // loop will send.
    serve_sample(p, counter, port, true, nullptr);
    std::string lines;
    for (const auto &payload : counter.captured())
        lines += payload + "\n";
    const fs::path payloads = p.work_dir / "mqtt-payloads.txt";
    write_file(payloads, lines);

    const Shape shape = mqtt_shape(p);
    Series engine;
    Result r{"mqtt", "DDATA records at QoS 1 to a local broker, spool empty", "records/s", true,
             "plain C loop, libmosquitto QoS 1, the same payloads", {}, {}, ""};
    r.note = std::to_string(shape.records) + " records a sample (bodies of one request step with repeat=100 every 1 ms), "
             "a fresh devhost serve each; both sides timed by one subscriber, first to last message; mosquitto " +
             "on 127.0.0.1, libmosquitto defaults on both sides (MQTT 3.1.1, 20 in flight)";
    r = compare(
        p, r, [&] { return serve_sample(p, counter, port, false, &engine); },
        [&] { return plain_sample(p, counter, port, payloads); });
    report.add(r);
    report.add({"mqtt", "the same records made by serve's bodies (their own times)", "records/s", true, "", engine, {},
                "the devhost samples' records file, the same first records: the bodies run from serve's loop, which "
                "also publishes, so publishing can be no faster than this"});
    broker->stop(SIGTERM, 5000);
}

}  // namespace bench
