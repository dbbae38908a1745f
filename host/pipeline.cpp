#include "pipeline.hpp"

#include "serve_config.hpp"

#include "file_transfer.hpp"
#include "logging.hpp"
#include "common/text.hpp"

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <new>
#include <poll.h>
#include <system_error>
#include <thread>

namespace devhost {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start)
{
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

bool contains(const uint8_t *data, size_t len, const text::Bytes &needle)
{
    if (needle.empty())
        return true;
    return std::search(data, data + len, needle.begin(), needle.end()) != data + len;
}

// At most the first 256 bytes of `data` as printable text, for messages (a
// record carries the bytes themselves).
std::string shown(const uint8_t *data, size_t len)
{
    constexpr size_t max = 256;
    if (len <= max)
        return text::to_printable(data, len);
    return text::to_printable(data, max) + "... (" + std::to_string(len) + " bytes)";
}

// The outcome of a step that threw (called in a catch block): the host ran
// out of memory or another resource. The pipeline fails and unwinds.
Outcome outcome_of_exception()
{
    try {
        throw;
    } catch (const std::bad_alloc &) {
        return {DEVHOST_E_NO_MEMORY, "the host ran out of memory in this step", ENOMEM};
    } catch (const std::system_error &e) {
        return {DEVHOST_E_NO_MEMORY, std::string("the host ran out of resources in this step: ") + e.what(),
                e.code().value()};
    } catch (const std::exception &e) {
        return {DEVHOST_E_IO, std::string("host error in this step: ") + e.what(), 0};
    } catch (...) {
        // Not even a std::exception: a plugin broke the C ABI by throwing
        // through it. The pipeline fails and unwinds all the same.
        return {DEVHOST_E_IO, "host error in this step: an exception of an unknown type", 0};
    }
}

// Runs one step (`call`, giving its Outcome) for `rec`: times it, turns what
// it throws into an outcome, and fills the record's outcome fields.
template <class Call>
Outcome run_recorded(Record &rec, Call &&call)
{
    const auto start = Clock::now();
    Outcome o;
    try {
        o = call();
    } catch (...) {
        o = outcome_of_exception();
    }
    rec.duration_ms = ms_since(start);
    rec.status = o.status;
    rec.message = o.message;
    rec.os_errno = o.os_errno;
    return o;
}

// Waits `ms` or until the device is cancelled.
Outcome sleep_cancellable(const Device &device, int64_t ms)
{
    const auto deadline = Clock::now() + std::chrono::milliseconds(ms);
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0)
            return {};
        pollfd p{device.cancel_fd(), POLLIN, 0};
        int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 60000)));
        if (n > 0)
            return {DEVHOST_E_CANCELLED, "sleep cancelled", 0};
    }
}

}  // namespace

struct Engine::StepRunner {
    Device &device;
    const DevicePlan &plan;
    int64_t default_timeout_ms;
    std::optional<uint64_t> last_message_id;
    std::vector<uint8_t> buffer;

    int32_t timeout_for(const Step &s) const
    {
        int64_t ms = s.timeout_ms.value_or(plan.config->timeout_ms.value_or(default_timeout_ms));
        return static_cast<int32_t>(std::min<int64_t>(ms, INT32_MAX));
    }

    // Runs one step and fills the record's outcome fields.
    Outcome run(const Step &s, uint32_t control_code, Record &rec)
    {
        const int32_t timeout = timeout_for(s);
        switch (s.kind) {
        case StepKind::Open: {
            OpenRequest req;
            req.path = plan.path;
            req.configured_path = plan.config->path.value;
            req.options = plan.options;
            req.values = plan.values ? &*plan.values : nullptr;
            req.inherit = plan.config->inherit;
            req.timeout_ms = timeout;
            return device.open(req);
        }
        case StepKind::Connect: {
            ConnectRequest req;
            req.context = s.context;
            req.context_size = s.context_size;
            req.args = s.args;
            req.timeout_ms = timeout;
            return device.connect(req);
        }
        case StepKind::Info: {
            static thread_local InfoList info;
            info.clear();
            Outcome o = device.info(info, timeout);
            rec.info = &info;
            return o;
        }
        case StepKind::Lock: return device.lock(timeout);
        // Since 1.1 their step's timeout= is their deadline too.
        case StepKind::Unlock: return device.unlock(timeout);
        case StepKind::Disconnect: return device.disconnect(timeout);
        case StepKind::Close: return device.close(timeout);
        case StepKind::Sleep: return sleep_cancellable(device, s.sleep_ms);
        default:
            if (s.file_transfer())
                return file_transfer(device, s, timeout, buffer, rec);
            return transfer(s, control_code, timeout, rec);
        }
    }

