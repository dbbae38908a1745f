// The mqtt group (issue 16 item 6): step records per second one `devhost
// serve` publishes at QoS 1 to a local mosquitto (started here on a free
// loopback port), against a plain C loop publishing the same payloads at
// QoS 1 through libmosquitto (devhost-bench-mqtt-pub, mqtt_pub.c), in the
// same run; with the spool empty (the broker up from the start) and with it
// draining (the records spooled while the broker was down, sent when it
// is back).
//
// Spool empty: a fresh `devhost serve` a sample, one loop device whose
// setup opens it and sleeps 1 s (the publisher connects meanwhile: no
// record is made before the broker has the births) and whose body, run
// every 1 ms, is one `request ... repeat=100` line: 100 step records, each
// published as a DDATA message; a sample takes the first N. Baseline: the
// DDATA payloads devhost published in a first (unmeasured) run, captured by
// the subscriber, sent again by the plain loop, N of them, on a topic of the
// same length. Both sides are timed the same way, by one subscriber in this
// process (libmosquitto, QoS 1): from the first of the N messages to arrive
// to the last, so the broker's delivery to the subscriber weighs on both.
// A row gives the rate serve's bodies made the same records at, from their
// own times in the records file: publishing can be no faster.
//
// Draining: the broker is stopped (its subscriber's session saved), a fresh
// serve whose device runs on demand is started and its body called N/100
// times through the control socket: N records wait in its spool. Then the
// broker is started again on the same port and the subscriber's session
// resumed; the figure is N over the time from the first spooled record's
// arrival to the last's, every spooled message checked to come once, in
// rseq order, without a gap (the sample fails otherwise). A row gives the
// time from the broker's return to the first spooled record (serve's
// reconnection backoff, up to 30 s, dominates it). Baseline: the plain
// loop, N of the same payloads, timed as above.
#include "bench.hpp"

#include "broker.hpp"        // Broker (tests/support)
#include "devhost_test.hpp"  // Child

#include <control_client.hpp>
#include <control_wire.hpp>

#include <mosquitto.h>

