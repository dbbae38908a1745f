// The pipeline engine: drives each planned device through its steps on a
// thread of its own, records every step, and unwinds (unlock, disconnect,
// close) whatever a pipeline still holds when it ends, fails or is
// cancelled, so no device stays locked or open.
//
// Running out of something is a failure like any other, never an abort: a
// pipeline whose thread or cancel handle cannot be made, or a step whose
// buffer cannot be allocated, fails with DEVHOST_E_NO_MEMORY (errno EAGAIN,
// EMFILE, ENOMEM...) in a record, and unwinds what it holds. When a record
// cannot be written, every pipeline stops at once and unwinds: the run can
// no longer say what it did.
#pragma once

#include "check.hpp"
#include "records.hpp"
#include "signals.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace devhost {

struct PipelineResult {
    std::string device;
    bool ok = true;
    devhost_status status = DEVHOST_OK;  // of the first failed step
};

// The one record of a pipeline that could not start (no thread, no cancel
// handle, no worker): its first step, `why`, no step run.
Record not_started_record(const DeviceConfig &config, devhost_status status, int os_errno, const std::string &why);

class Engine : public Stoppable {
public:
    Engine(RecordWriter &records, int64_t default_timeout_ms);

    // Called for each pipeline's device once it is made, before its first
    // step (a worker connects it to the supervisor's watch table).
    using DeviceSetup = std::function<void(Device &, const DevicePlan &)>;
    void on_device(DeviceSetup setup) { setup_ = std::move(setup); }

    // Also shown every record as it is written (devhost serve hands them
    // to its supervisor); called from the pipelines' threads.
    void observe(std::function<void(const Record &)> observer) { observer_ = std::move(observer); }

    // Runs one device's pipeline on the calling thread.
    PipelineResult run_device(const DevicePlan &plan);

    // devhost serve (serve_worker.cpp): runs steps [first, first + count)
    // of `plan` on `device`, recorded with `generation` and each step's
    // phase, until one fails; `seq` is the last seq used, carried from one
    // phase to the next. release() unwinds what the device holds (records
    // in phase `phase`).
    PipelineResult run_range(Device &device, const DevicePlan &plan, size_t first, size_t count, int &seq,
                             int generation);
    void release(Device &device, const DevicePlan &plan, int &seq, int generation, const char *phase);

    // Runs every plan concurrently, one thread each, and waits for them.
    // After cancel_all(), threads get `grace` to unwind; a pipeline stuck in
    // a plugin past that is abandoned: reported, its thread detached, and
    // abandoned() turns true; the caller must then end the process without
    // destroying `plans` or this engine (the CLI calls _exit).
    std::vector<PipelineResult> run_all(const std::vector<DevicePlan> &plans,
                                        std::chrono::milliseconds grace = default_grace);
    static constexpr std::chrono::milliseconds default_grace{5000};

    // Cancels every running and future pipeline. A record write waiting for
    // a slow reader gives up half-way through the grace, so that the unwind
    // ends within it. Async-signal-unsafe; call it from a normal thread (the
    // CLI's signal thread does).
    void cancel_all() override;
    // Whether records could not be written and the pipelines were stopped.
    bool stopped_for_records() const { return records_failed_.load(); }
    bool cancelled() const { return cancelled_.load(); }
    // True when run_all gave up waiting on a pipeline after cancel.
    bool abandoned() const { return abandoned_.load(); }

private:
    // Writes a record; when that fails, stops every pipeline (once).
    bool record(const Record &rec);
    // A pipeline that could not start: one record for its first step.
    // Never throws.
    void record_not_started(const DevicePlan &plan, devhost_status status, int os_errno,
                            const std::string &why) noexcept;
    // Runs one step of a pipeline; its state across steps (the last
    // message id, the buffer).
    struct StepRunner;
    // Runs the steps, each as many times as its repeat= says, until one
    // fails or a record cannot be written; returns the last seq used.
    int run_steps(Device &device, const DevicePlan &plan, PipelineResult &result);
    // Runs and records step `i` (its `repetition`, 0 when not repeated) as
    // record `seq` of `generation` (0 outside serve); false when the pipeline
    // must stop.
    bool run_step(Device &device, StepRunner &runner, const DevicePlan &plan, size_t i, uint32_t repetition,
                  int seq, int generation, PipelineResult &result);
    // Releases what the device still holds, one unwind record each.
    void unwind(Device &device, const DeviceConfig &cfg, int seq, int generation = 0, const char *phase = nullptr);

    // A pipeline's device, registered in live_ while it exists.
    class LiveDevice;

    RecordWriter &records_;
    DeviceSetup setup_;
    std::function<void(const Record &)> observer_;
    int64_t default_timeout_ms_;
    std::atomic<int64_t> grace_ms_{default_grace.count()};
    std::atomic<bool> records_failed_{false};
    std::atomic<bool> cancelled_{false};
    std::atomic<bool> abandoned_{false};
    std::mutex mutex_;
    std::vector<Device *> live_;  // devices of running pipelines, for cancel
};

}  // namespace devhost