    Outcome transfer(const Step &s, uint32_t control_code, int32_t timeout, Record &rec)
    {
        devhost_transfer x{};
        x.timeout_ms = timeout;
        size_t capacity = 0;
        bool sends = false;
        x.op = transfer_op(s);
        switch (s.kind) {
        case StepKind::Write:
            sends = true;
            break;
        case StepKind::Read:
            capacity = s.read_mode == ReadMode::Until ? s.max : s.count;
            break;
        case StepKind::Request:
        case StepKind::GetMessage:
            capacity = s.max;
            break;
        case StepKind::Reply:
            sends = true;
            if (!s.message_id && !last_message_id)
                return {DEVHOST_E_STATE, "reply: no message was received to reply to (give id=N)", 0};
            x.message_id = s.message_id.value_or(last_message_id.value_or(0));
            rec.message_id = x.message_id;
            break;
        case StepKind::Control:
            x.control_code = control_code;
            capacity = s.max;
            break;
        default:
            return {DEVHOST_E_INVALID, "not a transfer step", 0};
        }
        if (s.offset) {
            x.flags |= DEVHOST_TRANSFER_HAS_OFFSET;
            x.offset = *s.offset;
        }
        if (!s.data.empty()) {
            x.out = s.data.data();
            x.out_len = s.data.size();
        }
        if (s.until) {
            x.delimiter = s.until->data();
            x.delimiter_len = s.until->size();
        }
        // The buffer is allocated before any I/O: a step the host has no
        // memory for fails before it moves a byte.
        try {
            buffer.resize(capacity);
        } catch (const std::bad_alloc &) {
            return {DEVHOST_E_NO_MEMORY,
                    "the host cannot allocate this step's " + std::to_string(capacity) + "-byte buffer", ENOMEM};
        }
        x.in = capacity ? buffer.data() : nullptr;
        x.in_capacity = capacity;

        Outcome o = device.transfer(x);
        if (sends) {
            rec.data = x.out;
            rec.data_len = x.out_done;
            rec.bytes = x.out_done;
        } else {
            rec.data = buffer.data();
            rec.data_len = x.in_len;
            rec.bytes = x.in_len;
        }
        if (x.op == DEVHOST_OP_GET_MESSAGE && o.ok()) {
            last_message_id = x.message_id;
            rec.message_id = x.message_id;
        }
        if (o.ok() && s.expect && !contains(buffer.data(), x.in_len, *s.expect)) {
            o.status = DEVHOST_E_PROTOCOL;
            o.message = "expected \"" + shown(s.expect->data(), s.expect->size()) + "\", got \"" +
                        shown(buffer.data(), x.in_len) + "\"";
        }
        return o;
    }
};

Engine::Engine(RecordWriter &records, int64_t default_timeout_ms)
    : records_(records), default_timeout_ms_(default_timeout_ms)
{
}

void Engine::cancel_all()
{
    cancelled_ = true;
    records_.stop_waiting(Clock::now() + std::chrono::milliseconds(grace_ms_.load() / 2));
    std::lock_guard lock(mutex_);
    for (Device *d : live_)
        d->cancel();
}

bool Engine::record(const Record &rec)
{
    if (observer_)
        observer_(rec);
    if (records_.write(rec))
        return true;
    if (!records_failed_.exchange(true)) {
        spdlog::error("step records can no longer be written: stopping every pipeline and releasing its devices");
        cancel_all();
    }
    return false;
}

Record not_started_record(const DeviceConfig &cfg, devhost_status status, int os_errno, const std::string &why)
{
    Record rec;
    rec.device = cfg.name;
    rec.seq = 1;
    rec.step = cfg.steps.empty() ? "(pipeline)" : cfg.steps[0].text;
    rec.line = cfg.steps.empty() ? 0 : cfg.steps[0].line;
    rec.status = status;
    rec.message = "pipeline not started: " + why + "; no step was run";
    rec.os_errno = os_errno;
    return rec;
}

void Engine::record_not_started(const DevicePlan &plan, devhost_status status, int os_errno,
                                const std::string &why) noexcept
{
    const DeviceConfig &cfg = *plan.config;
    spdlog::error("{}: pipeline not started: {}", cfg.name, why);
    try {
        record(not_started_record(cfg, status, os_errno, why));
    } catch (...) {
        // Out of memory for the record itself: the log line above says it.
    }
}