#include <condition_variable>
#include <csignal>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace bench {
namespace {

using devhost::test::Broker;
using devhost::test::Child;
using json = nlohmann::json;

const char *const mosquitto_bin = "/usr/sbin/mosquitto";
// In every body step, so in its records and their DDATA payloads: what the
// subscriber counts (setup's records, state changes and births have none).
const std::string marker = "devhost-bench-mqtt-0123456789abcdef";
const std::string serve_topic = "devhost/bench/DDATA/serve/d";
const std::string drain_topic = "devhost/bench/DDATA/drain/d";  // the draining samples' node
const std::string drain_ndata = "devhost/bench/NDATA/drain";     // where a drop notice would go
const std::string plain_topic = "devhost/bench/DDATA/plain/d";  // the same length
// A body's records: 100, about 40 KB of them.
const int body_records = 100;

// What the subscriber counts: the messages on `topic` whose payload has the
// marker, up to `want`; their payloads kept when `capture`. With
// `check_rseq`, every message on `topic` or `ndata` that carries an rseq
// (what came through serve's spool) must be the last one's plus one, from
// 1, and none a drop notice.
struct Expect {
    std::string topic;
    size_t want = 0;
    bool capture = false;
    bool check_rseq = false;
    std::string ndata;
};

// The subscriber both sides are timed by (libmosquitto, QoS 1, on
// devhost/bench/#): the arrival of the first and of the last of the
// messages it expects. A `persistent` one (clean session off, under a
// fixed client id) has what came while it was away when it connects again.
class Counter {
public:
    Counter(int port, const std::string &client_id, bool persistent, const Expect &e = {})
    {
        expect(e);
        mosq_ = mosquitto_new(client_id.c_str(), !persistent, this);
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

    void expect(const Expect &e)
    {
        std::lock_guard lock(mutex_);
        expect_ = e;
        count_ = 0;
        last_rseq_ = 0;
        error_.clear();
        captured_.clear();
    }
    // Seconds from the first message to the last of `want`; fails when they
    // do not all come within `timeout`, when the rseq check failed, or when
    // `ended` (asked each second) says why no more will come.
    double wait(std::chrono::seconds timeout, const std::string &side,
                const std::function<std::string()> &ended = nullptr)
    {
        std::unique_lock lock(mutex_);
        const auto until = Clock::now() + timeout;
        bool all = false;
        while (!all && Clock::now() < until) {
            all = changed_.wait_for(lock, std::chrono::seconds(1),
                                    [this] { return count_ >= expect_.want || !error_.empty(); });
            if (const std::string why = all || !ended ? "" : ended(); !why.empty())
                fail("mqtt: " + side + ": " + why);
        }
        if (!error_.empty())
            fail("mqtt: " + side + ": " + error_);
        if (!all)
            fail("mqtt: " + side + ": " + std::to_string(count_) + " of " + std::to_string(expect_.want) +
                 " messages arrived within " + std::to_string(timeout.count()) + " s");
        return std::chrono::duration<double>(last_ - first_).count();
    }
    Clock::time_point first() const { return first_; }
    std::vector<std::string> captured()
    {
        std::lock_guard lock(mutex_);
        return captured_;
    }
    // Ends the session's subscription: a persistent session left behind
    // gets nothing more queued for it.
    void forget()
    {
        mosquitto_unsubscribe(mosq_, nullptr, "devhost/bench/#");
    }

private:
    static void on_message(mosquitto *, void *self, const mosquitto_message *m)
    {
        auto *c = static_cast<Counter *>(self);
        const auto now = Clock::now();
        std::string payload(static_cast<const char *>(m->payload), static_cast<size_t>(m->payloadlen));
        std::lock_guard lock(c->mutex_);
        const bool on_topic = m->topic == c->expect_.topic;
        if (c->expect_.check_rseq && (on_topic || m->topic == c->expect_.ndata))
            c->check(payload);
        if (!on_topic || payload.find(marker) == std::string::npos || c->count_ >= c->expect_.want)
            return;
        if (c->count_ == 0)
            c->first_ = now;
        if (++c->count_ == c->expect_.want) {
            c->last_ = now;
            c->changed_.notify_all();
        }
        if (c->expect_.capture)
            c->captured_.push_back(std::move(payload));
    }

    // One spooled message's rseq: the last one's plus one (mutex_ held).
    void check(const std::string &payload)
    {
        const size_t at = payload.find("\"rseq\":");
        if (at == std::string::npos || !error_.empty())
            return;
        const long long rseq = std::atoll(payload.c_str() + at + 7);
        if (rseq != last_rseq_ + 1)
            error_ = "spooled message rseq " + std::to_string(rseq) + " came after rseq " +
                     std::to_string(last_rseq_) + " (lost, repeated or out of order)";
        else if (payload.find("\"event\":\"dropped\"") != std::string::npos)
            error_ = "the spool dropped messages: " + payload;
        last_rseq_ = rseq;
        if (!error_.empty())
            changed_.notify_all();
    }

    mosquitto *mosq_ = nullptr;
    std::mutex mutex_;
    std::condition_variable changed_;
    bool subscribed_ = false;
    Expect expect_;
    size_t count_ = 0;
    long long last_rseq_ = 0;
    std::string error_;
    std::vector<std::string> captured_;
    Clock::time_point first_, last_;
};

struct Shape {
    int records;  // a sample's messages, each side
    std::chrono::seconds timeout;
};

Shape mqtt_shape(const Params &p) { return p.smoke ? Shape{300, std::chrono::seconds(60)} : Shape{20000, std::chrono::seconds(180)}; }

// The broker of the whole group and the subscriber connected to it: one
// mosquitto on 127.0.0.1 (tests/support/broker.hpp), queueing without
// limit for its subscribers, saving their sessions when stopped; stopped
// and started again on the same port by the draining samples.
struct Rig {
    explicit Rig(const Params &p) : dir(fs::absolute(p.work_dir / "mqtt-broker"))
    {
        fs::remove_all(dir);  // no session or message of an earlier run
        fs::create_directories(dir / "db");
        start_broker();
        watch();
    }
    // The broker, on the rig's port (a free one the first time).
    void start_broker()
    {
        broker = std::make_unique<Broker>(dir, port,
                                          "allow_anonymous true\nmax_queued_messages 0\npersistence true\n"
                                          "persistence_location " + (dir / "db").string() + "/\n");
        port = broker->port();
    }
    // The group's subscriber (clean session).
    void watch() { counter = std::make_unique<Counter>(port, "devhost-bench-watch", false); }
    fs::path dir;
    int port = 0;
    std::unique_ptr<Broker> broker;
    std::unique_ptr<Counter> counter;
};

std::string serve_config(const Params &p, int port, const std::string &node, const std::string &state,
                         const std::string &run)
{
    const std::string w = fs::absolute(p.work_dir).string();
    return "[host]\nlog-level = warn\nstate-dir = " + w + "/" + state + "\ncache-dir = " + w + "/mqtt-cache\n"
           "[mqtt]\nbroker = mqtt://127.0.0.1:" + std::to_string(port) +
           "\ngroup = bench\nnode = " + node + "\nclient-id = devhost-bench-" + node + "\nqos = 1\n"
           "[device d]\nclass = loop\npath = loop:bench\nsetup = open\n" +
           (run == "on-demand" ? "" : "setup = sleep 1s\n") + "body = request \"" + marker + "\" expect=\"" +
           marker + "\" repeat=" + std::to_string(body_records) + "\nteardown = close\nrun = " + run + "\n";
}

std::unique_ptr<Child> start_serve(const Params &p, const fs::path &config, const fs::path &records,
                                   const fs::path &socket)
{
    return std::make_unique<Child>(std::vector<std::string>{(p.bin_dir / "devhost").string(), "serve", "--output",
                                                            records.string(), "--socket", socket.string(),
                                                            config.string()},
                                   p.work_dir);
}

// Why serve will publish nothing more ("" while it runs).
std::string ended(Child &serve)
{
    return serve.wait(std::chrono::milliseconds(0)).timed_out ? "" : "devhost serve ended: " + serve.err();
}

void stop_serve(Child &serve)
{
    serve.signal(SIGTERM);
    if (serve.wait(std::chrono::seconds(20)).exit_code != 0)
        fail("mqtt: devhost serve did not stop cleanly: " + serve.err());
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

// One devhost serve sample, spool empty: the rate at the subscriber (and
// the engine's, added to `engine`); the published payloads when `capture`.
double serve_sample(const Params &p, Rig &rig, bool capture, Series *engine)
{
    const Shape shape = mqtt_shape(p);
    const fs::path work = fs::absolute(p.work_dir);
    const fs::path config = work / "mqtt-serve.ini", records = work / "mqtt-records.jsonl";
    write_file(config, serve_config(p, rig.port, "serve", "mqtt-state", "every 1ms"));
    fs::remove(records);
    rig.counter->expect({serve_topic, size_t(shape.records), capture, false, ""});
    auto serve = start_serve(p, config, records, work / "mqtt.control");
    const double seconds = rig.counter->wait(shape.timeout, "devhost serve", [&] { return ended(*serve); });
    stop_serve(*serve);
    if (engine)
        engine->samples.push_back(engine_rate(records, shape.records));
    return double(shape.records - 1) / seconds;
}

double plain_sample(const Params &p, Rig &rig, const fs::path &payloads)
{
    const Shape shape = mqtt_shape(p);
    rig.counter->expect({plain_topic, size_t(shape.records), false, false, ""});
    const ProcessRun run = run_process({(p.bin_dir / "devhost-bench-mqtt-pub").string(), std::to_string(rig.port),
                                        plain_topic, payloads.string(), std::to_string(shape.records)});
    if (run.exit_code != 0)
        fail("mqtt: devhost-bench-mqtt-pub exited with " + std::to_string(run.exit_code));
    return double(shape.records - 1) / rig.counter->wait(shape.timeout, "the plain loop");
}

// Runs serve's body `calls` times through its control socket, each call
// waited for (its records are in the spool when the reply comes: serve
// publishes a body's records as they come, before the body's end).
void call_bodies(const fs::path &socket, int calls)
{
    devhost::control::Client client;
    if (!client.connect(socket.string()))
        fail("mqtt: control socket " + socket.string() + ": " + client.error());
    for (int i = 0; i < calls; i++) {
        if (!client.send(devhost::control::method_call, {{"device", "d"}}))
            fail("mqtt: devhost.Call: " + client.error());
        const auto reply = client.receive(60000);
        if (!reply || reply->contains("error"))
            fail("mqtt: devhost.Call " + std::to_string(i + 1) + " of " + std::to_string(calls) + ": " +
                 (reply ? reply->dump() : client.error()));
    }
}

// One draining sample: the rate at the subscriber of N records spooled
// while the broker was down; the time from the broker's return to the first
// of them is added to `delay` (ms).
double drain_sample(const Params &p, Rig &rig, int sample, Series &delay)
{
    const Shape shape = mqtt_shape(p);
    const fs::path work = fs::absolute(p.work_dir);
    const fs::path config = work / "mqtt-drain.ini", records = work / "mqtt-drain-records.jsonl",
                   socket = work / "mqtt-drain.control", state = work / "mqtt-drain-state";
    const std::string watcher = "devhost-bench-drain-" + std::to_string(sample);
    // The session the records will be queued for, known to the broker
    // before it stops, then saved by it.
    rig.counter.reset();
    {
        Counter session(rig.port, watcher, true);
    }
    rig.broker->stop();
    rig.broker.reset();

    fs::remove_all(state);  // an empty spool
    fs::create_directories(state);
    ::chmod(state.c_str(), 0700);
    fs::remove(records);
    fs::remove(socket);
    write_file(config, serve_config(p, rig.port, "drain", "mqtt-drain-state", "on-demand"));
    auto serve = start_serve(p, config, records, socket);
    wait_set_up(*serve, socket, 1);
    call_bodies(socket, shape.records / body_records);

    rig.start_broker();
    const auto back = Clock::now();
    double seconds = 0;
    {
        Counter resumed(rig.port, watcher, true, {drain_topic, size_t(shape.records), false, true, drain_ndata});
        seconds = resumed.wait(shape.timeout, "the spool draining", [&] { return ended(*serve); });
        delay.samples.push_back(std::chrono::duration<double, std::milli>(resumed.first() - back).count());
        stop_serve(*serve);
        resumed.forget();
    }
    rig.watch();
    return double(shape.records - 1) / seconds;
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
    Rig rig(p);

    // A first run, not measured: what devhost publishes is what the plain
    // loop will send.
    serve_sample(p, rig, true, nullptr);
    std::string lines;
    for (const auto &payload : rig.counter->captured())
        lines += payload + "\n";
    const fs::path payloads = p.work_dir / "mqtt-payloads.txt";
    write_file(payloads, lines);

    const Shape shape = mqtt_shape(p);
    const std::string both = "both sides timed by one subscriber, first to last message; mosquitto on 127.0.0.1, "
                             "libmosquitto defaults on both sides (MQTT 3.1.1, 20 in flight)";
    Series engine;
    Result r{"mqtt", "DDATA records at QoS 1 to a local broker, spool empty", "records/s", true,
             "plain C loop, libmosquitto QoS 1, the same payloads", {}, {}, ""};
    r.note = std::to_string(shape.records) + " records a sample (bodies of one request step with repeat=100 every 1 ms), "
             "a fresh devhost serve each; " + both;
    r = compare(
        p, r, [&] { return serve_sample(p, rig, false, &engine); }, [&] { return plain_sample(p, rig, payloads); });
    report.add(r);
    report.add({"mqtt", "the same records made by serve's bodies (their own times)", "records/s", true, "", engine, {},
                "the devhost samples' records file, the same first records: the bodies run from serve's loop, which "
                "also publishes, so publishing can be no faster than this"});

    Series delay;
    int sample = 0;
    Result d{"mqtt", "DDATA records at QoS 1 to a local broker, spool draining", "records/s", true,
             "plain C loop, libmosquitto QoS 1, the same payloads", {}, {}, ""};
    d.note = std::to_string(shape.records) + " records spooled while the broker was down (bodies of 100 called on "
             "demand), a fresh devhost serve and spool each; from the first spooled record at the subscriber to the "
             "last, every spooled message checked once, in rseq order; " + both;
    d = compare(
        p, d, [&] { return drain_sample(p, rig, sample++, delay); }, [&] { return plain_sample(p, rig, payloads); });
    report.add(d);
    report.add({"mqtt", "broker's return to the first spooled record", "ms", false, "", delay, {},
                "the draining samples: mostly serve's reconnection backoff (0.5 s doubling to 30 s after a failed "
                "attempt), whose phase against the broker's return is chance"});
    rig.counter.reset();
    rig.broker->stop();
}

}  // namespace bench
