// The pipeline engine: drives each planned device through its steps on a
// thread of its own, records every step, and unwinds (unlock, disconnect,
// close) whatever a pipeline still holds when it ends, fails or is
// cancelled, so no device stays locked or open.
#pragma once

#include "check.hpp"
#include "records.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

namespace devhost {

struct PipelineResult {
    std::string device;
    bool ok = true;
    devhost_status status = DEVHOST_OK;  // of the first failed step
};

class Engine {
public:
    Engine(RecordWriter &records, int64_t default_timeout_ms);

    // Runs one device's pipeline on the calling thread.
    PipelineResult run_device(const DevicePlan &plan);

    // Runs every plan concurrently, one thread each, and waits for them.
    // After cancel_all(), threads get `grace` to unwind; a pipeline stuck in
    // a plugin past that is abandoned: reported, its thread detached, and
    // abandoned() turns true; the caller must then end the process without
    // destroying `plans` or this engine (the CLI calls _exit).
    std::vector<PipelineResult> run_all(const std::vector<DevicePlan> &plans,
                                        std::chrono::milliseconds grace = std::chrono::seconds(5));

    // Cancels every running and future pipeline. Async-signal-unsafe; call it
    // from a normal thread (the CLI's signal thread does).
    void cancel_all();
    bool cancelled() const { return cancelled_.load(); }
    // True when run_all gave up waiting on a pipeline after cancel.
    bool abandoned() const { return abandoned_.load(); }

private:
    RecordWriter &records_;
    int64_t default_timeout_ms_;
    std::atomic<bool> cancelled_{false};
    std::atomic<bool> abandoned_{false};
    std::mutex mutex_;
    std::vector<Device *> live_;  // devices of running pipelines, for cancel
};

}  // namespace devhost