// A running pipeline's device, in the engine's list of live devices (for
// cancel_all) exactly as long as it exists: registered once it is built,
// taken out before it is destroyed, on every way out of run_device (an
// exception included), so a cancel never follows a device that is gone.
class Engine::LiveDevice {
public:
    LiveDevice(Engine &engine, const DevicePlan &plan) : engine_(engine), device_(plan.plugin, plan.config->name)
    {
        if (engine_.setup_)  // first: the fault injector polls the cancel handle it gives
            engine_.setup_(device_, plan);
        device_.set_faults(FaultSchedule(plan.config->faults));
        std::lock_guard lock(engine_.mutex_);
        engine_.live_.push_back(&device_);
        // Read under the lock: a cancel_all() that has not reached this
        // device in live_ has set cancelled_ already.
        if (engine_.cancelled_)
            device_.cancel();
    }
    ~LiveDevice()
    {
        std::lock_guard lock(engine_.mutex_);
        auto &live = engine_.live_;
        live.erase(std::remove(live.begin(), live.end(), &device_), live.end());
    }
    LiveDevice(const LiveDevice &) = delete;
    LiveDevice &operator=(const LiveDevice &) = delete;

    Device &device() { return device_; }

private:
    Engine &engine_;
    Device device_;
};

PipelineResult Engine::run_device(const DevicePlan &plan)
{
    PipelineResult result;
    result.device = plan.config->name;
    std::optional<LiveDevice> live;
    try {
        live.emplace(*this, plan);
    } catch (const std::system_error &e) {
        record_not_started(plan, DEVHOST_E_NO_MEMORY, e.code().value(), e.what());
        result.ok = false;
        result.status = DEVHOST_E_NO_MEMORY;
        return result;
    } catch (const std::bad_alloc &) {
        record_not_started(plan, DEVHOST_E_NO_MEMORY, ENOMEM, "out of memory");
        result.ok = false;
        result.status = DEVHOST_E_NO_MEMORY;
        return result;
    }
    const int seq = run_steps(live->device(), plan, result);
    unwind(live->device(), *plan.config, seq);
    if (HookWatch *watch = live->device().watch())
        watch->phase.store(HookWatch::Done, std::memory_order_release);
    return result;
}

int Engine::run_steps(Device &device, const DevicePlan &plan, PipelineResult &result)
{
    int seq = 0;
    result = run_range(device, plan, 0, plan.config->steps.size(), seq, 0);
    return seq;
}

PipelineResult Engine::run_range(Device &device, const DevicePlan &plan, size_t first, size_t count, int &seq,
                                 int generation)
{
    const DeviceConfig &cfg = *plan.config;
    PipelineResult result;
    result.device = cfg.name;
    StepRunner runner{device, plan, default_timeout_ms_, std::nullopt, {}};
    for (size_t i = first; i < first + count && i < cfg.steps.size(); i++) {
        const Step &s = cfg.steps[i];
        // repeat=N: each repetition is a step of its own (steps.hpp).
        bool ok = true;
        for (uint32_t k = 1; ok && k <= s.repeat; k++)
            ok = run_step(device, runner, plan, i, s.repeat > 1 ? k : 0, ++seq, generation, result);
        if (!ok)
            break;
    }
    return result;
}

bool Engine::run_step(Device &device, StepRunner &runner, const DevicePlan &plan, size_t i, uint32_t repetition,
                      int seq, int generation, PipelineResult &result)
{
    const DeviceConfig &cfg = *plan.config;
    const Step &s = cfg.steps[i];
    Record rec;
    rec.device = cfg.name;
    rec.seq = seq;
    rec.step = s.text;
    rec.line = s.line;
    rec.repetition = repetition;
    rec.generation = generation;
    rec.phase = generation > 0 ? phase_name(phase_of_step(cfg, i)) : nullptr;
    if (HookWatch *watch = device.watch()) {
        watch->step.store(static_cast<int32_t>(i), std::memory_order_relaxed);
        watch->repetition.store(repetition, std::memory_order_relaxed);
        watch->phase.store(HookWatch::Steps, std::memory_order_release);
    }
    const Outcome o = run_recorded(rec, [&]() -> Outcome {
        if (device.cancelled())
            return {DEVHOST_E_CANCELLED, "pipeline cancelled before this step", 0};
        return runner.run(s, i < plan.control_codes.size() ? plan.control_codes[i] : 0, rec);
    });
    const bool recorded = record(rec);
    if (HookWatch *watch = device.watch(); watch && recorded)
        watch->written_seq.store(rec.seq, std::memory_order_release);
    if (!o.ok()) {
        // Steps made by the host itself (probe) have no config line.
        spdlog::error("{}: step '{}'{}{} failed: {}: {}", cfg.name, s.text,
                      s.line > 0 ? " (line " + std::to_string(s.line) + ")" : std::string(),
                      repetition ? " repetition " + std::to_string(repetition) + " of " + std::to_string(s.repeat)
                                 : std::string(),
                      devhost_status_name(o.status), o.message);
        result.ok = false;
        result.status = o.status;
        return false;
    }
    if (!recorded) {
        result.ok = false;
        result.status = DEVHOST_E_IO;
        return false;
    }
    return true;
}

void Engine::release(Device &device, const DevicePlan &plan, int &seq, int generation, const char *phase)
{
    const size_t held = unwind_order(device.state(), device.rules()).size();
    unwind(device, *plan.config, seq, generation, phase);
    seq += static_cast<int>(held);
}

void Engine::unwind(Device &device, const DeviceConfig &cfg, int seq, int generation, const char *phase)
{
    // Unwind what the pipeline still holds, in the lifecycle's order, each
    // release with the device's timeout, else [host]'s (deadlines.hpp).
    const int64_t timeout_ms = cfg.timeout_ms.value_or(default_timeout_ms_);
    const int32_t timeout = static_cast<int32_t>(std::min<int64_t>(timeout_ms, INT32_MAX));
    if (HookWatch *watch = device.watch())
        watch->phase.store(HookWatch::Unwind, std::memory_order_release);
    for (Hook hook : unwind_order(device.state(), device.rules())) {
        const char *name = hook_name(hook);
        Record rec;
        rec.device = cfg.name;
        rec.seq = ++seq;
        rec.step = name;
        rec.unwind = true;
        rec.generation = generation;
        rec.phase = phase;
        const Outcome o = run_recorded(rec, [&] { return device.release(hook, timeout); });
        if (HookWatch *watch = device.watch(); record(rec) && watch)
            watch->written_seq.store(rec.seq, std::memory_order_release);
        if (o.ok())
            spdlog::info("{}: {} (unwinding what the pipeline held)", cfg.name, name);
        else
            spdlog::warn("{}: unwinding {} failed: {}", cfg.name, name, o.message);
    }
}

std::vector<PipelineResult> Engine::run_all(const std::vector<DevicePlan> &plans, std::chrono::milliseconds grace)
{
    struct Shared {
        std::mutex mutex;
        std::condition_variable done_cv;
        size_t done = 0;
        std::vector<PipelineResult> results;
        std::vector<bool> finished;
    };
    auto shared = std::make_shared<Shared>();
    shared->results.resize(plans.size());
    shared->finished.resize(plans.size());
    for (size_t i = 0; i < plans.size(); i++)
        shared->results[i].device = plans[i].config->name;

    grace_ms_ = grace.count();
    std::vector<std::thread> threads;
    threads.reserve(plans.size());
    for (size_t i = 0; i < plans.size(); i++) {
        auto finish = [shared, i](const PipelineResult &r) {
            std::lock_guard lock(shared->mutex);
            shared->results[i] = r;
            shared->finished[i] = true;
            shared->done++;
            shared->done_cv.notify_all();
        };
        try {
            threads.emplace_back([this, finish, &plans, i] {
                PipelineResult r;
                try {
                    r = run_device(plans[i]);
                } catch (const std::exception &e) {
                    spdlog::error("{}: pipeline aborted: {}", plans[i].config->name, e.what());
                    r.device = plans[i].config->name;
                    r.ok = false;
                    r.status = DEVHOST_E_IO;
                }
                finish(r);
            });
        } catch (const std::system_error &e) {
            // No thread (pids.max, RLIMIT_NPROC, no memory for its stack):
            // this pipeline fails before its first step; the others go on.
            const int code = e.code().value();
            record_not_started(plans[i], DEVHOST_E_NO_MEMORY, code,
                               std::string("cannot create its thread: ") + std::strerror(code));
            finish({plans[i].config->name, false, DEVHOST_E_NO_MEMORY});
        }
    }

    std::unique_lock lock(shared->mutex);
    while (shared->done < plans.size()) {
        if (!cancelled_) {
            shared->done_cv.wait_for(lock, std::chrono::milliseconds(100));
            continue;
        }
        // Cancelled: give the pipelines `grace` to unwind, then stop waiting.
        if (!shared->done_cv.wait_for(lock, grace, [&] { return shared->done == plans.size(); })) {
            for (size_t i = 0; i < shared->results.size(); i++)
                if (!shared->finished[i])
                    spdlog::error("{}: still inside the plugin {} ms after cancel; abandoning it",
                              shared->results[i].device, grace.count());
            abandoned_ = true;
            break;
        }
    }
    lock.unlock();
    for (auto &t : threads) {
        if (abandoned_)
            t.detach();
        else
            t.join();
    }
    std::lock_guard relock(shared->mutex);
    return shared->results;
}

}  // namespace devhost
